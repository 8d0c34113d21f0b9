import { close, createReadStream, fdatasync, open, write } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { type Digest, Verifier } from '../digest/index.ts';
import { tempPath } from './atomic.ts';

const openAsync = promisify(open);
const closeAsync = promisify(close);
const fdatasyncAsync = promisify(fdatasync);
/** Written bytes after which a background `fdatasync` starts (see `write`). */
const FLUSH_BYTES = 8 << 20;

/**
 * A blob being written into a layout from chunks that arrive one at a time and belong to someone else (the pooled
 * read buffers of http/wire.ts): each chunk is hashed when it is handed over and written at its offset with a
 * positioned write, and the owner gets the chunk back (`done`) when the write has finished. Writes run on libuv's
 * threads while the main thread receives and hashes the next chunks; nothing is copied.
 *
 * Same guarantees as `OciLayout.writeBlob`: a temp file beside the blob, `fdatasync`, and a rename only after size
 * and digest matched, so a wrong or short body never appears under its digest (DIGEST_MISMATCH / SIZE_MISMATCH naming
 * `what`). `abort()` removes the temp file.
 */
export class BlobWriter {
  readonly #fd: number;
  readonly #tmp: string;
  readonly #path: string;
  readonly #verifier: Verifier;
  #offset = 0;
  #inFlight = 0;
  #error: Error | undefined;
  #idle: (() => void) | undefined;
  #closed = false;
  /** Bytes whose write finished since the last background flush started. */
  #unflushed = 0;
  #flushing: Promise<void> | undefined;

  private constructor(fd: number, tmp: string, path: string, verifier: Verifier) {
    this.#fd = fd;
    this.#tmp = tmp;
    this.#path = path;
    this.#verifier = verifier;
  }

  /** Opens a temp file beside `path` for a blob that must hash to `digest` and be `size` bytes long. */
  static async create(
    path: string,
    expected: { digest: Digest; size?: number; what?: string },
  ): Promise<BlobWriter> {
    const tmp = tempPath(path);
    const fd = await openAsync(tmp, 'wx', 0o644);
    return new BlobWriter(fd, tmp, path, new Verifier(expected.digest, expected.size, expected.what));
  }

  /** Bytes handed over so far. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Hashes `chunk` now and writes it at the current offset; calls `done` when the chunk may be reused. Throws
   * SIZE_MISMATCH when the blob grows past its size, and the first write error of an earlier chunk.
   */
  write(chunk: Uint8Array, done?: () => void): void {
    if (this.#error) throw this.#error;
    this.#verifier.update(chunk);
    const at = this.#offset;
    this.#offset += chunk.length;
    this.#inFlight++;
    const settle = (e: Error | null, n = 0) => {
      if (!e && n < chunk.length) {
        // A short write (rare: a full disk shows as ENOSPC on the next call): write the rest.
        const rest = chunk.subarray(n);
        write(this.#fd, rest, 0, rest.length, at + n, (e2, n2) => {
          settle(e2, n + n2);
        });
        return;
      }
      this.#error ??= e ?? undefined;
      this.#inFlight--;
      this.#unflushed += chunk.length;
      if (this.#unflushed >= FLUSH_BYTES && !this.#flushing && !this.#closed) {
        // Start writing back to disk now, in the background, so the fdatasync before the rename finds little left.
        this.#unflushed = 0;
        this.#flushing = fdatasyncAsync(this.#fd).then(
          () => {
            this.#flushing = undefined;
          },
          () => {
            this.#flushing = undefined;
          },
        );
      }
      done?.();
      if (this.#inFlight === 0) this.#idle?.();
    };
    write(this.#fd, chunk, 0, chunk.length, at, (e, n) => settle(e, n));
  }

  async #drain(): Promise<void> {
    while (this.#inFlight > 0) await new Promise<void>((r) => (this.#idle = r));
    this.#idle = undefined;
    await this.#flushing;
  }

  /**
   * Waits for the writes, checks size and digest, flushes and renames the file into place; removes it on failure.
   * `check`, when given, runs after the digest matched and before the rename, with a way to read the written bytes
   * (a layer's diff_id and read limits, which only decompressing can tell); its failure is the commit's.
   */
  async commit(
    options: { readonly check?: (written: () => AsyncIterable<Uint8Array>) => Promise<void> } = {},
  ): Promise<{ digest: Digest; size: number }> {
    try {
      await this.#drain();
      if (this.#error) throw this.#error;
      this.#verifier.check();
      if (options.check) await options.check(() => createReadStream(this.#tmp, { highWaterMark: 1 << 20 }));
      await fdatasyncAsync(this.#fd);
      this.#closed = true;
      await closeAsync(this.#fd);
      await rename(this.#tmp, this.#path);
      return { digest: this.#verifier.expected, size: this.#offset };
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  /** Drops the blob: waits for the writes in flight, closes and removes the temp file. */
  async abort(): Promise<void> {
    await this.#drain();
    if (!this.#closed) {
      this.#closed = true;
      await closeAsync(this.#fd).catch(() => {});
    }
    await rm(this.#tmp, { force: true });
  }
}
