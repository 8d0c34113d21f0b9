import { TarError } from '../errors.ts';

/**
 * USTAR/PAX header encoding and decoding (POSIX.1-2001 pax format,
 * https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13).
 *
 * Hand-written rather than taken from a library: reproducible layers need byte-exact control over every header
 * field (numeric owners, empty user/group names, fixed PAX header names, no atime/ctime, no GNU extensions on
 * write), and the reader must treat archives as hostile (checksums, bounds, named limits) with typed errors.
 */

export const BLOCK = 512;

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

/** One logical archive member, with PAX/GNU extensions already applied. */
export interface TarHeader {
  /** Member path as stored, without a leading "./" or "/" and without a trailing "/". */
  readonly path: string;
  readonly type: TarType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  /** Link target: the link text for symlinks, the other member's path for hardlinks. */
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  readonly xattrs: Readonly<Record<string, Uint8Array>>;
}

const TYPE_FLAG: Record<TarType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

/** Largest value an 11-digit octal field holds (size, mtime): 8 GiB - 1. */
const MAX_OCTAL_12 = 0o77777777777;
/** Largest value a 7-digit octal field holds (mode, uid, gid, devmajor, devminor). */
const MAX_OCTAL_8 = 0o7777777;

function isAscii(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

function writeString(buf: Uint8Array, off: number, len: number, s: string): void {
  const b = enc.encode(s);
  buf.set(b.subarray(0, len), off);
}

function writeOctal(buf: Uint8Array, off: number, len: number, n: number): void {
  // len-1 octal digits, zero padded, then NUL — the form GNU tar and Go write.
  writeString(
    buf,
    off,
    len - 1,
    Math.trunc(n)
      .toString(8)
      .padStart(len - 1, '0'),
  );
}

/** Returns one PAX record: "<len> <key>=<value>\n", where len counts the whole record in bytes. */
export function paxRecord(key: string, value: Uint8Array | string): Uint8Array {
  const v = typeof value === 'string' ? enc.encode(value) : value;
  const rest = enc.encode(` ${key}=`).length + v.length + 1;
  let len = rest + String(rest).length;
  if (String(len).length !== String(rest).length) len = rest + String(len).length;
  const head = enc.encode(`${len} ${key}=`);
  const out = new Uint8Array(len);
  out.set(head, 0);
  out.set(v, head.length);
  out[len - 1] = 0x0a;
  return out;
}

function checksum(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum;
}

function ustarBlock(fields: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Uint8Array {
  const b = new Uint8Array(BLOCK);
  writeString(b, 0, 100, fields.name);
  writeOctal(b, 100, 8, fields.mode);
  writeOctal(b, 108, 8, fields.uid);
  writeOctal(b, 116, 8, fields.gid);
  writeOctal(b, 124, 12, fields.size);
  writeOctal(b, 136, 12, fields.mtime);
  b[156] = fields.typeflag.charCodeAt(0);
  writeString(b, 157, 100, fields.linkname);
  writeString(b, 257, 6, 'ustar\0');
  writeString(b, 263, 2, '00');
  // uname/gname (265, 297) stay empty: owners are numeric only, so layers do not depend on the host's user names.
  writeOctal(b, 329, 8, fields.devmajor);
  writeOctal(b, 337, 8, fields.devminor);
  writeString(b, 345, 155, fields.prefix);
  writeString(b, 148, 8, `${checksum(b).toString(8).padStart(6, '0')}\0 `);
  return b;
}

/** Splits a long ASCII path into ustar prefix (≤155) and name (≤100) at a slash, or returns undefined. */
function splitUstar(p: string): { prefix: string; name: string } | undefined {
  if (p.length <= 100) return { prefix: '', name: p };
  for (let i = Math.min(155, p.length - 1); i > 0; i--) {
    if (p[i] === '/' && p.length - i - 1 <= 100 && p.length - i - 1 > 0)
      return { prefix: p.slice(0, i), name: p.slice(i + 1) };
  }
  return undefined;
}

/**
 * Returns the header blocks for one member: a PAX extended header when some field does not fit USTAR (long or
 * non-ASCII names and link targets, sizes ≥ 8 GiB, big ids, xattrs), then the USTAR header. Directories get a trailing
 * slash, as tar and docker write them. Deterministic: the PAX header's own name is fixed.
 */
export function encodeHeader(h: TarHeader): Uint8Array {
  const storedPath = h.type === 'dir' ? `${h.path}/` : h.path;
  const pax: Uint8Array[] = [];
  let name = storedPath;
  let prefix = '';
  const split = isAscii(storedPath) ? splitUstar(storedPath) : undefined;
  if (split) ({ name, prefix } = split);
  else {
    pax.push(paxRecord('path', storedPath));
    name = asciiPlaceholder(storedPath, 100);
  }
  let linkname = h.linkname;
  if (!isAscii(linkname) || enc.encode(linkname).length > 100) {
    pax.push(paxRecord('linkpath', linkname));
    linkname = asciiPlaceholder(linkname, 100);
  }
  let size = h.size;
  if (size > MAX_OCTAL_12) {
    pax.push(paxRecord('size', String(size)));
    size = 0;
  }
  let uid = h.uid;
  if (uid > MAX_OCTAL_8) {
    pax.push(paxRecord('uid', String(uid)));
    uid = 0;
  }
  let gid = h.gid;
  if (gid > MAX_OCTAL_8) {
    pax.push(paxRecord('gid', String(gid)));
    gid = 0;
  }
  for (const k of Object.keys(h.xattrs).sort()) pax.push(paxRecord(`SCHILY.xattr.${k}`, h.xattrs[k]!));
  // Sort records by key so the same member always gives the same bytes (path, linkpath, size… then xattrs).
  const main = ustarBlock({
    name,
    prefix,
    mode: h.mode & 0o7777,
    uid,
    gid,
    size,
    mtime: Math.max(0, Math.min(h.mtime, MAX_OCTAL_12)),
    typeflag: TYPE_FLAG[h.type],
    linkname,
    devmajor: h.devmajor,
    devminor: h.devminor,
  });
  if (pax.length === 0) return main;
  const body = concat(pax);
  const paxName = `PaxHeaders.0/${asciiPlaceholder(baseOf(storedPath), 80)}`;
  const head = ustarBlock({
    name: paxName,
    prefix: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    typeflag: 'x',
    linkname: '',
    devmajor: 0,
    devminor: 0,
  });
  const out = new Uint8Array(BLOCK + padded(body.length) + BLOCK);
  out.set(head, 0);
  out.set(body, BLOCK);
  out.set(main, BLOCK + padded(body.length));
  return out;
}

function baseOf(p: string): string {
  const t = p.endsWith('/') ? p.slice(0, -1) : p;
  return t.slice(t.lastIndexOf('/') + 1);
}

function asciiPlaceholder(s: string, max: number): string {
  // A readable stand-in for readers that ignore PAX: ASCII characters only, cut to fit.
  return s.replace(/[^\x20-\x7e]/g, '_').slice(0, max);
}

/** Rounds up to whole blocks. */
export function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------- decoding

/** A header block as stored, before PAX/GNU extensions are applied. */
export interface RawHeader {
  readonly name: string;
  readonly nameBytes: Uint8Array;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly typeflag: string;
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
}

function cstr(b: Uint8Array, off: number, len: number): Uint8Array {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return z < 0 ? s : s.subarray(0, z);
}

/** Parses a numeric field: octal text (space/NUL terminated) or GNU base-256 (high bit set). */
export function parseNumeric(b: Uint8Array, off: number, len: number, field: string, at: number): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    if (f[0] === 0xff)
      throw new TarError('TAR_HEADER_INVALID', `cannot read tar header at offset ${at}: negative ${field}`, {
        offset: at,
      });
    let n = f[0]! & 0x7f;
    for (let i = 1; i < len; i++) {
      n = n * 256 + f[i]!;
      if (n > Number.MAX_SAFE_INTEGER)
        throw new TarError('TAR_LIMIT', `cannot read tar header at offset ${at}: ${field} too large`, {
          offset: at,
        });
    }
    return n;
  }
  const s = dec
    .decode(f)
    .replace(/[\0 ]+$/g, '')
    .replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) {
    throw new TarError(
      'TAR_HEADER_INVALID',
      `cannot read tar header at offset ${at}: ${field} ${JSON.stringify(s)} is not octal`,
      {
        offset: at,
      },
    );
  }
  return Number.parseInt(s, 8);
}

/** True when a block is all zeros (end-of-archive marker). */
export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** Decodes one 512-byte header block; throws TAR_CHECKSUM / TAR_HEADER_INVALID. */
export function decodeRawHeader(b: Uint8Array, at: number): RawHeader {
  const stored = parseNumeric(b, 148, 8, 'checksum', at);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  // Old tars (Sun, some BSDs) computed the sum over signed chars; accept either, as GNU tar does.
  if (stored !== unsigned && stored !== signed) {
    throw new TarError(
      'TAR_CHECKSUM',
      `cannot read tar header at offset ${at}: checksum ${stored} does not match ${unsigned}`,
      {
        offset: at,
      },
    );
  }
  const magic = dec.decode(b.subarray(257, 263));
  const ustar = magic === 'ustar\0' || magic === 'ustar ';
  let nameBytes = cstr(b, 0, 100);
  if (magic === 'ustar\0') {
    const prefix = cstr(b, 345, 155);
    if (prefix.length > 0) nameBytes = concat([prefix, enc.encode('/'), nameBytes]);
  }
  const typeflag = String.fromCharCode(b[156]!);
  return {
    name: dec.decode(nameBytes),
    nameBytes,
    mode: parseNumeric(b, 100, 8, 'mode', at),
    uid: parseNumeric(b, 108, 8, 'uid', at),
    gid: parseNumeric(b, 116, 8, 'gid', at),
    size: parseNumeric(b, 124, 12, 'size', at),
    mtime: parseNumeric(b, 136, 12, 'mtime', at),
    typeflag: typeflag === '\0' ? '0' : typeflag,
    linkname: dec.decode(cstr(b, 157, 100)),
    devmajor: ustar ? parseNumeric(b, 329, 8, 'devmajor', at) : 0,
    devminor: ustar ? parseNumeric(b, 337, 8, 'devminor', at) : 0,
  };
}

/** Parses PAX records into a map of key → raw value bytes. Throws TAR_PAX_INVALID on malformed records. */
export function parsePax(data: Uint8Array, at: number): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  let i = 0;
  while (i < data.length) {
    if (data[i] === 0) break; // some writers pad with NULs
    const sp = data.indexOf(0x20, i);
    if (sp < 0)
      throw new TarError('TAR_PAX_INVALID', `cannot read pax header at offset ${at}: record without length`, {
        offset: at,
      });
    const lenStr = dec.decode(data.subarray(i, sp));
    if (!/^[1-9][0-9]*$/.test(lenStr)) {
      throw new TarError(
        'TAR_PAX_INVALID',
        `cannot read pax header at offset ${at}: bad record length ${JSON.stringify(lenStr)}`,
        {
          offset: at,
        },
      );
    }
    const len = Number(lenStr);
    const end = i + len;
    if (end > data.length || data[end - 1] !== 0x0a || len <= sp - i + 1) {
      throw new TarError(
        'TAR_PAX_INVALID',
        `cannot read pax header at offset ${at}: record overruns its header`,
        { offset: at },
      );
    }
    const rec = data.subarray(sp + 1, end - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0)
      throw new TarError('TAR_PAX_INVALID', `cannot read pax header at offset ${at}: record without "="`, {
        offset: at,
      });
    out.set(dec.decode(rec.subarray(0, eq)), rec.subarray(eq + 1));
    i = end;
  }
  return out;
}

export const TYPE_BY_FLAG: Record<string, TarType | undefined> = {
  '0': 'file',
  '7': 'file', // contiguous file: a regular file everywhere that matters
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};
