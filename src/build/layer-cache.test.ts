import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bufferContent, TreeBuilder } from '../fstree/index.ts';
import { layerFromTree } from '../oci/index.ts';
import { collect } from '../tar/index.ts';
import { cacheKey, LayerCache } from './layer-cache.ts';

const tree = new TreeBuilder()
  .put('/etc/x', {
    kind: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 0,
    content: bufferContent('x'.repeat(5000)),
  })
  .build();

describe('LayerCache', () => {
  it('returns what was put, with the same digests and bytes', async () => {
    const c = new LayerCache(mkdtempSync(join(tmpdir(), 'pare-lc-')));
    const layer = layerFromTree(tree);
    await c.put('k', {
      layer,
      users: [['nonroot', 65532, 65532]],
      groups: [['nonroot', 65532]],
      slice: undefined,
    });
    const hit = await c.get('k');
    expect(await hit?.layer.digest()).toBe(await layer.digest());
    expect(await hit?.layer.diffId()).toBe(await layer.diffId());
    expect(Buffer.from(await collect(hit!.layer.compressed()))).toEqual(
      Buffer.from(await collect(layer.compressed())),
    );
    expect(hit?.users).toEqual([['nonroot', 65532, 65532]]);
  });
  describe('when the cache is damaged', () => {
    it('treats a missing or malformed entry as a miss', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pare-lc-'));
      const c = new LayerCache(dir);
      expect(await c.get('nope')).toBeUndefined();
      await c.put('k', { layer: layerFromTree(tree), users: [], groups: [], slice: undefined });
      writeFileSync(join(dir, 'layers', 'k.json'), '{not json');
      expect(await c.get('k')).toBeUndefined();
    });
    it('treats a blob of the wrong size as a miss, and refuses a tampered blob as it is read', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pare-lc-'));
      const c = new LayerCache(dir);
      const layer = layerFromTree(tree);
      await c.put('k', { layer, users: [], groups: [], slice: undefined });
      const blob = join(dir, 'blobs', 'sha256', readdirSync(join(dir, 'blobs', 'sha256'))[0]!);
      const good = Buffer.from(await collect(layer.compressed()));
      writeFileSync(blob, good.subarray(1));
      expect(await c.get('k')).toBeUndefined();
      const bad = Buffer.from(good);
      bad[bad.length - 5]! ^= 0xff;
      writeFileSync(blob, bad);
      const hit = await c.get('k');
      await expect(collect(hit!.layer.compressed())).rejects.toThrow(
        expect.objectContaining({ code: 'DIGEST_MISMATCH' }),
      );
    });
  });
});

describe('cacheKey', () => {
  it('does not depend on object key order, and does on values', () => {
    expect(cacheKey({ a: 1, b: [1, { c: 2, d: 3 }] })).toBe(cacheKey({ b: [1, { d: 3, c: 2 }], a: 1 }));
    expect(cacheKey({ a: 1 })).not.toBe(cacheKey({ a: 2 }));
  });
});
