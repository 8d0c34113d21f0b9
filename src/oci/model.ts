import type { Digest } from '../digest/index.ts';
import { OciError } from '../errors.ts';

/**
 * The OCI data model (https://github.com/opencontainers/image-spec), after go-containerregistry's `v1`: small
 * read-only interfaces whose content is computed lazily and can be reopened. Raw bytes are the truth; parsed forms
 * are derived from them and frozen. Nothing here does I/O until a sink pulls.
 */

export const MediaType = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_FOREIGN: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;
export type KnownMediaType = (typeof MediaType)[keyof typeof MediaType];

/** Layer compression as stored (the `digest`) vs uncompressed (the `diffId`). */
export type Compression = 'none' | 'gzip' | 'zstd';

export interface Platform {
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly urls?: readonly string[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly platform?: Platform;
  readonly artifactType?: string;
  /** Embedded content (image-spec `data`), base64. */
  readonly data?: string;
}

/** An image manifest (OCI 1.1) or Docker schema 2 manifest; the two have the same shape. */
export interface Manifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** An image index (OCI) or Docker manifest list. */
export interface IndexManifest {
  readonly schemaVersion: 2;
  readonly mediaType?: string;
  readonly artifactType?: string;
  readonly manifests: readonly Descriptor[];
  readonly subject?: Descriptor;
  readonly annotations?: Readonly<Record<string, string>>;
}

/** The `config` object of an image config: how to run the image. Field names as in the image-spec. */
export interface RunConfig {
  readonly User?: string;
  readonly ExposedPorts?: Readonly<Record<string, Record<string, never>>>;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[];
  readonly Cmd?: readonly string[];
  readonly Volumes?: Readonly<Record<string, Record<string, never>>>;
  readonly WorkingDir?: string;
  readonly Labels?: Readonly<Record<string, string>>;
  readonly StopSignal?: string;
}

export interface History {
  readonly created?: string;
  readonly created_by?: string;
  readonly author?: string;
  readonly comment?: string;
  readonly empty_layer?: boolean;
}

/** The image configuration (application/vnd.oci.image.config.v1+json). */
export interface ImageConfig {
  readonly created?: string;
  readonly author?: string;
  readonly architecture: string;
  readonly os: string;
  readonly variant?: string;
  readonly 'os.version'?: string;
  readonly 'os.features'?: readonly string[];
  readonly config?: RunConfig;
  readonly rootfs: { readonly type: 'layers'; readonly diff_ids: readonly Digest[] };
  readonly history?: readonly History[];
}

/** A content-addressed blob that can be read any number of times. */
export interface Blob {
  readonly mediaType: string;
  digest(): Promise<Digest>;
  size(): Promise<number>;
  /** Returns a fresh stream of the bytes on every call. */
  open(): AsyncIterable<Uint8Array>;
}

/** One layer of an image: a (usually compressed) tar change set. */
export interface Layer {
  /** Digest of the stored (compressed) bytes. */
  digest(): Promise<Digest>;
  /** Digest of the uncompressed tar. */
  diffId(): Promise<Digest>;
  /** Size of the stored bytes. */
  size(): Promise<number>;
  mediaType(): Promise<string>;
  /** The stored bytes, fresh on each call. */
  compressed(): AsyncIterable<Uint8Array>;
  /** The uncompressed tar, fresh on each call. */
  uncompressed(): AsyncIterable<Uint8Array>;
  /**
   * A file of this process's own holding exactly the stored bytes, when there is one (a big layer pare packed and
   * spooled to disk): a sink may copy it whole in the kernel instead of streaming it, and must still check it against
   * `digest()` before naming it. Undefined (or absent) when the bytes are only a stream.
   */
  compressedFile?(): Promise<string | undefined>;
}

/** A single-platform image. */
export interface Image {
  mediaType(): Promise<string>;
  /** Digest of the manifest bytes. */
  digest(): Promise<Digest>;
  size(): Promise<number>;
  rawManifest(): Promise<Uint8Array>;
  manifest(): Promise<Manifest>;
  rawConfig(): Promise<Uint8Array>;
  config(): Promise<ImageConfig>;
  /** Digest of the config blob (the image ID). */
  configDigest(): Promise<Digest>;
  layers(): Promise<readonly Layer[]>;
  /** The layer whose digest (compressed) or diffId (uncompressed) is `d`. */
  layerByDigest?(d: Digest): Promise<Layer>;
}

/** Several images (one per platform) or other manifests under one digest. */
export interface ImageIndex {
  mediaType(): Promise<string>;
  digest(): Promise<Digest>;
  size(): Promise<number>;
  rawManifest(): Promise<Uint8Array>;
  manifest(): Promise<IndexManifest>;
  /** The image whose manifest digest is `d`; throws when it is not in this index. */
  image(d: Digest): Promise<Image>;
  /** The nested index whose digest is `d`. */
  imageIndex(d: Digest): Promise<ImageIndex>;
}

/** What a reference can resolve to. */
export type Artifact =
  | { readonly kind: 'image'; readonly image: Image }
  | { readonly kind: 'index'; readonly index: ImageIndex };

/** True for the media types of single-image manifests (OCI or Docker). */
export function isImageManifestType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_MANIFEST || mt === MediaType.DOCKER_MANIFEST;
}

/** True for the media types of indexes (OCI or Docker manifest list). */
export function isIndexType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_INDEX || mt === MediaType.DOCKER_LIST;
}

/** Returns `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Parses `os/arch[/variant]` (e.g. `linux/arm64/v8`). */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant, ...rest] = s.split('/');
  if (!os || !architecture || rest.length > 0)
    throw new OciError(
      'OCI_PLATFORM_INVALID',
      `cannot parse platform ${JSON.stringify(s)}: want os/arch[/variant]`,
    );
  return variant ? { os, architecture, variant } : { os, architecture };
}
