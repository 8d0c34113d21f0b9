import { DebianError } from '../errors.ts';
import { ByteSource } from '../tar/index.ts';

/**
 * Streaming reader for the Unix `ar` container that holds a .deb (deb(5), ar(5)): the magic `!<arch>\n`, then per
 * member a 60-byte ASCII header (name 16, mtime 12, uid 6, gid 6, octal mode 8, decimal size 10, "`\n") followed by
 * the data, padded to an even offset with "\n". Only what dpkg-deb writes is accepted (no GNU/BSD long-name tables:
 * .deb member names are short). Input is hostile: every header field is checked, sizes are bounded, truncation is an
 * error, and bodies stream without being held in memory. Hand-written: no npm library streams ar with this control.
 */

export const AR_MAGIC = '!<arch>\n';
const HEADER_SIZE = 60;
/** A member larger than this is refused: the biggest Debian .deb members are a few GiB; 16 GiB bounds a lie. */
export const MAX_AR_MEMBER = 16 * 1024 ** 3;

export interface ArMember {
  /** Member name with the trailing `/` (System V style) or spaces removed. */
  readonly name: string;
  readonly size: number;
  readonly mtime: number;
  readonly mode: number;
  /** Byte offset of the member header in the archive. */
  readonly offset: number;
  /** The member's bytes; must be consumed (or is skipped) before the next member is read. */
  body(): AsyncIterable<Uint8Array>;
  /** Reads the whole body into memory (refusing more than `limit` bytes when given). */
  bytes(limit?: number): Promise<Uint8Array>;
}

const latin1 = new TextDecoder('latin1');

function field(h: Uint8Array, start: number, len: number): string {
  return latin1.decode(h.subarray(start, start + len)).replace(/ +$/, '');
}

/**
 * Yields the members of an ar archive in order. `source` names the archive in messages. Throws DEBIAN_DEB_INVALID for
 * a bad magic, a malformed or truncated header or body, DEBIAN_DEB_LIMIT for a member over MAX_AR_MEMBER.
 */
export async function* readAr(
  input: AsyncIterable<Uint8Array>,
  source = 'ar archive',
): AsyncGenerator<ArMember> {
  const src = new ByteSource(input);
  const bad = (why: string, offset: number) =>
    new DebianError('DEBIAN_DEB_INVALID', `cannot read ${source}: ${why} at offset ${offset}`, {
      path: source,
    });
  try {
    const magic = await src.read(AR_MAGIC.length);
    if (latin1.decode(magic) !== AR_MAGIC) throw bad('not an ar archive (bad magic)', 0);
    for (;;) {
      const at = src.offset;
      const h = await src.read(HEADER_SIZE);
      if (h.length === 0) return;
      if (h.length < HEADER_SIZE) throw bad('archive ends inside a member header', at);
      if (h[58] !== 0x60 || h[59] !== 0x0a) throw bad('member header lacks its "`\\n" terminator', at);
      const rawName = field(h, 0, 16);
      const name = rawName.endsWith('/') ? rawName.slice(0, -1) : rawName;
      if (name === '' || name.includes('/') || name.startsWith('#1')) {
        throw bad(
          `unsupported member name ${JSON.stringify(rawName)} (long-name tables are not used by .deb)`,
          at,
        );
      }
      const num = (start: number, len: number, what: string, radix: number, allowEmpty: boolean) => {
        const t = field(h, start, len);
        if (t === '' && allowEmpty) return 0;
        const re = radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
        if (!re.test(t))
          throw bad(`member ${JSON.stringify(name)} has a malformed ${what} ${JSON.stringify(t)}`, at);
        return Number.parseInt(t, radix);
      };
      const mtime = num(16, 12, 'mtime', 10, true);
      num(28, 6, 'uid', 10, true);
      num(34, 6, 'gid', 10, true);
      const mode = num(40, 8, 'mode', 8, true);
      const size = num(48, 10, 'size', 10, false);
      if (size > MAX_AR_MEMBER) {
        throw new DebianError(
          'DEBIAN_DEB_LIMIT',
          `cannot read ${source}: member ${JSON.stringify(name)} claims ${size} bytes, over the ${MAX_AR_MEMBER}-byte limit`,
          { path: source },
        );
      }
      let consumed = false;
      let read = 0;
      const body = async function* (): AsyncGenerator<Uint8Array> {
        if (consumed) throw bad(`member ${JSON.stringify(name)} was already read`, at);
        consumed = true;
        for await (const c of src.stream(size)) {
          read += c.length;
          yield c;
        }
        if (read < size) throw bad(`archive ends inside member ${JSON.stringify(name)}`, at);
      };
      const member: ArMember = {
        name,
        size,
        mtime,
        mode,
        offset: at,
        body,
        async bytes(limit) {
          if (limit !== undefined && size > limit) {
            throw new DebianError(
              'DEBIAN_DEB_LIMIT',
              `cannot read ${source}: member ${JSON.stringify(name)} has ${size} bytes, over the ${limit}-byte limit`,
              { path: source },
            );
          }
          const chunks: Uint8Array[] = [];
          for await (const c of body()) chunks.push(c);
          return Buffer.concat(chunks, size);
        },
      };
      yield member;
      if (!consumed) {
        consumed = true;
        for await (const c of src.stream(size)) read += c.length;
      } else {
        // The consumer may have stopped early (a decoder that saw its end marker): skip what is left.
        for await (const c of src.stream(size - read)) read += c.length;
      }
      if (read < size) throw bad(`archive ends inside member ${JSON.stringify(name)}`, at);
      if (size % 2 === 1) {
        const pad = await src.read(1);
        if (pad.length === 1 && pad[0] !== 0x0a)
          throw bad(`member ${JSON.stringify(name)} has a bad padding byte`, at);
      }
    }
  } finally {
    await src.close();
  }
}
