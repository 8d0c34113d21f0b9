import { SliceError } from '../errors.ts';
import { type Entry, MAX_SYMLINK_HOPS, type Tree } from '../fstree/index.ts';

/**
 * Path resolution that remembers the way: like `Tree.resolve` (chroot semantics, absolute targets restart at the
 * root, `..` at the root stays there), but it also returns every symlink it went through. A sliced tree must keep
 * those links, or a path the program uses (`/lib64/ld-linux-x86-64.so.2`, `/usr/bin/python3`) would no longer lead to
 * the file that was kept for it.
 */

export interface Walk {
  /** Canonical path reached (the missing rest appended when `entry` is undefined). */
  readonly path: string;
  readonly entry: Entry | undefined;
  /** Canonical paths of the symlinks followed, in the order they were met. */
  readonly links: readonly string[];
}

function split(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `path` inside `tree`, following symlinks (the last component too, unless `follow` is false). Throws
 * SLICE_OPTIONS_INVALID naming the path for a symlink loop (more than MAX_SYMLINK_HOPS links).
 */
export function walk(tree: Tree, path: string, options: { follow?: boolean } = {}): Walk {
  const follow = options.follow ?? true;
  let todo = split(path);
  const done: string[] = [];
  const links: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      done.pop();
      continue;
    }
    const p = `/${[...done, c].join('/')}`;
    const e = tree.get(p);
    if (e?.kind === 'symlink' && (todo.length > 0 || follow)) {
      if (++hops > MAX_SYMLINK_HOPS)
        throw new SliceError(
          'SLICE_OPTIONS_INVALID',
          `cannot resolve ${JSON.stringify(path)}: too many levels of symbolic links`,
          { path },
        );
      links.push(p);
      if (e.target.startsWith('/')) done.length = 0;
      todo = [...split(e.target), ...todo];
      continue;
    }
    if (e === undefined || (todo.length > 0 && e.kind !== 'dir')) {
      return {
        path: `/${[...done, c, ...todo.filter((x) => x !== '..')].join('/')}`,
        entry: undefined,
        links,
      };
    }
    done.push(c);
  }
  const p = `/${done.join('/')}`;
  return { path: p, entry: tree.get(p), links };
}

/** Returns the canonical path of `path` with its directories resolved but its last component not followed. */
export function canonicalName(tree: Tree, path: string): string {
  return walk(tree, path, { follow: false }).path;
}
