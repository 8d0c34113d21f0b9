export type { Digest, DigestAlgorithm, ParsedDigest } from './digest.ts';
export {
  asDigest,
  digestHex,
  digestStream,
  formatDigest,
  Hasher,
  isDigest,
  parseDigest,
  sha256,
  Verifier,
  verifyStream,
} from './digest.ts';
