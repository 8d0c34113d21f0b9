import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeBundle, messageBundle, parseBundle, verifyMessageBundle } from '../../src/attest/bundle.ts';
import {
  keySigner,
  keyVerifier,
  loadPrivateKey,
  loadPublicKey,
  writeKeyFiles,
} from '../../src/attest/keys.ts';
import { peersOrSkip, runPeer } from '../helpers/peers.ts';

// Interop of keys and blob signatures with the real cosign v3 (sign-blob/verify-blob, offline: no tlog).
const p = peersOrSkip('cosign');

describe.skipIf(p.skip)('pare keys with cosign', () => {
  let dir: string;
  let sc: string;
  const env = { ...process.env, COSIGN_PASSWORD: 'pare-pw' };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pare-cosign-keys-'));
    sc = join(dir, 'sc.json');
    runPeer(p.paths.cosign!, ['signing-config', 'create', '--out', sc], { env });
    await writeFile(join(dir, 'blob.txt'), 'signed by pare and cosign\n');
  });
  /** Runs `cosign verify-blob` offline in `dir`; throws (with cosign's stderr) when cosign rejects the bundle. */
  const cosignVerifyBlob = (key: string, bundle: string, file: string) =>
    runPeer(
      p.paths.cosign!,
      ['verify-blob', '--key', key, '--bundle', bundle, '--insecure-ignore-tlog=true', file],
      { cwd: dir, env },
    );
  /** Signs blob.txt with pare and the key file `keyFile` (password pare-pw), writing the bundle to `bundle`. */
  const pareSignBlob = async (keyFile: string, bundle: string) => {
    const pair = await loadPrivateKey(await readFile(join(dir, keyFile), 'utf8'), { password: 'pare-pw' });
    const b = await messageBundle(await readFile(join(dir, 'blob.txt')), keySigner(pair));
    await writeFile(join(dir, bundle), encodeBundle(b));
  };

  describe('when pare generates the key', () => {
    it('cosign sign-blob uses it and cosign verify-blob accepts the signature; pare verifies it too', async () => {
      await writeKeyFiles('pare-pw', { prefix: join(dir, 'pare') });
      runPeer(
        p.paths.cosign!,
        ['sign-blob', '--key', 'pare.key', '--signing-config', sc, '--bundle', 'c.bundle', '-y', 'blob.txt'],
        { cwd: dir, env },
      );
      cosignVerifyBlob('pare.pub', 'c.bundle', 'blob.txt');
      const b = parseBundle(await readFile(join(dir, 'c.bundle')));
      const v = keyVerifier(loadPublicKey(await readFile(join(dir, 'pare.pub'), 'utf8')));
      verifyMessageBundle(b, await readFile(join(dir, 'blob.txt')), v);
    });
  });

  describe('when pare signs a blob bundle', () => {
    it('cosign verify-blob accepts it, and rejects it for a changed file', async () => {
      await pareSignBlob('pare.key', 'p.bundle');
      cosignVerifyBlob('pare.pub', 'p.bundle', 'blob.txt');
      await writeFile(join(dir, 'other.txt'), 'tampered\n');
      expect(() => cosignVerifyBlob('pare.pub', 'p.bundle', 'other.txt')).toThrow(/failed/);
    });
  });

  describe('when cosign generates the key', () => {
    it('pare loads it with COSIGN_PASSWORD and its signatures verify under cosign.pub', async () => {
      runPeer(p.paths.cosign!, ['generate-key-pair', '--output-key-prefix', 'cg'], { cwd: dir, env });
      await pareSignBlob('cg.key', 'cg.bundle');
      cosignVerifyBlob('cg.pub', 'cg.bundle', 'blob.txt');
    });
  });
});
