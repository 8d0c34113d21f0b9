import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { sha256, verifyStream } from '../digest/index.ts';
import { bufferContent, TreeBuilder } from '../fstree/index.ts';
import { collect, tarFromTree } from '../tar/index.ts';
import {
  checkedStoredLayer,
  imageFromParts,
  imageToTree,
  isSpooledFile,
  layerFromOpener,
  readLimits,
  uncompressedLayer,
  verifyImage,
} from './index.ts';
import { DEFAULT_READ_LIMITS, type ReadLimits } from './limits.ts';
import { ContentSpool } from './spool.ts';

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}
const drain = async (s: AsyncIterable<Uint8Array>) => {
  for await (const _ of s) {
    /* read */
  }
};
const limits = (l: Partial<ReadLimits>): ReadLimits => ({ ...DEFAULT_READ_LIMITS, ...l });

async function tarOf(files: Record<string, string | Uint8Array>): Promise<Uint8Array> {
  const b = new TreeBuilder();
  for (const [p, c] of Object.entries(files))
    b.put(p, { kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: bufferContent(c) });
  return collect(tarFromTree(b.build()));
}

/** An image of one stored layer whose config says `diffId`; the stored bytes are verified against their digest. */
function imageOf(stored: Uint8Array, mediaType: string, diffId: string, l?: ReadLimits) {
  const config = new TextEncoder().encode(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } }),
  );
  const digest = sha256(stored);
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [{ mediaType, digest, size: stored.length }],
    }),
  );
  return imageFromParts({
    where: 'test-image',
    rawManifest: async () => manifest,
    rawConfig: async () => config,
    layer: async (d, _i, id) =>
      layerFromOpener({
        open: () => verifyStream(once(stored), d.digest, d.size),
        digest: d.digest,
        size: d.size,
        mediaType: d.mediaType,
        ...(id ? { diffId: id } : {}),
        what: `layer ${d.digest} of test-image`,
        ...(l ? { limits: l } : {}),
      }),
  });
}

describe('uncompressedLayer', () => {
  describe('when the consumer stops at the tar end marker', () => {
    it('still reads the rest and refuses a layer whose bytes after the end differ from the diff_id', async () => {
      const tar = await tarOf({ '/a': 'x' });
      const tampered = Buffer.concat([tar, Buffer.from('trailing bytes after the end of the archive')]);
      const img = imageOf(
        zlib.gzipSync(tampered),
        'application/vnd.oci.image.layer.v1.tar+gzip',
        sha256(tar),
      );
      await expect(imageToTree(img)).rejects.toThrow(
        expect.objectContaining({
          code: 'OCI_LAYER_INVALID',
          message: expect.stringContaining('of test-image'),
        }),
      );
    });
    it('returns the tree when everything matches', async () => {
      const tar = await tarOf({ '/a': 'x' });
      const img = imageOf(
        zlib.zstdCompressSync(tar),
        'application/vnd.oci.image.layer.v1.tar+zstd',
        sha256(tar),
      );
      const tree = await imageToTree(img);
      expect(new TextDecoder().decode(await tree.readFile('/a'))).toBe('x');
    });
  });

  describe('when the stored bytes do not match their digest but decompress to the diff_id', () => {
    it('throws DIGEST_MISMATCH (the compressed stream is read to its end)', async () => {
      const tar = await tarOf({ '/a': 'x' });
      const gz = Buffer.from(zlib.gzipSync(tar));
      const layer = layerFromOpener({
        open: () =>
          verifyStream(
            once(Buffer.concat([gz.subarray(0, 4), Buffer.from([9]), gz.subarray(5)])),
            sha256(gz),
          ),
        digest: sha256(gz),
        size: gz.length,
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        diffId: sha256(tar),
      });
      await expect(drain(layer.uncompressed())).rejects.toThrow(
        expect.objectContaining({ code: 'DIGEST_MISMATCH' }),
      );
    });
  });

  describe('when a limit is passed', () => {
    const zeros = new Uint8Array(4 << 20);
    it.each([
      ['gzip', zlib.gzipSync(zeros)],
      ['zstd', zlib.zstdCompressSync(zeros)],
    ] as const)('refuses a %s bomb by its ratio, naming the layer and the variable', async (c, z) => {
      const s = uncompressedLayer(once(z), {
        compression: c,
        what: 'layer L',
        limits: limits({ ratio: 10, ratioAfter: 1 << 20 }),
      });
      await expect(drain(s)).rejects.toThrow(
        expect.objectContaining({
          code: 'OCI_LIMIT',
          message: expect.stringMatching(/layer L.*PARE_MAX_RATIO/),
        }),
      );
    });
    it('refuses more uncompressed bytes than allowed, compressed or not', async () => {
      for (const [c, z] of [
        ['none', zeros],
        ['gzip', zlib.gzipSync(zeros)],
      ] as const) {
        const s = uncompressedLayer(once(z), {
          compression: c,
          what: 'layer L',
          limits: limits({ layerBytes: 1 << 20 }),
        });
        await expect(drain(s)).rejects.toThrow(
          expect.objectContaining({
            code: 'OCI_LIMIT',
            message: expect.stringContaining('PARE_MAX_LAYER_BYTES'),
          }),
        );
      }
    });
    it('refuses a zstd frame whose window is over the limit, naming the layer', async () => {
      const z = zlib.zstdCompressSync(randomBytes(4 << 20), {
        params: { [zlib.constants.ZSTD_c_windowLog]: 24, [zlib.constants.ZSTD_c_contentSizeFlag]: 0 },
        pledgedSrcSize: undefined,
      } as zlib.ZstdOptions);
      const s = uncompressedLayer(once(z), {
        compression: 'zstd',
        what: 'layer L',
        limits: limits({ zstdWindowLog: 20 }),
      });
      await expect(drain(s)).rejects.toThrow(
        expect.objectContaining({
          code: 'OCI_LAYER_INVALID',
          message: expect.stringMatching(/cannot decompress layer L \(zstd\)/),
        }),
      );
    });
    it('refuses a layer with more members or a longer path than allowed (TAR_LIMIT)', async () => {
      const tar = await tarOf({ '/a': 'x', '/b': 'y', [`/${'p'.repeat(200)}`]: 'z' });
      for (const l of [limits({ entries: 2 }), limits({ pathLength: 100 })]) {
        const img = imageOf(tar, 'application/vnd.oci.image.layer.v1.tar', sha256(tar));
        await expect(imageToTree(img, { limits: l })).rejects.toThrow(
          expect.objectContaining({
            code: 'TAR_LIMIT',
            message: expect.stringMatching(/PARE_MAX_(ENTRIES|PATH_LENGTH)/),
          }),
        );
      }
    });
  });

  it('verifyImage refuses a diff_id count that differs from the layer count', async () => {
    const tar = await tarOf({ '/a': 'x' });
    const config = new TextEncoder().encode(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [sha256(tar), sha256(tar)] },
      }),
    );
    const manifest = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: sha256(config),
          size: config.length,
        },
        layers: [
          { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(tar), size: tar.length },
        ],
      }),
    );
    const img = imageFromParts({
      rawManifest: async () => manifest,
      rawConfig: async () => config,
      layer: async () => {
        throw new Error('not reached');
      },
    });
    await expect(verifyImage(img)).rejects.toThrow(expect.objectContaining({ code: 'OCI_MANIFEST_INVALID' }));
  });
});

describe('checkedStoredLayer', () => {
  const chunks = (b: Uint8Array, n: number) =>
    (async function* () {
      for (let o = 0; o < b.length; o += n) yield b.subarray(o, o + n);
    })();
  const collectAll = async (s: AsyncIterable<Uint8Array>) => {
    const out: Uint8Array[] = [];
    for await (const c of s) out.push(c);
    return out;
  };

  it('passes the stored bytes on unchanged when the diff_id matches', async () => {
    const tar = await tarOf({ '/a': randomBytes(300_000) });
    const gz = zlib.gzipSync(tar);
    const out = await collectAll(
      checkedStoredLayer(chunks(gz, 4096), { compression: 'gzip', diffId: sha256(tar), what: 'layer L' }),
    );
    expect(Buffer.concat(out).equals(gz)).toBe(true);
  });

  describe('when the config lies about the diff_id', () => {
    it('throws OCI_LAYER_INVALID before the last chunk is passed on', async () => {
      const tar = await tarOf({ '/a': 'x' });
      const gz = zlib.gzipSync(tar);
      let passed = 0;
      const s = checkedStoredLayer(chunks(gz, 7), {
        compression: 'gzip',
        diffId: sha256('other'),
        what: 'layer L',
      });
      await expect(
        (async () => {
          for await (const c of s) passed += c.length;
        })(),
      ).rejects.toThrow(
        expect.objectContaining({ code: 'OCI_LAYER_INVALID', message: expect.stringContaining('layer L') }),
      );
      expect(passed).toBeLessThan(gz.length);
    });
  });

  describe('when the stored bytes are a bomb', () => {
    it('refuses them while passing on no more than was taken (memory stays bounded)', async () => {
      const gz = zlib.gzipSync(new Uint8Array(8 << 20));
      const s = checkedStoredLayer(chunks(gz, 1024), {
        compression: 'gzip',
        diffId: sha256('x'),
        what: 'layer B',
        limits: limits({ layerBytes: 1 << 20, ratioAfter: 1 << 20 }),
      });
      await expect(drain(s)).rejects.toThrow(expect.objectContaining({ code: 'OCI_LIMIT' }));
    });
  });

  describe('when a gzip stream is followed by trailing bytes', () => {
    it('keeps reading them through the checker (its stream is read to the end) and refuses the mismatch', async () => {
      const tar = await tarOf({ '/a': 'x' });
      const stored = Buffer.concat([zlib.gzipSync(tar), Buffer.alloc(1 << 20, 1)]);
      const s = checkedStoredLayer(chunks(stored, 65536), {
        compression: 'gzip',
        diffId: sha256('x'),
        what: 'layer T',
      });
      await expect(drain(s)).rejects.toThrow(
        expect.objectContaining({ message: expect.stringContaining('layer T') }),
      );
    });
  });
});

describe('readLimits', () => {
  it('takes each limit from its variable and refuses a bad value', () => {
    expect(readLimits({ PARE_MAX_RATIO: '7', PARE_MAX_ENTRIES: '9' })).toMatchObject({
      ratio: 7,
      entries: 9,
    });
    expect(readLimits({})).toEqual(DEFAULT_READ_LIMITS);
    for (const v of ['0', '-1', '1.5', 'x', '1e9'])
      expect(() => readLimits({ PARE_MAX_RATIO: v })).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => readLimits({ PARE_MAX_ZSTD_WINDOW_LOG: '40' })).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    );
  });
});

describe('ContentSpool', () => {
  it('gives back every file, in memory or from its temp file, whole and by range', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-spool-test-'));
    const spool = new ContentSpool({ dir });
    const files = [0, 10, ContentSpool.SMALL_FILE + 1, 3 * ContentSpool.SMALL_FILE + 7, 5].map((n) =>
      randomBytes(n),
    );
    const contents = [];
    for (const f of files) {
      const parts: Uint8Array[] = [];
      for (let o = 0; o < f.length; o += 65536) parts.push(f.subarray(o, o + 65536));
      contents.push(
        await spool.content(
          f.length,
          (async function* () {
            yield* parts;
          })(),
        ),
      );
    }
    for (const [i, c] of contents.entries()) {
      const f = files[i]!;
      expect(c.size).toBe(f.length);
      // .equals, not toEqual: vitest compares a 3 MiB Buffer element by element for over a minute.
      expect(Buffer.from(await collect(c.open())).equals(f)).toBe(true);
      const off = Math.floor(f.length / 3);
      expect(Buffer.from(await c.read(off, 1000)).equals(f.subarray(off, off + 1000))).toBe(true);
    }
    // the two big files went to one spool file
    expect(readdirSync(dir)).toHaveLength(1);
  });

  it('with apart, gives each big file a spool file of its own (a SpooledFile), small ones stay in memory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-spool-test-'));
    const spool = new ContentSpool({ dir, apart: true });
    const big = randomBytes(ContentSpool.SMALL_FILE + 1);
    const small = randomBytes(10);
    const b = await spool.content(big.length, once(big));
    const s = await spool.content(small.length, once(small));
    expect(isSpooledFile(b) && readFileSync(b.spooledFile).equals(big)).toBe(true);
    expect(Buffer.from(await collect(b.open())).equals(big)).toBe(true);
    expect(isSpooledFile(s)).toBe(false);
    expect(Buffer.from(await s.bytes()).equals(small)).toBe(true);
  });

  // Several .debs are read at once into one spool: files arriving together must each get a region of their own.
  it('keeps files apart when they are written at the same time, in one spool file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-spool-test-'));
    const spool = new ContentSpool({ dir });
    const files = [1, 2, 3].map((i) => randomBytes(ContentSpool.SMALL_FILE + 1000 * i));
    const interleaved = (f: Uint8Array) =>
      (async function* () {
        for (let o = 0; o < f.length; o += 65536) {
          await new Promise((r) => setImmediate(r)); // the other files' chunks come in between
          yield f.subarray(o, o + 65536);
        }
      })();
    const contents = await Promise.all(files.map((f) => spool.content(f.length, interleaved(f))));
    for (const [i, c] of contents.entries()) expect(sha256(await collect(c.open()))).toBe(sha256(files[i]!));
    expect(readdirSync(dir)).toHaveLength(1);
  });
});
