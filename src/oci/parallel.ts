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

/**
 * One block to compress. `buf` holds the block at `[start, end)`; for gzip, the `DICT` bytes before `start` are the
 * 32 KiB of input before the block (the dictionary) when `dict` is set. Keeping the dictionary in front of the block,
 * in the same buffer, lets one buffer travel to a worker and back and be filled again: no allocation per block.
 */
interface BlockJob {
  readonly kind: 'gzip' | 'zstd';
  readonly buf: Uint8Array;
  readonly start: number;
  readonly end: number;
  /** gzip: the `DICT` bytes before `start` are the preset dictionary. */
  readonly dict?: boolean;
  /** gzip: the last block (BFINAL) rather than a sync-flushed one. */
  readonly final?: boolean;
}

/**
 * Compresses one block. The worker's source below does the same; the tests compare the two (inline against any
 * number of threads), since a difference would make an image's digest depend on the machine.
 */
export function compressBlock(job: BlockJob): Buffer {
  const data = job.buf.subarray(job.start, job.end);
  if (job.kind === 'zstd')
    return zlib.zstdCompressSync(data, {
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL,
        [zlib.constants.ZSTD_c_checksumFlag]: 1,
        [zlib.constants.ZSTD_c_contentSizeFlag]: 1,
      },
    });
  return zlib.deflateRawSync(data, {
    level: GZIP_LEVEL,
    memLevel: 8,
    windowBits: 15,
    strategy: zlib.constants.Z_DEFAULT_STRATEGY,
    ...(job.dict ? { dictionary: job.buf.subarray(job.start - DICT, job.start) } : {}),
    finishFlush: job.final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
  });
}

// Run with `eval`, so the same code works from the sources, the compiled package and the single executable, none of
// which can rely on a worker file beside this one. The block's buffer goes back to the caller with the output (both
// moved, not copied) so it can be filled again.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const c = zlib.constants;
function compressBlock(job) {
  const data = job.buf.subarray(job.start, job.end);
  if (job.kind === 'zstd')
    return zlib.zstdCompressSync(data, {
      params: { [c.ZSTD_c_compressionLevel]: ${ZSTD_LEVEL}, [c.ZSTD_c_checksumFlag]: 1, [c.ZSTD_c_contentSizeFlag]: 1 },
    });
  return zlib.deflateRawSync(data, {
    level: ${GZIP_LEVEL}, memLevel: 8, windowBits: 15, strategy: c.Z_DEFAULT_STRATEGY,
    ...(job.dict ? { dictionary: job.buf.subarray(job.start - ${DICT}, job.start) } : {}),
    finishFlush: job.final ? c.Z_FINISH : c.Z_SYNC_FLUSH,
  });
}
parentPort.on('message', (m) => {
  const buf = m.job.buf;
  try {
    const out = compressBlock(m.job);
    // An output that owns its memory moves; a small one cut from Node's shared pool is copied.
    const own = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength;
    parentPort.postMessage({ id: m.id, out, buf }, own ? [out.buffer, buf.buffer] : [buf.buffer]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String((e && e.message) || e), buf }, [buf.buffer]);
  }
});
`;

/**
 * Worker heap limits. A worker holds a block, its output and zlib's state (all outside the JS heap); its JS heap
 * stays small, so a small young generation keeps each worker's resident memory down without more GC work.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 };

interface Job {
  readonly worker: PooledWorker;
  resolve(r: { out: Uint8Array; buf: Uint8Array }): void;
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
      const thread = new Worker(WORKER_SOURCE, { eval: true, resourceLimits: WORKER_LIMITS });
      const pooled: PooledWorker = { thread, pending: 0 };
      thread.on('message', (m: { id: number; out?: Uint8Array; buf: Uint8Array; error?: string }) => {
        const job = this.#jobs.get(m.id);
        if (!job) return;
        this.#jobs.delete(m.id);
        if (--job.worker.pending === 0) thread.unref();
        if (m.error !== undefined || !m.out)
          job.reject(new Error(`compression worker: ${m.error ?? 'no output'}`));
        else job.resolve({ out: m.out, buf: m.buf });
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

  /** Compresses a block on a worker; the block's buffer moves there and comes back with the output. */
  run(job: BlockJob): Promise<{ out: Uint8Array; buf: Uint8Array }> {
    const id = this.#next++;
    const w = this.#worker();
    if (w.pending++ === 0) w.thread.ref();
    return new Promise((resolve, reject) => {
      this.#jobs.set(id, { worker: w, resolve, reject });
      w.thread.postMessage({ id, job }, [job.buf.buffer as ArrayBuffer]);
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

/**
 * Block buffers of one stream, reused: a buffer comes back from its worker with the block's output and is filled
 * again, so a stream of any length allocates only as many buffers as there are blocks in flight (plus the one being
 * filled), and the garbage collector never sees a block.
 */
class Buffers {
  readonly #free: Uint8Array[] = [];
  readonly #length: number;
  constructor(length: number) {
    this.#length = length;
  }
  take(): Uint8Array {
    return this.#free.pop() ?? new Uint8Array(this.#length);
  }
  give(b: Uint8Array): void {
    if (b.byteLength === this.#length) this.#free.push(b);
  }
}

/**
 * Cuts a stream into blocks of `size` bytes (the last one shorter, possibly empty), in order, copying each chunk at
 * once (so a source may reuse its chunk buffer after each one). Each block sits at `prefix` in a buffer from
 * `buffers`; when `prefix` > 0, the `prefix` bytes of input before the block are copied in front of it (zeros before
 * the first block, which has none).
 */
async function* blocks(
  source: AsyncIterable<Uint8Array>,
  size: number,
  prefix: number,
  buffers: Buffers,
): AsyncGenerator<Uint8Array> {
  let block = buffers.take();
  let fill = prefix;
  for await (const chunk of source) {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(prefix + size - fill, chunk.length - at);
      block.set(chunk.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === prefix + size) {
        const next = buffers.take();
        if (prefix > 0) next.set(block.subarray(size, size + prefix));
        yield block;
        block = next;
        fill = prefix;
      }
    }
  }
  yield block.subarray(0, fill);
}

/**
 * Runs `jobs` on the pool (or inline when `threads` is 0), at most two per thread in flight so memory stays bounded,
 * hands each block's buffer back to `buffers` as soon as its worker is done with it, and yields the outputs in order.
 */
async function* ordered(
  jobs: AsyncIterable<BlockJob>,
  threads: number,
  buffers: Buffers,
): AsyncGenerator<Uint8Array> {
  let pool: CompressPool | undefined;
  const run = (job: BlockJob): Promise<Uint8Array> => {
    if (threads === 0) {
      const out = compressBlock(job);
      buffers.give(job.buf);
      return Promise.resolve(out);
    }
    if (!pool) {
      pool = pools.get(threads) ?? new CompressPool(threads);
      pools.set(threads, pool);
    }
    const p = pool.run(job).then(({ out, buf }) => {
      buffers.give(buf);
      return out;
    });
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

/**
 * Returns the gzip of a byte stream, deflated in parallel blocks (see the module comment). Each chunk of `source` is
 * copied before the next is asked for, so the source may hand out one reused buffer.
 */
export async function* gzipParallel(
  source: AsyncIterable<Uint8Array>,
  options: ParallelOptions = {},
): AsyncGenerator<Uint8Array> {
  let crc = 0;
  let total = 0;
  const buffers = new Buffers(DICT + GZIP_BLOCK);
  async function* jobs(): AsyncGenerator<BlockJob> {
    let first = true;
    for await (const buf of blocks(source, GZIP_BLOCK, DICT, buffers)) {
      const data = buf.subarray(DICT);
      crc = zlib.crc32(data, crc);
      total += data.length;
      // The last block may be empty: then it is only the final empty deflate block, with no dictionary to use.
      yield {
        kind: 'gzip',
        buf: buf.length === DICT + GZIP_BLOCK ? buf : new Uint8Array(buf.buffer, 0, DICT + GZIP_BLOCK),
        start: DICT,
        end: buf.length,
        dict: !first && data.length > 0,
        final: data.length < GZIP_BLOCK,
      };
      first = false;
    }
  }
  yield HEADER;
  yield* ordered(jobs(), options.threads ?? compressThreads(), buffers);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(total % 2 ** 32, 4);
  yield trailer;
}

/**
 * Returns the zstd of a byte stream: independent frames compressed in parallel (see the module comment). Each chunk
 * of `source` is copied before the next is asked for.
 */
export async function* zstdParallel(
  source: AsyncIterable<Uint8Array>,
  options: ParallelOptions = {},
): AsyncGenerator<Uint8Array> {
  const buffers = new Buffers(ZSTD_FRAME);
  async function* jobs(): AsyncGenerator<BlockJob> {
    let first = true;
    for await (const buf of blocks(source, ZSTD_FRAME, 0, buffers)) {
      // The short last block is a frame of its own unless it is empty and another frame came before it; an empty
      // stream is one empty frame, since zero bytes are no zstd stream at all.
      if (buf.length > 0 || first)
        yield {
          kind: 'zstd',
          buf: buf.length === ZSTD_FRAME ? buf : new Uint8Array(buf.buffer, 0, ZSTD_FRAME),
          start: 0,
          end: buf.length,
        };
      first = false;
    }
  }
  yield* ordered(jobs(), options.threads ?? compressThreads(), buffers);
}
