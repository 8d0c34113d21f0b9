import { createReadStream } from 'node:fs';
import { open as openFile, stat } from 'node:fs/promises';
import { TreeError } from '../errors.ts';

/**
 * The bytes of a regular file, re-openable: each `open()` yields a fresh stream, so one tree can be packed into
 * several layers (or hashed, then packed) without holding every file in memory. `read(offset, length)` gives random
 * access for parsers that need only a few pages of a big file (the ELF reader).
 */
export interface Content {
  /** Size in bytes; fixed when the content is created. */
  readonly size: number;
  /**
   * Returns a fresh stream of all the bytes. Given `scratch`, the content may read into it and yield views of it, each
   * valid only until the next chunk is asked for (for consumers that hash or copy each chunk at once: no buffer is
   * allocated per chunk, so a big file makes no garbage).
   */
  open(scratch?: Uint8Array): AsyncIterable<Uint8Array>;
  /** Returns up to `length` bytes starting at `offset` (fewer at the end, none past it). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Returns all the bytes. Avoid on big files; prefer `open()` or `read()`. */
  bytes(): Promise<Uint8Array>;
}

/** Returns content backed by bytes in memory. */
export function bufferContent(data: Uint8Array | string): Content {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return {
    size: bytes.length,
    async *open() {
      yield bytes;
    },
    async read(offset, length) {
      return bytes.subarray(Math.min(offset, bytes.length), Math.min(offset + length, bytes.length));
    },
    async bytes() {
      return bytes;
    },
  };
}

/**
 * Returns content backed by a file on the host, read lazily. `size` is taken when the content is made; if the file has
 * a different size when it is read, reading throws (a build must not pack a file that changed under it).
 */
export async function hostFileContent(path: string): Promise<Content> {
  const st = await stat(path);
  if (!st.isFile())
    throw new TreeError(
      'TREE_NOT_FOUND',
      `cannot read host file ${JSON.stringify(path)}: not a regular file`,
    );
  return hostFileContentSized(path, st.size);
}

/** Like hostFileContent, with a size already known (no stat). */
export function hostFileContentSized(path: string, size: number): Content {
  const changed = (got: number) =>
    new TreeError(
      'TREE_CONFLICT',
      `cannot read host file ${JSON.stringify(path)}: it changed while pare was using it (size ${got}, was ${size})`,
      { path },
    );
  return {
    size,
    async *open(scratch?: Uint8Array) {
      let n = 0;
      if (scratch && scratch.length > 0) {
        const fh = await openFile(path, 'r');
        try {
          for (;;) {
            // One byte more than promised is asked for once the size is reached, so growth is seen.
            const { bytesRead } = await fh.read(scratch, 0, scratch.length, n);
            if (bytesRead === 0) break;
            n += bytesRead;
            if (n > size) throw changed(n);
            yield scratch.subarray(0, bytesRead);
          }
        } finally {
          await fh.close();
        }
      } else {
        for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
          n += (chunk as Buffer).length;
          if (n > size) throw changed(n);
          yield chunk as Buffer;
        }
      }
      if (n !== size) throw changed(n);
    },
    async read(offset, length) {
      const fh = await openFile(path, 'r');
      try {
        const len = Math.max(0, Math.min(length, size - offset));
        const buf = Buffer.alloc(len);
        let got = 0;
        while (got < len) {
          const { bytesRead } = await fh.read(buf, got, len - got, offset + got);
          if (bytesRead === 0) throw changed(offset + got);
          got += bytesRead;
        }
        return buf;
      } finally {
        await fh.close();
      }
    },
    async bytes() {
      const chunks: Uint8Array[] = [];
      for await (const c of this.open()) chunks.push(c);
      return Buffer.concat(chunks);
    },
  };
}

/**
 * Returns content whose bytes come from a stream opened on demand (e.g. a member of a compressed archive). Random
 * reads materialise the bytes once and keep them (archives cannot seek); `open()` streams without keeping them.
 */
export function lazyContent(size: number, openStream: () => AsyncIterable<Uint8Array>): Content {
  let cached: Promise<Uint8Array> | undefined;
  const all = () => {
    cached ??= (async () => {
      const chunks: Uint8Array[] = [];
      let n = 0;
      for await (const c of openStream()) {
        chunks.push(c);
        n += c.length;
      }
      if (n !== size)
        throw new TreeError('TREE_CONFLICT', `cannot read content: got ${n} bytes, want ${size}`);
      return Buffer.concat(chunks);
    })();
    return cached;
  };
  return {
    size,
    open() {
      if (cached) {
        const c = cached;
        return (async function* () {
          yield await c;
        })();
      }
      return openStream();
    },
    async read(offset, length) {
      const b = await all();
      return b.subarray(Math.min(offset, b.length), Math.min(offset + length, b.length));
    },
    bytes: all,
  };
}
