import type { Digest } from '../digest/index.ts';
import { DebianError } from '../errors.ts';
import { iterateControl, type KnownFields, Paragraph } from './control.ts';

/**
 * Binary package indexes (`dists/<suite>/<component>/binary-<arch>/Packages`, see
 * the Debian wiki's DebianRepository/Format, "Packages Indices"): one deb822 stanza per package, each naming
 * the pool file with its Size and SHA256. `IndexScanner` (what the archive uses) parses an index as it streams in and
 * keeps only the fields the resolver and the lock read; `scanPackages`/`parsePackages` keep whole stanzas. No I/O.
 */

/** One binary package of an index. */
export interface PackageRecord {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  /** Pool path relative to the archive base, e.g. "pool/main/g/glibc/libc6_2.36-9_amd64.deb". */
  readonly filename: string;
  readonly size: number;
  readonly sha256: Digest;
  /** Suite under `dists/` the index came from, e.g. "bookworm-security". */
  readonly suite: string;
  readonly component: string;
  /** The Provides field, unparsed (kept eagerly: the resolver indexes every package's Provides). */
  readonly provides: string | undefined;
  /** The full stanza (Depends, Multi-Arch, …), parsed on first access. */
  readonly paragraph: Paragraph;
}

/** Where an index came from, recorded in every record and used in messages. */
export interface IndexOrigin {
  readonly suite: string;
  readonly component: string;
  /** URL or file name for messages. */
  readonly source: string;
}

/**
 * Returns the records of a Packages text in file order. Throws DEBIAN_INDEX_INVALID (with the line) for a stanza
 * without Package/Version/Architecture/Filename/Size/SHA256, or with a Filename that leaves the archive.
 * Uses the full deb822 parser; `scanPackages` is the fast path for big indexes.
 */
export function parsePackages(text: string, origin: IndexOrigin): PackageRecord[] {
  const out: PackageRecord[] = [];
  try {
    for (const p of iterateControl(text, { source: origin.source })) {
      const v = EAGER.map((f) => p.get(f));
      const why = invalidEager(v);
      if (why) throw indexError(origin, p.line, why, v[0]);
      out.push({
        ...checkedFields(v),
        provides: v[6],
        suite: origin.suite,
        component: origin.component,
        paragraph: p,
      });
    }
  } catch (e) {
    if (e instanceof DebianError) throw e;
    throw new DebianError(
      'DEBIAN_INDEX_INVALID',
      `cannot parse package index ${origin.source}: ${(e as Error).message}`,
      {
        cause: e,
        url: origin.source,
      },
    );
  }
  return out;
}

/** The fields every record carries eagerly; the rest of the stanza is parsed on first use of `paragraph`. */
const EAGER = ['Package', 'Version', 'Architecture', 'Filename', 'Size', 'SHA256', 'Provides'] as const;

/**
 * Returns the records of a Packages index like parsePackages, about 10x faster and with a fraction of the memory: an
 * IndexScanner that keeps every field (see there). Hand-written because a full parse of a 63k-stanza index allocates
 * a Map per stanza (≈0.7 s, ≈250 MB for bookworm/main). A stanza in which a field is not spelled in the archive's
 * canonical case, or that repeats or continues a field pare reads eagerly, falls back to the full parser.
 */
export function scanPackages(bytes: Uint8Array, origin: IndexOrigin): PackageRecord[] {
  const s = new IndexScanner(origin, { fields: 'all' });
  s.push(bytes);
  return s.end();
}

/** Returns the field value in [start, end) of one line, trimmed as String.prototype.trim would trim it. */
function valueAt(buf: Buffer, start: number, end: number): string {
  // Trimming the ASCII blanks on the bytes spares a second string per field (a 66k-stanza index has 400k values).
  while (start < end && (buf[start] === 0x20 || buf[start] === 0x09)) start++;
  while (end > start && (buf[end - 1] === 0x20 || buf[end - 1] === 0x09)) end--;
  const v = buf.toString('utf8', start, end);
  const last = v.length - 1;
  return last >= 0 && (v.charCodeAt(0) > 0x7f || v.charCodeAt(last) > 0x7f) ? v.trim() : v;
}

/** Architecture names, shared by all records (66k copies of "amd64" otherwise). */
const ARCHITECTURES = new Map<string, string>();
function internArchitecture(a: string): string {
  const have = ARCHITECTURES.get(a);
  if (have !== undefined) return have;
  if (ARCHITECTURES.size < 64) ARCHITECTURES.set(a, a);
  return a;
}

const STANZA_END = Buffer.from('\n\n', 'latin1');
/** "<Field>:" of each EAGER field, as bytes. */
const EAGER_BYTES = EAGER.map((f) => Buffer.from(`${f}:`, 'latin1'));

/** Returns the EAGER index of the field that the line [start, end) begins with, or -1. */
function eagerFieldAt(buf: Buffer, start: number, end: number): number {
  switch (buf[start]) {
    case 0x50: // P
      return startsWith(buf, start, end, 0) ? 0 : startsWith(buf, start, end, 6) ? 6 : -1;
    case 0x56: // V
      return startsWith(buf, start, end, 1) ? 1 : -1;
    case 0x41: // A
      return startsWith(buf, start, end, 2) ? 2 : -1;
    case 0x46: // F
      return startsWith(buf, start, end, 3) ? 3 : -1;
    case 0x53: // S
      return startsWith(buf, start, end, 4) ? 4 : startsWith(buf, start, end, 5) ? 5 : -1;
    default:
      return -1;
  }
}

function startsWith(buf: Buffer, start: number, end: number, field: number): boolean {
  const want = EAGER_BYTES[field]!;
  if (start + want.length > end) return false;
  for (let i = 1; i < want.length; i++) if (buf[start + i] !== want[i]) return false;
  return true;
}

interface ScanContext {
  readonly buf: Buffer;
  readonly origin: IndexOrigin;
}

function parseStanza(ctx: ScanContext, start: number, end: number, line: number): Paragraph {
  try {
    return [...iterateControl(ctx.buf.toString('utf8', start, end), { source: ctx.origin.source })][0]!;
  } catch (e) {
    // The stanza was parsed on its own, so its lines are relative to `line`, where it starts.
    const rel = (e as { line?: number }).line ?? 1;
    throw new DebianError(
      'DEBIAN_INDEX_INVALID',
      `cannot parse package index ${ctx.origin.source}:${line + rel - 1}: ${(e as Error).message.replace(/^.*?: /, '')}`,
      { cause: e, url: ctx.origin.source },
    );
  }
}

/**
 * Returns `record` with a stanza of its own: a record of an IndexScanner (or scanPackages) otherwise keeps the 1 MiB
 * buffer its stanza was copied into, with its neighbours' stanzas, alive for as long as it is kept. Other records are
 * returned as they are.
 */
export function detachRecord(record: PackageRecord): PackageRecord {
  return record instanceof StoredRecord ? record.detached() : record;
}

/** Returns why the EAGER values cannot make a record (a field missing or malformed), or undefined when they can. */
function invalidEager(v: readonly (string | undefined)[]): string | undefined {
  for (let i = 0; i < 6; i++) {
    if (v[i] === undefined || v[i] === '') return `stanza ${JSON.stringify(v[0] ?? '?')} has no ${EAGER[i]}`;
  }
  if (!SHA256_RE.test(v[5]!) || !SIZE_RE.test(v[4]!))
    return `package ${JSON.stringify(v[0])} has a malformed SHA256 or Size`;
  // A .deb is an ar archive with at least three members: an index that says it is empty is wrong.
  if (Number(v[4]) === 0) return `package ${JSON.stringify(v[0])} has Size 0, but a .deb is never empty`;
  if (!isSafePoolPath(v[3]!))
    return `package ${JSON.stringify(v[0])} has unsafe Filename ${JSON.stringify(v[3])}`;
  return undefined;
}

/** The typed eager fields of values that passed invalidEager. */
function checkedFields(v: readonly (string | undefined)[]): {
  name: string;
  version: string;
  architecture: string;
  filename: string;
  size: number;
  sha256: Digest;
} {
  return {
    name: v[0]!,
    version: v[1]!,
    architecture: v[2]!,
    filename: v[3]!,
    size: Number(v[4]),
    sha256: `sha256:${v[5]}`,
  };
}

function indexError(origin: IndexOrigin, line: number, why: string, name: string | undefined): DebianError {
  return new DebianError(
    'DEBIAN_INDEX_INVALID',
    `cannot parse package index ${origin.source}:${line}: ${why}`,
    {
      url: origin.source,
      package: name,
    },
  );
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const SIZE_RE = /^\d{1,15}$/;
const UNSAFE_PATH_RE = /^$|^\/|\/$|\/\/|(^|\/)\.\.?(\/|$)|[\\\u0000-\u001f\u007f]/;

/** True for a relative path without `..`, empty or `.` segments, backslashes or control characters. */
export function isSafePoolPath(path: string): boolean {
  return !UNSAFE_PATH_RE.test(path);
}

/**
 * The fields an IndexScanner keeps of each stanza: what the resolver (relations, Multi-Arch, Priority, Essential,
 * Protected/Important) and the lock (Filename, Size, SHA256) read. The rest (Description, Maintainer, Tag, MD5sum, …)
 * is about half of an index; installed packages get their dpkg status from the .deb's own control file, not from here.
 */
export const INDEX_FIELDS: readonly string[] = [
  'Package',
  'Version',
  'Architecture',
  'Filename',
  'Size',
  'SHA256',
  'Provides',
  'Pre-Depends',
  'Depends',
  'Recommends',
  'Conflicts',
  'Breaks',
  'Multi-Arch',
  'Priority',
  'Essential',
  'Protected',
  'Important',
];

/** Size of the buffers kept stanzas are copied into: a 63k-stanza index needs about 25 of them. */
const SLAB_BYTES = 1 << 20;

/** A buffer that kept stanzas are copied into; records point into it by offset. */
interface Slab {
  buf: Buffer;
  used: number;
}

/**
 * Parses a Packages index as it streams in (chunks of any size, as they leave the decompressor), keeping of each
 * stanza only the lines of `fields` (default INDEX_FIELDS; `'all'` keeps every line), copied into shared 1 MiB
 * buffers. Neither the index nor one string per field is ever held: for bookworm/main (50 MB, 63k stanzas) the
 * records keep ≈25 MB of bytes and three strings each (name, version, Provides). The eager fields are pulled out in
 * one walk over the lines; the rest is searched lazily (Paragraph.lazy) when the resolver or the lock asks. A stanza
 * is rejected (DEBIAN_INDEX_INVALID, with its line) exactly when parsePackages would reject it, and gives the same
 * record.
 *
 * @example
 *   const s = new IndexScanner(origin);
 *   for await (const chunk of gunzipped) s.push(chunk);
 *   const records = s.end();
 */
export class IndexScanner {
  readonly #origin: IndexOrigin;
  /** Lower-case names of the fields kept; undefined: every field. */
  readonly #keep: ReadonlySet<string> | undefined;
  /** Bytes after the last complete stanza, waiting for the rest of it. */
  #parts: Buffer[] = [];
  #partsBytes = 0;
  /** Line number of the first byte of #parts. */
  #line = 1;
  #slab: Slab | undefined;
  readonly #out: PackageRecord[] = [];
  #done = false;

  constructor(origin: IndexOrigin, options: { readonly fields?: readonly string[] | 'all' } = {}) {
    this.#origin = origin;
    const fields = options.fields ?? INDEX_FIELDS;
    this.#keep = fields === 'all' ? undefined : new Set(fields.map((f) => f.toLowerCase()));
  }

  /** Parses the complete stanzas that `chunk` ends; keeps the rest for the next push. Throws DEBIAN_INDEX_INVALID. */
  push(chunk: Uint8Array): void {
    if (this.#done) throw new Error('IndexScanner: push after end');
    if (chunk.length === 0) return;
    const c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // A stanza ends at a blank line: "\n\n" inside the chunk, or across the boundary with the bytes held.
    let k = c.lastIndexOf(STANZA_END);
    let cut = k >= 0 ? k + 2 : -1;
    if (cut < 0 && c[0] === 0x0a && this.#partsBytes > 0) {
      const last = this.#parts[this.#parts.length - 1]!;
      if (last[last.length - 1] === 0x0a) cut = 1;
    }
    if (cut < 0) {
      // Held by reference: the decompressor hands out a fresh buffer per chunk.
      this.#parts.push(c);
      this.#partsBytes += c.length;
      return;
    }
    const head = c.subarray(0, cut);
    const region = this.#partsBytes > 0 ? Buffer.concat([...this.#parts, head]) : head;
    this.#scan(region);
    k = cut;
    this.#parts = k < c.length ? [c.subarray(k)] : [];
    this.#partsBytes = c.length - k;
  }

  /** Parses what is left and returns every record in file order. Throws DEBIAN_INDEX_INVALID. */
  end(): PackageRecord[] {
    if (!this.#done) {
      this.#done = true;
      if (this.#partsBytes > 0) this.#scan(Buffer.concat(this.#parts));
      this.#parts = [];
      // The last buffer is cut to what it holds: a small index (security, updates) keeps kilobytes, not a MiB.
      const s = this.#slab;
      if (s && s.used < s.buf.length) s.buf = Buffer.from(s.buf.subarray(0, s.used));
      this.#slab = undefined;
    }
    return this.#out;
  }

  /** Parses the stanzas of `buf`, which ends with a complete stanza (or is the end of the index). */
  #scan(buf: Buffer): void {
    if (buf.indexOf(0x0d) >= 0) {
      // A CR anywhere: the full parser decides, on this region's own copy.
      this.#line += countLines(buf);
      for (const r of parsePackages(buf.toString('utf8'), this.#origin)) this.#out.push(this.#store(r));
      return;
    }
    const origin = this.#origin;
    const ctx: ScanContext = { buf, origin };
    const len = buf.length;
    const values: (string | undefined)[] = new Array(EAGER.length);
    const keep: number[] = [];
    let pos = 0;
    let line = this.#line;
    while (pos < len) {
      while (pos < len && buf[pos] === 0x0a) {
        pos++;
        line++;
      }
      if (pos >= len) break;
      let end = buf.indexOf(STANZA_END, pos);
      if (end < 0) end = len;
      const first = line;
      values.fill(undefined);
      keep.length = 0;
      let fallback = false;
      let kept = false;
      for (let ls = pos; ls < end; ) {
        let nl = buf.indexOf(0x0a, ls);
        if (nl < 0 || nl > end) nl = end;
        const cont = buf[ls] === 0x20 || buf[ls] === 0x09;
        if (!cont) {
          const f = eagerFieldAt(buf, ls, nl);
          if (f >= 0) {
            if (values[f] !== undefined) fallback = true;
            if (nl < end && (buf[nl + 1] === 0x20 || buf[nl + 1] === 0x09)) fallback = true;
            values[f] = valueAt(buf, ls + EAGER_BYTES[f]!.length, nl);
            kept = true;
          } else {
            const colon = buf.indexOf(0x3a, ls);
            kept =
              this.#keep === undefined ||
              (colon > ls && colon < nl && this.#keep.has(buf.toString('latin1', ls, colon).toLowerCase()));
          }
        }
        if (kept) {
          // Adjacent kept lines make one range.
          const to = nl < len ? nl + 1 : nl;
          if (keep.length > 0 && keep[keep.length - 1] === ls) keep[keep.length - 1] = to;
          else keep.push(ls, to);
        }
        if (nl < end) line++;
        ls = nl + 1;
      }
      for (let i = 0; i < 6; i++) if (values[i] === undefined || values[i] === '') fallback = true;
      if (fallback) {
        const p = parseStanza(ctx, pos, end, first);
        for (let i = 0; i < EAGER.length; i++) values[i] = p.get(EAGER[i]!);
      }
      const why = invalidEager(values);
      if (why) throw indexError(origin, first, why, values[0]);
      this.#out.push(this.#keepRanges(buf, keep, values));
      pos = end;
    }
    this.#line = line;
  }

  /** Copies the ranges `keep` ([start, end) pairs) of `buf` into a slab and returns the record over them. */
  #keepRanges(buf: Buffer, keep: readonly number[], v: readonly (string | undefined)[]): StoredRecord {
    let n = 0;
    for (let i = 0; i < keep.length; i += 2) n += keep[i + 1]! - keep[i]!;
    const slab = this.#room(n);
    const start = slab.used;
    for (let i = 0; i < keep.length; i += 2) slab.used += buf.copy(slab.buf, slab.used, keep[i], keep[i + 1]);
    // The stanza's last newline is not part of it.
    const end = slab.used > start && slab.buf[slab.used - 1] === 0x0a ? slab.used - 1 : slab.used;
    return new StoredRecord(slab, start, end, this.#origin, v);
  }

  /** Re-stores a record of the full parser (a stanza with CRs) as kept bytes. */
  #store(r: PackageRecord): StoredRecord {
    let text = '';
    for (const [k, v] of r.paragraph.entries())
      if (this.#keep === undefined || this.#keep.has(k.toLowerCase()))
        text += `${k}:${formatFieldValue(v)}\n`;
    const bytes = Buffer.from(text);
    return this.#keepRanges(
      bytes,
      [0, bytes.length],
      [r.name, r.version, r.architecture, r.filename, String(r.size), r.sha256.slice(7), r.provides],
    );
  }

  #room(n: number): Slab {
    let s = this.#slab;
    if (!s || s.used + n > s.buf.length) {
      if (s && s.used < s.buf.length) s.buf = Buffer.from(s.buf.subarray(0, s.used));
      s = { buf: Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, n)), used: 0 };
      this.#slab = s;
    }
    return s;
  }
}

/** Returns how many lines `buf` spans past its first (its newline count). */
function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
}

/** A deb822 value as it is written after "Field:" (continuation lines indented, empty ones as "."). */
function formatFieldValue(v: string): string {
  const lines = v.split('\n');
  return (
    (lines[0] === '' ? '' : ` ${lines[0]}`) +
    lines
      .slice(1)
      .map((l) => `\n ${l === '' ? '.' : l}`)
      .join('')
  );
}

/**
 * A record of IndexScanner: name, version, architecture and Provides as strings (the universe keys and indexes them
 * for every package); Filename, Size and SHA256 read from the kept bytes when asked (only for the packages selected).
 */
class StoredRecord implements PackageRecord, KnownFields {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly provides: string | undefined;
  readonly #slab: Slab;
  readonly #start: number;
  readonly #end: number;
  readonly #origin: IndexOrigin;
  #paragraph: Paragraph | undefined;
  /** `v`: the EAGER values, already checked by invalidEager. */
  constructor(
    slab: Slab,
    start: number,
    end: number,
    origin: IndexOrigin,
    v: readonly (string | undefined)[],
  ) {
    this.name = v[0]!;
    this.version = v[1]!;
    this.architecture = internArchitecture(v[2]!);
    this.provides = v[6];
    this.#slab = slab;
    this.#start = start;
    this.#end = end;
    this.#origin = origin;
  }
  get suite(): string {
    return this.#origin.suite;
  }
  get component(): string {
    return this.#origin.component;
  }
  get filename(): string {
    return this.paragraph.get('Filename')!;
  }
  get size(): number {
    return Number(this.paragraph.get('Size'));
  }
  get sha256(): Digest {
    return `sha256:${this.paragraph.get('SHA256')}`;
  }
  /** The kept fields, searched on demand over the slab (read when the resolver or the lock asks). */
  get paragraph(): Paragraph {
    this.#paragraph ??= Paragraph.lazy({ bytes: this.#slab.buf, start: this.#start, end: this.#end }, 0, {
      source: this.#origin.source,
      known: this,
    });
    return this.#paragraph;
  }
  /** The string fields, for the lazy paragraph (KnownFields). */
  knownField(key: string): string | null | undefined {
    switch (key) {
      case 'package':
        return this.name;
      case 'version':
        return this.version;
      case 'architecture':
        return this.architecture;
      case 'provides':
        return this.provides ?? null;
      default:
        return undefined;
    }
  }
  /** A plain record over its own copy of the kept stanza (keeping it keeps no slab). */
  detached(): PackageRecord {
    const bytes = Buffer.from(this.#slab.buf.subarray(this.#start, this.#end));
    return {
      name: this.name,
      version: this.version,
      architecture: this.architecture,
      filename: this.filename,
      size: this.size,
      sha256: this.sha256,
      suite: this.suite,
      component: this.component,
      provides: this.provides,
      paragraph: Paragraph.lazy(bytes.toString('utf8'), 0, { source: this.#origin.source }),
    };
  }
}
