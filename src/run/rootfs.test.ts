import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferContent, fileEntry, symlinkEntry, Tree } from '../fstree/index.ts';
import { listTopLevel, lookupInRoot, readFileInRoot } from './rootfs.ts';
import { materializeTree } from './unpack.ts';

let dir: string;
let root: string;
let outside: string;

describe('readFileInRoot', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pare-rootfs-'));
    outside = join(dir, 'host-secret');
    writeFileSync(outside, 'host secret\n');
    root = join(dir, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'passwd.real'), 'app:x:1:1::/:/bin/sh\n');
    // note: hostile links in an image; each must resolve inside the root, never to the host
    symlinkSync('/etc/passwd.real', join(root, 'etc', 'passwd'));
    symlinkSync(`../../../../../../..${outside}`, join(root, 'etc', 'group'));
    symlinkSync(outside, join(root, 'etc', 'shadow'));
    symlinkSync('loop2', join(root, 'etc', 'loop1'));
    symlinkSync('loop1', join(root, 'etc', 'loop2'));
    symlinkSync('etc', join(root, 'config'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('follows absolute links from the root of the image', async () => {
    expect(new TextDecoder().decode(await readFileInRoot(root, '/etc/passwd'))).toBe(
      'app:x:1:1::/:/bin/sh\n',
    );
    expect(await lookupInRoot(root, '/config/passwd')).toEqual({ path: '/etc/passwd.real', kind: 'file' });
  });

  it('keeps ".." at the root and never reads a host file', async () => {
    expect(await readFileInRoot(root, '/etc/group')).toBeUndefined();
    expect(await readFileInRoot(root, '/etc/shadow')).toBeUndefined();
    expect((await lookupInRoot(root, '/etc/shadow')).kind).toBe('missing');
  });

  it('refuses a symlink loop (TREE_SYMLINK_LOOP), as the kernel does with ELOOP', async () => {
    await expect(readFileInRoot(root, '/etc/loop1')).rejects.toThrow(
      expect.objectContaining({ code: 'TREE_SYMLINK_LOOP' }),
    );
  });

  it('reports the first missing component', async () => {
    expect(await lookupInRoot(root, '/config/new/deeper')).toEqual({
      path: '/etc/new/deeper',
      kind: 'missing',
      missingAt: '/etc/new',
    });
  });

  it('lists top-level entries with symlink targets', async () => {
    expect(await listTopLevel(root)).toEqual([
      { name: 'config', kind: 'symlink', target: 'etc' },
      { name: 'etc', kind: 'dir' },
    ]);
  });
});

describe('materializeTree', () => {
  it('refuses to write into a directory that already exists', async () => {
    const d = mkdtempSync(join(tmpdir(), 'pare-mat-'));
    try {
      await expect(materializeTree(Tree.empty(), d)).rejects.toThrow(
        expect.objectContaining({ code: 'EEXIST' }),
      );
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('writes symlinks as links without following them', async () => {
    const d = mkdtempSync(join(tmpdir(), 'pare-mat-'));
    try {
      const tree = Tree.from([
        ['/etc/hostname', symlinkEntry('/proc/sys/kernel/hostname')],
        ['/etc/x', fileEntry(bufferContent('x'))],
      ]);
      const report = await materializeTree(tree, join(d, 'r'));
      expect(report).toEqual({ setidDropped: [], devicesSkipped: [], xattrsSkipped: [] });
      expect(await lookupInRoot(join(d, 'r'), '/etc/hostname', { follow: false })).toEqual({
        path: '/etc/hostname',
        kind: 'symlink',
      });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
