import { pipeline, Readable } from 'node:stream';
import zlib from 'node:zlib';
import { type Digest, Hasher } from '../digest/index.ts';
import { BaseError, OciError } from '../errors.ts';
import { LIMIT_ENV, type ReadLimits, readLimits } from './limits.ts';
import type { Compression } from './model.ts';

/**
 * The one way a stored layer is read uncompressed: decompressed under the read limits (limits.ts), hashed against the
 * config's diff_id, and read to the very end before the stream finishes — also when the consumer stops early (a tar
 * reader stops at the end-of-archive blocks), so the stored bytes' own check (digest and size, done by the source) and
 * the diff_id check have both run before a consumer's result is released. A consumer that parses the stream must
 * therefore treat its result as unverified until the stream has ended or been closed without an error.
 */

export interface LayerStreamOptions {
  readonly compression: Compression;
  /** The config's diff_id for this layer; checked at the end. */
  readonly diffId?: Digest;
  /** The stored (compressed) digest the source is verified against; lets a plain tar skip hashing twice. */
  readonly digest?: Digest;
  /** Names the layer and its image in errors, e.g. `layer sha256:… of oci:img`. */
  readonly what: string;
  readonly limits?: ReadLimits;
}

/** Returns the uncompressed bytes of a stored layer, checked as the module comment says. */
export async function* uncompressedLayer(
  source: AsyncIterable<Uint8Array>,
  options: LayerStreamOptions,
): AsyncGenerator<Uint8Array> {
  const limits = options.limits ?? readLimits();
  const c = options.compression;
  const what = options.what;
  const it = source[Symbol.asyncIterator]();
  let inBytes = 0;
  let inputEnded = false;
  const pull = async (): Promise<Uint8Array | undefined> => {
    const r = await it.next();
    if (r.done) {
      inputEnded = true;
      return undefined;
    }
    inBytes += r.value.length;
    return r.value;
  };
  const hash =
    options.diffId && !(c === 'none' && options.diffId === options.digest) ? new Hasher() : undefined;
  let outBytes = 0;
  const over = (k: keyof ReadLimits, detail: string) =>
    new OciError(
      'OCI_LIMIT',
      `cannot read ${what}: ${detail}; it is refused as a decompression bomb (raise ${LIMIT_ENV[k]} if the image is genuine)`,
      { digest: options.digest },
    );
  const account = (chunk: Uint8Array) => {
    outBytes += chunk.length;
    hash?.update(chunk);
    if (outBytes > limits.layerBytes)
      throw over('layerBytes', `it uncompresses to more than ${limits.layerBytes} bytes`);
    if (c !== 'none' && outBytes > limits.ratioAfter && outBytes > limits.ratio * Math.max(inBytes, 1))
      throw over(
        'ratio',
        `${inBytes} compressed bytes gave ${outBytes} bytes, more than the ${limits.ratio}:1 compression ratio allowed`,
      );
  };

  let z: zlib.Gunzip | zlib.ZstdDecompress | undefined;
  let out: AsyncIterator<Uint8Array>;
  if (c === 'none') {
    out = {
      next: async () => {
        const v = await pull();
        return v ? { done: false, value: v } : { done: true, value: undefined };
      },
    };
  } else {
    z =
      c === 'gzip'
        ? zlib.createGunzip()
        : zlib.createZstdDecompress({
            params: { [zlib.constants.ZSTD_d_windowLogMax]: limits.zstdWindowLog },
          });
    // Our own pull, not the source iterator: the Readable must not close the source when the compressed stream ends
    // before it (trailing bytes), so the rest can still be read and verified below.
    const input = Readable.from(
      (async function* () {
        for (;;) {
          const v = await pull();
          if (!v) return;
          yield v;
        }
      })(),
      { objectMode: false },
    );
    pipeline(input, z, () => {});
    out = z[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  }
  const next = async (): Promise<IteratorResult<Uint8Array>> => {
    try {
      return await out.next();
    } catch (e) {
      if (e instanceof BaseError) throw e;
      const m = e instanceof Error ? e.message : String(e);
      throw new OciError('OCI_LAYER_INVALID', `cannot decompress ${what} (${c}): ${m}`, {
        cause: e,
        digest: options.digest,
      });
    }
  };
  const finish = async () => {
    while (!inputEnded) await pull();
    if (hash && options.diffId) {
      const got = hash.digest();
      if (got !== options.diffId)
        throw new OciError(
          'OCI_LAYER_INVALID',
          `cannot read ${what}: its uncompressed content hashes to ${got}, but the config's rootfs.diff_ids says ${options.diffId}; the image is refused`,
          { digest: options.digest },
        );
    }
  };
  const run: { state: 'running' | 'done' | 'failed' } = { state: 'running' };
  try {
    for (;;) {
      let r: IteratorResult<Uint8Array>;
      try {
        r = await next();
        if (r.done) break;
        account(r.value);
      } catch (e) {
        run.state = 'failed';
        throw e;
      }
      yield r.value;
    }
    try {
      await finish();
    } catch (e) {
      run.state = 'failed';
      throw e;
    }
    run.state = 'done';
  } finally {
    if (run.state === 'running') {
      // The consumer stopped early: read and check the rest before its result counts.
      try {
        for (;;) {
          const r = await next();
          if (r.done) break;
          account(r.value);
        }
        await finish();
      } catch (e) {
        await cleanup();
        // biome-ignore lint/correctness/noUnsafeFinally: the check's failure must replace the early return
        throw e;
      }
    } else if (run.state === 'failed') await cleanup();
  }

  async function cleanup(): Promise<void> {
    z?.destroy();
    await it.return?.().catch(() => {});
  }
}

/**
 * Returns the stored (compressed) bytes of a layer unchanged, for a sink that stores or forwards them as they are
 * (a pull into a layout or archive, a push): each chunk is also decompressed and checked as `uncompressedLayer`
 * checks it (diff_id, read limits) before the next is read, and the last chunk is held back until every check passed,
 * so a sink that commits only after the last chunk never commits a layer whose config lies about it or that is a
 * bomb. Memory stays bounded: a chunk is passed on as soon as the checker has taken it.
 */
export async function* checkedStoredLayer(
  source: AsyncIterable<Uint8Array>,
  options: LayerStreamOptions,
): AsyncGenerator<Uint8Array> {
  const feed = new Feed();
  const checker = (async () => {
    for await (const _ of uncompressedLayer(feed, options)) {
      /* the checks run as the bytes pass */
    }
  })();
  // Settles early only by failing; observed by the races below and the final await.
  checker.catch(() => {});
  const it = source[Symbol.asyncIterator]();
  let last: Uint8Array | undefined;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      await Promise.race([feed.put(r.value), checker]);
      if (last) yield last;
      last = r.value;
    }
    feed.end();
    await checker;
  } finally {
    feed.end();
    await it.return?.().catch(() => {});
  }
  if (last) yield last;
}

/** A one-chunk hand-over from a producer to an async-iterating consumer; `put` resolves when the chunk was taken. */
class Feed implements AsyncIterableIterator<Uint8Array> {
  #item: Uint8Array | undefined;
  #ended = false;
  #wake: (() => void) | undefined;
  #taken: (() => void) | undefined;
  [Symbol.asyncIterator](): this {
    return this;
  }
  put(chunk: Uint8Array): Promise<void> {
    this.#item = chunk;
    const p = new Promise<void>((r) => {
      this.#taken = r;
    });
    this.#wake?.();
    return p;
  }
  end(): void {
    this.#ended = true;
    this.#wake?.();
    this.#taken?.();
  }
  async next(): Promise<IteratorResult<Uint8Array>> {
    while (this.#item === undefined && !this.#ended)
      await new Promise<void>((r) => {
        this.#wake = r;
      });
    const v = this.#item;
    if (v === undefined) return { done: true, value: undefined };
    this.#item = undefined;
    this.#taken?.();
    this.#taken = undefined;
    return { done: false, value: v };
  }
  async return(): Promise<IteratorResult<Uint8Array>> {
    this.end();
    return { done: true, value: undefined };
  }
}
