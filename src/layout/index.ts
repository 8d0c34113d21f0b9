export type { WriteArchiveOptions } from './archive.ts';
export { readArchive, writeArchive } from './archive.ts';
export { withLock, writeFileAtomic } from './atomic.ts';
export { BlobWriter } from './blob-writer.ts';
export { layoutBlobFile, OciLayout, REF_NAME, validateTag } from './layout.ts';
export type { LocalRef } from './ref.ts';
export { isLocalRef, parseLocalRef, readLocal, writeLocal } from './ref.ts';
