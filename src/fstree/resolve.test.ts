import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/tmp.ts';
import { hostRootFs, treeRootFs } from '../elf/index.ts';
import { lookupInRoot } from '../run/index.ts';
import { walk } from '../slice/walk.ts';
import { bufferContent, type Entry, Tree } from './index.ts';

/**
 * One table of path cases, run against every caller of the one resolver (resolve.ts): the tree itself, the slicer's
 * walk, the ELF engine over a tree and over a host directory, and `pare run`'s lookups in an unpacked root. Each must
 * reach the same place, or agree that there is none.
 */

const ROOT: readonly (readonly [string, 'file' | 'dir' | string])[] = [
  ['/usr/lib/libc.so.6', 'file'],
  ['/usr/lib/py/python', 'file'],
  ['/usr/bin/python3', '->../lib/py/python'],
  ['/lib', '->usr/lib'],
  ['/lib64', '->/usr/lib'],
  ['/etc/x', 'file'],
  ['/etc/passwd', '->/../../../host/etc/passwd'],
  ['/up', '->../../../usr'],
  ['/loop1', '->loop2'],
  ['/loop2', '->/loop1'],
  ['/self', '->self'],
];

/** path → the canonical path reached, `missing`, or `loop`. */
const CASES: readonly (readonly [string, string])[] = [
  ['/lib/libc.so.6', '/usr/lib/libc.so.6'],
  ['/lib64/libc.so.6', '/usr/lib/libc.so.6'],
  ['/usr/bin/python3', '/usr/lib/py/python'],
  ['/up/lib/libc.so.6', '/usr/lib/libc.so.6'],
  ['/./etc//x', '/etc/x'],
  ['/usr/../etc/x', '/etc/x'],
  ['/../../etc/x', '/etc/x'],
  ['/lib/../etc/x', 'missing'],
  ['/missing/../etc/x', 'missing'],
  ['/etc/x/y', 'missing'],
  ['/etc/passwd', 'missing'],
  ['/loop1/x', 'loop'],
  ['/self', 'loop'],
];

const entry = (spec: string): Entry =>
  spec.startsWith('->')
    ? { kind: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, target: spec.slice(2) }
    : { kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: bufferContent(new Uint8Array([1])) };

describe('the one path resolver, as every caller sees it', () => {
  const tree = Tree.from(ROOT.map(([p, s]) => [p, entry(s)] as const));
  const host = tempDir('pare-resolve-');
  for (const [p, s] of ROOT) {
    mkdirSync(join(host, p, '..'), { recursive: true });
    if (s.startsWith('->')) symlinkSync(s.slice(2), join(host, p));
    else writeFileSync(join(host, p), '\x01');
  }

  /** Each caller's answer for a path: the canonical path, `missing` or `loop`. */
  const callers: Record<string, (p: string) => Promise<string>> = {
    'Tree.resolve': async (p) => (tree.resolve(p).entry ? tree.resolve(p).path : 'missing'),
    'slice walk': async (p) => (walk(tree, p).entry ? walk(tree, p).path : 'missing'),
    'ELF tree root': async (p) => (await treeRootFs(tree).stat(p))?.path ?? 'missing',
    'ELF host root': async (p) => (await hostRootFs(host).stat(p))?.path ?? 'missing',
    'pare run lookup': async (p) => {
      const r = await lookupInRoot(host, p);
      return r.kind === 'missing' || r.kind === 'other' ? 'missing' : r.path;
    },
  };

  for (const [name, answer] of Object.entries(callers))
    it(`${name} reaches the same place for every case`, async () => {
      for (const [path, want] of CASES) {
        const got = await answer(path).catch((e: { code?: string }) => {
          if (e.code === 'TREE_SYMLINK_LOOP') return 'loop';
          throw e;
        });
        expect(got, path).toBe(want);
      }
    });

  it('gives the path as far as resolved plus the rest as given when nothing is there', () => {
    expect(tree.resolve('/lib/../etc/x').path).toBe('/usr/etc/x');
    expect(tree.resolve('/missing/../etc/x').path).toBe('/missing/../etc/x');
    expect(walk(tree, '/missing/../etc/x').path).toBe('/missing/../etc/x');
    expect(tree.resolve('/etc/passwd').path).toBe('/host/etc/passwd');
  });

  it('names the root in the loop error of a host directory', async () => {
    await expect(hostRootFs(host).stat('/loop1')).rejects.toThrow(host);
  });

  it('does not follow the last link with follow: false, and lists the links it followed', async () => {
    expect(tree.resolve('/lib', { follow: false }).entry?.kind).toBe('symlink');
    expect((await lookupInRoot(host, '/lib', { follow: false })).kind).toBe('symlink');
    expect(walk(tree, '/usr/bin/python3').links).toEqual(['/usr/bin/python3']);
    expect(walk(tree, '/lib64/libc.so.6').links).toEqual(['/lib64']);
  });
});
