import { TarError } from '../errors.ts';
import { ByteSource } from './bytes.ts';
import {
  BLOCK,
  concat,
  decodeRawHeader,
  isZeroBlock,
  padded,
  parsePax,
  type TarHeader,
  TYPE_BY_FLAG,
} from './header.ts';

/**
 * Streaming tar reader (USTAR, POSIX pax incl. global headers, GNU long names/links, old v7). Reads from any
 * AsyncIterable of chunks; never holds more than one chunk plus one header in memory. Hostile input is expected:
 * every size is bounded by a named limit and truncation is an error, not a short read.
 */

/** Largest PAX or GNU long-name header accepted: real ones are a few hundred bytes; 1 MiB bounds memory. */
export const MAX_EXTENDED_HEADER = 1 << 20;

/** A member as read: its header and its body, which must be consumed (or skipped) before the next member. */
export interface TarMember {
  readonly header: TarHeader;
  /** Byte offset of the member's (first) header in the archive. */
  readonly offset: number;
  /** Byte offset of the member's data in the (uncompressed) archive. */
  readonly dataOffset: number;
  /** The member's data; empty for non-files. */
  body(): AsyncIterable<Uint8Array>;
  /** Reads the whole body into memory. */
  bytes(): Promise<Uint8Array>;
}

const dec = new TextDecoder();

function paxNumber(v: Uint8Array | undefined, key: string, at: number): number | undefined {
  if (v === undefined) return undefined;
  const s = dec.decode(v);
  // PAX times may carry a fraction ("1700000000.123"); we keep whole seconds.
  const m = /^(-?[0-9]+)(\.[0-9]+)?$/.exec(s);
  if (!m)
    throw new TarError(
      'TAR_PAX_INVALID',
      `cannot read pax header at offset ${at}: ${key}=${JSON.stringify(s)} is not a number`,
      { offset: at },
    );
  const n = Number(m[1]);
  if (!Number.isSafeInteger(n))
    throw new TarError('TAR_LIMIT', `cannot read pax header at offset ${at}: ${key} too large`, {
      offset: at,
    });
  return n;
}

/** Normalises a stored member name: strips "./" and "/" prefixes and a trailing "/". */
export function cleanMemberPath(name: string): string {
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  if (p.endsWith('/')) p = p.replace(/\/+$/, '');
  return p;
}

/**
 * Yields the members of a tar stream in order. The previous member's body is skipped automatically if it was not
 * read. Throws TarError (TAR_TRUNCATED, TAR_CHECKSUM, TAR_HEADER_INVALID, TAR_PAX_INVALID, TAR_UNSUPPORTED, TAR_LIMIT).
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarMember> {
  const src = new ByteSource(source);
  const global = new Map<string, Uint8Array>();
  try {
    let pending: Map<string, Uint8Array> | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const at = src.offset;
      const block = await src.read(BLOCK);
      if (block.length === 0) return; // no end marker: tolerated, as GNU tar does
      if (block.length < BLOCK)
        throw new TarError('TAR_TRUNCATED', `cannot read tar: archive ends inside a header at offset ${at}`, {
          offset: at,
        });
      if (isZeroBlock(block)) return;
      const raw = decodeRawHeader(block, at);
      const ext =
        raw.typeflag === 'x' || raw.typeflag === 'g' || raw.typeflag === 'L' || raw.typeflag === 'K';
      if (ext) {
        if (raw.size > MAX_EXTENDED_HEADER) {
          throw new TarError(
            'TAR_LIMIT',
            `cannot read tar: extended header of ${raw.size} bytes at offset ${at} exceeds ${MAX_EXTENDED_HEADER}`,
            {
              offset: at,
            },
          );
        }
        const data = await src.read(padded(raw.size));
        if (data.length < padded(raw.size))
          throw new TarError(
            'TAR_TRUNCATED',
            `cannot read tar: archive ends inside an extended header at offset ${at}`,
            { offset: at },
          );
        const body = data.subarray(0, raw.size);
        if (raw.typeflag === 'x') pending = parsePax(body, at);
        else if (raw.typeflag === 'g') for (const [k, v] of parsePax(body, at)) global.set(k, v);
        else {
          const z = body.indexOf(0);
          const s = dec.decode(z < 0 ? body : body.subarray(0, z));
          if (raw.typeflag === 'L') longName = s;
          else longLink = s;
        }
        continue;
      }
      const type = TYPE_BY_FLAG[raw.typeflag];
      if (!type) {
        throw new TarError(
          'TAR_UNSUPPORTED',
          `cannot read tar member ${JSON.stringify(raw.name)} at offset ${at}: unsupported type ${JSON.stringify(raw.typeflag)}`,
          {
            offset: at,
            path: raw.name,
          },
        );
      }
      const pax = new Map([...global, ...(pending ?? [])]);
      const path = pax.has('path') ? dec.decode(pax.get('path')) : (longName ?? raw.name);
      const linkname = pax.has('linkpath') ? dec.decode(pax.get('linkpath')) : (longLink ?? raw.linkname);
      const size = paxNumber(pax.get('size'), 'size', at) ?? raw.size;
      const xattrs: Record<string, Uint8Array> = {};
      for (const [k, v] of pax) {
        if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = v;
      }
      pending = undefined;
      longName = undefined;
      longLink = undefined;
      // Only regular files carry data; a size on a link or dir header is ignored by tar, and skipped here too.
      const dataSize =
        type === 'file' ? size : type === 'hardlink' || type === 'symlink' || type === 'dir' ? 0 : raw.size;
      const header: TarHeader = {
        path: cleanMemberPath(path),
        type,
        mode: raw.mode & 0o7777,
        uid: paxNumber(pax.get('uid'), 'uid', at) ?? raw.uid,
        gid: paxNumber(pax.get('gid'), 'gid', at) ?? raw.gid,
        size: type === 'file' ? size : 0,
        mtime: paxNumber(pax.get('mtime'), 'mtime', at) ?? raw.mtime,
        linkname,
        devmajor: raw.devmajor,
        devminor: raw.devminor,
        xattrs,
      };
      let consumed = false;
      let started = false;
      const bodyStart = src.offset;
      const body = async function* (): AsyncGenerator<Uint8Array> {
        if (started)
          throw new TarError(
            'TAR_HEADER_INVALID',
            `cannot read tar member ${JSON.stringify(header.path)} twice`,
            { path: header.path },
          );
        started = true;
        let got = 0;
        for await (const c of src.stream(dataSize)) {
          got += c.length;
          yield c;
        }
        if (got < dataSize) {
          throw new TarError(
            'TAR_TRUNCATED',
            `cannot read tar member ${JSON.stringify(header.path)}: archive ends after ${got} of ${dataSize} bytes`,
            {
              offset: bodyStart,
              path: header.path,
            },
          );
        }
        const pad = padded(dataSize) - dataSize;
        if (pad > 0) await src.read(pad);
        consumed = true;
      };
      const member: TarMember = {
        header,
        offset: at,
        dataOffset: bodyStart,
        body,
        async bytes() {
          const parts: Uint8Array[] = [];
          for await (const c of body()) parts.push(c);
          return concat(parts);
        },
      };
      yield member;
      if (!consumed) {
        if (started)
          throw new TarError(
            'TAR_HEADER_INVALID',
            `cannot skip tar member ${JSON.stringify(header.path)}: its body was read only in part`,
            { path: header.path },
          );
        for await (const _ of body()) {
          /* skip */
        }
      }
    }
  } finally {
    await src.close();
  }
}
