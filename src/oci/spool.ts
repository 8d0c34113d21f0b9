import { closeSync, createReadStream, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TreeError } from '../errors.ts';
import { bufferContent, type Content, hostFileContentSized } from '../fstree/index.ts';

/**
 * Bytes written once and read many times: kept in memory up to a threshold, then spilled to a temporary file that
 * is removed when the process exits. Lets a layer be compressed once (to learn its digest) and then be read again
 * by any number of sinks without a second compression pass, in bounded memory.
 */
export const SPOOL_MEMORY_LIMIT = 16 << 20;

const spoolFiles = new Set<string>();
let cleanupInstalled = false;
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', () => {
    for (const f of spoolFiles) rmSync(f, { force: true, recursive: true });
  });
}

export class Spool {
  #chunks: Uint8Array[] = [];
  #mem = 0;
  #fd: number | undefined;
  #path: string | undefined;
  #size = 0;
  readonly #limit: number;
  readonly #dir: string | undefined;
  constructor(options: { memoryLimit?: number; dir?: string } = {}) {
    this.#limit = options.memoryLimit ?? SPOOL_MEMORY_LIMIT;
    this.#dir = options.dir;
  }
  get size(): number {
    return this.#size;
  }
  async write(chunk: Uint8Array): Promise<void> {
    this.#size += chunk.length;
    if (this.#fd === undefined && this.#mem + chunk.length <= this.#limit) {
      this.#chunks.push(chunk);
      this.#mem += chunk.length;
      return;
    }
    if (this.#fd === undefined) {
      installCleanup();
      const dir = await mkdtemp(join(this.#dir ?? tmpdir(), 'pare-spool-'));
      spoolFiles.add(dir);
      this.#path = join(dir, 'data');
      this.#fd = openSync(this.#path, 'w', 0o600);
      for (const c of this.#chunks) writeSync(this.#fd, c);
      this.#chunks = [];
      this.#mem = 0;
    }
    let off = 0;
    while (off < chunk.length) off += writeSync(this.#fd, chunk, off);
  }
  /** The spill file once writing has finished, if the bytes went to disk (undefined while they are in memory). */
  get file(): string | undefined {
    return this.#fd === -1 ? this.#path : undefined;
  }
  /** Finishes writing; after this, `open()` may be called any number of times. */
  finish(): void {
    if (this.#fd !== undefined) {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }
  async *open(): AsyncGenerator<Uint8Array> {
    if (this.#path) {
      for await (const c of createReadStream(this.#path, { highWaterMark: 1 << 20 })) yield c as Buffer;
      return;
    }
    yield* this.#chunks;
  }
}

/**
 * File bodies read out of layers, so a tree read from an image holds bounded memory whatever its files weigh: small
 * files stay in memory up to a budget, the rest go into one append-only temp file and are read back by offset (a
 * 3 GiB file costs no memory, and no single Buffer has to hold it). The file is removed when the process exits.
 */
export class ContentSpool {
  /** Files up to this size are kept in memory while the budget lasts. */
  static readonly SMALL_FILE = 1 << 20;
  /** Bytes of file bodies kept in memory in all. */
  static readonly MEMORY_BUDGET = 64 << 20;
  #end = 0;
  #mem = 0;
  #files = 0;
  #apartDir: string | undefined;
  readonly #dir: string | undefined;
  readonly #apart: boolean;
  /**
   * `dir`: where the temp files go (default: the system's). `apart`: each file over SMALL_FILE gets a temp file of its
   * own, and its Content is a SpooledFile, which a sink on the same filesystem may move into place instead of copying
   * (`pare run`'s unpack: a big file is written once).
   */
  constructor(options: { dir?: string; apart?: boolean } = {}) {
    this.#dir = options.dir;
    this.#apart = options.apart === true;
  }

  /** Reads exactly `size` bytes from `chunks` and returns them as re-openable Content. */
  async content(size: number, chunks: AsyncIterable<Uint8Array>): Promise<Content> {
    // Budget and file region are taken before the first await: several files (of several .debs read at once) may be
    // on their way in together, and each must land in a region no other file writes.
    if (size <= ContentSpool.SMALL_FILE && this.#mem + size <= ContentSpool.MEMORY_BUDGET) {
      this.#mem += size;
      const parts: Uint8Array[] = [];
      for await (const c of chunks) parts.push(c);
      return bufferContent(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    }
    if (this.#apart && size > ContentSpool.SMALL_FILE) return this.#apartFile(chunks);
    const start = this.#end;
    this.#end += size;
    const fd = await this.#file();
    let pos = start;
    for await (const c of chunks) {
      if (pos + c.length > start + size)
        throw new TreeError(
          'TREE_CONFLICT',
          `cannot spool a file body: it is longer than the ${size} bytes announced`,
        );
      let off = 0;
      while (off < c.length) off += writeSync(fd, c, off, c.length - off, pos + off);
      pos += c.length;
    }
    return regionContent(fd, start, pos - start);
  }

  async #apartFile(chunks: AsyncIterable<Uint8Array>): Promise<SpooledFile> {
    if (this.#apartDir === undefined) {
      installCleanup();
      this.#apartDir = await mkdtemp(join(this.#dir ?? tmpdir(), 'pare-spool-'));
      spoolFiles.add(this.#apartDir);
    }
    const path = join(this.#apartDir, String(this.#files++));
    const fh = await open(path, 'wx', 0o600);
    let n = 0;
    try {
      for await (const c of chunks) {
        await fh.write(c);
        n += c.length;
      }
    } finally {
      await fh.close();
    }
    return { ...hostFileContentSized(path, n), spooledFile: path };
  }

  #opened: Promise<number> | undefined;
  #file(): Promise<number> {
    this.#opened ??= (async () => {
      installCleanup();
      const dir = await mkdtemp(join(this.#dir ?? tmpdir(), 'pare-spool-'));
      spoolFiles.add(dir);
      return openSync(join(dir, 'files'), 'w+', 0o600);
    })();
    return this.#opened;
  }
}

/**
 * Content that is a whole temp file of a ContentSpool made with `apart`: a sink on the same filesystem may rename
 * `spooledFile` into place instead of copying it, after which this Content can no longer be read (the tree that held
 * it must not be used again).
 */
export interface SpooledFile extends Content {
  readonly spooledFile: string;
}

/** True for Content that is a whole spool file (see SpooledFile). */
export function isSpooledFile(c: Content): c is SpooledFile {
  return typeof (c as Partial<SpooledFile>).spooledFile === 'string';
}

/** Content backed by `size` bytes at `start` of an open spool file. */
function regionContent(fd: number, start: number, size: number): Content {
  const read = (offset: number, length: number, into?: Uint8Array): Uint8Array => {
    const len = Math.max(0, Math.min(length, size - offset));
    const buf = into ? into.subarray(0, len) : Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, start + offset + got);
      if (n === 0) throw new Error(`spool file ends at ${start + offset + got}`);
      got += n;
    }
    return buf;
  };
  const CHUNK = 1 << 20;
  return {
    size,
    async *open(scratch?: Uint8Array) {
      const step = scratch && scratch.length > 0 ? scratch.length : CHUNK;
      for (let off = 0; off < size; off += step) yield read(off, step, scratch);
    },
    async read(offset, length) {
      return read(offset, length);
    },
    async bytes() {
      return read(0, size);
    },
  };
}
