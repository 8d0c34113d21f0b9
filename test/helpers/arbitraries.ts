import fc from 'fast-check';
import { bufferContent, type Entry, Tree, TreeBuilder } from '../../src/fstree/index.ts';

/**
 * fast-check generators for trees and tar inputs, shared by the tar, oci and layout property tests (after
 * go-containerregistry's `random` package). Names include long (> 100 and > 255 bytes) and non-ASCII ones.
 */

const shortName = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,11}$/).filter((s) => !s.startsWith('.wh.'));
const oddName = fc.constantFrom(
  'ünïcødé',
  '日本語',
  'space name',
  'x'.repeat(120),
  'long-'.repeat(30),
  'emoji-😀',
);
export const arbName = fc.oneof({ weight: 5, arbitrary: shortName }, { weight: 1, arbitrary: oddName });

const arbMode = fc.oneof(
  fc.constantFrom(0o755, 0o644, 0o600, 0o4755, 0o2755, 0o1777, 0o700),
  fc.integer({ min: 0, max: 0o7777 }),
);
const arbOwner = fc.oneof(fc.constant(0), fc.constant(65532), fc.integer({ min: 0, max: 70000 }));
const arbMtime = fc.integer({ min: 0, max: 2_000_000_000 });

export interface TreeArbOptions {
  /** Include char/block devices and fifos (not creatable by every tar extractor). */
  readonly devices?: boolean;
  readonly maxEntries?: number;
}

/** Random trees: nested dirs, files (0–3000 bytes), symlinks (inside the tree), hardlinks. */
export function arbTree(options: TreeArbOptions = {}): fc.Arbitrary<Tree> {
  const op = fc.record({
    depth: fc.array(arbName, { minLength: 0, maxLength: 3 }),
    name: arbName,
    kind: fc.constantFrom(
      ...(['file', 'file', 'dir', 'symlink', 'hardlink'] as const),
      ...(options.devices ? (['char', 'fifo'] as const) : []),
    ),
    mode: arbMode,
    uid: arbOwner,
    gid: arbOwner,
    mtime: arbMtime,
    data: fc.uint8Array({ maxLength: 3000 }),
    pick: fc.nat(),
  });
  return fc.array(op, { maxLength: options.maxEntries ?? 25 }).map((ops) => {
    const b = new TreeBuilder();
    const files: string[] = [];
    for (const o of ops) {
      const dir = `/${o.depth.join('/')}`;
      const p = `${dir === '/' ? '' : dir}/${o.name}`;
      if (b.has(p)) continue;
      // Parents must be (or become) directories.
      let ok = true;
      for (let i = 1; i <= o.depth.length; i++) {
        const e = b.get(`/${o.depth.slice(0, i).join('/')}`);
        if (e && e.kind !== 'dir') ok = false;
      }
      if (!ok) continue;
      const base = { mode: o.mode, uid: o.uid, gid: o.gid, mtime: o.mtime };
      let e: Entry;
      switch (o.kind) {
        case 'file':
          e = { ...base, kind: 'file', content: bufferContent(o.data) };
          break;
        case 'dir':
          e = { ...base, mode: o.mode | 0o700, kind: 'dir' };
          break;
        case 'symlink':
          e = {
            ...base,
            mode: 0o777,
            kind: 'symlink',
            target: files.length > 0 ? files[o.pick % files.length]! : 'nowhere',
          };
          break;
        case 'hardlink':
          if (files.length === 0) continue;
          e = { ...base, kind: 'hardlink', target: files[o.pick % files.length]! };
          break;
        case 'char':
          e = { ...base, kind: 'char', major: 1, minor: 3 };
          break;
        case 'fifo':
          e = { ...base, kind: 'fifo' };
          break;
      }
      b.put(p, e);
      if (e.kind === 'file') files.push(p);
    }
    return b.build();
  });
}

/**
 * Returns `tree` with hardlink groups in canonical form: the first name of each inode in tree order holds the file
 * and the others link to it (what the tar writer emits and any reader returns). Hardlink metadata follows the file.
 */
export function canonicalHardlinks(tree: Tree): Tree {
  const primary = new Map<string, string>();
  for (const [p, e] of tree) {
    const inode = e.kind === 'hardlink' ? e.target : e.kind === 'file' ? p : undefined;
    if (inode !== undefined && !primary.has(inode)) primary.set(inode, p);
  }
  const b = new TreeBuilder();
  const out: [string, Entry][] = [];
  for (const [p, e] of tree) {
    if (e.kind !== 'file' && e.kind !== 'hardlink') {
      out.push([p, e]);
      continue;
    }
    const inode = e.kind === 'file' ? p : e.target;
    const file = tree.get(inode);
    if (file?.kind !== 'file') continue;
    const first = primary.get(inode)!;
    if (p === first) out.push([p, { ...file }]);
    else
      out.push([
        p,
        { mode: file.mode, uid: file.uid, gid: file.gid, mtime: file.mtime, kind: 'hardlink', target: first },
      ]);
  }
  for (const [p, e] of out) if (e.kind !== 'hardlink') b.put(p, e);
  for (const [p, e] of out) if (e.kind === 'hardlink') b.put(p, e);
  return b.build();
}

export { Tree };
