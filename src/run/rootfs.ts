import { constants } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MAX_SYMLINK_HOPS, normalizePath } from '../fstree/index.ts';

/**
 * Looking things up in an unpacked root filesystem on the host as the sandboxed process will see them: symlinks are
 * resolved inside the root (an absolute target starts at the root, `..` at the root stays there), never on the host.
 * An image's `/etc/passwd -> /proc/self/root/etc/shadow` must not make pare read the host's files.
 */

/** What a path inside a root leads to. */
export interface RootLookup {
  /** Canonical path inside the root after following symlinks (the part that exists, plus the missing rest). */
  readonly path: string;
  readonly kind: 'file' | 'dir' | 'symlink' | 'other' | 'missing';
  /** The first component that does not exist (when kind is 'missing'). */
  readonly missingAt?: string;
}

/** Largest file `readFileInRoot` will read: /etc/passwd and /etc/group are small; an image could make them huge. */
export const MAX_ROOT_FILE_SIZE = 4 * 1024 * 1024;

/** Returns where `path` leads inside `root` (following every symlink, the last one too unless `follow` is false). */
export async function lookupInRoot(
  root: string,
  path: string,
  options: { follow?: boolean } = {},
): Promise<RootLookup> {
  const follow = options.follow ?? true;
  let todo = split(path);
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      done.pop();
      continue;
    }
    const inner = `/${[...done, c].join('/')}`;
    const st = await lstat(join(root, inner)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return undefined;
      throw e;
    });
    if (!st) return { path: normalizePath(`${inner}/${todo.join('/')}`), kind: 'missing', missingAt: inner };
    if (st.isSymbolicLink() && (todo.length > 0 || follow)) {
      if (++hops > MAX_SYMLINK_HOPS) return { path: inner, kind: 'other' };
      const target = await readlink(join(root, inner));
      if (target.startsWith('/')) done.length = 0;
      todo = [...split(target), ...todo];
      continue;
    }
    if (todo.length > 0 && !st.isDirectory()) return { path: inner, kind: 'other' };
    done.push(c);
    if (todo.length === 0) {
      return {
        path: inner,
        kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other',
      };
    }
  }
  return { path: `/${done.join('/')}`, kind: 'dir' };
}

/**
 * Returns the bytes of the regular file `path` leads to inside `root`, or undefined when there is none. Reads at most
 * MAX_ROOT_FILE_SIZE bytes. The final open uses O_NOFOLLOW, so a symlink swapped in after the lookup is not followed.
 */
export async function readFileInRoot(root: string, path: string): Promise<Uint8Array | undefined> {
  const found = await lookupInRoot(root, path);
  if (found.kind !== 'file') return undefined;
  const fh = await open(join(root, found.path), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const size = Math.min(st.size, MAX_ROOT_FILE_SIZE);
    const buf = Buffer.alloc(size);
    let got = 0;
    while (got < size) {
      const { bytesRead } = await fh.read(buf, got, size - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/** One entry directly below the root, as the sandbox recreates it. */
export interface TopLevelEntry {
  readonly name: string;
  readonly kind: 'dir' | 'file' | 'symlink' | 'other';
  /** Link text for symlinks. */
  readonly target?: string;
}

/** Returns the entries directly below `root`, sorted by name (byte order). */
export async function listTopLevel(root: string): Promise<TopLevelEntry[]> {
  const names = (await readdir(root)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const out: TopLevelEntry[] = [];
  for (const name of names) {
    const st = await lstat(join(root, name));
    if (st.isSymbolicLink()) out.push({ name, kind: 'symlink', target: await readlink(join(root, name)) });
    else out.push({ name, kind: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other' });
  }
  return out;
}

function split(p: string): string[] {
  return p.split('/').filter((c) => c !== '');
}
