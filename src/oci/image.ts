import { type Digest, sha256 } from '../digest/index.ts';
import { OciError } from '../errors.ts';
import { canonicalBytes, configJson, indexJson, manifestJson } from './json.ts';
import {
  type Descriptor,
  type History,
  type Image,
  type ImageConfig,
  type ImageIndex,
  type IndexManifest,
  type Layer,
  type Manifest,
  MediaType,
  type Platform,
  type RunConfig,
} from './model.ts';
import { parseConfig, parseIndex, parseManifest } from './parse.ts';

/**
 * Images and indexes assembled in memory (`buildImage`, `buildIndex`) or over raw documents from a store
 * (`imageFromParts`, `indexFromParts`). Manifests and configs are canonical JSON; the same inputs give the same digest.
 */

export interface BuildImageOptions {
  readonly layers: readonly Layer[];
  readonly platform: Platform;
  /** The runtime part of the config. */
  readonly config?: RunConfig;
  /** RFC 3339 creation time (from SOURCE_DATE_EPOCH). */
  readonly created?: string;
  readonly author?: string;
  /** One history entry per layer (a default is made when absent). */
  readonly history?: readonly History[];
  /** Manifest annotations (`org.opencontainers.image.*`). */
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Returns an OCI image of the given layers and config. Layers are only read (compressed once) when a digest is asked. */
export function buildImage(options: BuildImageOptions): Image {
  const docs = lazy(async () => {
    const layerDescs: Descriptor[] = [];
    const diffIds: Digest[] = [];
    for (const l of options.layers) {
      layerDescs.push({ mediaType: await l.mediaType(), digest: await l.digest(), size: await l.size() });
      diffIds.push(await l.diffId());
    }
    const cfg: ImageConfig = {
      created: options.created,
      author: options.author,
      architecture: options.platform.architecture,
      os: options.platform.os,
      variant: options.platform.variant,
      config: options.config,
      rootfs: { type: 'layers', diff_ids: diffIds },
      history:
        options.history ?? options.layers.map(() => ({ created: options.created, created_by: 'pare' })),
    };
    const rawConfig = canonicalBytes(configJson(cfg));
    const m: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(rawConfig), size: rawConfig.length },
      layers: layerDescs,
      annotations:
        options.annotations && Object.keys(options.annotations).length > 0 ? options.annotations : undefined,
    };
    return { rawConfig, rawManifest: canonicalBytes(manifestJson(m)) };
  });
  return imageFromParts({
    rawManifest: async () => (await docs()).rawManifest,
    rawConfig: async () => (await docs()).rawConfig,
    layer: async (_d, i) => options.layers[i]!,
  });
}

/**
 * Returns an Image over a raw manifest, a raw config and a way to get each layer. Checks that the config bytes hash
 * to the manifest's config digest before they are parsed.
 */
export function imageFromParts(parts: {
  readonly rawManifest: () => Promise<Uint8Array>;
  readonly rawConfig: (d: Descriptor) => Promise<Uint8Array>;
  readonly layer: (d: Descriptor, index: number, diffId: Digest | undefined) => Promise<Layer>;
  readonly where?: string;
}): Image {
  const rawManifest = lazy(parts.rawManifest);
  const manifest = lazy(async () => parseManifest(await rawManifest(), parts.where));
  const rawConfig = lazy(async () => {
    const m = await manifest();
    const b = await parts.rawConfig(m.config);
    const got = sha256(b);
    if (b.length !== m.config.size)
      throw new OciError(
        'OCI_CONFIG_INVALID',
        `cannot read image config ${m.config.digest}${parts.where ? ` of ${parts.where}` : ''}: it has ${b.length} bytes, the manifest says ${m.config.size}`,
        { digest: m.config.digest },
      );
    if (got !== m.config.digest) {
      throw new OciError(
        'OCI_CONFIG_INVALID',
        `cannot read image config ${m.config.digest}: content hashes to ${got}`,
        { digest: m.config.digest },
      );
    }
    return b;
  });
  // A config whose diff_id count does not match the manifest's layers is refused as soon as the config is read, so no
  // command shows or uses one (inspect reads no layer).
  const config = lazy(async () => {
    const m = await manifest();
    const c = parseConfig(await rawConfig(), m.config.digest);
    if (c.rootfs.diff_ids.length !== m.layers.length) {
      throw new OciError(
        'OCI_MANIFEST_INVALID',
        `cannot read image ${parts.where ?? ''}: manifest has ${m.layers.length} layers but config lists ${c.rootfs.diff_ids.length} diff_ids`.replace(
          '  ',
          ' ',
        ),
      );
    }
    return c;
  });
  const layers = lazy(async () => {
    const m = await manifest();
    const c = await config();
    return Promise.all(m.layers.map((d, i) => parts.layer(d, i, c.rootfs.diff_ids[i])));
  });
  const image: Image = {
    mediaType: async () => (await manifest()).mediaType ?? MediaType.OCI_MANIFEST,
    digest: async () => sha256(await rawManifest()),
    size: async () => (await rawManifest()).length,
    rawManifest,
    manifest,
    rawConfig,
    config,
    configDigest: async () => (await manifest()).config.digest,
    layers,
    async layerByDigest(d: Digest) {
      const ls = await layers();
      const c = await config();
      const m = await manifest();
      const i = m.layers.findIndex((x, j) => x.digest === d || c.rootfs.diff_ids[j] === d);
      if (i < 0) throw new OciError('OCI_MANIFEST_INVALID', `cannot find layer ${d} in image`, { digest: d });
      return ls[i]!;
    },
  };
  return image;
}

export interface IndexChild {
  readonly image?: Image;
  readonly index?: ImageIndex;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** Returns an OCI image index of the given images (each with its platform), in the order given. */
export function buildIndex(
  children: readonly IndexChild[],
  annotations?: Readonly<Record<string, string>>,
): ImageIndex {
  const raw = lazy(async () => {
    const manifests: Descriptor[] = [];
    for (const c of children) {
      const a = c.image ?? c.index;
      if (!a)
        throw new OciError('OCI_INDEX_INVALID', 'cannot build index: a child has neither image nor index');
      manifests.push({
        mediaType: await a.mediaType(),
        digest: await a.digest(),
        size: await a.size(),
        platform: c.platform,
        annotations: c.annotations,
      });
    }
    const m: IndexManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_INDEX,
      manifests,
      annotations: annotations && Object.keys(annotations).length > 0 ? annotations : undefined,
    };
    return canonicalBytes(indexJson(m));
  });
  return indexFromParts({
    rawManifest: raw,
    image: async (d) => {
      for (const c of children) if (c.image && (await c.image.digest()) === d.digest) return c.image;
      throw new OciError('OCI_INDEX_INVALID', `cannot find image ${d.digest} in index`, { digest: d.digest });
    },
    index: async (d) => {
      for (const c of children) if (c.index && (await c.index.digest()) === d.digest) return c.index;
      throw new OciError('OCI_INDEX_INVALID', `cannot find index ${d.digest} in index`, { digest: d.digest });
    },
  });
}

/** Returns an ImageIndex over a raw index document and ways to open its children. */
export function indexFromParts(parts: {
  readonly rawManifest: () => Promise<Uint8Array>;
  readonly image: (d: Descriptor) => Promise<Image>;
  readonly index: (d: Descriptor) => Promise<ImageIndex>;
  readonly where?: string;
}): ImageIndex {
  const rawManifest = lazy(parts.rawManifest);
  const manifest = lazy(async () => parseIndex(await rawManifest(), parts.where));
  const find = async (d: Digest) => {
    const desc = (await manifest()).manifests.find((x) => x.digest === d);
    if (!desc)
      throw new OciError('OCI_INDEX_INVALID', `cannot find ${d} in index ${sha256(await rawManifest())}`, {
        digest: d,
      });
    return desc;
  };
  return {
    mediaType: async () => (await manifest()).mediaType ?? MediaType.OCI_INDEX,
    digest: async () => sha256(await rawManifest()),
    size: async () => (await rawManifest()).length,
    rawManifest,
    manifest,
    image: async (d) => parts.image(await find(d)),
    imageIndex: async (d) => parts.index(await find(d)),
  };
}

function lazy<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    p ??= fn();
    return p;
  };
}
