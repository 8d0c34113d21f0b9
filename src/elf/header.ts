import { fail, View } from './reader.ts';

/** ELF object file types (gABI e_type). */
export const ET = { NONE: 0, REL: 1, EXEC: 2, DYN: 3, CORE: 4 } as const;
/** Program header types used here (gABI p_type plus GNU extensions). */
export const PT = {
  LOAD: 1,
  DYNAMIC: 2,
  INTERP: 3,
  NOTE: 4,
  PHDR: 6,
  TLS: 7,
  GNU_EH_FRAME: 0x6474e550,
  GNU_STACK: 0x6474e551,
  GNU_RELRO: 0x6474e552,
  GNU_PROPERTY: 0x6474e553,
} as const;
/** Section header types used here. */
export const SHT = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  DYNAMIC: 6,
  NOTE: 7,
  NOBITS: 8,
  DYNSYM: 11,
  GNU_HASH: 0x6ffffff6,
  GNU_VERDEF: 0x6ffffffd,
  GNU_VERNEED: 0x6ffffffe,
  GNU_VERSYM: 0x6fffffff,
} as const;
/** Segment permission bits (p_flags). */
export const PF = { X: 1, W: 2, R: 4 } as const;

/** The machines pare knows by name (e_machine); others parse fine and show as `em-<number>`. */
export const MACHINES: Readonly<Record<number, string>> = {
  3: 'i386',
  8: 'mips',
  20: 'ppc',
  21: 'ppc64',
  22: 's390',
  40: 'arm',
  43: 'sparcv9',
  62: 'x86_64',
  183: 'aarch64',
  243: 'riscv',
  258: 'loongarch',
};

/** Returns the name of e_machine `m` (`x86_64`, `aarch64`, …, or `em-<m>`). */
export function machineName(m: number): string {
  return MACHINES[m] ?? `em-${m}`;
}

/**
 * Most program headers accepted. e_phnum is 16 bits; PN_XNUM (0xffff) escapes to section 0's sh_info, which we also
 * bound by this limit so a hostile count cannot make us read megabytes of headers.
 */
export const MAX_PROGRAM_HEADERS = 65_535;
/** Most section headers accepted (extended numbering allows 2^32; real files stay far below 2^16). */
export const MAX_SECTIONS = 65_536;

export interface ElfHeader {
  readonly class: 32 | 64;
  readonly endian: 'little' | 'big';
  readonly osabi: number;
  readonly abiVersion: number;
  /** e_type: 1 REL, 2 EXEC, 3 DYN, 4 CORE. */
  readonly type: number;
  readonly machine: number;
  readonly machineName: string;
  readonly flags: number;
  readonly entry: bigint;
  readonly phoff: bigint;
  readonly shoff: bigint;
  readonly phentsize: number;
  readonly phnum: number;
  readonly shentsize: number;
  readonly shnum: number;
  readonly shstrndx: number;
}

export interface ProgramHeader {
  readonly type: number;
  readonly flags: number;
  readonly offset: bigint;
  readonly vaddr: bigint;
  readonly filesz: bigint;
  readonly memsz: bigint;
  readonly align: bigint;
}

export interface Section {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: bigint;
  readonly addr: bigint;
  readonly offset: bigint;
  readonly size: bigint;
  readonly link: number;
  readonly info: number;
  readonly addralign: bigint;
  readonly entsize: bigint;
}

/** Size of the identification + header we read first (an ELF64 header is 64 bytes, ELF32 52). */
export const EHDR_READ = 64;

/** Parses e_ident and the ELF header from the first bytes of a file. Throws ELF_NOT_ELF / ELF_TRUNCATED / ELF_UNSUPPORTED / ELF_HEADER_INVALID. */
export function parseHeader(b: Uint8Array, file: string): ElfHeader {
  if (b.length < 4 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46)
    fail('ELF_NOT_ELF', file, 'no ELF magic', { field: 'e_ident', offset: 0 });
  if (b.length < 16)
    fail('ELF_TRUNCATED', file, `e_ident needs 16 bytes, the file has ${b.length}`, {
      field: 'e_ident',
      offset: 0,
    });
  const cls = b[4];
  const data = b[5];
  if (cls !== 1 && cls !== 2)
    fail('ELF_UNSUPPORTED', file, `unknown class ${cls}`, { field: 'EI_CLASS', offset: 4 });
  if (data !== 1 && data !== 2)
    fail('ELF_UNSUPPORTED', file, `unknown data encoding ${data}`, { field: 'EI_DATA', offset: 5 });
  if (b[6] !== 1)
    fail('ELF_UNSUPPORTED', file, `unknown ELF version ${b[6]}`, { field: 'EI_VERSION', offset: 6 });
  const is64 = cls === 2;
  const size = is64 ? 64 : 52;
  if (b.length < size)
    fail('ELF_TRUNCATED', file, `the ELF header needs ${size} bytes`, { field: 'e_ehsize', offset: 0 });
  const v = new View(b.subarray(0, size), data === 1, file, 0, 'ELF header');
  const h: ElfHeader = {
    class: is64 ? 64 : 32,
    endian: data === 1 ? 'little' : 'big',
    osabi: b[7]!,
    abiVersion: b[8]!,
    type: v.u16(16),
    machine: v.u16(18),
    machineName: machineName(v.u16(18)),
    entry: v.word(24, is64),
    phoff: is64 ? v.u64(32) : BigInt(v.u32(28)),
    shoff: is64 ? v.u64(40) : BigInt(v.u32(32)),
    flags: v.u32(is64 ? 48 : 36),
    phentsize: v.u16(is64 ? 54 : 42),
    phnum: v.u16(is64 ? 56 : 44),
    shentsize: v.u16(is64 ? 58 : 46),
    shnum: v.u16(is64 ? 60 : 48),
    shstrndx: v.u16(is64 ? 62 : 50),
  };
  if (v.u32(20) !== 1)
    fail('ELF_UNSUPPORTED', file, `unknown e_version ${v.u32(20)}`, { field: 'e_version', offset: 20 });
  const phent = is64 ? 56 : 32;
  const shent = is64 ? 64 : 40;
  if (h.phnum > 0 && h.phentsize !== phent)
    fail('ELF_HEADER_INVALID', file, `e_phentsize is ${h.phentsize}, want ${phent}`, {
      field: 'e_phentsize',
    });
  if (h.shnum > 0 && h.shentsize !== shent)
    fail('ELF_HEADER_INVALID', file, `e_shentsize is ${h.shentsize}, want ${shent}`, {
      field: 'e_shentsize',
    });
  return h;
}

/** Parses `count` program headers from `v` (already read from e_phoff). */
export function parseProgramHeaders(v: View, h: ElfHeader, count: number): ProgramHeader[] {
  const out: ProgramHeader[] = [];
  const is64 = h.class === 64;
  const ent = is64 ? 56 : 32;
  for (let i = 0; i < count; i++) {
    const o = i * ent;
    out.push(
      is64
        ? {
            type: v.u32(o),
            flags: v.u32(o + 4),
            offset: v.u64(o + 8),
            vaddr: v.u64(o + 16),
            filesz: v.u64(o + 32),
            memsz: v.u64(o + 40),
            align: v.u64(o + 48),
          }
        : {
            type: v.u32(o),
            offset: BigInt(v.u32(o + 4)),
            vaddr: BigInt(v.u32(o + 8)),
            filesz: BigInt(v.u32(o + 16)),
            memsz: BigInt(v.u32(o + 20)),
            flags: v.u32(o + 24),
            align: BigInt(v.u32(o + 28)),
          },
    );
  }
  return out;
}

/** Parses `count` raw section headers (names not yet resolved). */
export function parseSectionHeaders(
  v: View,
  h: ElfHeader,
  count: number,
): (Omit<Section, 'name'> & { nameOff: number })[] {
  const out: (Omit<Section, 'name'> & { nameOff: number })[] = [];
  const is64 = h.class === 64;
  const ent = is64 ? 64 : 40;
  for (let i = 0; i < count; i++) {
    const o = i * ent;
    out.push(
      is64
        ? {
            index: i,
            nameOff: v.u32(o),
            type: v.u32(o + 4),
            flags: v.u64(o + 8),
            addr: v.u64(o + 16),
            offset: v.u64(o + 24),
            size: v.u64(o + 32),
            link: v.u32(o + 40),
            info: v.u32(o + 44),
            addralign: v.u64(o + 48),
            entsize: v.u64(o + 56),
          }
        : {
            index: i,
            nameOff: v.u32(o),
            type: v.u32(o + 4),
            flags: BigInt(v.u32(o + 8)),
            addr: BigInt(v.u32(o + 12)),
            offset: BigInt(v.u32(o + 16)),
            size: BigInt(v.u32(o + 20)),
            link: v.u32(o + 24),
            info: v.u32(o + 28),
            addralign: BigInt(v.u32(o + 32)),
            entsize: BigInt(v.u32(o + 36)),
          },
    );
  }
  return out;
}
