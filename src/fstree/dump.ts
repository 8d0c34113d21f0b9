import { createHash } from 'node:crypto';
import type { Entry, Tree } from './tree.ts';

/**
 * A compact, diffable dump of a tree for golden tests and `pare diff` (after chisel):
 * `{"/usr/bin/foo": "file 0755 0:0 1a2b3c4d", "/lib": "symlink usr/lib", "/tmp": "dir 1777 0:0"}`.
 * Files show the first 8 hex digits of their sha256. mtimes are left out unless asked for.
 */
export async function dumpTree(
  tree: Tree,
  options: { mtime?: boolean; root?: boolean } = {},
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [p, e] of tree) {
    if (p === '/' && !options.root) continue;
    out[p] = await describeEntry(e, options.mtime ?? false);
  }
  return out;
}

/** Returns the one-line description of an entry used by dumpTree. */
export async function describeEntry(e: Entry, withMtime = false): Promise<string> {
  const mode = e.mode.toString(8).padStart(4, '0');
  const own = `${e.uid}:${e.gid}`;
  const t = withMtime ? ` @${e.mtime}` : '';
  const x =
    e.xattrs && Object.keys(e.xattrs).length > 0 ? ` xattrs=${Object.keys(e.xattrs).sort().join(',')}` : '';
  switch (e.kind) {
    case 'file': {
      const h = createHash('sha256');
      for await (const c of e.content.open()) h.update(c);
      return `file ${mode} ${own} ${h.digest('hex').slice(0, 8)}${t}${x}`;
    }
    case 'dir':
      return `dir ${mode} ${own}${t}${x}`;
    case 'symlink':
      return `symlink ${e.target}${x}`;
    case 'hardlink':
      return `hardlink ${e.target}`;
    case 'char':
    case 'block':
      return `${e.kind} ${mode} ${own} ${e.major},${e.minor}${t}`;
    case 'fifo':
      return `fifo ${mode} ${own}${t}`;
  }
}
