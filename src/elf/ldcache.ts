import { ElfError } from '../errors.ts';

/**
 * Reader for glibc's /etc/ld.so.cache (written by ldconfig, read by ld.so). Supports the current format
 * ("glibc-ld.so.cache1.1", glibc ≥ 2.32 writes only this) and the old "ld.so-1.7.0" format with the new one appended
 * (older ldconfig's "compat" layout). Layout from glibc sysdeps/generic/dl-cache.h.
 */

const NEW_MAGIC = 'glibc-ld.so.cache1.1';
const OLD_MAGIC = 'ld.so-1.7.0';
/** Largest cache accepted (a full desktop's cache is ~200 KiB). */
export const MAX_LDCACHE_BYTES = 64 * 1024 * 1024;
/** Most entries accepted. */
export const MAX_LDCACHE_ENTRIES = 1_000_000;
/** Bit 62 of the hwcap field marks a glibc-hwcaps subdirectory entry (DL_CACHE_HWCAP_EXTENSION). */
export const HWCAP_EXTENSION = 1n << 62n;

export interface LdCacheEntry {
  /** ldconfig flags: low byte FLAG_ELF_LIBC6 (3) etc., high byte the ABI (0x0300 x86-64, 0x0a00 aarch64 …). */
  readonly flags: number;
  readonly key: string;
  readonly value: string;
  readonly hwcap: bigint;
}

function bad(file: string, what: string, offset?: number): never {
  throw new ElfError('ELF_CACHE_INVALID', `cannot parse ld.so cache ${JSON.stringify(file)}: ${what}`, {
    file,
    ...(offset !== undefined ? { offset } : {}),
  });
}

/**
 * Parses an ld.so.cache. `fallbackLittleEndian` is used when the header does not record the byte order (older
 * ldconfig left it 0, meaning "native"; pass the byte order of the tree's binaries). Throws ELF_CACHE_INVALID.
 */
export function parseLdCache(b: Uint8Array, file: string, fallbackLittleEndian = true): LdCacheEntry[] {
  if (b.length > MAX_LDCACHE_BYTES) bad(file, `larger than ${MAX_LDCACHE_BYTES} bytes`);
  const text = (o: number, n: number) => Buffer.from(b.subarray(o, o + n)).toString('latin1');
  let start = 0;
  if (text(0, OLD_MAGIC.length) === OLD_MAGIC) {
    if (b.length < 16) bad(file, 'old header truncated', 0);
    const nOld = new DataView(b.buffer, b.byteOffset).getUint32(12, true);
    // struct file_entry is 3 × int32; the new header follows, aligned to 8 (alignof cache_file_new).
    start = 16 + nOld * 12;
    start = (start + 7) & ~7;
    if (text(start, NEW_MAGIC.length) !== NEW_MAGIC)
      bad(file, 'old-format cache without a new-format part (not supported)', start);
  } else if (text(0, NEW_MAGIC.length) !== NEW_MAGIC) bad(file, 'unknown magic', 0);
  if (b.length < start + 48) bad(file, 'header truncated', start);
  const order = b[start + 28];
  const le = order === 2 ? true : order === 3 ? false : fallbackLittleEndian;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const nlibs = dv.getUint32(start + 20, le);
  const lenStrings = dv.getUint32(start + 24, le);
  if (nlibs > MAX_LDCACHE_ENTRIES) bad(file, `${nlibs} entries is over the limit`, start + 20);
  const entriesAt = start + 48;
  if (entriesAt + nlibs * 24 > b.length) bad(file, `${nlibs} entries run past the end`, entriesAt);
  if (entriesAt + nlibs * 24 + lenStrings > b.length)
    bad(file, 'string table runs past the end', entriesAt + nlibs * 24);
  // String offsets are relative to the start of the new-format header.
  const str = (off: number, at: number) => {
    const o = start + off;
    if (off >= b.length || o >= b.length) bad(file, `string offset ${off} out of range`, at);
    const end = b.indexOf(0, o);
    if (end < 0) bad(file, `string at ${off} is not terminated`, at);
    return Buffer.from(b.subarray(o, end)).toString('utf8');
  };
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < nlibs; i++) {
    const o = entriesAt + i * 24;
    out.push({
      flags: dv.getInt32(o, le),
      key: str(dv.getUint32(o + 4, le), o + 4),
      value: str(dv.getUint32(o + 8, le), o + 8),
      hwcap: dv.getBigUint64(o + 16, le),
    });
  }
  return out;
}

/**
 * Writes a new-format cache (little- or big-endian) from entries, in the given order. Used by tests to build foreign
 * roots; ldconfig sorts entries by name (descending, version-aware) before writing.
 */
export function writeLdCache(
  entries: readonly Omit<LdCacheEntry, 'hwcap'>[],
  littleEndian = true,
): Uint8Array {
  const strings: Buffer[] = [];
  const offsets = new Map<string, number>();
  const headerLen = 48 + entries.length * 24;
  let pos = headerLen;
  const strOff = (s: string) => {
    let o = offsets.get(s);
    if (o === undefined) {
      o = pos;
      const b = Buffer.from(`${s}\0`, 'utf8');
      strings.push(b);
      pos += b.length;
      offsets.set(s, o);
    }
    return o;
  };
  const idx = entries.map((e) => [strOff(e.key), strOff(e.value)] as const);
  const out = Buffer.alloc(pos);
  out.write(NEW_MAGIC, 0, 'latin1');
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  dv.setUint32(20, entries.length, littleEndian);
  dv.setUint32(24, pos - headerLen, littleEndian);
  out[28] = littleEndian ? 2 : 3;
  entries.forEach((e, i) => {
    const o = 48 + i * 24;
    dv.setInt32(o, e.flags, littleEndian);
    dv.setUint32(o + 4, idx[i]![0], littleEndian);
    dv.setUint32(o + 8, idx[i]![1], littleEndian);
  });
  Buffer.concat(strings).copy(out, headerLen);
  return out;
}
