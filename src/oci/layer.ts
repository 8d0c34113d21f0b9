import { type Digest, Hasher, sha256 } from '../digest/index.ts';
import type { Tree } from '../fstree/index.ts';
import { tarFromTree } from '../tar/index.ts';
import { compress, compressionOf, decompress, layerMediaType } from './compress.ts';
import { checkedStoredLayer, uncompressedLayer } from './layer-stream.ts';
import type { ReadLimits } from './limits.ts';
import type { Compression, Layer } from './model.ts';
import { Spool } from './spool.ts';

/**
 * Layer sources. `layerFromTree` packs a tree once — tar, hash (diffID), compress, hash (digest) in one pass — and
 * keeps the compressed bytes in a spool so sinks read them without compressing again. Nothing runs until a digest or
 * the bytes are asked for.
 */

export interface LayerFromTreeOptions {
  readonly compression?: Compression;
  /** SOURCE_DATE_EPOCH: clamp mtimes. */
  readonly epoch?: number;
  /** Directory for spill files of big layers (default: the OS temp dir). */
  readonly spoolDir?: string;
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}

/** Returns a Layer whose uncompressed content is the deterministic tar of `tree`. */
export function layerFromTree(tree: Tree, options: LayerFromTreeOptions = {}): Layer {
  const c = options.compression ?? 'gzip';
  const computed = once(async () => {
    const diff = new Hasher();
    const dig = new Hasher();
    const spool = new Spool({ dir: options.spoolDir });
    async function* hashed(): AsyncGenerator<Uint8Array> {
      // The compressors copy each chunk before asking for the next, so file bodies can be read into one buffer; the
      // uncompressed layer goes to the spool as it comes, so it needs chunks of its own.
      for await (const chunk of tarFromTree(tree, { epoch: options.epoch, reuse: c !== 'none' })) {
        diff.update(chunk);
        yield chunk;
      }
    }
    for await (const chunk of compress(hashed(), c)) {
      dig.update(chunk);
      await spool.write(chunk);
    }
    spool.finish();
    return { diffId: diff.digest(), digest: dig.digest(), size: dig.size, spool };
  });
  return {
    digest: async () => (await computed()).digest,
    diffId: async () => (await computed()).diffId,
    size: async () => (await computed()).size,
    mediaType: async () => layerMediaType(c),
    async *compressed() {
      yield* (await computed()).spool.open();
    },
    compressedFile: async () => (await computed()).spool.file,
    uncompressed: () => tarFromTree(tree, { epoch: options.epoch }),
  };
}

/** Returns a Layer over stored bytes in memory (for small layers and tests). */
export function layerFromBytes(compressedBytes: Uint8Array, mediaType: string, diffId?: Digest): Layer {
  const c = compressionOf(mediaType);
  const diff = once(async () => {
    if (diffId) return diffId;
    const h = new Hasher();
    for await (const chunk of decompress(one(compressedBytes), c)) h.update(chunk);
    return h.digest();
  });
  return {
    digest: async () => sha256(compressedBytes),
    diffId: diff,
    size: async () => compressedBytes.length,
    mediaType: async () => mediaType,
    compressed: () => one(compressedBytes),
    uncompressed: () => decompress(one(compressedBytes), c),
  };
}

async function* one(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}

/**
 * Returns a Layer over a re-openable stored stream whose digest and size are already known (layout blobs, archive
 * members, registry blobs); `open` must check them (verifyStream). The diffID is computed by decompressing on first
 * use unless given; when given (the config's diff_id), `uncompressed()` checks it and the read limits (see
 * layer-stream.ts) and reads to the end before it finishes.
 */
export function layerFromOpener(opts: {
  readonly open: () => AsyncIterable<Uint8Array>;
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
  readonly diffId?: Digest;
  /** Names the layer in errors (default `layer <digest>`). */
  readonly what?: string;
  readonly limits?: ReadLimits;
  /**
   * Makes `compressed()` check what `uncompressed()` checks too (checkedStoredLayer): for sources whose bytes sinks
   * store or forward without reading them otherwise (a registry), so a lying layer is never committed.
   */
  readonly checkStored?: boolean;
}): Layer {
  const c = compressionOf(opts.mediaType);
  const checks = {
    compression: c,
    digest: opts.digest,
    what: opts.what ?? `layer ${opts.digest}`,
    ...(opts.diffId ? { diffId: opts.diffId } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
  };
  const diff = once(async () => {
    if (opts.diffId) return opts.diffId;
    if (c === 'none') return opts.digest;
    const h = new Hasher();
    const what = opts.what ?? `layer ${opts.digest}`;
    for await (const chunk of uncompressedLayer(opts.open(), { compression: c, digest: opts.digest, what }))
      h.update(chunk);
    return h.digest();
  });
  return {
    digest: async () => opts.digest,
    diffId: diff,
    size: async () => opts.size,
    mediaType: async () => opts.mediaType,
    compressed: opts.checkStored ? () => checkedStoredLayer(opts.open(), checks) : opts.open,
    uncompressed: () => uncompressedLayer(opts.open(), checks),
  };
}
