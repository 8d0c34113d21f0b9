export { ByteSource } from './bytes.ts';
export type { TarHeader, TarType } from './header.ts';
export { BLOCK, encodeHeader, paxRecord } from './header.ts';
export type { TarMember } from './reader.ts';
export { cleanMemberPath, MAX_EXTENDED_HEADER, readTar } from './reader.ts';
export type { TarEntriesOptions } from './tree.ts';
export { collectEntries, symlinkEscapes, tarEntries, tarToTree } from './tree.ts';
export type { TarFromTreeOptions } from './writer.ts';
export { collect, tarFromTree } from './writer.ts';
