import { fail, View } from './reader.ts';

/** Note types (with their owner names) that pare decodes. */
export const NT = {
  GNU_ABI_TAG: 1,
  GNU_BUILD_ID: 3,
  GNU_PROPERTY_TYPE_0: 5,
  /** systemd's package note (`.note.package`), owner "FDO": https://systemd.io/ELF_PACKAGE_METADATA/ */
  FDO_PACKAGING_METADATA: 0xcafe1a7e,
  GNU_BUILD_ATTRIBUTE_OPEN: 0x100,
  GNU_BUILD_ATTRIBUTE_FUNC: 0x101,
} as const;

/** GNU property types carrying control-flow protection bits (from glibc elf.h). */
export const GNU_PROPERTY = {
  X86_FEATURE_1_AND: 0xc0000002,
  AARCH64_FEATURE_1_AND: 0xc0000000,
} as const;

/** Most notes accepted from one file; real binaries have a handful (annobin can add thousands, we keep a count). */
export const MAX_NOTES = 100_000;
/** Most GNU properties in one NT_GNU_PROPERTY_TYPE_0 note. */
export const MAX_PROPERTIES = 1024;

export interface RawNote {
  readonly owner: string;
  readonly type: number;
  readonly desc: Uint8Array;
  /** File offset of the note header. */
  readonly offset: number;
}

export interface GnuProperty {
  readonly type: number;
  readonly data: Uint8Array;
}

/** Decoded facts from an ELF file's notes. */
export interface ElfNotes {
  /** GNU build-id as lowercase hex. */
  readonly buildId: string | undefined;
  /** NT_GNU_ABI_TAG: OS name and the minimum kernel version. */
  readonly abiTag: { readonly os: string; readonly kernel: string } | undefined;
  /** x86 feature bits (GNU_PROPERTY_X86_FEATURE_1_AND), present when the property is. */
  readonly x86Features: { readonly ibt: boolean; readonly shstk: boolean } | undefined;
  /** AArch64 feature bits (GNU_PROPERTY_AARCH64_FEATURE_1_AND). */
  readonly aarch64Features: { readonly bti: boolean; readonly pac: boolean } | undefined;
  /** Every GNU property, in file order. */
  readonly properties: readonly GnuProperty[];
  /** The systemd `.note.package` JSON object (type, name, version, …), or undefined. */
  readonly package: Readonly<Record<string, unknown>> | undefined;
  /** Set when a `.note.package` note is present but its JSON does not parse. */
  readonly packageError: string | undefined;
  /** Number of annobin build-attribute notes (NT_GNU_BUILD_ATTRIBUTE_*). */
  readonly annobinNotes: number;
  /** Annobin attribute names seen (e.g. `GA*FORTIFY`, `GA+stack_clash`), sorted and unique. */
  readonly annobinAttributes: readonly string[];
}

function pad(n: number, align: number): number {
  return (n + align - 1) & ~(align - 1);
}

/**
 * Splits a note area into notes. `align` is the segment/section alignment: 8 for notes laid out with 8-byte padding
 * (NT_GNU_PROPERTY_TYPE_0 on 64-bit), else 4, as readelf and the kernel read them.
 */
export function splitNotes(v: View, align: number, out: RawNote[]): void {
  const a = align === 8 ? 8 : 4;
  let o = 0;
  while (o + 12 <= v.length) {
    if (out.length >= MAX_NOTES)
      fail('ELF_LIMIT', v.file, `more than ${MAX_NOTES} notes`, { field: v.field });
    const namesz = v.u32(o);
    const descsz = v.u32(o + 4);
    const type = v.u32(o + 8);
    const nameAt = o + 12;
    // Offsets are aligned from the note start (readelf's ELF_NOTE_DESC_OFFSET / ELF_NOTE_NEXT_OFFSET).
    const descAt = o + pad(12 + namesz, a);
    const next = o + pad(descAt - o + descsz, a);
    if (namesz > v.length || descsz > v.length || descAt + descsz > v.length)
      fail('ELF_NOTE_INVALID', v.file, `note sizes (name ${namesz}, desc ${descsz}) run past the note area`, {
        field: v.field,
        offset: v.base + o,
      });
    let nameEnd = nameAt + namesz;
    while (nameEnd > nameAt && v.bytes[nameEnd - 1] === 0) nameEnd--;
    out.push({
      owner: new TextDecoder().decode(v.bytes.subarray(nameAt, nameEnd)),
      type,
      desc: v.bytes.subarray(descAt, descAt + descsz),
      offset: v.base + o,
    });
    o = next;
  }
}

/** Decodes the notes pare knows about. Unknown notes are ignored; malformed known ones throw ELF_NOTE_INVALID. */
export function decodeNotes(notes: readonly RawNote[], le: boolean, is64: boolean, file: string): ElfNotes {
  let buildId: string | undefined;
  let abiTag: ElfNotes['abiTag'];
  let x86Features: ElfNotes['x86Features'];
  let aarch64Features: ElfNotes['aarch64Features'];
  let pkg: ElfNotes['package'];
  let packageError: string | undefined;
  const properties: GnuProperty[] = [];
  let annobinNotes = 0;
  const annobin = new Set<string>();
  for (const n of notes) {
    const v = new View(n.desc, le, file, n.offset, `note ${n.owner}/${n.type}`);
    if (n.owner === 'GNU' && n.type === NT.GNU_BUILD_ID) {
      buildId = Buffer.from(n.desc).toString('hex');
    } else if (n.owner === 'GNU' && n.type === NT.GNU_ABI_TAG) {
      if (n.desc.length < 16)
        fail('ELF_NOTE_INVALID', file, 'ABI tag note is shorter than 16 bytes', {
          field: 'NT_GNU_ABI_TAG',
          offset: n.offset,
        });
      const os = ['Linux', 'Hurd', 'Solaris', 'FreeBSD', 'NetBSD', 'Syllable'][v.u32(0)] ?? `os-${v.u32(0)}`;
      abiTag = { os, kernel: `${v.u32(4)}.${v.u32(8)}.${v.u32(12)}` };
    } else if (n.owner === 'GNU' && n.type === NT.GNU_PROPERTY_TYPE_0) {
      const a = is64 ? 8 : 4;
      let o = 0;
      while (o + 8 <= v.length) {
        if (properties.length >= MAX_PROPERTIES)
          fail('ELF_LIMIT', file, `more than ${MAX_PROPERTIES} GNU properties`, {
            field: 'NT_GNU_PROPERTY_TYPE_0',
          });
        const type = v.u32(o);
        const sz = v.u32(o + 4);
        if (o + 8 + sz > v.length)
          fail('ELF_NOTE_INVALID', file, `GNU property ${type.toString(16)} size ${sz} runs past its note`, {
            field: 'NT_GNU_PROPERTY_TYPE_0',
            offset: n.offset,
          });
        const data = n.desc.subarray(o + 8, o + 8 + sz);
        properties.push({ type, data });
        if (
          (type === GNU_PROPERTY.X86_FEATURE_1_AND || type === GNU_PROPERTY.AARCH64_FEATURE_1_AND) &&
          sz >= 4
        ) {
          const bits = v.u32(o + 8);
          if (type === GNU_PROPERTY.X86_FEATURE_1_AND)
            x86Features = { ibt: (bits & 1) !== 0, shstk: (bits & 2) !== 0 };
          else aarch64Features = { bti: (bits & 1) !== 0, pac: (bits & 2) !== 0 };
        }
        o += 8 + pad(sz, a);
      }
    } else if (n.owner === 'FDO' && n.type === NT.FDO_PACKAGING_METADATA) {
      let end = n.desc.indexOf(0);
      if (end < 0) end = n.desc.length;
      try {
        const parsed: unknown = JSON.parse(
          new TextDecoder('utf-8', { fatal: true }).decode(n.desc.subarray(0, end)),
        );
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
          pkg = Object.freeze(parsed as Record<string, unknown>);
        else packageError = 'package note is not a JSON object';
      } catch (e) {
        packageError = `package note is not valid JSON: ${(e as Error).message}`;
      }
    } else if (n.type === NT.GNU_BUILD_ATTRIBUTE_OPEN || n.type === NT.GNU_BUILD_ATTRIBUTE_FUNC) {
      annobinNotes++;
      const name = annobinName(n.owner);
      if (name && annobin.size < 1024) annobin.add(name);
    }
  }
  return {
    buildId,
    abiTag,
    x86Features,
    aarch64Features,
    properties,
    package: pkg,
    packageError,
    annobinNotes,
    annobinAttributes: [...annobin].sort(),
  };
}

/** Annobin's predefined numeric attribute ids (https://sourceware.org/annobin/annobin.html/Note-Sections.html). */
const ANNOBIN_IDS: Readonly<Record<number, string>> = {
  1: 'version',
  2: 'stack_prot',
  3: 'relro',
  4: 'stack_size',
  5: 'tool',
  6: 'abi',
  7: 'pic',
  8: 'short_enum',
};

/** Returns `GA<type><attribute>` for an annobin note owner ("GA" + value type + id or name), else undefined. */
function annobinName(owner: string): string | undefined {
  if (!owner.startsWith('GA') || owner.length < 4) return undefined;
  const kind = owner[2]!;
  if (!'*$!+'.includes(kind)) return undefined;
  const id = owner.charCodeAt(3);
  if (id < 0x20) return `GA${kind}${ANNOBIN_IDS[id] ?? `id-${id}`}`;
  const name = owner.slice(3).split('\0')[0]!;
  return `GA${kind}${name.replace(/[^\x20-\x7e]/g, '?').slice(0, 64)}`;
}
