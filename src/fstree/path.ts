import { TreeError } from '../errors.ts';

/**
 * Canonical tree paths: absolute, `/`-separated, no `.`/`..`/empty components, no trailing slash; the root is `/`.
 * Input from archives and users is hostile: `..` anywhere is rejected rather than resolved, so a path can never
 * name something outside the tree, whatever the symlinks around it.
 */

/** Returns the canonical form of `p`; throws TREE_PATH_INVALID (NUL, empty) or TREE_PATH_ESCAPE (`..`). */
export function normalizePath(p: string): string {
  if (p.includes('\0'))
    throw new TreeError('TREE_PATH_INVALID', `cannot use path ${JSON.stringify(p)}: it contains NUL`, {
      path: p,
    });
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      throw new TreeError('TREE_PATH_ESCAPE', `cannot use path ${JSON.stringify(p)}: ".." is not allowed`, {
        path: p,
      });
    }
    parts.push(c);
  }
  return `/${parts.join('/')}`;
}

/** Returns the parent of a canonical path (`/` for top-level entries and for the root itself). */
export function parentPath(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

/** Returns the last component of a canonical path (`''` for the root). */
export function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** Joins a canonical directory and a relative path, normalising (throws on `..`). */
export function joinPath(dir: string, rel: string): string {
  return normalizePath(`${dir}/${rel}`);
}

const utf8 = new TextEncoder();

/**
 * Orders canonical paths component by component, each compared as UTF-8 bytes (never by locale), so a directory
 * comes right before its contents and the order is the same on every machine: `/a`, `/a/b`, `/a-b`.
 */
export function comparePaths(a: string, b: string): number {
  if (a === b) return 0;
  const pa = a.split('/');
  const pb = b.split('/');
  const n = Math.min(pa.length, pb.length);
  for (let i = 1; i < n; i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x !== y) return compareBytes(x, y);
  }
  return pa.length - pb.length;
}

function compareBytes(x: string, y: string): number {
  // Fast path: ASCII strings compare the same as UTF-8 bytes.
  if (/^[\x00-\x7f]*$/.test(x) && /^[\x00-\x7f]*$/.test(y)) return x < y ? -1 : 1;
  return Buffer.compare(utf8.encode(x), utf8.encode(y));
}

/** True when `p` is `dir` or lies below it. */
export function isWithin(p: string, dir: string): boolean {
  return dir === '/' || p === dir || p.startsWith(`${dir}/`);
}
