import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compress } from './compress.ts';
import { GZIP_BLOCK, gzipParallel, ZSTD_FRAME, zstdParallel } from './parallel.ts';

/** Deterministic bytes that compress like real data (runs, repeats and noise), not like zeros or pure noise. */
function sample(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x % 7 === 0 ? x >>> 24 : (i >> 6) & 0x3f ? 0x41 + ((i >> 3) % 26) : x & 0xff;
  }
  return b;
}

/** Splits bytes into chunks at the given cut points (any order, any duplicates). */
function chunked(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, b.length]) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  return out;
}

async function* from(chunks: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for (const c of chunks) yield c;
}

async function gzipBytes(chunks: Iterable<Uint8Array>, threads: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of gzipParallel(from(chunks), { threads })) parts.push(c);
  return Buffer.concat(parts);
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('gzipParallel', () => {
  describe('when the same bytes are compressed with any number of threads, cut any way', () => {
    it('gives the same output, which gunzip reads back to the input', async () => {
      const sizes = [
        0,
        1,
        2,
        GZIP_BLOCK - 1,
        GZIP_BLOCK,
        GZIP_BLOCK + 1,
        2 * GZIP_BLOCK + 32767,
        3 * GZIP_BLOCK,
      ];
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...sizes),
          fc.array(fc.nat(), { maxLength: 6 }),
          fc.constantFrom(1, 2, 4, 8),
          async (size, cuts, threads) => {
            const input = sample(size, size + 7);
            const inline = await gzipBytes([input], 0);
            const out = await gzipBytes(chunked(input, cuts), threads);
            expect(sha(out)).toBe(sha(inline));
            expect(Buffer.compare(zlib.gunzipSync(out), input)).toBe(0);
          },
        ),
        { numRuns: 25 },
      );
    });
  });

  it('writes a fixed header: mtime 0, XFL 0, OS 255', async () => {
    const out = await gzipBytes([], 2);
    expect([...out.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    expect(zlib.gunzipSync(out).length).toBe(0);
  });

  it('ends with the CRC-32 and the length of the input', async () => {
    const input = sample(GZIP_BLOCK + 12345);
    const out = await gzipBytes([input], 2);
    expect(out.readUInt32LE(out.length - 8)).toBe(zlib.crc32(input));
    expect(out.readUInt32LE(out.length - 4)).toBe(input.length);
  });

  // Pinned: this is the format of every gzip layer pare writes, so a change here changes every image digest.
  it('gives the golden bytes for a fixed input', async () => {
    const out = await gzipBytes([sample(3 * GZIP_BLOCK + 5000, 42)], 2);
    expect(sha(out)).toBe(GOLDEN_GZIP);
  });

  it('is read by the system gzip', async () => {
    const input = sample(2 * GZIP_BLOCK + 99, 3);
    const out = await gzipBytes([input], 2);
    execFileSync('gzip', ['-t'], { input: out });
    expect(sha(execFileSync('gzip', ['-dc'], { input: out, maxBuffer: 64 << 20 }))).toBe(sha(input));
  });

  it('stays correct for 3 GiB of input (past the signed 32-bit length)', async () => {
    const zero = new Uint8Array(GZIP_BLOCK);
    const blocks = 3 << 10; // 3 GiB of zeros, as a sparse file gives them, fed block by block
    const gz = zlib.createGunzip();
    let outSize = 0;
    const done = new Promise<void>((resolve, reject) => {
      gz.on('data', (c: Buffer) => {
        outSize += c.length;
      });
      gz.on('end', resolve);
      gz.on('error', reject);
    });
    async function* zeros(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < blocks; i++) yield zero;
    }
    let last = Buffer.alloc(0);
    for await (const c of gzipParallel(zeros(), { threads: 2 })) {
      last = Buffer.from(c);
      if (!gz.write(c)) await new Promise((r) => gz.once('drain', r));
    }
    gz.end();
    await done;
    expect(outSize).toBe(blocks * GZIP_BLOCK);
    expect(last.readUInt32LE(4)).toBe((blocks * GZIP_BLOCK) % 2 ** 32);
  }, 300_000);
});

describe('zstdParallel', () => {
  it('gives the same bytes for any number of threads and any chunking, read back by zstd', async () => {
    for (const size of [0, 1, ZSTD_FRAME, 2 * ZSTD_FRAME + 777]) {
      const input = sample(size, 9);
      const results = new Set<string>();
      for (const [threads, cuts] of [
        [0, []],
        [1, [5]],
        [2, [1 << 20, 3 << 20]],
        [4, [ZSTD_FRAME]],
      ] as const) {
        const parts: Uint8Array[] = [];
        for await (const c of zstdParallel(from(chunked(input, [...cuts])), { threads })) parts.push(c);
        const out = Buffer.concat(parts);
        expect(Buffer.compare(zlib.zstdDecompressSync(out), input)).toBe(0);
        results.add(sha(out));
      }
      expect(results.size).toBe(1);
      const out = execFileSync('zstd', ['-dc'], {
        input: Buffer.concat(await collect(zstdParallel(from([input])))),
        maxBuffer: 64 << 20,
      });
      expect(sha(out)).toBe(sha(input));
    }
  });

  it('gives the golden bytes for a fixed input', async () => {
    const out = Buffer.concat(await collect(zstdParallel(from([sample(2 * ZSTD_FRAME + 5000, 42)]))));
    expect(sha(out)).toBe(GOLDEN_ZSTD);
  });
});

describe('compress', () => {
  it('honours PARE_COMPRESS_THREADS and refuses a value that is not a count', async () => {
    process.env.PARE_COMPRESS_THREADS = '0';
    try {
      await expect(collect(compress(from([sample(10)]), 'gzip'))).rejects.toThrow(/PARE_COMPRESS_THREADS/);
    } finally {
      delete process.env.PARE_COMPRESS_THREADS;
    }
  });
});

async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of it) out.push(c);
  return out;
}

const GOLDEN_GZIP = 'd85bfbe4aef67ad1e32e19525cbcaa6682f5ec89006f68b07606871e77274fd6';
const GOLDEN_ZSTD = '72e0ece93ff8b8a3da0fba8a5943d1b45e8f9c05c1d5b195fc8a7c188830a090';
