import { ControlError } from '../errors.ts';

/**
 * deb822 control data (Debian Policy §5.1, deb822(5)): paragraphs of `Field: value` lines separated by blank lines;
 * continuation lines start with a space or tab; a continuation line of just " ." is an empty line in multiline values.
 * Field names are case-insensitive; a paragraph keeps the case it was written with for output. Used for Packages,
 * Release, dpkg status and `.sources` files. Hand-written: it is small, hot (63k stanzas per Packages file) and
 * must report line numbers.
 */

export { ControlError, type ControlErrorCode } from '../errors.ts';

/**
 * Field values that the owner of a lazy paragraph already holds (an index record keeps Package, Version, …).
 * `knownField` gets a lowercase field name and returns its value, `null` when the owner knows the field is absent, or
 * `undefined` when it does not know (the paragraph then searches its text).
 */
export interface KnownFields {
  knownField(key: string): string | null | undefined;
}

/** The text of a lazy paragraph: a string, or a byte range of a bigger buffer (an index) that is never copied. */
type LazyText = string | { readonly bytes: Uint8Array; readonly start: number; readonly end: number };

/**
 * One paragraph: fields in file order. `get` is case-insensitive. Values keep continuation lines joined by "\n".
 * A paragraph made by `Paragraph.lazy` keeps its text (or only a byte range of the index it came from) and answers
 * `get` by searching it (memoised), building the field map only when all fields are needed (`entries`, `size`,
 * `with`, `without`, `format`): a resolver that reads a few fields of 66k index stanzas then allocates a few strings
 * for the stanzas it looks at, instead of a Map of twenty for every one.
 */
export class Paragraph {
  #fields: Map<string, { name: string; value: string }> | undefined;
  #text: LazyText | undefined;
  #source: string | undefined;
  #known: KnownFields | undefined;
  #memo: Map<string, string | undefined> | undefined;
  /** 1-based line of the paragraph's first field in its source. */
  readonly line: number;
  constructor(fields: Iterable<readonly [string, string]> = [], line = 0) {
    this.#fields = new Map();
    for (const [k, v] of fields) this.#fields.set(k.toLowerCase(), { name: k, value: v });
    this.line = line;
  }
  /**
   * Returns a paragraph over the deb822 text of one stanza, parsed on demand. `text` is a string or a byte range
   * `{bytes, start, end}` of UTF-8 (kept by reference: nothing is decoded until a field is asked for). `known`
   * pre-fills field values the caller already extracted (keys in any case), or answers for them (KnownFields).
   * Syntax errors surface (as ControlError) when the whole map is built.
   */
  static lazy(
    text: LazyText,
    line = 0,
    options: { source?: string; known?: Iterable<readonly [string, string]> | KnownFields } = {},
  ): Paragraph {
    const p = new Paragraph([], line);
    p.#fields = undefined;
    p.#text = text;
    p.#source = options.source;
    const known = options.known;
    if (known && 'knownField' in known) p.#known = known;
    else if (known) {
      p.#memo = new Map();
      for (const [k, v] of known) p.#memo.set(k.toLowerCase(), v);
    }
    return p;
  }
  #map(): Map<string, { name: string; value: string }> {
    if (!this.#fields) {
      const t = this.#text!;
      const text = typeof t === 'string' ? t : decodeRange(t.bytes, t.start, t.end);
      const parsed = parseControl(text, { source: this.#source });
      if (parsed.length > 1) {
        throw new ControlError(
          'CONTROL_SYNTAX',
          `cannot parse control data at ${this.#source ?? 'line '}: want one paragraph`,
          {
            source: this.#source,
          },
        );
      }
      const first = parsed[0];
      this.#fields = first ? first.#map() : new Map();
      this.#text = undefined;
      this.#known = undefined;
      this.#memo = undefined;
    }
    return this.#fields;
  }
  /** Returns the value of field `name` (any case), or undefined. */
  get(name: string): string | undefined {
    const key = name.toLowerCase();
    if (this.#fields) return this.#fields.get(key)?.value;
    const known = this.#known?.knownField(key);
    if (known !== undefined) return known ?? undefined;
    let memo = this.#memo;
    if (memo?.has(key)) return memo.get(key);
    const t = this.#text!;
    const v = typeof t === 'string' ? findField(t, key) : findFieldInBytes(t.bytes, t.start, t.end, key);
    memo ??= this.#memo = new Map();
    memo.set(key, v);
    return v;
  }
  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
  /** Fields as `[name, value]` in file order, with the names' original case. */
  *entries(): IterableIterator<[string, string]> {
    for (const { name, value } of this.#map().values()) yield [name, value];
  }
  get size(): number {
    return this.#map().size;
  }
  /** Returns a copy with `name` set (replacing in place, keeping order) or appended. */
  with(name: string, value: string): Paragraph {
    const entries = [...this.entries()];
    const i = entries.findIndex(([k]) => k.toLowerCase() === name.toLowerCase());
    if (i >= 0) entries[i] = [entries[i]![0], value];
    else entries.push([name, value]);
    return new Paragraph(entries, this.line);
  }
  /** Returns a copy without the named fields. */
  without(...names: string[]): Paragraph {
    const drop = new Set(names.map((n) => n.toLowerCase()));
    return new Paragraph(
      [...this.entries()].filter(([k]) => !drop.has(k.toLowerCase())),
      this.line,
    );
  }
  /**
   * Returns a paragraph that keeps nothing but its own text: a lazy one over a byte range gets its range copied and
   * forgets its KnownFields owner (the text holds those fields too), so keeping it keeps no index alive. Others are
   * returned as they are.
   */
  detached(): Paragraph {
    if (this.#fields || (typeof this.#text === 'string' && !this.#known)) return this;
    const t = this.#text!;
    const text = typeof t === 'string' ? t : decodeRange(t.bytes, t.start, t.end);
    return Paragraph.lazy(text, this.line, { source: this.#source });
  }
  /** Renders the paragraph as deb822 text (no trailing blank line). */
  format(): string {
    let s = '';
    for (const [k, v] of this.entries()) s += `${k}:${formatValue(v)}\n`;
    return s;
  }
}

function decodeRange(bytes: Uint8Array, start: number, end: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', start, end);
}

const FIELD_RE_CACHE = new Map<string, RegExp>();

/** Returns the value of field `key` (lowercase) in one stanza's text, as iterateControl would give it. */
function findField(text: string, key: string): string | undefined {
  let re = FIELD_RE_CACHE.get(key);
  if (!re) {
    // A field starts a line; its value runs on over lines that begin with a space or tab (deb822(5)).
    re = new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:([^\n]*(?:\n[ \t][^\n]*)*)`, 'im');
    FIELD_RE_CACHE.set(key, re);
  }
  const m = re.exec(text);
  if (!m) return undefined;
  return joinValue(m[1]!);
}

/** Returns the joined value of a field's raw text (first line's rest + continuation lines), as iterateControl does. */
function joinValue(raw: string): string {
  const lines = raw.split('\n');
  let value = lines[0]!.replace(/\r$/, '').trim();
  for (let i = 1; i < lines.length; i++) {
    const t = lines[i]!.replace(/\r$/, '').trim();
    value += `\n${t === '.' ? '' : t}`;
  }
  return value;
}

/**
 * Like findField over the UTF-8 bytes [start, end) of a stanza: walks the line starts and compares the field name
 * ASCII-case-insensitively, decoding only the value that matched.
 */
function findFieldInBytes(bytes: Uint8Array, start: number, end: number, key: string): string | undefined {
  // deb822 field names are ASCII; a caller asking for another name gets the string search's answer.
  if (!ASCII_RE.test(key)) return findField(decodeRange(bytes, start, end), key);
  const n = key.length;
  for (let ls = start; ls < end; ) {
    let nl = bytes.indexOf(0x0a, ls);
    if (nl < 0 || nl > end) nl = end;
    if (ls + n < nl && bytes[ls + n] === 0x3a && asciiKeyAt(bytes, ls, key)) {
      // The value runs on over the following lines that begin with a space or tab (deb822(5)).
      let ve = nl;
      while (ve < end && ve + 1 < end && (bytes[ve + 1] === 0x20 || bytes[ve + 1] === 0x09)) {
        const next = bytes.indexOf(0x0a, ve + 1);
        ve = next < 0 || next > end ? end : next;
      }
      return joinValue(decodeRange(bytes, ls + n + 1, ve));
    }
    ls = nl + 1;
  }
  return undefined;
}

const ASCII_RE = /^[\x00-\x7f]*$/;

/** True when the bytes at `at` spell `key` (lowercase ASCII) in any case. */
function asciiKeyAt(bytes: Uint8Array, at: number, key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    let c = bytes[at + i]!;
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== key.charCodeAt(i)) return false;
  }
  return true;
}

function formatValue(v: string): string {
  if (v === '') return '';
  const lines = v.split('\n');
  const first = lines[0] === '' ? '' : ` ${lines[0]}`;
  return (
    first +
    lines
      .slice(1)
      .map((l) => `\n ${l === '' ? '.' : l}`)
      .join('')
  );
}

export interface ParseControlOptions {
  /** Name of the file or URL, for error messages. */
  readonly source?: string;
  /** Allow `#` comment lines (deb822 `.sources` files do; Packages and status files do not). */
  readonly comments?: boolean;
}

/**
 * Parses deb822 text into paragraphs. Throws CONTROL_SYNTAX (with line) for a line that is neither a field nor a
 * continuation, and CONTROL_DUPLICATE_FIELD for a field given twice in one paragraph.
 */
export function parseControl(text: string, options: ParseControlOptions = {}): Paragraph[] {
  const out: Paragraph[] = [];
  for (const p of iterateControl(text, options)) out.push(p);
  return out;
}

/** Like parseControl, yielding one paragraph at a time (for big indexes). */
export function* iterateControl(text: string, options: ParseControlOptions = {}): Generator<Paragraph> {
  const where = options.source ? `${options.source}:` : 'line ';
  let fields: [string, string][] = [];
  let seen = new Set<string>();
  let start = 0;
  let lineNo = 0;
  let pos = 0;
  const n = text.length;
  while (pos <= n) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = n;
    let line = text.slice(pos, end);
    pos = end + 1;
    lineNo++;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (options.comments && line.startsWith('#')) continue;
    if (line.trim() === '') {
      if (fields.length > 0) yield new Paragraph(fields, start);
      fields = [];
      seen = new Set();
      if (end === n) break;
      continue;
    }
    const c = line.charCodeAt(0);
    if (c === 32 || c === 9) {
      const last = fields[fields.length - 1];
      if (!last) {
        throw new ControlError(
          'CONTROL_SYNTAX',
          `cannot parse control data at ${where}${lineNo}: continuation line without a field`,
          {
            line: lineNo,
            source: options.source,
          },
        );
      }
      const t = line.trim();
      last[1] += `\n${t === '.' ? '' : t}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      throw new ControlError(
        'CONTROL_SYNTAX',
        `cannot parse control data at ${where}${lineNo}: want "Field: value", got ${JSON.stringify(line.slice(0, 80))}`,
        {
          line: lineNo,
          source: options.source,
        },
      );
    }
    const name = line.slice(0, colon);
    const key = name.toLowerCase();
    if (seen.has(key)) {
      throw new ControlError(
        'CONTROL_DUPLICATE_FIELD',
        `cannot parse control data at ${where}${lineNo}: field ${JSON.stringify(name)} given twice`,
        {
          line: lineNo,
          source: options.source,
        },
      );
    }
    seen.add(key);
    if (fields.length === 0) start = lineNo;
    fields.push([name, line.slice(colon + 1).trim()]);
    if (end === n) break;
  }
  if (fields.length > 0) yield new Paragraph(fields, start);
}

/** Renders paragraphs as deb822 text, separated by blank lines. */
export function formatControl(paragraphs: readonly Paragraph[]): string {
  return paragraphs.map((p) => p.format()).join('\n');
}
