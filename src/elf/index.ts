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
} from './file.ts';
export type { ElfHeader, ProgramHeader, Section } from './header.ts';
export { ET, MACHINES, MAX_PROGRAM_HEADERS, MAX_SECTIONS, machineName, PF, PT, SHT } from './header.ts';
export type { ElfNotes, GnuProperty } from './notes.ts';
export { GNU_PROPERTY, MAX_NOTES, NT } from './notes.ts';
export type { ByteSource } from './reader.ts';
export { MAX_STRING_LENGTH, MAX_TABLE_BYTES } from './reader.ts';
