export type { Content } from './content.ts';
export { bufferContent, hostFileContent, hostFileContentSized, lazyContent } from './content.ts';
export { describeEntry, dumpTree } from './dump.ts';
export { readHostDir } from './host.ts';
export type { ConflictResolver } from './overlay.ts';
export {
  applyLayer,
  conflictError,
  conflictReplace,
  isWhiteoutPath,
  merge,
  OPAQUE_WHITEOUT,
  WHITEOUT_PREFIX,
} from './overlay.ts';
export { baseName, comparePaths, isWithin, joinPath, normalizePath, parentPath } from './path.ts';
export {
  MAX_SYMLINK_HOPS,
  type PathNode,
  type Resolution,
  type ResolveOptions,
  resolvePath,
} from './resolve.ts';
export type {
  DeviceEntry,
  DirDefaults,
  DirEntry,
  Entry,
  EntryKind,
  FifoEntry,
  FileEntry,
  HardlinkEntry,
  Resolved,
  SymlinkEntry,
} from './tree.ts';
export { dirEntry, fileEntry, symlinkEntry, Tree, TreeBuilder } from './tree.ts';
