export type { ExportIndex, SymbolImport, SymbolKind } from './bind.ts';
export { exportIndex, linkedFunctions, matchDefinition, resolveImports } from './bind.ts';
export type { CraftOptions } from './craft.ts';
export { craftElf } from './craft.ts';
export type { DynamicEntry, DynamicInfo, ElfSymbol, SymbolVersion, VersionDef, VersionNeed } from './file.ts';
export {
  DF,
  DF_1,
  DT,
  ElfFile,
  MAX_DYNAMIC_ENTRIES,
  MAX_NOTE_BYTES,
  MAX_SYMBOLS,
  MAX_VERSION_RECORDS,
  openElf,
  SHN,
  STB,
  STT,
  SymbolTable,
} from './file.ts';
export {
  compareGlibc,
  GLIBC_CHK_FUNCTIONS,
  GLIBC_CHK_LATEST,
  glibcFortifyList,
  glibcReleaseNeeded,
} from './glibc-chk.ts';
export type {
  Fact,
  FortifyFacts,
  FortifyList,
  HardeningFacts,
  HardeningOptions,
  Linkage,
  PieKind,
  Relro,
} from './hardening.ts';
export {
  fortifyFacts,
  fortifyListOf,
  hardeningFacts,
  MAX_CODE_SCAN_BYTES,
  NO_FORTIFY_LIST,
  unknownFortifyList,
} from './hardening.ts';
export type { ElfHeader, ProgramHeader, Section } from './header.ts';
export { ET, MACHINES, MAX_PROGRAM_HEADERS, MAX_SECTIONS, machineName, PF, PT, SHT } from './header.ts';
export type { LdCacheEntry } from './ldcache.ts';
export {
  HWCAP_EXTENSION,
  MAX_LDCACHE_BYTES,
  MAX_LDCACHE_ENTRIES,
  parseLdCache,
  writeLdCache,
} from './ldcache.ts';
export type {
  Closure,
  DependencyEdge,
  FoundBy,
  LoadedObject,
  LoaderOptions,
  SkippedCandidate,
} from './ldso.ts';
export { expandDst, Loader, MAX_CLOSURE_OBJECTS, multiarchTriplet, readLdConf } from './ldso.ts';
export type { ElfNotes, GnuProperty } from './notes.ts';
export { GNU_PROPERTY, MAX_NOTES, NT } from './notes.ts';
export type { ByteSource } from './reader.ts';
export { MAX_STRING_LENGTH, MAX_TABLE_BYTES } from './reader.ts';
export type { RootDirent, RootFs, RootStat } from './rootfs.ts';
export { hostRootFs, hostSource, treeRootFs } from './rootfs.ts';
