import { ElfError, type ElfErrorCode } from '../errors.ts';

/**
 * Random access to the bytes of one file. `Content` from src/fstree satisfies it, so do host files
 * (`hostFileContentSized`) and the lazy host root in rootfs.ts. Reads past the end return fewer bytes, never throw.
 */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: reads up to `target.length` bytes at `offset` into `target` and returns how many were read (fewer only
   * at the end of the file). Lets long sequential scans reuse one buffer instead of allocating a chunk per read.
   */
  readInto?(target: Uint8Array, offset: number): Promise<number>;
}

/** Chunk size of streaming scans (scanRange). */
const SCAN_CHUNK = 1024 * 1024;
/** Scan buffers not in use: concurrent scans each take one, so a whole audit allocates only a few. */
const scanBuffers: Buffer[] = [];
/** Most idle scan buffers kept (more concurrent scans allocate extra ones, left to the GC). */
const MAX_IDLE_SCAN_BUFFERS = 2;

/**
 * Streams bytes [offset, offset + length) of `src` through a reused buffer, in chunks that overlap by `overlap`
 * bytes (so a pattern up to overlap + 1 bytes long is never split), calling `visit(chunk, chunkOffset)` until it
 * returns true. Returns whether it did. Stops early at the end of the file; range checks are the caller's.
 */
export async function scanRange(
  src: ByteSource,
  offset: number,
  length: number,
  overlap: number,
  visit: (chunk: Buffer, chunkOffset: number) => boolean,
): Promise<boolean> {
  const end = Math.min(offset + length, src.size);
  const buf = scanBuffers.pop() ?? Buffer.allocUnsafeSlow(SCAN_CHUNK + overlap);
  try {
    for (let o = offset; o < end; o += SCAN_CHUNK) {
      const n = Math.min(SCAN_CHUNK + overlap, end - o, buf.length);
      let c: Buffer;
      if (src.readInto) c = buf.subarray(0, await src.readInto(buf.subarray(0, n), o));
      else {
        const r = await src.read(o, n);
        c = Buffer.from(r.buffer, r.byteOffset, r.byteLength);
      }
      if (visit(c, o)) return true;
      if (c.length < n) break;
    }
    return false;
  } finally {
    if (buf.length >= SCAN_CHUNK + overlap && scanBuffers.length < MAX_IDLE_SCAN_BUFFERS)
      scanBuffers.push(buf);
  }
}

/** Largest single table (string table, symbol table, note segment …) read in one piece: 256 MiB. */
export const MAX_TABLE_BYTES = 256 * 1024 * 1024;

/** Throws an ElfError with the file name, offset and field filled in. */
export function fail(
  code: ElfErrorCode,
  file: string,
  what: string,
  options: { offset?: number; field?: string; cause?: unknown } = {},
): never {
  const where = options.field
    ? ` (${options.field}${options.offset !== undefined ? ` at ${options.offset}` : ''})`
    : '';
  throw new ElfError(code, `cannot parse ELF file ${JSON.stringify(file)}: ${what}${where}`, {
    file,
    ...options,
  });
}

/** Converts a 64-bit file quantity to a number, throwing ELF_OFFSET_INVALID when it cannot be a valid offset/size. */
export function toNumber(v: bigint, file: string, field: string): number {
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER))
    fail('ELF_OFFSET_INVALID', file, `value ${v} is out of range`, { field });
  return Number(v);
}

/**
 * Reads exactly `length` bytes at `offset` from `src`, after checking the range lies inside the file and under
 * MAX_TABLE_BYTES (offsets and sizes come from the file and are attacker-controlled).
 */
export async function readExact(
  src: ByteSource,
  file: string,
  offset: number,
  length: number,
  field: string,
): Promise<Uint8Array> {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
    fail('ELF_OFFSET_INVALID', file, `bad range ${offset}+${length}`, { field, offset });
  if (length > MAX_TABLE_BYTES)
    fail('ELF_LIMIT', file, `${length} bytes is over the ${MAX_TABLE_BYTES}-byte table limit`, {
      field,
      offset,
    });
  if (offset + length > src.size)
    fail(
      'ELF_TRUNCATED',
      file,
      `range ${offset}+${length} ends past the end of the file (${src.size} bytes)`,
      {
        field,
        offset,
      },
    );
  if (length === 0) return new Uint8Array(0);
  let got: Uint8Array;
  try {
    got = await src.read(offset, length);
  } catch (e) {
    fail('ELF_IO', file, `read failed: ${(e as Error).message}`, { field, offset, cause: e });
  }
  if (got.length !== length)
    fail('ELF_TRUNCATED', file, `short read: got ${got.length} of ${length} bytes`, { field, offset });
  return got;
}

/** An endian-aware view over bytes read from the file at `base`, with bounds-checked accessors. */
export class View {
  readonly bytes: Uint8Array;
  readonly #dv: DataView;
  readonly le: boolean;
  readonly file: string;
  readonly base: number;
  readonly field: string;

  constructor(bytes: Uint8Array, le: boolean, file: string, base: number, field: string) {
    this.bytes = bytes;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.le = le;
    this.file = file;
    this.base = base;
    this.field = field;
  }

  get length(): number {
    return this.bytes.length;
  }

  #check(at: number, n: number): void {
    if (at < 0 || at + n > this.bytes.length)
      fail('ELF_TRUNCATED', this.file, `field runs past its table`, {
        field: this.field,
        offset: this.base + at,
      });
  }
  u8(at: number): number {
    this.#check(at, 1);
    return this.bytes[at]!;
  }
  u16(at: number): number {
    this.#check(at, 2);
    return this.#dv.getUint16(at, this.le);
  }
  u32(at: number): number {
    this.#check(at, 4);
    return this.#dv.getUint32(at, this.le);
  }
  i32(at: number): number {
    this.#check(at, 4);
    return this.#dv.getInt32(at, this.le);
  }
  u64(at: number): bigint {
    this.#check(at, 8);
    return this.#dv.getBigUint64(at, this.le);
  }
  i64(at: number): bigint {
    this.#check(at, 8);
    return this.#dv.getBigInt64(at, this.le);
  }
  /** Word-sized unsigned field: u32 for ELF32, u64 for ELF64, always as bigint. */
  word(at: number, is64: boolean): bigint {
    return is64 ? this.u64(at) : BigInt(this.u32(at));
  }
  /** Signed word (d_tag is signed). */
  sword(at: number, is64: boolean): bigint {
    return is64 ? this.i64(at) : BigInt(this.i32(at));
  }
  sub(at: number, n: number, field = this.field): View {
    this.#check(at, n);
    return new View(this.bytes.subarray(at, at + n), this.le, this.file, this.base + at, field);
  }
}

/** Longest string read from a string table; C++ symbol names can run to tens of KiB. */
export const MAX_STRING_LENGTH = 1024 * 1024;

/**
 * The key pare indexes symbol names by: bits 1..30 of the DT_GNU_HASH value (h = h * 33 + c from 5381, 32 bits). Bit 0
 * is left out because a DT_GNU_HASH chain stores it as its end marker, so keys can be taken from a file's own table.
 */
export function gnuHashKey(h: number): number {
  return (h >>> 1) & 0x3fffffff;
}

/** A string table (`.dynstr`, `.strtab`, `.shstrtab`): NUL-terminated strings addressed by offset. */
export class StringTable {
  readonly #bytes: Buffer;
  readonly #file: string;
  readonly #field: string;
  /** The last byte is NUL, so every in-range offset is terminated inside the table. */
  readonly #terminated: boolean;
  readonly #cache = new Map<number, string>();
  constructor(bytes: Uint8Array, file: string, field: string) {
    this.#bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#file = file;
    this.#field = field;
    this.#terminated = bytes.length > 0 && bytes[bytes.length - 1] === 0 && bytes.length <= MAX_STRING_LENGTH;
  }
  get length(): number {
    return this.#bytes.length;
  }
  /** The table's bytes (read-only by convention), for byte-level name tests that need no decoded string. */
  get raw(): Buffer {
    return this.#bytes;
  }
  /** Returns the offset of the NUL ending the string at `offset`; throws as `get` would. */
  end(offset: number): number {
    return this.#end(offset);
  }
  /** The same table over a copy of its bytes (keeps no larger buffer alive). */
  detached(): StringTable {
    return new StringTable(Uint8Array.prototype.slice.call(this.#bytes), this.#file, this.#field);
  }
  /** Returns the string at `offset`; throws ELF_STRING_INVALID when it is outside the table or not terminated. */
  get(offset: number): string {
    const hit = this.#cache.get(offset);
    if (hit !== undefined) return hit;
    const s = this.decode(offset);
    this.#cache.set(offset, s);
    return s;
  }
  /** `get` without the cache, for strings read once (symbol names). */
  decode(offset: number): string {
    const end = this.#end(offset);
    return end === offset ? '' : this.#bytes.toString('utf8', offset, end);
  }
  /** Throws as `get` would for `offset`, without decoding. */
  check(offset: number): void {
    if (offset === 0 && this.#bytes.length === 0) return;
    if (this.#terminated && offset >= 0 && offset < this.#bytes.length) return;
    this.#end(offset);
  }
  /** gnuHashKey of the string at `offset` (the DT_GNU_HASH function), or -1 when it is empty. Checks as `get`. */
  hash(offset: number): number {
    const end = this.#end(offset);
    if (end === offset) return -1;
    const b = this.#bytes;
    let h = 5381;
    for (let i = offset; i < end; i++) h = (Math.imul(h, 33) + b[i]!) | 0;
    return gnuHashKey(h);
  }
  /** True when the string at `offset` and the one at `otherOffset` of `other` have the same bytes. */
  sameString(offset: number, other: StringTable, otherOffset: number): boolean {
    const a = this.#bytes;
    const b = other.#bytes;
    const end = this.#end(offset);
    const n = end - offset;
    if (otherOffset < 0 || otherOffset + n >= b.length || b[otherOffset + n] !== 0) return false;
    return a.compare(b, otherOffset, otherOffset + n, offset, end) === 0;
  }
  #end(offset: number): number {
    if (offset < 0 || offset >= this.#bytes.length) {
      if (offset === 0 && this.#bytes.length === 0) return 0;
      fail(
        'ELF_STRING_INVALID',
        this.#file,
        `string offset ${offset} is outside the table of ${this.#bytes.length} bytes`,
        {
          field: this.#field,
        },
      );
    }
    const end = this.#bytes.indexOf(0, offset);
    if (end < 0 || end - offset > MAX_STRING_LENGTH)
      fail('ELF_STRING_INVALID', this.#file, `string at ${offset} is not NUL-terminated inside its table`, {
        field: this.#field,
      });
    return end;
  }
}
