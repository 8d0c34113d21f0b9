import { closeSync, createReadStream, openSync, rmSync, writeSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
