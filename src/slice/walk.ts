import { type Entry, resolvePath, type Tree } from '../fstree/index.ts';

/**
 * Path resolution that remembers the way: `Tree.resolve` (fstree's one resolver: chroot semantics, absolute targets
 * restart at the root, `..` at the root stays there), also returning every symlink it went through. A sliced tree must keep
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

/**
 * Resolves `path` inside `tree`, following symlinks (the last component too, unless `follow` is false). Throws
 * TREE_SYMLINK_LOOP naming the path for a symlink loop (more than MAX_SYMLINK_HOPS links).
 */
export function walk(tree: Tree, path: string, options: { follow?: boolean } = {}): Walk {
  const links: string[] = [];
  const r = resolvePath(path, (p) => tree.get(p), { ...options, onLink: (p) => links.push(p) });
  return { path: r.path, entry: r.node, links };
}

/** Returns the canonical path of `path` with its directories resolved but its last component not followed. */
export function canonicalName(tree: Tree, path: string): string {
  return walk(tree, path, { follow: false }).path;
}
