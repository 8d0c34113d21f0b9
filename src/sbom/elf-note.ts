import type { Content } from '../fstree/index.ts';

/**
 * Reads one thing from an ELF file: the systemd package note (`.note.package`, owner "FDO", type 0xcafe1a7e, a JSON
 * object; https://systemd.io/ELF_PACKAGE_METADATA/). A small reader of its own because `src/elf` had not landed when
 * the SBOM was written; it walks the section headers only as far as SHT_NOTE sections and checks every bound, since
 * image files are untrusted. Anything malformed gives undefined, never an exception.
 */

const NT_FDO_PACKAGING_METADATA = 0xcafe1a7e;
const SHT_NOTE = 7;
/** Section headers read at most; real binaries have a few dozen. */
const MAX_SECTIONS = 4096;
/** Largest note section read; package notes are a few hundred bytes. */
const MAX_NOTE_SECTION = 64 * 1024;

/** True when the content starts with the ELF magic. */
export async function isElf(content: Content): Promise<boolean> {
  if (content.size < 64) return false;
  const m = await content.read(0, 4);
  return m[0] === 0x7f && m[1] === 0x45 && m[2] === 0x4c && m[3] === 0x46;
}

/** Returns the parsed `.note.package` JSON object of an ELF file, or undefined when it has none or it is malformed. */
export async function readPackageNote(content: Content): Promise<Record<string, unknown> | undefined> {
  if (!(await isElf(content))) return undefined;
  const ident = await content.read(0, 64);
  const is64 = ident[4] === 2;
  const le = ident[5] === 1;
  if ((ident[4] !== 1 && ident[4] !== 2) || (ident[5] !== 1 && ident[5] !== 2)) return undefined;
  const dv = new DataView(ident.buffer, ident.byteOffset, ident.byteLength);
  const u16 = (v: DataView, o: number) => v.getUint16(o, le);
  const u32 = (v: DataView, o: number) => v.getUint32(o, le);
  const word = (v: DataView, o: number) => (is64 ? Number(v.getBigUint64(o, le)) : v.getUint32(o, le));
  const shoff = word(dv, is64 ? 0x28 : 0x20);
  const shentsize = u16(dv, is64 ? 0x3a : 0x2e);
  const shnum = u16(dv, is64 ? 0x3c : 0x30);
  if (shoff === 0 || shnum === 0 || shnum > MAX_SECTIONS || shentsize < (is64 ? 64 : 40)) return undefined;
  if (shoff + shnum * shentsize > content.size) return undefined;
  const table = await content.read(shoff, shnum * shentsize);
  const tv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  for (let i = 0; i < shnum; i++) {
    const o = i * shentsize;
    if (u32(tv, o + 4) !== SHT_NOTE) continue;
    const off = word(tv, o + (is64 ? 0x18 : 0x10));
    const size = word(tv, o + (is64 ? 0x20 : 0x14));
    if (size > MAX_NOTE_SECTION || off + size > content.size) continue;
    const notes = await content.read(off, size);
    const nv = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
    let p = 0;
    while (p + 12 <= notes.length) {
      const namesz = u32(nv, p);
      const descsz = u32(nv, p + 4);
      const type = u32(nv, p + 8);
      const nameEnd = p + 12 + namesz;
      const descStart = p + 12 + align4(namesz);
      const descEnd = descStart + descsz;
      if (descEnd > notes.length) break;
      const owner = new TextDecoder().decode(notes.subarray(p + 12, Math.max(p + 12, nameEnd - 1)));
      if (owner === 'FDO' && type === NT_FDO_PACKAGING_METADATA) {
        const text = new TextDecoder().decode(notes.subarray(descStart, descEnd)).replace(/\0+$/, '');
        try {
          const v: unknown = JSON.parse(text);
          return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
        } catch {
          return undefined;
        }
      }
      p = descStart + align4(descsz);
    }
  }
  return undefined;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
