export type { WriteArchiveOptions } from './archive.ts';
export { readArchive, writeArchive } from './archive.ts';
export { exists, withLock, writeFileAtomic } from './atomic.ts';
export { BlobWriter } from './blob-writer.ts';
export { layoutBlobFile, OciLayout, REF_NAME, validateTag } from './layout.ts';
export type { LocalRef, LocalTransport } from './ref.ts';
export {
  formatLocalRef,
  LOCAL_TRANSPORTS,
  localRef,
  localTags,
  parseLocalTransport,
  readLocal,
  resolveLayoutImage,
  splitPathAndTag,
  writeLocal,
} from './ref.ts';
