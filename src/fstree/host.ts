import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { hostFileContentSized } from './content.ts';
import { normalizePath } from './path.ts';
import { type Entry, type Tree, TreeBuilder } from './tree.ts';

/**
 * Reads a directory on the host into a Tree (a source). File bytes stay on disk and are read lazily. Symlinks are
 * kept as links, never followed, so nothing outside `root` is read. Files with several links become hardlinks to the
 * first path (in tree order) that names the same inode.
 */
export async function readHostDir(root: string, options: { keepOwners?: boolean } = {}): Promise<Tree> {
  const b = new TreeBuilder();
  const inodes = new Map<string, string>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const abs = join(dir, name);
      const p = normalizePath(`${rel}/${name}`);
      const st = await lstat(abs, { bigint: false });
      const base = {
        mode: st.mode & 0o7777,
        uid: options.keepOwners ? st.uid : 0,
        gid: options.keepOwners ? st.gid : 0,
        mtime: Math.floor(st.mtimeMs / 1000),
      };
      let e: Entry;
      if (st.isDirectory()) {
        b.put(p, { ...base, kind: 'dir' });
        await walk(abs, p);
        continue;
      } else if (st.isSymbolicLink()) e = { ...base, kind: 'symlink', target: await readlink(abs) };
      else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first) e = { ...base, kind: 'hardlink', target: first };
        else {
          if (st.nlink > 1) inodes.set(key, p);
          e = { ...base, kind: 'file', content: hostFileContentSized(abs, st.size) };
        }
      } else if (st.isFIFO()) e = { ...base, kind: 'fifo' };
      else if (st.isCharacterDevice() || st.isBlockDevice()) {
        e = {
          ...base,
          kind: st.isCharacterDevice() ? 'char' : 'block',
          major: Math.floor(st.rdev / 256) & 0xfff,
          minor: (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00),
        };
      } else continue; // sockets cannot be stored in an image
      b.put(p, e);
    }
  };
  await walk(root, '/');
  return b.build();
}
