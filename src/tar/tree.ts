import { TarError } from '../errors.ts';
import {
  bufferContent,
  type Content,
  type Entry,
  normalizePath,
  parentPath,
  Tree,
  TreeBuilder,
} from '../fstree/index.ts';
import { readTar, type TarMember } from './reader.ts';

/**
 * tar → FsTree, refusing archives that try to escape: absolute member names, `..` components, symlinks whose
 * relative target climbs above the root, hardlinks to members that do not exist (or lie outside), and members
 * written through a symlinked directory. Whiteout names (`.wh.*`) are passed through for `applyLayer` to act on.
 */

export interface TarEntriesOptions {
  /** The tree this archive is applied on (lower layers); used to detect writes through symlinked directories. */
  readonly base?: Tree;
  /** Where to keep file bytes; default: in memory. */
  readonly content?: (member: TarMember) => Promise<Content>;
  /** Name of the archive for error messages (a file name or a layer digest). */
  readonly source?: string;
  /** Most members accepted (TAR_LIMIT beyond). */
  readonly maxEntries?: number;
  /** Longest member path or link target accepted, in bytes (TAR_LIMIT beyond). */
  readonly maxPathLength?: number;
  /** How to raise each limit, named in the refusal (e.g. an environment variable). */
  readonly limitNames?: { readonly entries?: string; readonly pathLength?: string };
}

function overLimit(
  options: TarEntriesOptions,
  what: string,
  name: string | undefined,
  path?: string,
): TarError {
  const where = options.source ? `${options.source}` : 'tar';
  return new TarError(
    'TAR_LIMIT',
    `cannot read ${where}: ${what}; the archive is refused${name ? ` (raise ${name} if it is genuine)` : ''}`,
    path === undefined ? {} : { path },
  );
}

function unsafe(source: string | undefined, path: string, why: string): TarError {
  const where = source ? ` in ${source}` : '';
  return new TarError(
    'TAR_UNSAFE_PATH',
    `cannot read tar member ${JSON.stringify(path)}${where}: ${why}; the archive is refused`,
    { path },
  );
}

/** True when a relative symlink target, seen from `dir`, climbs above the root. */
export function symlinkEscapes(dir: string, target: string): boolean {
  if (target.startsWith('/')) return false; // absolute targets are resolved inside the image root
  let depth = dir === '/' ? 0 : dir.split('/').length - 1;
  for (const c of target.split('/')) {
    if (c === '..') {
      if (--depth < 0) return true;
    } else if (c !== '' && c !== '.') depth++;
  }
  return false;
}

/**
 * Yields `[path, entry]` for each member of a tar stream, in archive order, after the safety checks above.
 * Throws TarError TAR_UNSAFE_PATH (and the reader's codes).
 */
export async function* tarEntries(
  source: AsyncIterable<Uint8Array>,
  options: TarEntriesOptions = {},
): AsyncGenerator<[string, Entry]> {
  const symlinks = new Set<string>();
  const files = new Set<string>();
  const dirs = new Set<string>();
  const removed = new Set<string>();
  const isSymlink = (p: string) =>
    symlinks.has(p) || (!removed.has(p) && !dirs.has(p) && options.base?.get(p)?.kind === 'symlink');
  const isFile = (p: string) =>
    files.has(p) || (!removed.has(p) && ['file', 'hardlink'].includes(options.base?.get(p)?.kind ?? ''));
  let count = 0;
  const maxPath = options.maxPathLength ?? Number.POSITIVE_INFINITY;
  for await (const m of readTar(source)) {
    const h = m.header;
    const raw = h.path;
    if (++count > (options.maxEntries ?? Number.POSITIVE_INFINITY))
      throw overLimit(options, `it has more than ${options.maxEntries} members`, options.limitNames?.entries);
    if (Buffer.byteLength(raw) > maxPath || Buffer.byteLength(h.linkname) > maxPath)
      throw overLimit(
        options,
        `member ${JSON.stringify(raw.slice(0, 64))}… has a path or link target longer than ${maxPath} bytes`,
        options.limitNames?.pathLength,
        raw.slice(0, 256),
      );
    if (raw === '' || raw === '.') {
      continue; // the root itself ("./")
    }
    if (raw.startsWith('/')) throw unsafe(options.source, raw, 'absolute paths are not allowed');
    if (raw.split('/').includes('..')) throw unsafe(options.source, raw, '".." is not allowed');
    const p = normalizePath(raw);
    for (let q = parentPath(p); q !== '/'; q = parentPath(q)) {
      if (isSymlink(q))
        throw unsafe(
          options.source,
          raw,
          `it would be written through the symlinked directory ${JSON.stringify(q)}`,
        );
    }
    const base = {
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime,
      ...(Object.keys(h.xattrs).length > 0 ? { xattrs: h.xattrs } : {}),
    };
    let e: Entry;
    switch (h.type) {
      case 'file':
        e = {
          ...base,
          kind: 'file',
          content: options.content ? await options.content(m) : bufferContent(await m.bytes()),
        };
        break;
      case 'dir':
        e = { ...base, kind: 'dir' };
        break;
      case 'symlink':
        if (symlinkEscapes(parentPath(p), h.linkname))
          throw unsafe(
            options.source,
            raw,
            `its symlink target ${JSON.stringify(h.linkname)} points outside the root`,
          );
        e = { ...base, kind: 'symlink', target: h.linkname };
        break;
      case 'hardlink': {
        const t = h.linkname.replace(/^\.\//, '');
        if (t.startsWith('/') || t.split('/').includes('..'))
          throw unsafe(
            options.source,
            raw,
            `its hardlink target ${JSON.stringify(h.linkname)} points outside the root`,
          );
        const tp = normalizePath(t);
        if (!isFile(tp))
          throw unsafe(
            options.source,
            raw,
            `its hardlink target ${JSON.stringify(h.linkname)} is not a regular file earlier in the archive`,
          );
        e = { ...base, kind: 'hardlink', target: tp };
        break;
      }
      case 'char':
      case 'block':
        e = { ...base, kind: h.type, major: h.devmajor, minor: h.devminor };
        break;
      case 'fifo':
        e = { ...base, kind: 'fifo' };
        break;
    }
    symlinks.delete(p);
    files.delete(p);
    dirs.delete(p);
    removed.add(p);
    if (e.kind === 'symlink') symlinks.add(p);
    else if (e.kind === 'file' || e.kind === 'hardlink') files.add(p);
    else if (e.kind === 'dir') dirs.add(p);
    yield [p, e];
  }
}

/**
 * Returns the tree of a tar stream (later members replace earlier ones at the same path, as extraction does).
 * Whiteout files are kept as ordinary entries; use `applyLayer` to apply a layer onto lower ones.
 */
export async function tarToTree(
  source: AsyncIterable<Uint8Array>,
  options: TarEntriesOptions = {},
): Promise<Tree> {
  const b = new TreeBuilder();
  for await (const [p, e] of tarEntries(source, options)) b.put(p, e);
  return b.build();
}

/** Collects the entries of a tar stream into an array (for `applyLayer`). */
export async function collectEntries(
  source: AsyncIterable<Uint8Array>,
  options: TarEntriesOptions = {},
): Promise<[string, Entry][]> {
  const out: [string, Entry][] = [];
  for await (const pe of tarEntries(source, options)) out.push(pe);
  return out;
}

export { Tree };
