import { constants, lstatSync, readlinkSync, type Stats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { resolvePath } from '../fstree/index.ts';

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
  const lookup = (inner: string): { kind: RootLookup['kind']; target?: string } | undefined => {
    let st: Stats | undefined;
    try {
      st = lstatSync(join(root, inner), { throwIfNoEntry: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
    if (!st) return undefined;
    if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(join(root, inner)) };
    return { kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other' };
  };
  const r = resolvePath(path, lookup, { ...options, root });
  if (r.node) return { path: r.path, kind: r.node.kind };
  if (r.failed?.reason === 'not-dir') return { path: r.failed.at, kind: 'other' };
  return { path: r.path, kind: 'missing', missingAt: r.failed!.at };
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
