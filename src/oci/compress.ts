import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { Compression } from './model.ts';

/**
 * Layer compression with pinned settings, so the same tar gives the same compressed bytes on every machine:
 * gzip level 6 with header mtime 0 and OS byte 255 ("unknown", as Go's compress/gzip writes; zlib would put the
 * build platform there), zstd level 3 with a content checksum, single-threaded.
 */

export const GZIP_LEVEL = 6;
export const ZSTD_LEVEL = 3;

/** Returns the compressed form of a byte stream. */
export async function* compress(
  source: AsyncIterable<Uint8Array>,
  c: Compression,
): AsyncGenerator<Uint8Array> {
  if (c === 'none') {
    yield* source;
    return;
  }
  const z =
    c === 'gzip'
      ? zlib.createGzip({
          level: GZIP_LEVEL,
          memLevel: 8,
          windowBits: 15,
          strategy: zlib.constants.Z_DEFAULT_STRATEGY,
        })
      : zlib.createZstdCompress({
          params: {
            [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL,
            [zlib.constants.ZSTD_c_checksumFlag]: 1,
            [zlib.constants.ZSTD_c_nbWorkers]: 0,
          },
        });
  const out = Readable.from(source, { objectMode: false }).pipe(z);
  let first = true;
  for await (const chunk of out) {
    const b = chunk as Buffer;
    if (first && c === 'gzip' && b.length >= 10) {
      b[9] = 0xff; // OS field (RFC 1952 §2.3.1)
      first = false;
    }
    yield b;
  }
}

/** Detects the compression of a stream's first bytes by magic number. */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd';
  return 'none';
}

/** Returns the decompressed form of a stream, detecting the compression from its first bytes. */
export async function* decompress(
  source: AsyncIterable<Uint8Array>,
  c?: Compression,
): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  let head = new Uint8Array(0);
  const buffered: Uint8Array[] = [];
  while (head.length < 4) {
    const r = await it.next();
    if (r.done) break;
    buffered.push(r.value);
    head = Buffer.concat([head, r.value]);
  }
  const kind = c ?? detectCompression(head);
  async function* rest(): AsyncGenerator<Uint8Array> {
    yield* buffered;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (kind === 'none') {
    yield* rest();
    return;
  }
  const z = kind === 'gzip' ? zlib.createGunzip() : zlib.createZstdDecompress();
  for await (const chunk of Readable.from(rest(), { objectMode: false }).pipe(z)) yield chunk as Buffer;
}

/** Returns the layer media type for a compression (OCI). */
export function layerMediaType(c: Compression): string {
  return c === 'gzip'
    ? 'application/vnd.oci.image.layer.v1.tar+gzip'
    : c === 'zstd'
      ? 'application/vnd.oci.image.layer.v1.tar+zstd'
      : 'application/vnd.oci.image.layer.v1.tar';
}

/** Returns the compression a layer media type implies (OCI and Docker types). */
export function compressionOf(mediaType: string): Compression {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip') || mediaType.endsWith('diff.tar.gzip'))
    return 'gzip';
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) return 'zstd';
  return 'none';
}
