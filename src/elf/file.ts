/**
 * The ELF reader: headers, program headers, sections, the dynamic section, symbol tables, symbol versions and notes,
 * read lazily through a ByteSource.
 *
 * Hand-written rather than a library because pare needs (a) random access over a small read interface — images hold
 * thousands of binaries and some are hundreds of MiB, so whole-file loads are out; (b) strict bounds and named limits
 * on every attacker-controlled offset and count, with a typed ElfError naming the file and field instead of a crash,
 * an infinite loop or a huge allocation; (c) the loader's view (PT_DYNAMIC, DT_STRTAB by address) as well as the
 * linker's (sections), for files with stripped section headers. The npm ELF parsers we looked at load whole buffers
 * and trust header counts. Spec: the System V gABI (https://refspecs.linuxfoundation.org/elf/gabi4+/contents.html),
 * the LSB symbol-versioning chapter and glibc's elf.h for GNU extensions.
 */

import { ElfError } from '../errors.ts';
import {
  EHDR_READ,
  type ElfHeader,
  ET,
  MAX_PROGRAM_HEADERS,
  MAX_SECTIONS,
  type ProgramHeader,
  PT,
  parseHeader,
  parseProgramHeaders,
  parseSectionHeaders,
  type Section,
  SHT,
} from './header.ts';
import { decodeNotes, type ElfNotes, type RawNote, splitNotes } from './notes.ts';
import {
  type ByteSource,
  fail,
  MAX_TABLE_BYTES,
  readExact,
  StringTable,
  scanRange,
  toNumber,
  View,
} from './reader.ts';

/** Dynamic tags used here (gABI + GNU). */
export const DT = {
  NULL: 0n,
  NEEDED: 1n,
  HASH: 4n,
  STRTAB: 5n,
  SYMTAB: 6n,
  STRSZ: 10n,
  SYMENT: 11n,
  SONAME: 14n,
  RPATH: 15n,
  DEBUG: 21n,
  TEXTREL: 22n,
  BIND_NOW: 24n,
  RUNPATH: 29n,
  FLAGS: 30n,
  GNU_HASH: 0x6ffffef5n,
  VERSYM: 0x6ffffff0n,
  FLAGS_1: 0x6ffffffbn,
  VERDEF: 0x6ffffffcn,
  VERDEFNUM: 0x6ffffffdn,
  VERNEED: 0x6ffffffen,
  VERNEEDNUM: 0x6fffffffn,
} as const;
/** DT_FLAGS bits. */
export const DF = { ORIGIN: 0x1, SYMBOLIC: 0x2, TEXTREL: 0x4, BIND_NOW: 0x8, STATIC_TLS: 0x10 } as const;
/** DT_FLAGS_1 bits. */
export const DF_1 = { NOW: 0x1, ORIGIN: 0x80, NODEFLIB: 0x800, PIE: 0x08000000 } as const;

/** Most dynamic entries read (real files have < 100). */
export const MAX_DYNAMIC_ENTRIES = 65_536;
/** Most symbols in one table; bounds memory for hostile counts (libLLVM's dynsym has ~60k, big symtabs ~10^6). */
export const MAX_SYMBOLS = 4_000_000;
/** Most verneed/verdef records followed (each chain is also bounded by its table's size). */
export const MAX_VERSION_RECORDS = 65_536;
/** Largest note area read (PT_NOTE segments and SHT_NOTE sections together). */
export const MAX_NOTE_BYTES = 16 * 1024 * 1024;
/** Longest PT_INTERP string. */
export const MAX_INTERP = 4096;

export interface DynamicEntry {
  readonly tag: bigint;
  readonly value: bigint;
}

/** The decoded dynamic section (the loader's view: PT_DYNAMIC, read up to DT_NULL). */
export interface DynamicInfo {
  readonly entries: readonly DynamicEntry[];
  readonly needed: readonly string[];
  readonly soname: string | undefined;
  /** DT_RPATH; when it appears several times the last wins, as in ld.so's l_info. */
  readonly rpath: string | undefined;
  readonly runpath: string | undefined;
  readonly flags: number;
  readonly flags1: number;
  /** A DT_BIND_NOW entry is present. */
  readonly bindNowTag: boolean;
  /** A DT_DEBUG entry is present (what checksec uses to tell PIE from a DSO). */
  readonly debugTag: boolean;
  readonly textrel: boolean;
}

/** Symbol binding (STB_*) and type (STT_*) values. */
export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2, GNU_UNIQUE: 10 } as const;
export const STT = {
  NOTYPE: 0,
  OBJECT: 1,
  FUNC: 2,
  SECTION: 3,
  FILE: 4,
  COMMON: 5,
  TLS: 6,
  GNU_IFUNC: 10,
} as const;
/** Special section indexes. */
export const SHN = { UNDEF: 0, ABS: 0xfff1, COMMON: 0xfff2, XINDEX: 0xffff } as const;

export interface SymbolVersion {
  readonly name: string;
  /** The versym hidden bit (0x8000): a non-default version (`sym@V` rather than `sym@@V`). */
  readonly hidden: boolean;
  /** For a needed version (undefined symbols), the library file named in the verneed record. */
  readonly file: string | undefined;
}

export interface ElfSymbol {
  readonly name: string;
  readonly value: bigint;
  readonly size: bigint;
  readonly bind: number;
  readonly type: number;
  readonly visibility: number;
  readonly shndx: number;
  /** Symbol version (dynsym only); undefined for unversioned, local (0) and base/global (1) indexes. */
  readonly version: SymbolVersion | undefined;
  /** The raw versym index without the hidden bit (0 when the file has no versym); ld.so's binding rules use it. */
  readonly versionIndex: number;
}

export interface VersionDef {
  readonly index: number;
  readonly flags: number;
  readonly names: readonly string[];
}
export interface VersionNeed {
  readonly file: string;
  readonly versions: readonly {
    readonly name: string;
    readonly index: number;
    readonly flags: number;
    readonly hash: number;
  }[];
}

/**
 * A symbol table (`.dynsym`, `.symtab`) over its raw bytes: fields and names are decoded when asked for. Bounds are
 * fixed at construction (count = whole entries in the table), so accessors need no per-read checks.
 */
export class SymbolTable {
  readonly count: number;
  /** Some entry has a versym index above 0 (ld.so's `num_versions != 0` for the binding rules). */
  readonly versioned: boolean;
  readonly #dv: DataView;
  readonly #is64: boolean;
  readonly #le: boolean;
  readonly #strtab: StringTable;
  readonly #versym: DataView | undefined;
  readonly #versymCount: number;
  readonly #versions: ReadonlyMap<number, { name: string; file: string | undefined }>;
  readonly #file: string;

  constructor(
    table: View,
    strtab: StringTable,
    is64: boolean,
    versym: View | undefined,
    versions: ReadonlyMap<number, { name: string; file: string | undefined }>,
  ) {
    const ent = is64 ? 24 : 16;
    this.count = Math.floor(table.length / ent);
    this.#dv = new DataView(table.bytes.buffer, table.bytes.byteOffset, this.count * ent);
    this.#is64 = is64;
    this.#le = table.le;
    this.#strtab = strtab;
    this.#versym = versym
      ? new DataView(versym.bytes.buffer, versym.bytes.byteOffset, versym.bytes.byteLength)
      : undefined;
    this.#versymCount = versym ? Math.min(this.count, Math.floor(versym.length / 2)) : 0;
    this.#versions = versions;
    this.#file = table.file;
    let versioned = false;
    for (let i = 0; i < this.count; i++) {
      const off = this.nameOffset(i);
      if (off !== 0) strtab.check(off);
      const raw = this.#rawVersym(i);
      const idx = raw & 0x7fff;
      if (idx > 0) versioned = true;
      if (idx > 1 && !versions.has(idx))
        fail(
          'ELF_VERSION_INVALID',
          table.file,
          `symbol ${JSON.stringify(this.name(i))} has version index ${idx}, which no verdef/verneed defines`,
          { field: 'versym', offset: versym!.base + i * 2 },
        );
    }
    this.versioned = versioned;
  }

  /**
   * Returns the same table over copies of its bytes (symbols, strings, versym), so that keeping it does not keep the
   * larger read buffers the originals are views into.
   */
  detached(): SymbolTable {
    const copy = (dv: DataView) => new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength).slice();
    const f = this.#file;
    return new SymbolTable(
      new View(copy(this.#dv), this.#le, f, 0, 'symbols'),
      this.#strtab.detached(),
      this.#is64,
      this.#versym ? new View(copy(this.#versym), this.#le, f, 0, 'versym') : undefined,
      this.#versions,
    );
  }

  /** The string table the names are in. */
  get strings(): StringTable {
    return this.#strtab;
  }

  /** A table without entries. */
  static empty(file: string, is64: boolean, le: boolean): SymbolTable {
    const none = new View(new Uint8Array(0), le, file, 0, 'symbols');
    return new SymbolTable(
      none,
      new StringTable(new Uint8Array(0), file, 'strings'),
      is64,
      undefined,
      new Map(),
    );
  }

  #rawVersym(i: number): number {
    return i < this.#versymCount ? this.#versym!.getUint16(i * 2, this.#le) : 0;
  }
  nameOffset(i: number): number {
    return this.#dv.getUint32(i * (this.#is64 ? 24 : 16), this.#le);
  }
  /** The symbol's name ('' for offset 0). */
  name(i: number): string {
    const off = this.nameOffset(i);
    return off === 0 ? '' : this.#strtab.decode(off);
  }
  /**
   * A 30-bit hash of entry i's name bytes (the gABI's DT_GNU_HASH function, h * 33 + c), or -1 for an empty name:
   * lets names be matched across tables without decoding them.
   */
  nameHash(i: number): number {
    const off = this.nameOffset(i);
    return off === 0 ? -1 : this.#strtab.hash(off);
  }
  /** True when entry i's name and entry j of `other` have the same bytes. */
  sameName(i: number, other: SymbolTable, j: number): boolean {
    return this.#strtab.sameString(this.nameOffset(i), other.#strtab, other.nameOffset(j));
  }
  info(i: number): number {
    return this.#dv.getUint8(i * (this.#is64 ? 24 : 16) + (this.#is64 ? 4 : 12));
  }
  bind(i: number): number {
    return this.info(i) >> 4;
  }
  type(i: number): number {
    return this.info(i) & 0xf;
  }
  shndx(i: number): number {
    return this.#dv.getUint16(i * (this.#is64 ? 24 : 16) + (this.#is64 ? 6 : 14), this.#le);
  }
  /** True when st_value is 0 (without building a bigint). */
  valueIsZero(i: number): boolean {
    const o = i * (this.#is64 ? 24 : 16) + (this.#is64 ? 8 : 4);
    return (
      this.#dv.getUint32(o, this.#le) === 0 && (!this.#is64 || this.#dv.getUint32(o + 4, this.#le) === 0)
    );
  }
  /** The versym index without the hidden bit (0 when there is no versym). */
  versionIndex(i: number): number {
    return this.#rawVersym(i) & 0x7fff;
  }
  /** The versym entry including the hidden bit (0x8000). */
  versymRaw(i: number): number {
    return this.#rawVersym(i);
  }
  /** The name (and for verneed, the library) of version index `idx`, or undefined for 0, 1 and unknown indexes. */
  versionName(idx: number): { name: string; file: string | undefined } | undefined {
    return idx > 1 ? this.#versions.get(idx) : undefined;
  }
  /** Entry `i` as an ElfSymbol object. */
  symbol(i: number): ElfSymbol {
    const o = i * (this.#is64 ? 24 : 16);
    const dv = this.#dv;
    const le = this.#le;
    const info = this.info(i);
    const raw = this.#rawVersym(i);
    const idx = raw & 0x7fff;
    const n = this.versionName(idx);
    return {
      name: this.name(i),
      value: this.#is64 ? dv.getBigUint64(o + 8, le) : BigInt(dv.getUint32(o + 4, le)),
      size: this.#is64 ? dv.getBigUint64(o + 16, le) : BigInt(dv.getUint32(o + 8, le)),
      bind: info >> 4,
      type: info & 0xf,
      visibility: dv.getUint8(o + (this.#is64 ? 5 : 13)) & 3,
      shndx: this.shndx(i),
      version: n ? { name: n.name, hidden: (raw & 0x8000) !== 0, file: n.file } : undefined,
      versionIndex: idx,
    };
  }
}

/** An opened ELF file. Header tables are parsed on open; everything else on first use and then kept. */
export class ElfFile {
  readonly name: string;
  readonly source: ByteSource;
  readonly header: ElfHeader;
  readonly programHeaders: readonly ProgramHeader[];
  readonly sections: readonly Section[];
  readonly #is64: boolean;
  readonly #le: boolean;
  #dynamic: Promise<DynamicInfo | undefined> | undefined;
  #dynstr: Promise<StringTable | undefined> | undefined;
  #dynsym: Promise<SymbolTable> | undefined;
  #symtab: Promise<readonly ElfSymbol[] | undefined> | undefined;
  #verdef: Promise<readonly VersionDef[]> | undefined;
  #verneed: Promise<readonly VersionNeed[]> | undefined;
  #notes: Promise<ElfNotes> | undefined;

  constructor(
    name: string,
    source: ByteSource,
    header: ElfHeader,
    phdrs: ProgramHeader[],
    sections: Section[],
  ) {
    this.name = name;
    this.source = source;
    this.header = header;
    this.programHeaders = phdrs;
    this.sections = sections;
    this.#is64 = header.class === 64;
    this.#le = header.endian === 'little';
  }

  /** True for ET_DYN and ET_EXEC with a PT_DYNAMIC segment (dynamically linked). */
  get isDynamic(): boolean {
    return this.programHeaders.some((p) => p.type === PT.DYNAMIC);
  }

  /** Returns the first program header of `type`, or undefined. */
  segment(type: number): ProgramHeader | undefined {
    return this.programHeaders.find((p) => p.type === type);
  }

  /** Returns the first section called `name`, or undefined. */
  section(name: string): Section | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** Maps a virtual address to a file offset through the PT_LOAD segments, as the loader would; undefined if unmapped. */
  addressToOffset(addr: bigint, length = 0n): number | undefined {
    for (const p of this.programHeaders) {
      if (p.type !== PT.LOAD) continue;
      if (addr >= p.vaddr && addr + length <= p.vaddr + p.filesz) {
        const off = p.offset + (addr - p.vaddr);
        return off < 0n || off > BigInt(this.source.size) ? undefined : Number(off);
      }
    }
    return undefined;
  }

  async #read(offset: number, length: number, field: string): Promise<View> {
    const b = await readExact(this.source, this.name, offset, length, field);
    return new View(b, this.#le, this.name, offset, field);
  }

  async #sectionView(s: Section, field: string): Promise<View> {
    if (s.type === SHT.NOBITS) return new View(new Uint8Array(0), this.#le, this.name, 0, field);
    return this.#read(
      toNumber(s.offset, this.name, `${field} sh_offset`),
      toNumber(s.size, this.name, `${field} sh_size`),
      field,
    );
  }

  /** Returns the PT_INTERP path (e.g. `/lib64/ld-linux-x86-64.so.2`), or undefined for none. */
  async interpreter(): Promise<string | undefined> {
    const p = this.segment(PT.INTERP);
    if (!p) return undefined;
    const len = toNumber(p.filesz, this.name, 'PT_INTERP p_filesz');
    if (len > MAX_INTERP)
      fail('ELF_LIMIT', this.name, `interpreter path longer than ${MAX_INTERP}`, { field: 'PT_INTERP' });
    const v = await this.#read(toNumber(p.offset, this.name, 'PT_INTERP p_offset'), len, 'PT_INTERP');
    let end = v.bytes.indexOf(0);
    if (end < 0) end = v.length;
    return new TextDecoder().decode(v.bytes.subarray(0, end));
  }

  /** Returns the dynamic section decoded, or undefined when the file has none (static executables, objects). */
  dynamic(): Promise<DynamicInfo | undefined> {
    this.#dynamic ??= this.#loadDynamic();
    return this.#dynamic;
  }

  async #rawDynamic(): Promise<DynamicEntry[] | undefined> {
    const seg = this.segment(PT.DYNAMIC);
    const sec = this.sections.find((s) => s.type === SHT.DYNAMIC);
    let v: View;
    if (seg) {
      v = await this.#read(
        toNumber(seg.offset, this.name, 'PT_DYNAMIC p_offset'),
        toNumber(seg.filesz, this.name, 'PT_DYNAMIC p_filesz'),
        'PT_DYNAMIC',
      );
    } else if (sec) {
      v = await this.#sectionView(sec, '.dynamic');
    } else return undefined;
    const ent = this.#is64 ? 16 : 8;
    const n = Math.floor(v.length / ent);
    if (n > MAX_DYNAMIC_ENTRIES)
      fail('ELF_LIMIT', this.name, `more than ${MAX_DYNAMIC_ENTRIES} dynamic entries`, {
        field: 'PT_DYNAMIC',
      });
    const out: DynamicEntry[] = [];
    for (let i = 0; i < n; i++) {
      const tag = v.sword(i * ent, this.#is64);
      if (tag === DT.NULL) break;
      out.push({ tag, value: v.word(i * ent + ent / 2, this.#is64) });
    }
    return out;
  }

  async #loadDynamic(): Promise<DynamicInfo | undefined> {
    const entries = await this.#rawDynamic();
    if (!entries) return undefined;
    const strtab = await this.#dynamicStrings(entries);
    const str = (e: DynamicEntry, what: string) => {
      if (!strtab)
        fail('ELF_STRING_INVALID', this.name, `${what} present but there is no dynamic string table`, {
          field: 'DT_STRTAB',
        });
      return strtab.get(toNumber(e.value, this.name, what));
    };
    const needed: string[] = [];
    let soname: string | undefined;
    let rpath: string | undefined;
    let runpath: string | undefined;
    let flags = 0;
    let flags1 = 0;
    let bindNowTag = false;
    let debugTag = false;
    let textrel = false;
    for (const e of entries) {
      switch (e.tag) {
        case DT.NEEDED:
          needed.push(str(e, 'DT_NEEDED'));
          break;
        case DT.SONAME:
          soname = str(e, 'DT_SONAME');
          break;
        case DT.RPATH:
          rpath = str(e, 'DT_RPATH');
          break;
        case DT.RUNPATH:
          runpath = str(e, 'DT_RUNPATH');
          break;
        case DT.FLAGS:
          flags = Number(e.value & 0xffffffffn);
          break;
        case DT.FLAGS_1:
          flags1 = Number(e.value & 0xffffffffn);
          break;
        case DT.BIND_NOW:
          bindNowTag = true;
          break;
        case DT.DEBUG:
          debugTag = true;
          break;
        case DT.TEXTREL:
          textrel = true;
          break;
      }
    }
    return { entries, needed, soname, rpath, runpath, flags, flags1, bindNowTag, debugTag, textrel };
  }

  /** The dynamic string table: DT_STRTAB/DT_STRSZ mapped through PT_LOAD (the loader's view), else `.dynstr`. */
  async #dynamicStrings(entries: readonly DynamicEntry[]): Promise<StringTable | undefined> {
    this.#dynstr ??= (async () => {
      const addr = entries.find((e) => e.tag === DT.STRTAB)?.value;
      const size = entries.find((e) => e.tag === DT.STRSZ)?.value;
      if (addr !== undefined && size !== undefined) {
        const off = this.addressToOffset(addr, size);
        if (off !== undefined) {
          const v = await this.#read(off, toNumber(size, this.name, 'DT_STRSZ'), 'DT_STRTAB');
          return new StringTable(v.bytes, this.name, 'DT_STRTAB');
        }
      }
      const sec =
        this.section('.dynstr') ??
        this.sections.find((s) => s.type === SHT.DYNAMIC && this.sections[s.link]?.type === SHT.STRTAB);
      if (!sec) return undefined;
      const strSec = sec.type === SHT.DYNAMIC ? this.sections[sec.link]! : sec;
      return new StringTable((await this.#sectionView(strSec, '.dynstr')).bytes, this.name, '.dynstr');
    })();
    return this.#dynstr;
  }

  /** The file-offset view of a dynamic-tag table: the section of `type` if present, else the tag's address. */
  async #tableByTag(
    secType: number,
    tag: bigint,
    size: bigint | undefined,
    field: string,
  ): Promise<View | undefined> {
    const sec = this.sections.find((s) => s.type === secType);
    if (sec) return this.#sectionView(sec, field);
    const dyn = await this.dynamic();
    const addr = dyn?.entries.find((e) => e.tag === tag)?.value;
    if (addr === undefined) return undefined;
    const off = this.addressToOffset(addr, size ?? 0n);
    if (off === undefined)
      fail('ELF_OFFSET_INVALID', this.name, `address 0x${addr.toString(16)} is not in any PT_LOAD segment`, {
        field,
      });
    const len = size !== undefined ? toNumber(size, this.name, field) : this.source.size - off;
    return this.#read(off, Math.min(len, this.source.size - off), field);
  }

  /**
   * Returns the records of a symbol-version table (verdef or verneed: the same chain in both): at most the DT_*NUM
   * count and MAX_VERSION_RECORDS, each starting with a u16 version that must be 1, each linked to the next by a byte
   * offset (0 ends the chain). `record` reads the one at `o` and returns it with that offset.
   */
  async #versionTable<T>(
    table: 'verdef' | 'verneed',
    record: (v: View, o: number, strtab: StringTable) => readonly [T, number],
  ): Promise<T[]> {
    const [secType, tag, numTag, versionField] =
      table === 'verdef'
        ? [SHT.GNU_VERDEF, DT.VERDEF, DT.VERDEFNUM, 'vd_version']
        : [SHT.GNU_VERNEED, DT.VERNEED, DT.VERNEEDNUM, 'vn_version'];
    const dyn = await this.dynamic();
    const v = await this.#tableByTag(secType, tag, undefined, table);
    if (!v || !dyn) return [];
    const strtab = (await this.#dynamicStrings(dyn.entries))!;
    const num = dyn.entries.find((e) => e.tag === numTag)?.value;
    const out: T[] = [];
    let o = 0;
    for (let i = 0; i < MAX_VERSION_RECORDS; i++) {
      if (num !== undefined && BigInt(i) >= num) break;
      const ver = v.u16(o);
      if (ver !== 1)
        fail('ELF_VERSION_INVALID', this.name, `${table} version ${ver}`, {
          field: versionField,
          offset: v.base + o,
        });
      const [r, next] = record(v, o, strtab);
      out.push(r);
      if (next === 0) break;
      o += next;
    }
    return out;
  }

  /** Returns the version definitions (SHT_GNU_verdef / DT_VERDEF). */
  versionDefinitions(): Promise<readonly VersionDef[]> {
    this.#verdef ??= this.#versionTable('verdef', (v, o, strtab) => {
      const flags = v.u16(o + 2);
      const index = v.u16(o + 4);
      const cnt = v.u16(o + 6);
      const aux = v.u32(o + 12);
      const next = v.u32(o + 16);
      const names: string[] = [];
      let a = o + aux;
      for (let j = 0; j < cnt; j++) {
        names.push(strtab.get(v.u32(a)));
        const an = v.u32(a + 4);
        if (an === 0) break;
        a += an;
      }
      return [{ index, flags, names }, next];
    });
    return this.#verdef;
  }

  /** Returns the version needs (SHT_GNU_verneed / DT_VERNEED): per library, the versions it must define. */
  versionNeeds(): Promise<readonly VersionNeed[]> {
    let records = 0;
    this.#verneed ??= this.#versionTable('verneed', (v, o, strtab) => {
      const cnt = v.u16(o + 2);
      const file = strtab.get(v.u32(o + 4));
      const aux = v.u32(o + 8);
      const next = v.u32(o + 12);
      const versions: VersionNeed['versions'][number][] = [];
      let a = o + aux;
      for (let j = 0; j < cnt; j++) {
        if (++records > MAX_VERSION_RECORDS)
          fail('ELF_LIMIT', this.name, `more than ${MAX_VERSION_RECORDS} version records`, {
            field: 'verneed',
          });
        versions.push({
          hash: v.u32(a),
          flags: v.u16(a + 4),
          index: v.u16(a + 6),
          name: strtab.get(v.u32(a + 8)),
        });
        const an = v.u32(a + 12);
        if (an === 0) break;
        a += an;
      }
      return [{ file, versions }, next];
    });
    return this.#verneed;
  }

  /** Returns the dynamic symbols (SHT_DYNSYM, or DT_SYMTAB sized by DT_HASH / DT_GNU_HASH) with their versions. */
  async dynamicSymbols(): Promise<readonly ElfSymbol[]> {
    const t = await this.dynamicSymbolTable();
    const out: ElfSymbol[] = new Array(t.count);
    for (let i = 0; i < t.count; i++) out[i] = t.symbol(i);
    return out;
  }

  /**
   * Returns the dynamic symbol table as stored, decoded on access (no object per symbol): what the audit and the
   * loader use, since a library's table can hold tens of thousands of symbols of which a program binds a few. Checks
   * every name offset and version index up front, so it throws where `dynamicSymbols` would.
   */
  dynamicSymbolTable(): Promise<SymbolTable> {
    this.#dynsym ??= this.#loadDynsym();
    return this.#dynsym;
  }

  async #loadDynsym(): Promise<SymbolTable> {
    const dyn = await this.dynamic();
    let table: View | undefined;
    let strtab: StringTable | undefined;
    const sec = this.sections.find((s) => s.type === SHT.DYNSYM);
    if (sec) {
      table = await this.#sectionView(sec, '.dynsym');
      const strSec = this.sections[sec.link];
      if (strSec && strSec.type === SHT.STRTAB)
        strtab = new StringTable((await this.#sectionView(strSec, '.dynstr')).bytes, this.name, '.dynstr');
    } else if (dyn) {
      const count = await this.#dynsymCount(dyn);
      if (count === undefined) return SymbolTable.empty(this.name, this.#is64, this.#le);
      const ent = this.#is64 ? 24 : 16;
      table = await this.#tableByTag(SHT.DYNSYM, DT.SYMTAB, BigInt(count * ent), 'DT_SYMTAB');
    }
    if (!table) return SymbolTable.empty(this.name, this.#is64, this.#le);
    strtab ??= dyn ? await this.#dynamicStrings(dyn.entries) : undefined;
    if (!strtab)
      fail('ELF_STRING_INVALID', this.name, 'dynamic symbols without a string table', { field: '.dynsym' });
    const count = this.#boundCount(Math.floor(table.length / (this.#is64 ? 24 : 16)), '.dynsym');
    if (count === 0) return SymbolTable.empty(this.name, this.#is64, this.#le);
    const versym = await this.#tableByTag(SHT.GNU_VERSYM, DT.VERSYM, BigInt(count * 2), 'versym');
    const names = new Map<number, { name: string; file: string | undefined }>();
    if (versym) {
      for (const d of await this.versionDefinitions())
        if (d.names[0] !== undefined) names.set(d.index, { name: d.names[0], file: undefined });
      for (const n of await this.versionNeeds())
        for (const x of n.versions) names.set(x.index, { name: x.name, file: n.file });
    }
    return new SymbolTable(table, strtab, this.#is64, versym, names);
  }

  /**
   * Returns the name-hash keys (gnuHashKey) that the DT_GNU_HASH table stores for dynamic symbols `first`.. (its
   * symoffset) as a function of the symbol index, or undefined when there is no such table or it does not fit the file.
   * ld.so finds a symbol only through these stored hashes, so reading them is as faithful as hashing the names.
   */
  async gnuHashKeys(): Promise<{ readonly first: number; key(i: number): number } | undefined> {
    const dyn = await this.dynamic();
    const gnu = dyn?.entries.find((e) => e.tag === DT.GNU_HASH)?.value;
    if (gnu === undefined) return undefined;
    const count = (await this.dynamicSymbolTable()).count;
    try {
      const off = this.addressToOffset(gnu, 16n);
      if (off === undefined) return undefined;
      const h = await this.#read(off, 16, 'DT_GNU_HASH');
      const nbuckets = h.u32(0);
      const first = h.u32(4);
      const bloomWords = h.u32(8);
      if (first > count || nbuckets > MAX_SYMBOLS || bloomWords > MAX_SYMBOLS) return undefined;
      const chainAt = off + 16 + bloomWords * (this.#is64 ? 8 : 4) + nbuckets * 4;
      const chain = await this.#read(chainAt, (count - first) * 4, 'DT_GNU_HASH chain');
      return { first, key: (i: number) => (chain.u32((i - first) * 4) >>> 1) & 0x3fffffff };
    } catch (e) {
      if (e instanceof ElfError) return undefined;
      throw e;
    }
  }

  /** Symbol count for section-less files: DT_HASH's nchain, else the highest index reachable from DT_GNU_HASH. */
  async #dynsymCount(dyn: DynamicInfo): Promise<number | undefined> {
    const hash = dyn.entries.find((e) => e.tag === DT.HASH)?.value;
    if (hash !== undefined) {
      const off = this.addressToOffset(hash, 8n);
      if (off === undefined)
        fail('ELF_OFFSET_INVALID', this.name, 'DT_HASH is not in any PT_LOAD segment', { field: 'DT_HASH' });
      const v = await this.#read(off, 8, 'DT_HASH');
      return this.#boundCount(v.u32(4), 'DT_HASH nchain');
    }
    const gnu = dyn.entries.find((e) => e.tag === DT.GNU_HASH)?.value;
    if (gnu === undefined) return undefined;
    const off = this.addressToOffset(gnu, 16n);
    if (off === undefined)
      fail('ELF_OFFSET_INVALID', this.name, 'DT_GNU_HASH is not in any PT_LOAD segment', {
        field: 'DT_GNU_HASH',
      });
    const h = await this.#read(off, 16, 'DT_GNU_HASH');
    const nbuckets = this.#boundCount(h.u32(0), 'DT_GNU_HASH nbuckets');
    const symoffset = h.u32(4);
    const bloomSize = this.#boundCount(h.u32(8), 'DT_GNU_HASH bloom_size');
    const bucketsAt = off + 16 + bloomSize * (this.#is64 ? 8 : 4);
    const buckets = await this.#read(bucketsAt, nbuckets * 4, 'DT_GNU_HASH buckets');
    let max = 0;
    for (let i = 0; i < nbuckets; i++) max = Math.max(max, buckets.u32(i * 4));
    if (max < symoffset) return symoffset;
    // Walk the chain of the highest bucket until the end bit; the chain array starts at symoffset.
    const chainAt = bucketsAt + nbuckets * 4;
    for (let i = max; ; i++) {
      this.#boundCount(i, 'DT_GNU_HASH chain');
      const c = await this.#read(chainAt + (i - symoffset) * 4, 4, 'DT_GNU_HASH chain');
      if (c.u32(0) & 1) return i + 1;
    }
  }

  #boundCount(n: number, field: string): number {
    if (n > MAX_SYMBOLS)
      fail('ELF_LIMIT', this.name, `${n} is over the ${MAX_SYMBOLS} symbol limit`, { field });
    return n;
  }

  /** True when the file has a `.symtab` section (not stripped, in checksec's sense). */
  get hasSymtab(): boolean {
    return this.sections.some((s) => s.type === SHT.SYMTAB);
  }

  /**
   * Returns the `.symtab` section and the string table its sh_link names, or undefined when the file is stripped.
   * Throws ELF_HEADER_INVALID when sh_link names no string table.
   */
  #symtabSections(): { readonly sec: Section; readonly strSec: Section } | undefined {
    const sec = this.sections.find((s) => s.type === SHT.SYMTAB);
    if (!sec) return undefined;
    const strSec = this.sections[sec.link];
    if (!strSec || strSec.type !== SHT.STRTAB)
      fail('ELF_HEADER_INVALID', this.name, `.symtab sh_link ${sec.link} is not a string table`, {
        field: '.symtab sh_link',
      });
    return { sec, strSec };
  }

  /**
   * Returns which of `needles` occur in the `.symtab` string table (undefined when stripped). Reads the string bytes
   * only, without building symbol objects: a cheap name test for big unstripped files.
   */
  async symbolTableNames(needles: readonly string[]): Promise<Set<string> | undefined> {
    const symtab = this.#symtabSections();
    if (!symtab) return undefined;
    const { strSec } = symtab;
    const found = new Set<string>();
    if (needles.length === 0) return found;
    // Same range checks as reading the section whole, then streamed: .strtab of a big unstripped file runs to MiBs.
    const offset = toNumber(strSec.offset, this.name, '.strtab sh_offset');
    const size = toNumber(strSec.size, this.name, '.strtab sh_size');
    await readExact(this.source, this.name, offset, 0, '.strtab');
    if (size > MAX_TABLE_BYTES)
      fail('ELF_LIMIT', this.name, `${size} bytes is over the ${MAX_TABLE_BYTES}-byte table limit`, {
        field: '.strtab',
        offset,
      });
    if (offset + size > this.source.size)
      fail(
        'ELF_TRUNCATED',
        this.name,
        `range ${offset}+${size} ends past the end of the file (${this.source.size} bytes)`,
        {
          field: '.strtab',
          offset,
        },
      );
    const overlap = Math.max(...needles.map((n) => Buffer.byteLength(n))) - 1;
    await scanRange(this.source, offset, size, overlap, (chunk) => {
      for (const n of needles) if (!found.has(n) && chunk.includes(n)) found.add(n);
      return found.size === needles.length;
    });
    return found;
  }

  /** Returns the static symbol table (`.symtab`), or undefined when the file is stripped. */
  symbolTable(): Promise<readonly ElfSymbol[] | undefined> {
    this.#symtab ??= (async () => {
      const symtab = this.#symtabSections();
      if (!symtab) return undefined;
      const { sec, strSec } = symtab;
      const table = await this.#sectionView(sec, '.symtab');
      const strtab = new StringTable(
        (await this.#sectionView(strSec, '.strtab')).bytes,
        this.name,
        '.strtab',
      );
      this.#boundCount(Math.floor(table.length / (this.#is64 ? 24 : 16)), '.symtab');
      const t = new SymbolTable(table, strtab, this.#is64, undefined, new Map());
      const out: ElfSymbol[] = new Array(t.count);
      for (let i = 0; i < t.count; i++) out[i] = t.symbol(i);
      return out;
    })();
    return this.#symtab;
  }

  /** Returns the decoded notes of PT_NOTE segments and of SHT_NOTE sections outside them (annobin's live there). */
  notes(): Promise<ElfNotes> {
    this.#notes ??= (async () => {
      const raw: RawNote[] = [];
      let total = 0;
      const covered: [bigint, bigint][] = [];
      const area = async (offset: bigint, size: bigint, align: bigint, field: string) => {
        const len = toNumber(size, this.name, `${field} size`);
        total += len;
        if (total > MAX_NOTE_BYTES)
          fail('ELF_LIMIT', this.name, `notes over ${MAX_NOTE_BYTES} bytes`, { field });
        const v = await this.#read(toNumber(offset, this.name, `${field} offset`), len, field);
        splitNotes(v, Number(align), raw);
      };
      for (const p of this.programHeaders) {
        if (p.type !== PT.NOTE) continue;
        covered.push([p.offset, p.offset + p.filesz]);
        await area(p.offset, p.filesz, p.align, 'PT_NOTE');
      }
      for (const s of this.sections) {
        if (s.type !== SHT.NOTE) continue;
        if (covered.some(([a, b]) => s.offset >= a && s.offset + s.size <= b)) continue;
        await area(s.offset, s.size, s.addralign, s.name || 'SHT_NOTE');
      }
      return decodeNotes(raw, this.#le, this.#is64, this.name);
    })();
    return this.#notes;
  }
}

/**
 * Opens an ELF file: reads and checks the header, the program headers and the section headers (with names). Throws
 * ElfError: ELF_NOT_ELF when the magic is missing, ELF_TRUNCATED / ELF_OFFSET_INVALID / ELF_HEADER_INVALID /
 * ELF_LIMIT for malformed tables, ELF_IO when the source cannot be read.
 */
export async function openElf(source: ByteSource, name: string): Promise<ElfFile> {
  const first = await readExact(source, name, 0, Math.min(EHDR_READ, source.size), 'ELF header');
  const h = parseHeader(first, name);
  const le = h.endian === 'little';
  const is64 = h.class === 64;
  // Section 0 carries extended counts when e_shnum / e_phnum / e_shstrndx overflow (gABI "Extended numbering").
  let shnum = h.shnum;
  let phnum = h.phnum;
  let shstrndx = h.shstrndx;
  const shent = is64 ? 64 : 40;
  let sec0: ReturnType<typeof parseSectionHeaders>[number] | undefined;
  if (h.shoff !== 0n && (shnum === 0 || phnum === 0xffff || shstrndx === 0xffff)) {
    const v = new View(
      await readExact(source, name, toNumber(h.shoff, name, 'e_shoff'), shent, 'section header 0'),
      le,
      name,
      Number(h.shoff),
      'section header 0',
    );
    sec0 = parseSectionHeaders(v, { ...h, shentsize: shent }, 1)[0]!;
    if (shnum === 0) shnum = toNumber(sec0.size, name, 'section 0 sh_size');
    if (phnum === 0xffff) phnum = sec0.info;
    if (shstrndx === 0xffff) shstrndx = sec0.link;
  }
  if (phnum > MAX_PROGRAM_HEADERS)
    fail('ELF_LIMIT', name, `${phnum} program headers is over the limit of ${MAX_PROGRAM_HEADERS}`, {
      field: 'e_phnum',
    });
  if (shnum > MAX_SECTIONS)
    fail('ELF_LIMIT', name, `${shnum} sections is over the limit of ${MAX_SECTIONS}`, { field: 'e_shnum' });
  let phdrs: ProgramHeader[] = [];
  if (phnum > 0) {
    const off = toNumber(h.phoff, name, 'e_phoff');
    const v = new View(
      await readExact(source, name, off, phnum * (is64 ? 56 : 32), 'program headers'),
      le,
      name,
      off,
      'program headers',
    );
    phdrs = parseProgramHeaders(v, h, phnum);
  }
  let sections: Section[] = [];
  if (shnum > 0 && h.shoff !== 0n) {
    const off = toNumber(h.shoff, name, 'e_shoff');
    const v = new View(
      await readExact(source, name, off, shnum * shent, 'section headers'),
      le,
      name,
      off,
      'section headers',
    );
    const raw = parseSectionHeaders(v, { ...h, shentsize: shent }, shnum);
    let names: StringTable | undefined;
    const strSec = shstrndx !== 0 ? raw[shstrndx] : undefined;
    if (shstrndx !== 0 && !strSec)
      fail('ELF_HEADER_INVALID', name, `e_shstrndx ${shstrndx} is not a section`, { field: 'e_shstrndx' });
    if (strSec && strSec.type !== SHT.NOBITS) {
      const b = await readExact(
        source,
        name,
        toNumber(strSec.offset, name, '.shstrtab sh_offset'),
        toNumber(strSec.size, name, '.shstrtab sh_size'),
        '.shstrtab',
      );
      names = new StringTable(b, name, '.shstrtab');
    }
    sections = raw.map(({ nameOff, ...s }) => ({
      ...s,
      name: names && nameOff !== 0 ? names.get(nameOff) : '',
    }));
  }
  return new ElfFile(name, source, { ...h, phnum, shnum, shstrndx }, phdrs, sections);
}

/** True when e_type is ET_DYN. */
export function isDyn(f: ElfFile): boolean {
  return f.header.type === ET.DYN;
}
