import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { Compression } from './model.ts';
import { gzipParallel, zstdParallel } from './parallel.ts';

/**
 * Layer compression with pinned settings, so the same tar gives the same compressed bytes on every machine and for
 * any number of threads:
 * - gzip: level 6 in fixed 1 MiB blocks deflated in parallel, pigz's way, header mtime 0 and OS byte 255
 *   ("unknown", as Go's compress/gzip writes);
 * - zstd: level 3 with content size and checksum, in fixed 4 MiB frames compressed in parallel, pzstd's way.
 * `parallel.ts` has the details. Changing any of these changes every image digest.
 */

export { GZIP_BLOCK, GZIP_LEVEL, ZSTD_FRAME, ZSTD_LEVEL } from './parallel.ts';

/** Returns the compressed form of a byte stream. */
export async function* compress(
  source: AsyncIterable<Uint8Array>,
  c: Compression,
): AsyncGenerator<Uint8Array> {
  if (c === 'none') {
    yield* source;
    return;
  }
  yield* c === 'gzip' ? gzipParallel(source) : zstdParallel(source);
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
