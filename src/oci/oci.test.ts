import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbTree, canonicalHardlinks } from '../../test/helpers/arbitraries.ts';
import { bufferContent, dumpTree, TreeBuilder } from '../fstree/index.ts';
import { collect } from '../tar/index.ts';
import {
  buildImage,
  buildIndex,
  imageToTree,
  layerFromTree,
  parseManifest,
  selectImage,
  validateImage,
} from './index.ts';
import { SPOOL_MEMORY_LIMIT } from './spool.ts';

const platform = { os: 'linux', architecture: 'amd64' };

describe('layerFromTree', () => {
  it.each(['gzip', 'zstd', 'none'] as const)('gives the same %s bytes every time', async (compression) => {
    const t = new TreeBuilder()
      .put('/a', {
        kind: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        content: bufferContent('x'.repeat(10000)),
      })
      .build();
    const a = layerFromTree(t, { compression });
    const b = layerFromTree(t, { compression });
    expect(await a.digest()).toBe(await b.digest());
    expect(Buffer.from(await collect(a.compressed()))).toEqual(Buffer.from(await collect(b.compressed())));
  });
  it('writes gzip with mtime 0 and OS byte 255', async () => {
    const bytes = await collect(layerFromTree(new TreeBuilder().build()).compressed());
    expect([...bytes.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  });
  it('spills big layers to disk and still reads them back whole', async () => {
    const big = new Uint8Array(20 << 20).map((_, i) => (i * 2654435761) >>> 24);
    const t = new TreeBuilder()
      .put('/big', { kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: bufferContent(big) })
      .build();
    const spoolDir = mkdtempSync(join(tmpdir(), 'spool-'));
    const l = layerFromTree(t, { compression: 'none', spoolDir });
    const size = await l.size();
    // The spill is there to see: one spool directory whose data file holds the whole layer, beyond the memory limit.
    const spills = readdirSync(spoolDir).filter((d) => d.startsWith('pare-spool-'));
    expect(spills).toHaveLength(1);
    expect(statSync(join(spoolDir, spills[0]!, 'data')).size).toBe(size);
    expect(size).toBeGreaterThan(SPOOL_MEMORY_LIMIT);
    const h = createHash('sha256');
    let n = 0;
    for await (const c of l.compressed()) {
      h.update(c);
      n += c.length;
    }
    expect(n).toBe(size);
    expect(`sha256:${h.digest('hex')}`).toBe(await l.digest());
  });
});

describe('buildImage', () => {
  it('validates, and reads back to the tree it was built from', async () => {
    await fc.assert(
      fc.asyncProperty(arbTree(), async (tree) => {
        const img = buildImage({ layers: [layerFromTree(tree)], platform, created: '1970-01-01T00:00:00Z' });
        expect(await validateImage(img)).toEqual([]);
        expect(await dumpTree(await imageToTree(img), { mtime: true })).toEqual(
          await dumpTree(canonicalHardlinks(tree), { mtime: true }),
        );
      }),
      { numRuns: 15 },
    );
  });
  it('writes canonical manifest JSON with the OCI media types', async () => {
    const img = buildImage({
      layers: [],
      platform,
      config: { User: '65532', Env: ['A=1'] },
      annotations: { 'org.opencontainers.image.title': 't' },
    });
    const m = parseManifest(await img.rawManifest());
    expect(m.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(m.config.mediaType).toBe('application/vnd.oci.image.config.v1+json');
    expect(new TextDecoder().decode(await img.rawConfig())).toBe(
      '{"architecture":"amd64","os":"linux","config":{"User":"65532","Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":[]},"history":[]}',
    );
  });
});

describe('selectImage', () => {
  it('picks the entry for the platform and names the others when missing', async () => {
    const amd = buildImage({ layers: [], platform });
    const arm = buildImage({ layers: [], platform: { os: 'linux', architecture: 'arm64' } });
    const idx = buildIndex([
      { image: amd, platform },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const got = await selectImage(
      { kind: 'index', index: idx },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    );
    expect(await got.digest()).toBe(await arm.digest());
    await expect(
      selectImage({ kind: 'index', index: idx }, { os: 'linux', architecture: 's390x' }),
    ).rejects.toThrow(
      expect.objectContaining({
        code: 'OCI_PLATFORM_NOT_FOUND',
        message: expect.stringContaining('linux/arm64'),
      }),
    );
  });
});
