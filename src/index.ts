/**
 * pare as a library. Explicit named exports only; each module's own index.ts has the full list.
 * Data flows one way: sources → FsTree → transforms → layers → image → store.
 */
export type { BuildOptions, BuildResult } from './build/index.ts';
export { build, minimalBase } from './build/index.ts';
export type { Config, LoadedConfig } from './config/index.ts';
export { loadConfig, parseConfigText } from './config/index.ts';
export type { ControlErrorCode } from './debian/index.ts';
export { ControlError } from './debian/index.ts';
export type { Digest } from './digest/index.ts';
export { parseDigest, sha256 } from './digest/index.ts';
export type {
  AttestErrorCode,
  BuildErrorCode,
  DebianErrorCode,
  DigestErrorCode,
  ElfErrorCode,
  HttpErrorCode,
  LayoutErrorCode,
  OciErrorCode,
  RegistryDiagnostic,
  RegistryErrorCode,
  RunErrorCode,
  SbomErrorCode,
  SliceErrorCode,
  TarErrorCode,
  TreeErrorCode,
  UsageErrorCode,
} from './errors.ts';
export {
  AttestError,
  BaseError,
  BuildError,
  DebianError,
  DigestError,
  ElfError,
  HttpError,
  isPareError,
  isRegistryError,
  isRunError,
  LayoutError,
  OciError,
  RegistryError,
  RunError,
  SbomError,
  SliceError,
  TarError,
  TreeError,
  UsageError,
} from './errors.ts';
export type { Content, Entry } from './fstree/index.ts';
export {
  applyLayer,
  bufferContent,
  dumpTree,
  merge,
  readHostDir,
  Tree,
  TreeBuilder,
} from './fstree/index.ts';
export type { LocalRef } from './layout/index.ts';
export {
  OciLayout,
  parseLocalTransport,
  readArchive,
  readLocal,
  writeArchive,
  writeLocal,
} from './layout/index.ts';
export type {
  Artifact,
  Descriptor,
  Image,
  ImageConfig,
  ImageIndex,
  Layer,
  Manifest,
  Platform,
} from './oci/index.ts';
export {
  buildImage,
  buildIndex,
  imageToTree,
  layerFromTree,
  MediaType,
  selectImage,
  validateImage,
  validateIndex,
} from './oci/index.ts';
export { readTar, tarFromTree, tarToTree } from './tar/index.ts';
