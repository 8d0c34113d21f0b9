import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { NODE, PARE, pare } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `pare … | head -1`: the reader closes the pipe before pare has written. pare must end quietly with status 0
 * (issue 15 §5), whatever the command, not die on EPIPE with a stack trace.
 */

let work: string;
let image: string;

/** Runs pare with a stdout pipe whose read end is closed before pare starts writing. */
function intoClosedPipe(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(NODE, [PARE, ...args], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  // note: closed at once, long before the child's Node has started, so its first write meets a closed pipe
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((done) => child.on('close', (code) => done({ code, stderr })));
}

describe('a closed stdout pipe', () => {
  beforeAll(() => {
    work = tempDir('pare-pipe-');
    const built = pare(['build', resolve('test/fixtures/build/files-only'), '-o', join(work, 'out')]);
    expect(built.code, built.stderr).toBe(0);
    image = `oci:${join(work, 'out')}:hello`;
  });

  it.each([
    [['--help']],
    [['--version']],
    [['inspect', 'IMAGE']],
    [['inspect', '--json', 'IMAGE']],
    [['sbom', 'IMAGE']],
    [['build', '--help']],
  ])('pare %j ends quietly with status 0', async (args) => {
    const r = await intoClosedPipe(args.map((a) => (a === 'IMAGE' ? image : a)));
    expect(r.code).toBe(0);
    // (a note such as "using linux/amd64" may come first; stderr is still open)
    expect(r.stderr).not.toMatch(/EPIPE|Error|^\s+at /m);
  });
});
