import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE } from '../../test/helpers/cli.ts';
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

describe('unpackImage', () => {
  it('writes a big file once: its body moves from the spool into the rootfs, it is not copied', () => {
    // In a child, so /proc/self/io counts only this unpack's writes (vitest runs other files in this process's threads).
    const size = 48 << 20;
    const script = `
      import { readFileSync } from 'node:fs';
      import { createHash } from 'node:crypto';
      import { bufferContent, fileEntry, Tree } from ${JSON.stringify(resolve('src/fstree/index.ts'))};
      import { buildImage, layerFromTree } from ${JSON.stringify(resolve('src/oci/index.ts'))};
      import { unpackImage } from ${JSON.stringify(resolve('src/run/unpack.ts'))};
      const big = new Uint8Array(${size});
      for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
      const tree = Tree.from([['/big', fileEntry(bufferContent(big))], ['/small', fileEntry(bufferContent('s'))]]);
      const image = buildImage({ layers: [layerFromTree(tree)], platform: { os: 'linux', architecture: 'amd64' } });
      for (const l of await image.layers()) await l.digest(); // compressed (and spooled) before the count starts
      const wchar = () => Number(/wchar: (\\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))[1]);
      const before = wchar();
      const r = await unpackImage(image, { cacheDir: process.argv[2] });
      const written = wchar() - before;
      const same = createHash('sha256').update(readFileSync(r.path + '/big')).digest('hex') === createHash('sha256').update(big).digest('hex');
      console.log(JSON.stringify({ written, same }));`;
    const cacheDir = join(dir, 'once');
    // A file, not -e: the compressor's worker threads inherit the flags, and --input-type=module would change theirs.
    const file = join(dir, 'once.mjs');
    writeFileSync(file, script);
    const r = spawnSync(NODE, [file, cacheDir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr.slice(-2000)}`);
    const out = JSON.parse(r.stdout) as { written: number; same: boolean };
    expect(out.same).toBe(true);
    // Written twice (spool, then a copy into the rootfs) was 2 × size.
    expect(out.written).toBeGreaterThanOrEqual(size);
    expect(out.written).toBeLessThan(size * 1.25);
    // Nothing of the spool is left beside the unpacked rootfs.
    expect(readdirSync(cacheDir)).toHaveLength(1);
  });
});
