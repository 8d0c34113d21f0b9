import { TreeError } from '../errors.ts';

/**
 * The one path resolver for every root pare looks into: an FsTree, an unpacked image on the host, a host directory
 * being audited. It resolves as the kernel does inside a chroot at the root: absolute link targets restart at the
 * root, `..` at the root stays there, nothing ever leaves it. The caller says what one canonical path is through
 * `lookup` (an lstat: links are not followed); this module does the walking, so the four places that used to walk
 * paths themselves (the tree, the slicer, the ELF engine's host roots and `pare run`) cannot drift apart again.
 */

/** Linux's MAXSYMLINKS (40): more links while resolving one path is a loop. */
export const MAX_SYMLINK_HOPS = 40;

/** What `lookup` says of one canonical path, without following it. */
export interface PathNode {
  readonly kind: string;
  /** The link text, for a symlink. */
  readonly target?: string;
}

export interface Resolution<N extends PathNode> {
  /**
   * The canonical path reached. When the path leads nowhere (`node` undefined), the part resolved, the component that
   * failed and the rest as given (without empty and `.` components; `..` in the rest is kept, as nothing says where it
   * would lead).
   */
  readonly path: string;
  readonly node: N | undefined;
  /** Why there is no node: a component is missing, or one that must be a directory is not. */
  readonly failed?: { readonly at: string; readonly reason: 'missing' | 'not-dir' };
}

export interface ResolveOptions {
  /** Follow a symlink in the last component too (default true), as stat does; false is lstat. */
  readonly follow?: boolean;
  /** Called with the canonical path of each symlink followed, in order. */
  readonly onLink?: (path: string) => void;
  /** Where the root is, for the loop error's message (e.g. the host directory). */
  readonly root?: string;
}

function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `path` with `lookup` giving each canonical path's node. Throws TREE_SYMLINK_LOOP (naming the path and the
 * root) after MAX_SYMLINK_HOPS links.
 */
export function resolvePath<N extends PathNode>(
  path: string,
  lookup: (canonical: string) => N | undefined,
  options: ResolveOptions = {},
): Resolution<N> {
  const follow = options.follow ?? true;
  let todo = components(path);
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      done.pop();
      continue;
    }
    const p = `/${[...done, c].join('/')}`;
    const node = lookup(p);
    if (node?.kind === 'symlink' && (todo.length > 0 || follow)) {
      if (++hops > MAX_SYMLINK_HOPS)
        throw new TreeError(
          'TREE_SYMLINK_LOOP',
          `cannot resolve ${JSON.stringify(path)}${options.root ? ` in ${JSON.stringify(options.root)}` : ''}: too many levels of symbolic links`,
          { path },
        );
      options.onLink?.(p);
      if (node.target!.startsWith('/')) done.length = 0;
      todo = [...components(node.target!), ...todo];
      continue;
    }
    if (node === undefined || (todo.length > 0 && node.kind !== 'dir'))
      return {
        path: `/${[...done, c, ...todo].join('/')}`,
        node: undefined,
        failed: { at: p, reason: node === undefined ? 'missing' : 'not-dir' },
      };
    done.push(c);
  }
  const p = `/${done.join('/')}`;
  return { path: p, node: lookup(p) };
}
