import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readAptSources } from '../../src/debian/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersOrSkip, peersRequired } from '../helpers/peers.ts';
import { compileProbe } from '../helpers/probe.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * A user's own dynamically linked program from files:, sliced against real Debian packages (the host's apt sources):
 * where it lands must not change what the slice keeps. Before the fix, a dest under /usr made /usr and /usr/local keep
 * globs, so nothing under /usr was removed.
 */
const peers = peersOrSkip('bwrap', 'gcc');
const sources = await readAptSources().catch(() => []);
const mirror = sources.some((s) => s.types.includes('deb')) && process.arch === 'x64';
if (!mirror) {
  const reason = 'no Debian mirror in the host apt sources, or not an amd64 host: the build needs both';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
}

describe.skipIf(peers.skip || !mirror)('files: under /usr in a sliced packages build', () => {
  const dir = tempDir();

  async function buildAt(dest: string) {
    const p = join(dir, dest.replaceAll('/', '_'));
    mkdirSync(p);
    compileProbe(peers.paths.gcc!, join(p, 'probe'), { dynamic: true });
    writeFileSync(
      join(p, 'pare.yaml'),
      `name: probe\ndebian:\n  suite: bookworm\npackages: [libc6, coreutils]\nfiles:\n  - { src: probe, dest: ${dest} }\nimage:\n  entrypoint: [${dest}]\n  cmd: [id]\n`,
    );
    const out = join(p, 'out');
    const r = await pare(['build', p, '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as {
      slices: Record<string, { before: { bytes: number }; after: { bytes: number } }>;
    };
    const run = await pare(['run', `oci:${out}:latest`]);
    expect(run.stdout).toBe('id: uid=65532 gid=65532\n');
    expect(run.code).toBe(0);
    return json.slices['linux/amd64']!;
  }

  it('keeps the same closure for /usr/local/bin as for /app, far less than the packages', async () => {
    const app = await buildAt('/app/probe');
    const usr = await buildAt('/usr/local/bin/probe');
    expect(usr.after.bytes).toBe(app.after.bytes);
    // coreutils (nothing the probe needs) is gone: well under half of the packages' bytes stay
    expect(usr.after.bytes).toBeLessThan(usr.before.bytes / 2);
  }, 300_000);
});
