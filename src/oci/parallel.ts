import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';
import { UsageError } from '../errors.ts';

/**
 * Parallel, deterministic layer compression.
 *
 * gzip, as pigz writes it: the input is cut into fixed blocks of `GZIP_BLOCK` bytes; each
 * block is deflated on its own (raw deflate, level 6) with the 32 KiB of input before it as the preset dictionary,
 * and ended with a sync flush (an empty stored block), the last one with BFINAL. The blocks, joined in order between
 * a fixed gzip header (mtime 0, XFL 0, OS 255) and the CRC-32/ISIZE trailer, form one ordinary gzip member that any
 * gunzip reads.
 *
 * Each block's bytes depend only on the block and the 32 KiB before it, never on which thread compressed it, how many
 * threads there were or how the input arrived in chunks: the output is byte-identical on any machine for the same
 * zlib. That makes it part of every image digest: `GZIP_BLOCK` and the level must never change silently.
 *
 * zstd, as pzstd writes it: the input is cut into fixed frames of `ZSTD_FRAME` bytes, each compressed on its own as a
 * complete zstd frame (level 3, content size and checksum), and the frames are concatenated; every zstd decoder reads
 * a sequence of frames as one stream. (zstd's own multi-threaded mode would be deterministic for any worker count,
 * but node:zlib's zstd stream ends such a stream without flushing it: it writes nothing at all.)
 *
 * Why hand-written: node:zlib compresses a stream on one thread only, and no maintained npm library compresses in
 * parallel with output independent of the thread count. Worker threads run zlib's and zstd's own compressors; this
 * module only cuts, orders and frames.
 */

/** Block size: part of the output (see above). 1 MiB keeps the 32 KiB dictionary's cost near 3%. */
export const GZIP_BLOCK = 1 << 20;
export const GZIP_LEVEL = 6;
/** zstd frame size and level: part of the output too. */
export const ZSTD_FRAME = 4 << 20;
export const ZSTD_LEVEL = 3;
const DICT = 32 << 10;
/** RFC 1952 header: magic, CM=8, FLG=0, MTIME=0, XFL=0, OS=255 (unknown, as Go's compress/gzip writes). */
const HEADER = Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff);

interface BlockJob {
  readonly kind: 'gzip' | 'zstd';
  readonly data: Uint8Array;
  /** gzip: the 32 KiB of input before the block. */
  readonly dict?: Uint8Array | undefined;
  /** gzip: the last block (BFINAL) rather than a sync-flushed one. */
  readonly final?: boolean;
}

/**
 * Compresses one block. The worker's source below does the same; the tests compare the two (inline against any
 * number of threads), since a difference would make an image's digest depend on the machine.
 */
export function compressBlock(job: BlockJob): Buffer {
  if (job.kind === 'zstd')
    return zlib.zstdCompressSync(job.data, {
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL,
        [zlib.constants.ZSTD_c_checksumFlag]: 1,
        [zlib.constants.ZSTD_c_contentSizeFlag]: 1,
      },
    });
  return zlib.deflateRawSync(job.data, {
    level: GZIP_LEVEL,
    memLevel: 8,
    windowBits: 15,
    strategy: zlib.constants.Z_DEFAULT_STRATEGY,
    ...(job.dict ? { dictionary: job.dict } : {}),
    finishFlush: job.final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
  });
}

// Run with `eval`, so the same code works from the sources, the compiled package and the single executable, none of
// which can rely on a worker file beside this one.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const c = zlib.constants;
function compressBlock(job) {
  if (job.kind === 'zstd')
    return zlib.zstdCompressSync(job.data, {
      params: { [c.ZSTD_c_compressionLevel]: ${ZSTD_LEVEL}, [c.ZSTD_c_checksumFlag]: 1, [c.ZSTD_c_contentSizeFlag]: 1 },
    });
  return zlib.deflateRawSync(job.data, {
    level: ${GZIP_LEVEL}, memLevel: 8, windowBits: 15, strategy: c.Z_DEFAULT_STRATEGY,
    ...(job.dict ? { dictionary: job.dict } : {}),
    finishFlush: job.final ? c.Z_FINISH : c.Z_SYNC_FLUSH,
  });
}
parentPort.on('message', (m) => {
  try {
    parentPort.postMessage({ id: m.id, out: compressBlock(m.job) });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e) });
  }
});
`;

interface Job {
  readonly worker: PooledWorker;
  resolve(b: Uint8Array): void;
  reject(e: Error): void;
}

interface PooledWorker {
  readonly thread: Worker;
  pending: number;
}

/**
 * A small pool of compression workers, started on first use. A worker holds the process open only while it has
 * blocks to compress, so an idle pool never keeps a command from exiting, and a command waiting for a block never exits early.
 */
class CompressPool {
  readonly size: number;
  readonly #workers: PooledWorker[] = [];
  readonly #jobs = new Map<number, Job>();
  #next = 0;
  #turn = 0;

  constructor(size: number) {
    this.size = size;
  }

  #worker(): PooledWorker {
    const i = this.#turn++ % this.size;
    let w = this.#workers[i];
    if (!w) {
      const thread = new Worker(WORKER_SOURCE, { eval: true });
      const pooled: PooledWorker = { thread, pending: 0 };
      thread.on('message', (m: { id: number; out?: Uint8Array; error?: string }) => {
        const job = this.#jobs.get(m.id);
        if (!job) return;
        this.#jobs.delete(m.id);
        if (--job.worker.pending === 0) thread.unref();
        if (m.error !== undefined || !m.out)
          job.reject(new Error(`compression worker: ${m.error ?? 'no output'}`));
        else job.resolve(m.out);
      });
      thread.on('error', (e) => this.#fail(e));
      thread.on('exit', (code) => {
        if (pooled.pending > 0) this.#fail(new Error(`compression worker stopped (exit code ${code})`));
      });
      // Unref after the listeners: adding a 'message' listener refs the worker's port again.
      thread.unref();
      this.#workers[i] = w = pooled;
    }
    return w;
  }

  #fail(e: Error): void {
    for (const job of this.#jobs.values()) job.reject(e);
    this.#jobs.clear();
    for (const w of this.#workers) void w.thread.terminate();
    this.#workers.length = 0;
  }

  run(job: BlockJob): Promise<Uint8Array> {
    const id = this.#next++;
    const w = this.#worker();
    if (w.pending++ === 0) w.thread.ref();
    return new Promise((resolve, reject) => {
      this.#jobs.set(id, { worker: w, resolve, reject });
      // The block is one this module owns: its memory moves to the worker instead of being copied.
      w.thread.postMessage({ id, job }, [job.data.buffer as ArrayBuffer]);
    });
  }
}

const pools = new Map<number, CompressPool>();

/** The number of compression threads: `PARE_COMPRESS_THREADS`, else the machine's parallelism (at most 8). */
export function compressThreads(): number {
  const env = process.env.PARE_COMPRESS_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 64)
      throw new UsageError(
        'INPUT_INVALID',
        `cannot use PARE_COMPRESS_THREADS=${JSON.stringify(env)}: give a whole number of threads from 1 to 64 (the output is the same for any)`,
      );
    return n;
  }
  return Math.min(8, Math.max(1, availableParallelism()));
}

export interface ParallelOptions {
  /** Compression threads; the output is the same for any number. 0 compresses on the calling thread. */
  readonly threads?: number;
}

/** Cuts a stream into blocks of `size` bytes it owns (the last one shorter, possibly empty), in order. */
async function* blocks(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let block = Buffer.allocUnsafeSlow(size);
  let fill = 0;
  for await (const chunk of source) {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(size - fill, chunk.length - at);
      block.set(chunk.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === size) {
        yield block;
        block = Buffer.allocUnsafeSlow(size);
        fill = 0;
      }
    }
  }
  yield block.subarray(0, fill);
}

/**
 * Runs the jobs of `cut` on the pool (or inline), at most two per thread in flight so memory stays bounded, and
 * yields their outputs in order.
 */
async function* ordered(jobs: AsyncIterable<BlockJob>, threads: number): AsyncGenerator<Uint8Array> {
  let pool: CompressPool | undefined;
  const run = (job: BlockJob): Promise<Uint8Array> => {
    if (threads === 0) return Promise.resolve(compressBlock(job));
    if (!pool) {
      pool = pools.get(threads) ?? new CompressPool(threads);
      pools.set(threads, pool);
    }
    const p = pool.run(job);
    // A consumer that stops early never awaits the blocks still in flight: their failure must not crash the process.
    p.catch(() => {});
    return p;
  };
  const inflight: Promise<Uint8Array>[] = [];
  const max = Math.max(2, 2 * threads);
  for await (const job of jobs) {
    inflight.push(run(job));
    while (inflight.length >= max) yield await (inflight.shift() as Promise<Uint8Array>);
  }
  while (inflight.length > 0) yield await (inflight.shift() as Promise<Uint8Array>);
}

/** Returns the gzip of a byte stream, deflated in parallel blocks (see the module comment). */
export async function* gzipParallel(
  source: AsyncIterable<Uint8Array>,
  options: ParallelOptions = {},
): AsyncGenerator<Uint8Array> {
  let crc = 0;
  let total = 0;
  async function* jobs(): AsyncGenerator<BlockJob> {
    let dict: Uint8Array | undefined;
    for await (const data of blocks(source, GZIP_BLOCK)) {
      crc = zlib.crc32(data, crc);
      total += data.length;
      const final = data.length < GZIP_BLOCK;
      // Copied before the block moves to a worker; only whole blocks come before another block.
      const next = final ? undefined : Uint8Array.prototype.slice.call(data, GZIP_BLOCK - DICT);
      // The last block may be empty: then it is only the final empty deflate block, with no dictionary to use.
      yield { kind: 'gzip', data, dict: data.length > 0 ? dict : undefined, final };
      dict = next;
    }
  }
  yield HEADER;
  yield* ordered(jobs(), options.threads ?? compressThreads());
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(total % 2 ** 32, 4);
  yield trailer;
}

/** Returns the zstd of a byte stream: independent frames compressed in parallel (see the module comment). */
export async function* zstdParallel(
  source: AsyncIterable<Uint8Array>,
  options: ParallelOptions = {},
): AsyncGenerator<Uint8Array> {
  async function* jobs(): AsyncGenerator<BlockJob> {
    let first = true;
    for await (const data of blocks(source, ZSTD_FRAME)) {
      // The short last block is a frame of its own unless it is empty and another frame came before it; an empty
      // stream is one empty frame, since zero bytes are no zstd stream at all.
      if (data.length > 0 || first) yield { kind: 'zstd', data };
      first = false;
    }
  }
  yield* ordered(jobs(), options.threads ?? compressThreads());
}
