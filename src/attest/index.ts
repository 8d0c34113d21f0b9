export type { Bundle, MessageSignature } from './bundle.ts';
export {
  BUNDLE_MEDIA_TYPES,
  BUNDLE_V03_MEDIA_TYPE,
  dsseBundle,
  encodeBundle,
  messageBundle,
  parseBundle,
  verifyDsseBundle,
  verifyMessageBundle,
} from './bundle.ts';
export type { CopiedReferrer } from './copy.ts';
export { copyReferrers, MAX_REFERRER_BLOB_BYTES } from './copy.ts';
export type { LegacyLayer } from './cosign.ts';
export { COSIGN_SIGN_PREDICATE, legacyTag, simpleSigningPayload } from './cosign.ts';
export type { Envelope, EnvelopeSignature } from './dsse.ts';
export {
  DSSE_MEDIA_TYPE,
  INTOTO_PAYLOAD_TYPE,
  pae,
  parseEnvelope,
  signEnvelope,
  verifyEnvelope,
} from './dsse.ts';
export type { ResourceDescriptor, Statement } from './intoto.ts';
export {
  encodeStatement,
  makeStatement,
  PREDICATE_TYPES,
  parseStatement,
  predicateTypeFor,
  STATEMENT_V1,
  statementCovers,
} from './intoto.ts';
export type {
  KeyPair,
  LoadPrivateKeyOptions,
  ScryptParams,
  Signer,
  Verifier,
  WriteKeyFilesOptions,
} from './keys.ts';
export {
  encryptPrivateKey,
  generateKeyPair,
  keyHint,
  keySigner,
  keyVerifier,
  loadPrivateKey,
  loadPublicKey,
  publicKeyPem,
  SIGSTORE_PRIVATE_KEY_PEM,
  writeKeyFiles,
} from './keys.ts';
export type { SignatureFormat, SignOptions, SignResult } from './sign.ts';
export { attestImage, signImage } from './sign.ts';
export type {
  AppFileDependency,
  DebDependency,
  ProvenanceInput,
  ReleaseDependency,
} from './slsa.ts';
export {
  debPurl,
  PARE_BUILD_TYPE,
  PARE_LOCAL_BUILDER,
  provenancePredicate,
  provenanceStatement,
  SLSA_PROVENANCE_V1,
} from './slsa.ts';
export type { ArtifactStore, BlobToPut, StoredManifest } from './store.ts';
export { layoutStore, registryStore } from './store.ts';
export type { Verified, VerifyOptions } from './verify.ts';
export { verifyImageAttestations, verifyImageSignatures } from './verify.ts';
