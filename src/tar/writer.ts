import { TarError } from '../errors.ts';
import type { Entry, Tree } from '../fstree/index.ts';
import { BLOCK, encodeHeader, padded, type TarHeader, type TarType } from './header.ts';

/**
 * Deterministic tar writer: the same tree gives the same bytes on every machine. Members come in tree order
 * (parents before children, UTF-8 byte order), owners are numeric with empty names, mtimes are clamped to the
 * epoch, PAX headers have fixed names, and the archive ends with two zero blocks and no further padding (as Go's
 * archive/tar, and so docker and go-containerregistry, write layers).
 */

export interface TarFromTreeOptions {
  /** Clamp every mtime to at most this (SOURCE_DATE_EPOCH); undefined keeps mtimes as they are. */
  readonly epoch?: number;
  /**
   * Read file bodies into one reused buffer: each chunk is then valid only until the next one is asked for. For
   * consumers that hash or copy each chunk at once (the layer compressor); a big tree then makes no garbage.
   */
  readonly reuse?: boolean;
}

const ZERO = new Uint8Array(BLOCK * 2);

function kindToType(e: Entry): TarType {
  return e.kind;
}

/**
 * Returns the tar stream of `tree` (the root entry itself is not stored). Hardlinks are written as hardlinks; when a
 * link sorts before the file it names, the roles are swapped so every link follows its target in the stream.
 * Does no I/O until read; file contents are streamed, never held whole. Throws TAR_HEADER_INVALID if a file's content
 * does not have the size it promised.
 */
export async function* tarFromTree(tree: Tree, options: TarFromTreeOptions = {}): AsyncGenerator<Uint8Array> {
  const scratch = options.reuse ? Buffer.allocUnsafeSlow(1 << 20) : undefined;
  const clamp = (t: number) => (options.epoch === undefined ? t : Math.min(t, options.epoch));
  // For each hardlinked inode, the first name in tree order carries the data.
  // One ordered pass: whichever name of an inode (the file or a link to it) comes first in tree order is primary.
  const primary = new Map<string, string>();
  for (const [p, e] of tree) {
    const inode = e.kind === 'hardlink' ? e.target : e.kind === 'file' ? p : undefined;
    if (inode !== undefined && !primary.has(inode)) primary.set(inode, p);
  }
  for (const [p, e] of tree) {
    if (p === '/') continue;
    const rel = p.slice(1);
    const base = {
      path: rel,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      mtime: clamp(e.mtime),
      xattrs: e.xattrs ?? {},
      devmajor: 0,
      devminor: 0,
    };
    if (e.kind === 'file' || e.kind === 'hardlink') {
      const target = e.kind === 'file' ? p : e.target;
      const first = primary.get(target) ?? target;
      const file = tree.get(target);
      if (file?.kind !== 'file')
        throw new TarError(
          'TAR_HEADER_INVALID',
          `cannot write hardlink ${JSON.stringify(p)}: target ${JSON.stringify(target)} is not a file`,
          { path: p },
        );
      if (p !== first) {
        yield encodeHeader({ ...base, type: 'hardlink', size: 0, linkname: first.slice(1) });
        continue;
      }
      const meta =
        e.kind === 'file'
          ? base
          : {
              ...base,
              mode: file.mode,
              uid: file.uid,
              gid: file.gid,
              mtime: clamp(file.mtime),
              xattrs: file.xattrs ?? {},
            };
      yield encodeHeader({ ...meta, type: 'file', size: file.content.size, linkname: '' });
      let n = 0;
      for await (const chunk of file.content.open(scratch)) {
        n += chunk.length;
        if (n > file.content.size) break;
        yield chunk;
      }
      if (n !== file.content.size) {
        throw new TarError(
          'TAR_HEADER_INVALID',
          `cannot write ${JSON.stringify(p)}: content has ${n} bytes, want ${file.content.size}`,
          { path: p },
        );
      }
      const pad = padded(n) - n;
      if (pad > 0) yield ZERO.subarray(0, pad);
      continue;
    }
    const h: TarHeader = {
      ...base,
      type: kindToType(e),
      size: 0,
      linkname: e.kind === 'symlink' ? e.target : '',
      devmajor: e.kind === 'char' || e.kind === 'block' ? e.major : 0,
      devminor: e.kind === 'char' || e.kind === 'block' ? e.minor : 0,
    };
    yield encodeHeader(h);
  }
  yield ZERO;
}

/** Collects a stream of chunks into one buffer (tests and small blobs only). */
export async function collect(source: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of source) {
    parts.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
