export type { Challenge } from './auth.ts';
export { mergeScopes, parseAuthHeader, parseChallenge, repositoryScope } from './auth.ts';
export type { RegistryBlobCacheOptions, SharedBlob } from './blob-cache.ts';
export { CACHE_ARTIFACT_TYPE, DEB_MEDIA_TYPE, RegistryBlobCache } from './blob-cache.ts';
export type {
  BlobProgress,
  FetchLike,
  RegistryClientOptions,
  RegistryRequest,
  RegistryResponse,
} from './client.ts';
export { isLoopbackHost, parseRetryAfter, RegistryClient } from './client.ts';
export type { CopyOptions } from './copy.ts';
export { writeSink } from './copy.ts';
export type {
  Credential,
  CredentialOptions,
  CredentialProvider,
  HelperRunner,
  StoredIn,
} from './credentials.ts';
export {
  authFilePaths,
  defaultCredentials,
  dockerConfigPath,
  eraseCredential,
  runCredentialHelper,
  staticCredentials,
  storeCredential,
} from './credentials.ts';
export type { ParsedManifest } from './manifest.ts';
export { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, parseManifest } from './manifest.ts';
export type { BlobSource, FetchedManifest } from './pull.ts';
export {
  blobSourceOf,
  downloadBlob,
  fetchBlob,
  fetchBlobBytes,
  getManifest,
  headManifest,
  MAX_CONFIG_BYTES,
  pull,
  pullImage,
  remoteImage,
  remoteIndex,
  resolveDigest,
} from './pull.ts';
export type { BlobPushResult, PushOptions } from './push.ts';
export { blobExists, pushArtifact, pushBlob, pushImage, pushIndex, putManifest } from './push.ts';
export type { ImageReference, ParseReferenceOptions, TransportReference } from './reference.ts';
export {
  formatReference,
  formatTransportReference,
  isValidRegistryHost,
  manifestReference,
  parseReference,
  parseTransportReference,
  withDigest,
} from './reference.ts';
export type { ReferrerArtifact, ReferrersOptions, ReferrersResult } from './referrers.ts';
export { attachReferrer, listReferrers, referrerDescriptor, referrersTag } from './referrers.ts';
export { listTags } from './tags.ts';
