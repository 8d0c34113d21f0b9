import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../digest/index.ts';
import { bufferContent, fileEntry, Tree } from '../fstree/index.ts';
import { rootfsCacheDir, STALE_TMP_MS, unpackCached } from './unpack.ts';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pare-unpack-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('rootfsCacheDir', () => {
  it('uses an absolute XDG_CACHE_HOME, else ~/.cache', () => {
    expect(rootfsCacheDir({ XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/x/pare/rootfs');
    // note: the XDG spec says a relative value must be ignored
    expect(rootfsCacheDir({ XDG_CACHE_HOME: 'rel', HOME: '/h' })).toBe('/h/.cache/pare/rootfs');
    expect(rootfsCacheDir({ HOME: '/h' })).toBe('/h/.cache/pare/rootfs');
  });
});

describe('unpackCached', () => {
  const tree = Tree.from([['/a', fileEntry(bufferContent('a'))]]);

  it('names the directory by the digest hex', async () => {
    const d = sha256('x');
    const r = await unpackCached(d, async () => tree, { cacheDir: join(dir, 'c1') });
    expect(r.path).toBe(join(dir, 'c1', d.slice('sha256:'.length)));
    expect(r.cached).toBe(false);
  });

  describe('when making the tree fails', () => {
    it('throws RUN_UNPACK_FAILED and leaves no temp dir', async () => {
      const cacheDir = join(dir, 'c2');
      await expect(
        unpackCached(
          sha256('y'),
          async () => {
            throw new Error('layer digest mismatch');
          },
          { cacheDir },
        ),
      ).rejects.toThrow(
        expect.objectContaining({
          code: 'RUN_UNPACK_FAILED',
          message: expect.stringContaining('layer digest mismatch'),
        }),
      );
      expect(readdirSync(cacheDir)).toEqual([]);
    });
  });

  describe('when a killed run left a temp dir behind', () => {
    it('removes it once it is older than STALE_TMP_MS, and keeps a fresh one', async () => {
      const cacheDir = join(dir, 'c3');
      const old = join(cacheDir, '.abc.tmp-OLD123');
      const fresh = join(cacheDir, '.abc.tmp-NEW123');
      mkdirSync(join(old, 'usr'), { recursive: true });
      mkdirSync(fresh, { recursive: true });
      const t = (Date.now() - STALE_TMP_MS - 60_000) / 1000;
      utimesSync(old, t, t);
      await unpackCached(sha256('z'), async () => tree, { cacheDir });
      expect(existsSync(old)).toBe(false);
      expect(existsSync(fresh)).toBe(true);
    });
  });
});
