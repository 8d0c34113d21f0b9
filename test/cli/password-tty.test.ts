import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPrivateKey } from '../../src/attest/index.ts';
import { shellQuote } from '../../src/run/index.ts';
import { NODE, PARE, pare } from '../helpers/cli.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * The key password on a terminal, as cosign asks for it: with COSIGN_PASSWORD unset, `pare key generate` and
 * `pare sign` prompt on a pseudo-terminal (util-linux `script`) and read the answer without echoing it.
 */

const peers = peersOrSkip('script');

/** `pare ARGS` on a pseudo-terminal; `answer(prompt, text)` replies when the transcript ends with `prompt`. */
function onTerminal(args: readonly string[], cwd: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.COSIGN_PASSWORD;
  const cmd = [NODE, PARE, ...args].map(shellQuote).join(' ');
  const child = spawn(peers.paths.script!, ['-qfec', cmd, '/dev/null'], {
    cwd,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let transcript = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout.on('data', (c: Buffer) => {
    transcript += c.toString('utf8');
    for (const w of waiters.splice(0)) {
      if (transcript.endsWith(w.text)) w.resolve();
      else waiters.push(w);
    }
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    transcript: () => transcript,
    closed,
    /** Waits for `prompt` (the child is then reading in raw mode, so nothing typed is echoed), then types `text`. */
    async answer(prompt: string, text: string) {
      await Promise.race([
        new Promise<void>((resolve) => {
          if (transcript.endsWith(prompt)) resolve();
          else waiters.push({ text: prompt, resolve });
        }),
        closed.then((code) => {
          throw new Error(`pare exited ${code} before asking ${JSON.stringify(prompt)}: ${transcript}`);
        }),
      ]);
      child.stdin.write(`${text}\r`);
    },
    end: () => child.stdin.end(),
  };
}

describe.skipIf(peers.skip)('the key password on a terminal', () => {
  const dir = tempDir('pare-password-tty-');

  it('pare key generate asks twice without echo and seals the key with the answer', async () => {
    const t = onTerminal(['key', 'generate', '--output-key-prefix', 'tty'], dir);
    await t.answer('Enter password for private key: ', 'typed-secret');
    await t.answer('Enter password for private key again: ', 'typed-secret');
    t.end();
    expect(await t.closed, t.transcript()).toBe(0);
    expect(t.transcript()).toContain('Private key written to tty.key');
    expect(t.transcript()).not.toContain('typed-secret');
    const key = await loadPrivateKey(readFileSync(join(dir, 'tty.key'), 'utf8'), {
      password: 'typed-secret',
    });
    expect(key.publicKey).toBeDefined();
    await expect(
      loadPrivateKey(readFileSync(join(dir, 'tty.key'), 'utf8'), { password: 'other' }),
    ).rejects.toThrow(expect.objectContaining({ code: 'ATTEST_KEY_PASSWORD' }));
  });

  it('refuses two different answers (exit 2) and writes no key', async () => {
    const t = onTerminal(['key', 'generate', '--output-key-prefix', 'mismatch'], dir);
    await t.answer('Enter password for private key: ', 'one');
    await t.answer('Enter password for private key again: ', 'two');
    t.end();
    expect(await t.closed).toBe(2);
    expect(t.transcript()).toContain('the passwords do not match');
    expect(() => readFileSync(join(dir, 'mismatch.key'))).toThrow();
  });

  it('pare sign asks once for an encrypted key and the signature verifies', async () => {
    const built = pare(['build', join(import.meta.dirname, '../../examples/hello'), '-o', join(dir, 'img')], {
      env: { SOURCE_DATE_EPOCH: '0', XDG_CACHE_HOME: join(dir, 'cache') },
    });
    expect(built.code, built.stderr).toBe(0);
    const t = onTerminal(['sign', '--key', 'tty.key', `oci:${join(dir, 'img')}`], dir);
    await t.answer('Enter password for private key: ', 'typed-secret');
    t.end();
    expect(await t.closed, t.transcript()).toBe(0);
    expect(t.transcript()).not.toContain('typed-secret');
    const v = pare(['verify', '--key', 'tty.pub', `oci:${join(dir, 'img')}`], { cwd: dir });
    expect(v.code, v.stderr).toBe(0);
  });

  it('without a terminal and without COSIGN_PASSWORD, says how to set it (exit 2)', () => {
    const r = pare(['key', 'generate', '--output-key-prefix', 'none'], {
      cwd: dir,
      env: { COSIGN_PASSWORD: undefined },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('COSIGN_PASSWORD is not set and stdin is not a terminal');
  });
});
