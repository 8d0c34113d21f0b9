import { closeSync, type Dirent, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { resolvePath, type Tree } from '../fstree/index.ts';
import type { ByteSource } from './reader.ts';

/**
 * A root filesystem as the dynamic loader sees it from inside a chroot: paths resolve through symlinks without ever
 * leaving the root. The loader code (ldso.ts) and the audit read files only through this interface, so the same
 * logic runs over an in-memory FsTree (an image being built or pulled) and over a host directory (`/`, an unpacked
 * rootfs) without reading the host into memory.
 */
export interface RootFs {
  /** A label for messages: the host directory, or the name the caller gave the tree. */
  readonly name: string;
  /**
   * Resolves `path` (absolute, inside the root) through symlinks, the last component too; returns the canonical path and
   * what is there, or undefined when nothing is. Throws TREE_SYMLINK_LOOP after MAX_SYMLINK_HOPS links.
   */
  stat(path: string): Promise<RootStat | undefined>;
  /** Returns the entries of directory `path` (resolved), sorted by name, without following the entries' links. */
  list(path: string): Promise<readonly RootDirent[]>;
  /** Opens the regular file at `path` (resolved) for random reads, or returns undefined when there is none. */
  open(path: string): Promise<ByteSource | undefined>;
  /**
   * True when every call completes without waiting on I/O (hostRootFs reads synchronously): analysing several files
   * at once then overlaps nothing and only multiplies the memory in use.
   */
  readonly synchronous?: boolean;
}

export interface RootStat {
  /** Canonical path inside the root after following every symlink. */
  readonly path: string;
  readonly kind: 'file' | 'dir' | 'other';
  readonly size: number;
  /** Permission bits (with setuid/setgid). */
  readonly mode: number;
}

export interface RootDirent {
  readonly name: string;
  readonly kind: 'file' | 'dir' | 'symlink' | 'other';
}

/** Returns a RootFs over an FsTree; hardlinks resolve to their target file, so identity is by canonical path. */
export function treeRootFs(tree: Tree, name = 'tree'): RootFs {
  const stat = async (path: string): Promise<RootStat | undefined> => {
    let { entry, path: p } = tree.resolve(path);
    if (entry?.kind === 'hardlink') {
      p = entry.target;
      entry = tree.get(p);
    }
    if (!entry) return undefined;
    if (entry.kind === 'file') return { path: p, kind: 'file', size: entry.content.size, mode: entry.mode };
    return { path: p, kind: entry.kind === 'dir' ? 'dir' : 'other', size: 0, mode: entry.mode };
  };
  return {
    name,
    stat,
    async list(path) {
      const s = await stat(path);
      if (s?.kind !== 'dir') return [];
      return tree.children(s.path).map((c) => {
        const e = tree.get(c)!;
        const kind =
          e.kind === 'file' || e.kind === 'hardlink'
            ? 'file'
            : e.kind === 'dir'
              ? 'dir'
              : e.kind === 'symlink'
                ? 'symlink'
                : 'other';
        return { name: c.slice(c.lastIndexOf('/') + 1), kind };
      });
    },
    async open(path) {
      const s = await stat(path);
      if (s?.kind !== 'file') return undefined;
      return tree.file(s.path)?.content;
    },
  };
}

/**
 * Returns a RootFs over a host directory, read lazily (the host `/` has far too many files to load into a tree).
 * Symlinks are resolved component by component with chroot semantics: absolute targets restart at `root`, `..` stops
 * at it, so nothing outside `root` is ever read. lstat/readlink results are cached for the life of the object.
 *
 * The host calls are synchronous on purpose: an audit makes tens of thousands of small lstat/read calls on local
 * files, and each promise-based call costs a thread-pool round trip several times longer than the call itself (it
 * was a third of `pare audit /usr/bin`'s time). The methods stay async so every RootFs has one shape.
 */
export function hostRootFs(root: string): RootFs {
  const base = root === '/' ? '' : root.replace(/\/+$/, '');
  const host = (p: string) => (p === '/' ? base || '/' : base + p);
  type L = { kind: 'file' | 'dir' | 'symlink' | 'other'; size: number; mode: number; target?: string } | null;
  const lcache = new Map<string, L>();
  const ROOT_DIR = { kind: 'dir', size: 0, mode: 0o755 } as const;
  const lst = (p: string): L => {
    let hit = lcache.get(p);
    if (hit === undefined) {
      try {
        const st = lstatSync(host(p));
        hit = st.isSymbolicLink()
          ? { kind: 'symlink', size: 0, mode: 0o777, target: readlinkSync(host(p)) }
          : {
              kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other',
              size: st.size,
              mode: st.mode & 0o7777,
            };
      } catch {
        hit = null;
      }
      lcache.set(p, hit);
    }
    return hit;
  };
  const scache = new Map<string, RootStat | undefined>();
  const resolve = (path: string): RootStat | undefined => {
    const r = resolvePath(path, (p) => (p === '/' ? ROOT_DIR : (lst(p) ?? undefined)), { root });
    const l = r.node;
    if (!l) return undefined;
    return { path: r.path, kind: l.kind === 'symlink' ? 'other' : l.kind, size: l.size, mode: l.mode };
  };
  const statSync = (path: string): RootStat | undefined => {
    if (scache.has(path)) return scache.get(path);
    const r = resolve(path);
    scache.set(path, r);
    return r;
  };
  return {
    name: root,
    synchronous: true,
    stat: async (path) => statSync(path),
    async list(path) {
      const s = statSync(path);
      if (s?.kind !== 'dir') return [];
      let ents: Dirent[];
      try {
        ents = readdirSync(host(s.path), { withFileTypes: true });
      } catch {
        return [];
      }
      return ents
        .map((d) => ({
          name: d.name,
          kind: d.isFile()
            ? ('file' as const)
            : d.isDirectory()
              ? ('dir' as const)
              : d.isSymbolicLink()
                ? ('symlink' as const)
                : ('other' as const),
        }))
        .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    },
    async open(path) {
      const s = statSync(path);
      if (s?.kind !== 'file') return undefined;
      return hostSource(host(s.path), s.size);
    },
  };
}

/**
 * Page size of the host read cache: the headers and dynamic tables of a small program fit one page. Small on purpose:
 * every page is garbage once its file is analysed, and 64 KiB pages made that garbage a tenth of the audit's peak RSS.
 */
const PAGE = 16 * 1024;
/** Pages kept per open file: the head (headers, dynsym, dynstr), the dynamic section, the section headers at the end. */
const MAX_PAGES = 8;
/** Files up to this size are read whole on first access (one open/read/close instead of one per page). */
const WHOLE_FILE = 2 * PAGE;

/**
 * Returns a ByteSource over a host file that opens it per read (no file descriptors are held between reads, so
 * thousands of files can be open at once) and keeps a few 16 KiB pages, since ELF parsing reads small pieces. Reads
 * are synchronous (see hostRootFs).
 */
export function hostSource(path: string, size: number): ByteSource {
  const pages = new Map<number, Uint8Array>();
  let whole: Uint8Array | undefined;
  const fill = (buf: Uint8Array, offset: number, len: number): number => {
    if (len <= 0) return 0;
    const fd = openSync(path, 'r');
    try {
      let got = 0;
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return got;
    } finally {
      closeSync(fd);
    }
  };
  const readRaw = (offset: number, length: number): Uint8Array => {
    const len = Math.max(0, Math.min(length, size - offset));
    const buf = Buffer.allocUnsafeSlow(len);
    const got = fill(buf, offset, len);
    return got === len ? buf : buf.subarray(0, got);
  };
  return {
    size,
    async readInto(target, offset) {
      return fill(target, offset, Math.min(target.length, size - offset));
    },
    async read(offset, length) {
      if (size <= WHOLE_FILE) {
        whole ??= readRaw(0, size);
        return whole.subarray(offset, Math.min(offset + length, whole.length));
      }
      const first = Math.floor(offset / PAGE);
      const last = Math.floor((offset + Math.max(length, 1) - 1) / PAGE);
      if (last - first >= 2) return readRaw(offset, length);
      const parts: Uint8Array[] = [];
      for (let p = first; p <= last; p++) {
        let page = pages.get(p);
        if (!page) {
          page = readRaw(p * PAGE, PAGE);
          if (pages.size >= MAX_PAGES) pages.delete(pages.keys().next().value!);
          pages.set(p, page);
        }
        parts.push(page);
      }
      const joined = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      const start = offset - first * PAGE;
      return joined.subarray(start, Math.min(start + length, joined.length));
    },
  };
}
