import { TreeError } from '../errors.ts';
import type { Content } from './content.ts';
import { baseName, comparePaths, isWithin, joinPath, normalizePath, parentPath } from './path.ts';
import { resolvePath } from './resolve.ts';

/**
 * FsTree: the in-memory root filesystem that flows through every stage (sources → FsTree → transforms → layers).
 *
 * A `Tree` is an immutable map from canonical path (see path.ts) to `Entry`. Every entry's parent exists and is a
 * directory; the root `/` is always present. Iteration is sorted (comparePaths), so whatever is built from a tree is
 * deterministic. File bytes are `Content`, read lazily. Transforms return new trees; none has a setter.
 */

export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

interface EntryBase {
  /** Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000); never the file type. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Modification time, whole seconds since the epoch. */
  readonly mtime: number;
  /** Extended attributes (e.g. `security.capability`), by name. */
  readonly xattrs?: Readonly<Record<string, Uint8Array>>;
}
export interface FileEntry extends EntryBase {
  readonly kind: 'file';
  readonly content: Content;
}
export interface DirEntry extends EntryBase {
  readonly kind: 'dir';
}
export interface SymlinkEntry extends EntryBase {
  readonly kind: 'symlink';
  /** The link text as stored (relative or absolute); resolved only inside the tree. */
  readonly target: string;
}
export interface HardlinkEntry extends EntryBase {
  readonly kind: 'hardlink';
  /** Canonical path of the regular file this is another name for. */
  readonly target: string;
}
export interface DeviceEntry extends EntryBase {
  readonly kind: 'char' | 'block';
  readonly major: number;
  readonly minor: number;
}
export interface FifoEntry extends EntryBase {
  readonly kind: 'fifo';
}
export type Entry = FileEntry | DirEntry | SymlinkEntry | HardlinkEntry | DeviceEntry | FifoEntry;

/** Defaults for directories a tree creates implicitly (missing parents, the root). */
export interface DirDefaults {
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: number;
}

function defaultDir(d: DirDefaults = {}): DirEntry {
  return { kind: 'dir', mode: d.mode ?? 0o755, uid: d.uid ?? 0, gid: d.gid ?? 0, mtime: d.mtime ?? 0 };
}

/** Returns a dir entry with the given fields (defaults 0755 root:root mtime 0). */
export function dirEntry(fields: Partial<Omit<DirEntry, 'kind'>> = {}): DirEntry {
  return { ...defaultDir(), ...fields, kind: 'dir' };
}

/** Returns a file entry with the given content (defaults 0644 root:root mtime 0). */
export function fileEntry(
  content: Content,
  fields: Partial<Omit<FileEntry, 'kind' | 'content'>> = {},
): FileEntry {
  return { mode: 0o644, uid: 0, gid: 0, mtime: 0, ...fields, kind: 'file', content };
}

/** Returns a symlink entry (mode 0777 as Linux reports it, root:root, mtime 0 by default). */
export function symlinkEntry(
  target: string,
  fields: Partial<Omit<SymlinkEntry, 'kind' | 'target'>> = {},
): SymlinkEntry {
  return { mode: 0o777, uid: 0, gid: 0, mtime: 0, ...fields, kind: 'symlink', target };
}

/** Result of looking a path up through symlinks. */
export interface Resolved {
  /** Canonical path reached after following symlinks (the final component too, when `follow`). */
  readonly path: string;
  readonly entry: Entry | undefined;
}

/** An immutable, sorted root filesystem. Create with `Tree.empty()`, `Tree.from()` or a `TreeBuilder`. */
export class Tree {
  readonly #entries: ReadonlyMap<string, Entry>;
  #sorted: readonly string[] | undefined;
  #children: Map<string, string[]> | undefined;

  private constructor(entries: ReadonlyMap<string, Entry>) {
    this.#entries = entries;
  }

  /** Returns a tree that holds only the root directory. */
  static empty(root: DirDefaults = {}): Tree {
    return new Tree(new Map([['/', defaultDir(root)]]));
  }

  /**
   * Returns a tree of the given entries, creating missing parents with `dirs` defaults. Throws TREE_CONFLICT for two
   * entries at one path, TREE_NOT_DIR when a path lies below a non-directory, TREE_HARDLINK_INVALID for a hardlink
   * whose target is not a regular file in the tree.
   */
  static from(entries: Iterable<readonly [string, Entry]>, dirs: DirDefaults = {}): Tree {
    const b = new TreeBuilder(dirs);
    const links: (readonly [string, Entry])[] = [];
    // Hardlinks go last so that the order of `entries` never matters.
    for (const pe of entries) {
      if (pe[1].kind === 'hardlink') links.push(pe);
      else b.add(pe[0], pe[1]);
    }
    for (const [p, e] of links) b.add(p, e);
    return b.build();
  }

  /** @internal Wraps a map already known to satisfy the invariants (used by builders and transforms). */
  static unsafeFromMap(entries: Map<string, Entry>): Tree {
    return new Tree(entries);
  }

  /** Number of entries, the root included. */
  get size(): number {
    return this.#entries.size;
  }

  /** Returns the entry at `path` without following symlinks, or undefined. */
  get(path: string): Entry | undefined {
    return this.#entries.get(normalizePath(path));
  }

  /** True when an entry exists at `path` (no symlinks followed). */
  has(path: string): boolean {
    return this.#entries.has(normalizePath(path));
  }

  /** Returns every path in tree order (parents before children, component-wise UTF-8 byte order). */
  paths(): readonly string[] {
    this.#sorted ??= Object.freeze([...this.#entries.keys()].sort(comparePaths));
    return this.#sorted;
  }

  /** Iterates `[path, entry]` in tree order. */
  *entries(): IterableIterator<[string, Entry]> {
    for (const p of this.paths()) yield [p, this.#entries.get(p)!];
  }

  [Symbol.iterator](): IterableIterator<[string, Entry]> {
    return this.entries();
  }

  /** Returns the paths of the direct children of directory `dir`, sorted. */
  children(dir: string): readonly string[] {
    if (!this.#children) {
      const m = new Map<string, string[]>();
      for (const p of this.paths()) {
        if (p === '/') continue;
        const parent = parentPath(p);
        const list = m.get(parent);
        if (list) list.push(p);
        else m.set(parent, [p]);
      }
      this.#children = m;
    }
    return this.#children.get(normalizePath(dir)) ?? [];
  }

  /**
   * Resolves `path` through symlinks as the kernel would inside a chroot at this tree's root: absolute targets start at
   * the root, `..` at the root stays there, nothing ever leaves the tree. With `follow` (default true) the last
   * component is followed too. Throws TREE_SYMLINK_LOOP after MAX_SYMLINK_HOPS. Missing components give `entry:
   * undefined` with the path as far as it was resolved plus the rest.
   */
  resolve(path: string, options: { follow?: boolean } = {}): Resolved {
    const r = resolvePath(path, (p) => this.#entries.get(p), options);
    return { path: r.path, entry: r.node };
  }

  /**
   * Returns the regular-file entry reached from `path` (following symlinks and hardlinks), or undefined when the path
   * does not lead to a regular file.
   */
  file(path: string): FileEntry | undefined {
    let { entry } = this.resolve(path);
    if (entry?.kind === 'hardlink') entry = this.#entries.get(entry.target);
    return entry?.kind === 'file' ? entry : undefined;
  }

  /** Returns the bytes of the file reached from `path`; throws TREE_NOT_FOUND when there is none. */
  async readFile(path: string): Promise<Uint8Array> {
    const f = this.file(path);
    if (!f)
      throw new TreeError('TREE_NOT_FOUND', `cannot read ${JSON.stringify(path)}: no regular file there`, {
        path,
      });
    return f.content.bytes();
  }

  /** Returns a tree with `entry` at `path` (replacing what was there; a replaced dir keeps its children if the new entry is a dir). */
  with(path: string, entry: Entry): Tree {
    const b = TreeBuilder.from(this);
    b.put(path, entry);
    return b.build();
  }

  /** Returns a tree without `path` and everything below it. The root cannot be removed. */
  without(path: string): Tree {
    const p = normalizePath(path);
    if (p === '/' || !this.#entries.has(p)) return this;
    const m = new Map<string, Entry>();
    for (const [k, e] of this.#entries) if (!isWithin(k, p)) m.set(k, e);
    return new Tree(dropDanglingHardlinks(m));
  }

  /**
   * Returns a tree of the entries for which `keep` is true. Parents of kept entries are kept too, whatever `keep` says
   * of them; a hardlink whose target is dropped becomes a regular file with the target's content.
   */
  filter(keep: (path: string, entry: Entry) => boolean): Tree {
    const m = new Map<string, Entry>();
    for (const [p, e] of this.#entries) {
      if (p === '/' || !keep(p, e)) continue;
      m.set(p, e);
      for (let q = parentPath(p); !m.has(q); q = parentPath(q)) {
        m.set(q, this.#entries.get(q)!);
        if (q === '/') break;
      }
    }
    m.set('/', this.#entries.get('/')!);
    for (const [p, e] of m) {
      if (e.kind === 'hardlink' && !m.has(e.target)) {
        const t = this.#entries.get(e.target) as FileEntry;
        m.set(p, { ...t, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, kind: 'file' });
      }
    }
    return new Tree(m);
  }

  /** Returns a tree with `fn` applied to every entry (paths unchanged). `fn` must keep each entry's kind. */
  map(fn: (path: string, entry: Entry) => Entry): Tree {
    const m = new Map<string, Entry>();
    for (const [p, e] of this.#entries) {
      const n = fn(p, e);
      if (n.kind !== e.kind)
        throw new TreeError(
          'TREE_CONFLICT',
          `cannot map ${JSON.stringify(p)}: kind changed from ${e.kind} to ${n.kind}`,
          { path: p },
        );
      m.set(p, n);
    }
    return new Tree(m);
  }
}

/** Hardlinks whose target left the map become copies of nothing: drop them (they have no content to give). */
function dropDanglingHardlinks(m: Map<string, Entry>): Map<string, Entry> {
  for (const [p, e] of m) if (e.kind === 'hardlink' && !m.has(e.target)) m.delete(p);
  return m;
}

/**
 * Builds a Tree entry by entry. `add` refuses a second entry at a path (TREE_CONFLICT) unless both are directories;
 * `put` replaces. Missing parents are created with the builder's directory defaults.
 */
export class TreeBuilder {
  readonly #m: Map<string, Entry>;
  readonly #dirs: DirDefaults;

  constructor(dirs: DirDefaults = {}) {
    this.#dirs = dirs;
    this.#m = new Map([['/', defaultDir(dirs)]]);
  }

  /** Returns a builder that starts from the entries of `tree`. */
  static from(tree: Tree, dirs: DirDefaults = {}): TreeBuilder {
    const b = new TreeBuilder(dirs);
    for (const [p, e] of tree) b.#m.set(p, e);
    return b;
  }

  /** True when the builder holds `path`. */
  has(path: string): boolean {
    return this.#m.has(normalizePath(path));
  }

  /** Returns the entry at `path` in the builder, if any. */
  get(path: string): Entry | undefined {
    return this.#m.get(normalizePath(path));
  }

  /** Adds `entry` at `path`; a second non-directory at one path, or a dir over a non-dir, throws TREE_CONFLICT. */
  add(path: string, entry: Entry): this {
    const p = normalizePath(path);
    const old = this.#m.get(p);
    if (old && p !== '/') {
      if (old.kind === 'dir' && entry.kind === 'dir') {
        this.#m.set(p, entry);
        return this;
      }
      throw new TreeError(
        'TREE_CONFLICT',
        `cannot add ${JSON.stringify(p)}: the tree already has a ${old.kind} there`,
        {
          path: p,
        },
      );
    }
    return this.put(p, entry);
  }

  /** Puts `entry` at `path`, replacing what was there (and its subtree, unless both are directories). */
  put(path: string, entry: Entry): this {
    const p = normalizePath(path);
    if (p === '/') {
      if (entry.kind !== 'dir')
        throw new TreeError('TREE_NOT_DIR', 'cannot put a non-directory at "/"', { path: p });
      this.#m.set(p, entry);
      return this;
    }
    this.#mkParents(p);
    const old = this.#m.get(p);
    if (old?.kind === 'dir' && entry.kind !== 'dir') this.remove(p);
    if (entry.kind === 'hardlink') {
      const t = normalizePath(entry.target);
      const te = this.#m.get(t);
      if (te?.kind !== 'file') {
        throw new TreeError(
          'TREE_HARDLINK_INVALID',
          `cannot add hardlink ${JSON.stringify(p)}: its target ${JSON.stringify(t)} is not a regular file in the tree`,
          { path: p },
        );
      }
      entry = t === entry.target ? entry : { ...entry, target: t };
    }
    this.#m.set(p, entry);
    return this;
  }

  /** Removes `path` and everything below it (no-op when absent). */
  remove(path: string): this {
    const p = normalizePath(path);
    if (p === '/') {
      for (const k of [...this.#m.keys()]) if (k !== '/') this.#m.delete(k);
      return this;
    }
    if (!this.#m.has(p)) return this;
    const prefix = `${p}/`;
    for (const k of [...this.#m.keys()]) if (k === p || k.startsWith(prefix)) this.#m.delete(k);
    dropDanglingHardlinks(this.#m);
    return this;
  }

  /** Creates `path` and its parents as directories where missing (never replaces a non-directory: TREE_NOT_DIR). */
  mkdirp(path: string, fields: Partial<Omit<DirEntry, 'kind'>> = {}): this {
    const p = normalizePath(path);
    const e = this.#m.get(p);
    if (e) {
      if (e.kind !== 'dir')
        throw new TreeError(
          'TREE_NOT_DIR',
          `cannot create directory ${JSON.stringify(p)}: a ${e.kind} is there`,
          { path: p },
        );
      return this;
    }
    this.#mkParents(p);
    this.#m.set(p, { ...defaultDir(this.#dirs), ...fields, kind: 'dir' });
    return this;
  }

  #mkParents(p: string): void {
    const missing: string[] = [];
    let q = parentPath(p);
    for (; q !== '/'; q = parentPath(q)) {
      const e = this.#m.get(q);
      if (e) {
        if (e.kind !== 'dir') {
          throw new TreeError(
            'TREE_NOT_DIR',
            `cannot add ${JSON.stringify(p)}: ${JSON.stringify(q)} is a ${e.kind}, not a directory`,
            {
              path: p,
            },
          );
        }
        break;
      }
      missing.push(q);
    }
    for (const m of missing) this.#m.set(m, defaultDir(this.#dirs));
  }

  /** Returns the finished Tree; the builder should not be used afterwards. */
  build(): Tree {
    return Tree.unsafeFromMap(new Map(this.#m));
  }
}

export { baseName, joinPath };
