import { createReadStream, constants as fsConstants } from 'node:fs';
import { access, copyFile, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Digest, Hasher, parseDigest, sha256, Verifier, verifyStream } from '../digest/index.ts';
import { LayoutError } from '../errors.ts';
import {
  type Artifact,
  canonicalBytes,
  compressionOf,
  type Descriptor,
  type Image,
  type ImageIndex,
  type IndexManifest,
  type Issue,
  imageFromParts,
  indexFromParts,
  indexJson,
  isImageManifestType,
  isIndexType,
  type Layer,
  layerFromOpener,
  MediaType,
  parseConfig,
  parseIndex,
  parseManifest,
  sniffMediaType,
  uncompressedLayer,
} from '../oci/index.ts';
import { exists, streamToTemp, tempPath, withLock, writeFileAtomic } from './atomic.ts';
import { BlobWriter } from './blob-writer.ts';

/**
 * An OCI image layout directory (https://github.com/opencontainers/image-spec/blob/main/image-layout.md): pare's
 * default store. Blobs are written to a temp file, hashed while streaming, checked, then renamed into
 * `blobs/<alg>/<hex>` — a blob is never visible under its name unless its bytes hash to it. `index.json` is replaced
 * atomically under a lock, so a killed build leaves the old tags intact and `pare verify-store` passes.
 */

export const REF_NAME = 'org.opencontainers.image.ref.name';

const blobFiles = new WeakMap<Layer, { readonly path: string; readonly size: number }>();

/**
 * Returns the file holding a layer read from a layout (`OciLayout.image`), or undefined for other layers. For sinks
 * that check the digest themselves, e.g. a registry upload with `?digest=`: reading the file directly skips the
 * hashing `compressed()` does. Anything else must read through `compressed()`.
 */
export function layoutBlobFile(layer: Layer): { readonly path: string; readonly size: number } | undefined {
  return blobFiles.get(layer);
}
const LAYOUT_FILE = 'oci-layout';
const LAYOUT_CONTENT = '{"imageLayoutVersion":"1.0.0"}';
/** The image-layout versions pare reads: the spec has only ever defined 1.0.0. */
export const LAYOUT_VERSIONS: readonly string[] = ['1.0.0'];

/** Throws LAYOUT_VERSION when `version` (an `oci-layout` file's imageLayoutVersion) is not one pare knows. */
export function checkLayoutVersion(version: unknown, where: string): void {
  if (typeof version === 'string' && LAYOUT_VERSIONS.includes(version)) return;
  throw new LayoutError(
    'LAYOUT_VERSION',
    `cannot read OCI layout ${JSON.stringify(where)}: its oci-layout file says imageLayoutVersion ${JSON.stringify(version)}, pare reads only ${LAYOUT_VERSIONS.join(', ')}`,
    { path: where },
  );
}

export class OciLayout {
  readonly dir: string;
  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens an existing layout; throws LAYOUT_NOT_FOUND when `dir` has no `oci-layout` file. */
  static async open(dir: string): Promise<OciLayout> {
    let version: string;
    try {
      const v = JSON.parse(await readFile(join(dir, LAYOUT_FILE), 'utf8')) as { imageLayoutVersion?: string };
      if (typeof v.imageLayoutVersion !== 'string') throw new Error('no imageLayoutVersion');
      version = v.imageLayoutVersion;
    } catch (e) {
      throw new LayoutError(
        'LAYOUT_NOT_FOUND',
        `cannot open OCI layout ${JSON.stringify(dir)}: no valid oci-layout file; is this an image layout directory?`,
        {
          cause: e,
          path: dir,
        },
      );
    }
    checkLayoutVersion(version, dir);
    return new OciLayout(dir);
  }

  /** Opens the layout at `dir`, creating an empty one if there is none. */
  static async create(dir: string): Promise<OciLayout> {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    const marker = join(dir, LAYOUT_FILE);
    if (!(await exists(marker))) {
      if (!(await exists(join(dir, 'index.json')))) {
        await writeFileAtomic(
          join(dir, 'index.json'),
          canonicalBytes(indexJson({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] })),
        );
      }
      await writeFileAtomic(marker, LAYOUT_CONTENT);
    }
    return OciLayout.open(dir);
  }

  /** Returns the path of a blob (whether or not it exists). */
  blobPath(d: Digest): string {
    const { algorithm, hex } = parseDigest(d);
    return join(this.dir, 'blobs', algorithm, hex);
  }

  async hasBlob(d: Digest): Promise<boolean> {
    return exists(this.blobPath(d));
  }

  /** Streams a blob, verifying its digest (and size when given) as it goes; throws LAYOUT_BLOB_MISSING. */
  openBlob(d: Digest, size?: number): AsyncIterable<Uint8Array> {
    const path = this.blobPath(d);
    const dir = this.dir;
    async function* raw(): AsyncGenerator<Uint8Array> {
      try {
        await access(path);
      } catch (e) {
        throw new LayoutError(
          'LAYOUT_BLOB_MISSING',
          `cannot read blob ${d} from layout ${JSON.stringify(dir)}: it is missing; the store is incomplete (run \`pare verify-store\`)`,
          {
            cause: e,
            path,
          },
        );
      }
      for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) yield c as Buffer;
    }
    return verifyStream(raw(), d, size, `blob in ${dir}`);
  }

  /**
   * Opens a writer for blob `expected.digest` fed chunk by chunk (see blob-writer.ts); the caller commits or aborts
   * it. For sources that own their buffers (the registry's blob reader); streams use `writeBlob`.
   */
  async blobWriter(expected: { digest: Digest; size?: number; what?: string }): Promise<BlobWriter> {
    const path = this.blobPath(expected.digest);
    await mkdir(dirname(path), { recursive: true });
    return BlobWriter.create(path, expected);
  }

  /** Reads a whole (small) blob and checks its digest (and size when given: a descriptor's size must be exact). */
  async readBlob(d: Digest, size?: number): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    for await (const c of this.openBlob(d, size)) parts.push(c);
    return Buffer.concat(parts);
  }

  /**
   * Writes a blob from a stream: temp file, hashed while written, checked against `expected` when given, renamed into
   * place. Existing blobs are not rewritten. Throws DIGEST_MISMATCH / SIZE_MISMATCH (naming `expected.what`, default
   * "blob") and leaves nothing behind.
   */
  async writeBlob(
    chunks: AsyncIterable<Uint8Array>,
    expected?: { digest?: Digest; size?: number; what?: string },
  ): Promise<{ digest: Digest; size: number }> {
    if (expected?.digest && (await this.hasBlob(expected.digest)))
      return {
        digest: expected.digest,
        size: expected.size ?? (await stat(this.blobPath(expected.digest))).size,
      };
    // Hash once: against the expected digest when there is one (verifyStream throws before the rename), else here.
    const h = expected?.digest ? undefined : new Hasher();
    let size = 0;
    const src = expected?.digest
      ? verifyStream(chunks, expected.digest, expected.size, expected.what)
      : chunks;
    const tmp = await streamToTemp(join(this.dir, 'blobs', 'sha256', 'x'), src, (c) => {
      size += c.length;
      h?.update(c);
    });
    const digest = expected?.digest ?? h!.digest();
    try {
      await rename(tmp, this.blobPath(digest));
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return { digest, size };
  }

  /**
   * Writes a layer's stored bytes as a blob that must match `expected`. A layer spooled to a file of its own is copied
   * in the kernel (copy_file_range) and then read once, into one reused buffer, to check it, instead of being streamed
   * through fresh buffers: a packed layer of any size then costs no memory here. Same guarantees as `writeBlob`.
   */
  async writeLayer(
    layer: Layer,
    expected: { digest: Digest; size: number },
  ): Promise<{ digest: Digest; size: number }> {
    const file = await layer.compressedFile?.();
    if (!file) return this.writeBlob(layer.compressed(), expected);
    if (await this.hasBlob(expected.digest)) return expected;
    const path = this.blobPath(expected.digest);
    await mkdir(dirname(path), { recursive: true });
    const tmp = tempPath(path);
    try {
      await copyFile(file, tmp, fsConstants.COPYFILE_EXCL);
      const fh = await open(tmp, 'r+');
      try {
        const v = new Verifier(expected.digest, expected.size, 'layer');
        const buf = Buffer.allocUnsafeSlow(1 << 20);
        for (let at = 0; ; ) {
          const { bytesRead } = await fh.read(buf, 0, buf.length, at);
          if (bytesRead === 0) break;
          v.update(buf.subarray(0, bytesRead));
          at += bytesRead;
        }
        v.check();
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    return expected;
  }

  /** Writes bytes as a blob. */
  async writeBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    return this.writeBlob(one(bytes), { digest: sha256(bytes), size: bytes.length });
  }

  /** Writes every blob of an image (layers, config, manifest) and returns the manifest's descriptor. Tags nothing. */
  async writeImage(image: Image): Promise<Descriptor> {
    const m = await image.manifest();
    const layers = await image.layers();
    for (const [i, l] of layers.entries()) {
      const d = m.layers[i]!;
      await this.writeLayer(l, { digest: d.digest, size: d.size });
    }
    await this.writeBytes(await image.rawConfig());
    const raw = await image.rawManifest();
    await this.writeBytes(raw);
    return { mediaType: await image.mediaType(), digest: sha256(raw), size: raw.length };
  }

  /** Writes an index and everything it references; returns its descriptor. */
  async writeIndex(index: ImageIndex): Promise<Descriptor> {
    const m = await index.manifest();
    for (const d of m.manifests) {
      if (isImageManifestType(d.mediaType)) await this.writeImage(await index.image(d.digest));
      else if (isIndexType(d.mediaType)) await this.writeIndex(await index.imageIndex(d.digest));
    }
    const raw = await index.rawManifest();
    await this.writeBytes(raw);
    return { mediaType: await index.mediaType(), digest: sha256(raw), size: raw.length };
  }

  /** Writes an image or index and, when `tag` is given, points the tag at it (replacing the tag's old target). */
  async writeArtifact(a: Artifact, options: { tag?: string } = {}): Promise<Descriptor> {
    const desc = a.kind === 'image' ? await this.writeImage(a.image) : await this.writeIndex(a.index);
    if (options.tag !== undefined) {
      let platform: Descriptor['platform'];
      if (a.kind === 'image') {
        const c = await a.image.config();
        platform = { architecture: c.architecture, os: c.os, ...(c.variant ? { variant: c.variant } : {}) };
      }
      await this.tag({ ...desc, ...(platform ? { platform } : {}) }, options.tag);
    }
    return desc;
  }

  /** Returns the parsed index.json. */
  async readIndexJson(): Promise<IndexManifest> {
    const path = join(this.dir, 'index.json');
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new LayoutError(
        'LAYOUT_INVALID',
        `cannot read ${JSON.stringify(path)}: the layout has no index.json`,
        { cause: e, path },
      );
    }
    return parseIndex(bytes, path);
  }

  /** Points `name` at `desc` in index.json (atomically, under a lock). */
  async tag(desc: Descriptor, name: string): Promise<void> {
    validateTag(name);
    await this.#updateIndex((ms) => [
      ...ms.filter((d) => d.annotations?.[REF_NAME] !== name),
      { ...desc, annotations: { ...desc.annotations, [REF_NAME]: name } },
    ]);
  }

  /** Removes tag `name` from index.json (the blobs stay until garbage collection). */
  async untag(name: string): Promise<void> {
    await this.#updateIndex((ms) => ms.filter((d) => d.annotations?.[REF_NAME] !== name));
  }

  async #updateIndex(fn: (ms: readonly Descriptor[]) => Descriptor[]): Promise<void> {
    await withLock(join(this.dir, 'index.json.lock'), async () => {
      const idx = await this.readIndexJson();
      const manifests = fn(idx.manifests).sort((a, b) => {
        const ra = a.annotations?.[REF_NAME] ?? '';
        const rb = b.annotations?.[REF_NAME] ?? '';
        return ra < rb ? -1 : ra > rb ? 1 : a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
      });
      const next: IndexManifest = { ...idx, schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
      await writeFileAtomic(join(this.dir, 'index.json'), canonicalBytes(indexJson(next)));
    });
  }

  /** Returns the tags in index.json, sorted. */
  async tags(): Promise<string[]> {
    const idx = await this.readIndexJson();
    return idx.manifests.flatMap((d) => (d.annotations?.[REF_NAME] ? [d.annotations[REF_NAME]] : [])).sort();
  }

  /**
   * Returns the descriptor for a tag or digest; with no ref, the only manifest in the layout. Throws
   * LAYOUT_REF_NOT_FOUND listing the tags there are.
   */
  async resolve(ref?: string): Promise<Descriptor> {
    const idx = await this.readIndexJson();
    let hit: Descriptor | undefined;
    if (ref === undefined || ref === '') {
      if (idx.manifests.length === 1) hit = idx.manifests[0];
      else if (idx.manifests.length > 1) {
        throw new LayoutError(
          'LAYOUT_REF_NOT_FOUND',
          `cannot choose an image in ${JSON.stringify(this.dir)}: it has ${idx.manifests.length}; name a tag (${(await this.tags()).join(', ')})`,
          {
            path: this.dir,
          },
        );
      }
    } else if (ref.includes(':') && /^sha(256|512):/.test(ref)) {
      hit = idx.manifests.find((d) => d.digest === ref);
      if (!hit && (await this.hasBlob(ref as Digest))) {
        const raw = await this.readBlob(ref as Digest);
        hit = {
          mediaType: sniffMediaType(raw) ?? MediaType.OCI_MANIFEST,
          digest: ref as Digest,
          size: raw.length,
        };
      }
    } else hit = idx.manifests.find((d) => d.annotations?.[REF_NAME] === ref);
    if (!hit) {
      const tags = await this.tags();
      throw new LayoutError(
        'LAYOUT_REF_NOT_FOUND',
        `cannot find ${JSON.stringify(ref ?? '')} in layout ${JSON.stringify(this.dir)}; tags there: ${tags.length > 0 ? tags.join(', ') : 'none'}`,
        {
          path: this.dir,
        },
      );
    }
    return hit;
  }

  /** Returns the image or index a tag or digest names. Nothing is read beyond index.json until asked. */
  async readArtifact(ref?: string): Promise<Artifact> {
    return this.artifact(await this.resolve(ref));
  }

  /** Returns the artifact a descriptor names. */
  artifact(d: Descriptor): Artifact {
    if (isIndexType(d.mediaType)) return { kind: 'index', index: this.index(d) };
    return { kind: 'image', image: this.image(d) };
  }

  /** Returns an Image backed by this layout's blobs. */
  image(d: Descriptor): Image {
    const where = `${d.digest} in ${JSON.stringify(this.dir)}`;
    return imageFromParts({
      where,
      rawManifest: () => this.readBlob(d.digest, d.size),
      rawConfig: (c) => this.readBlob(c.digest, c.size),
      layer: async (l, _i, diffId) => {
        const layer = layerFromOpener({
          open: () => this.openBlob(l.digest, l.size),
          digest: l.digest,
          size: l.size,
          mediaType: l.mediaType,
          diffId,
          what: `layer ${l.digest} of image ${where}`,
        });
        blobFiles.set(layer, { path: this.blobPath(l.digest), size: l.size });
        return layer;
      },
    });
  }

  /** Returns an ImageIndex backed by this layout's blobs. */
  index(d: Descriptor): ImageIndex {
    return indexFromParts({
      where: d.digest,
      rawManifest: () => this.readBlob(d.digest, d.size),
      image: async (c) => this.image(c),
      index: async (c) => this.index(c),
    });
  }

  /**
   * Re-hashes every blob and checks every reference from index.json down (manifests, configs, layers, nested
   * indexes): each blob present, of the size its descriptor says, hashing to its name; each image's diff_id count and
   * every layer's diff_id (decompressed under the read limits). Returns the issues, one code per kind (BLOB_DIGEST,
   * BLOB_MISSING, BLOB_SIZE, LAYER_COUNT, LAYER_DIFF_ID, LAYER_LIMIT, LAYER_INVALID, DOCUMENT_INVALID, INDEX_INVALID;
   * an unknown imageLayoutVersion is refused by `open`). Temp files of interrupted writes are not issues.
   */
  async verify(): Promise<Issue[]> {
    const issues: Issue[] = [];
    const present = new Set<string>();
    for (const alg of await readdir(join(this.dir, 'blobs')).catch(() => [] as string[])) {
      for (const name of await readdir(join(this.dir, 'blobs', alg))) {
        if (name.startsWith('.tmp-')) continue;
        const d = `${alg}:${name}`;
        const h = new Hasher(alg === 'sha512' ? 'sha512' : 'sha256');
        for await (const c of createReadStream(join(this.dir, 'blobs', alg, name))) h.update(c as Buffer);
        const got = h.digest();
        if (got !== d) issues.push({ code: 'BLOB_DIGEST', message: `blob ${d} hashes to ${got}`, digest: d });
        present.add(d);
      }
    }
    const seen = new Set<string>();
    const sizes = new Map<string, number>();
    const sizeOf = async (d: Digest) => {
      let n = sizes.get(d);
      if (n === undefined) {
        n = (await stat(this.blobPath(d))).size;
        sizes.set(d, n);
      }
      return n;
    };
    /** Checks that `d` is present and has the size its descriptor says; false when it is missing. */
    const need = async (d: Descriptor, from: string, what = 'blob'): Promise<boolean> => {
      if (!present.has(d.digest)) {
        issues.push({
          code: 'BLOB_MISSING',
          message: `${from} references ${what} ${d.digest}, which is not in the store`,
          digest: d.digest,
        });
        return false;
      }
      const n = await sizeOf(d.digest);
      if (n !== d.size)
        issues.push({
          code: 'BLOB_SIZE',
          message: `${from} says ${what} ${d.digest} has ${d.size} bytes; it has ${n}`,
          digest: d.digest,
        });
      return true;
    };
    const checkedLayers = new Set<string>();
    /** Reads a layer uncompressed and checks its diff_id and the read limits. */
    const checkLayer = async (l: Descriptor, diffId: Digest, from: string): Promise<void> => {
      const key = `${l.digest} ${diffId}`;
      if (checkedLayers.has(key)) return;
      checkedLayers.add(key);
      const what = `layer ${l.digest} of ${from}`;
      try {
        const src = createReadStream(this.blobPath(l.digest), {
          highWaterMark: 1 << 20,
        }) as AsyncIterable<Uint8Array>;
        for await (const _ of uncompressedLayer(src, {
          compression: compressionOf(l.mediaType),
          diffId,
          what,
        })) {
          /* hashed as it passes */
        }
      } catch (e) {
        const code = (e as { code?: string }).code;
        issues.push({
          code:
            code === 'OCI_LIMIT'
              ? 'LAYER_LIMIT'
              : /diff_ids says/.test((e as Error).message)
                ? 'LAYER_DIFF_ID'
                : 'LAYER_INVALID',
          message: (e as Error).message,
          digest: l.digest,
        });
      }
    };
    const walk = async (d: Descriptor, from: string): Promise<void> => {
      if (seen.has(d.digest)) return;
      seen.add(d.digest);
      if (!(await need(d, from, isIndexType(d.mediaType) ? 'index' : 'manifest'))) return;
      if (issues.some((i) => i.code === 'BLOB_DIGEST' && i.digest === d.digest)) return;
      const raw = await readFile(this.blobPath(d.digest));
      try {
        if (isIndexType(d.mediaType)) {
          for (const c of parseIndex(raw, d.digest).manifests) await walk(c, `index ${d.digest}`);
        } else if (isImageManifestType(d.mediaType)) {
          const m = parseManifest(raw, d.digest);
          const from = `manifest ${d.digest}`;
          const layers = m.layers.filter((l) => !l.urls?.length);
          const layersThere = [];
          for (const l of layers) if (await need(l, from, 'layer')) layersThere.push(l);
          if (m.subject) seen.add(m.subject.digest);
          if (!(await need(m.config, from, 'config'))) return;
          if (issues.some((i) => i.code === 'BLOB_DIGEST' && i.digest === m.config.digest)) return;
          const cfg = parseConfig(await readFile(this.blobPath(m.config.digest)), m.config.digest);
          if (cfg.rootfs.diff_ids.length !== m.layers.length) {
            issues.push({
              code: 'LAYER_COUNT',
              message: `${from} has ${m.layers.length} layers but its config ${m.config.digest} lists ${cfg.rootfs.diff_ids.length} diff_ids`,
              digest: d.digest,
            });
            return;
          }
          for (const [i, l] of m.layers.entries()) {
            if (!layersThere.includes(l)) continue;
            if (
              issues.some(
                (x) => (x.code === 'BLOB_DIGEST' || x.code === 'BLOB_SIZE') && x.digest === l.digest,
              )
            )
              continue;
            await checkLayer(l, cfg.rootfs.diff_ids[i]!, from);
          }
        }
      } catch (e) {
        issues.push({ code: 'DOCUMENT_INVALID', message: (e as Error).message, digest: d.digest });
      }
    };
    try {
      for (const d of (await this.readIndexJson()).manifests) await walk(d, 'index.json');
    } catch (e) {
      issues.push({ code: 'INDEX_INVALID', message: (e as Error).message });
    }
    return issues;
  }
}

/** Tags follow the distribution-spec grammar, so a layout tag can also be pushed: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`. */
export function validateTag(name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(name)) {
    throw new LayoutError(
      'LAYOUT_INVALID',
      `cannot use tag ${JSON.stringify(name)}: want letters, digits, "_", "." or "-" (at most 128, not starting with "." or "-")`,
    );
  }
}

async function* one(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}
