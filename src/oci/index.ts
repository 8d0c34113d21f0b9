export {
  compress,
  compressionOf,
  decompress,
  detectCompression,
  GZIP_LEVEL,
  layerMediaType,
  ZSTD_LEVEL,
} from './compress.ts';
export type { BuildImageOptions, IndexChild } from './image.ts';
export { buildImage, buildIndex, imageFromParts, indexFromParts } from './image.ts';
export { canonicalBytes, configJson, descriptorJson, indexJson, manifestJson } from './json.ts';
export type { LayerFromTreeOptions } from './layer.ts';
export { layerFromBytes, layerFromOpener, layerFromTree } from './layer.ts';
export type { LayerStreamOptions } from './layer-stream.ts';
export { checkedStoredLayer, uncompressedLayer } from './layer-stream.ts';
export type { ReadLimits } from './limits.ts';
export { DEFAULT_READ_LIMITS, LIMIT_ENV, readLimits } from './limits.ts';
export type {
  Artifact,
  Blob,
  Compression,
  Descriptor,
  History,
  Image,
  ImageConfig,
  ImageIndex,
  IndexManifest,
  KnownMediaType,
  Layer,
  Manifest,
  Platform,
  RunConfig,
} from './model.ts';
export { formatPlatform, isImageManifestType, isIndexType, MediaType, parsePlatform } from './model.ts';
export { parseConfig, parseIndex, parseManifest, sniffMediaType } from './parse.ts';
export type { SpooledFile } from './spool.ts';
export { ContentSpool, isSpooledFile, Spool } from './spool.ts';
export { hostPlatform, imageToTree, platformMatches, selectImage } from './to-tree.ts';
export type { Issue } from './validate.ts';
export { assertValidImage, validateImage, validateIndex, verifyArtifact, verifyImage } from './validate.ts';
