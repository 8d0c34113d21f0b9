import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbTree } from '../../test/helpers/arbitraries.ts';
import {
  applyLayer,
  bufferContent,
  comparePaths,
  dumpTree,
  type Entry,
  hostFileContent,
  merge,
  normalizePath,
  Tree,
  TreeBuilder,
} from './index.ts';

const file = (s: string, mode = 0o644): Entry => ({
  kind: 'file',
  mode,
  uid: 0,
  gid: 0,
  mtime: 0,
  content: bufferContent(s),
});
const link = (target: string): Entry => ({ kind: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, target });

describe('normalizePath', () => {
  it.each([
    ['usr/bin/', '/usr/bin'],
    ['./a//b/./c', '/a/b/c'],
    ['/', '/'],
    ['', '/'],
  ])('%j → %j', (a, b) => expect(normalizePath(a)).toBe(b));
  it.each([['../x'], ['/a/../b'], ['a/..']])('rejects %j with TREE_PATH_ESCAPE', (p) => {
    expect(() => normalizePath(p)).toThrow(expect.objectContaining({ code: 'TREE_PATH_ESCAPE' }));
  });
  it('rejects NUL with TREE_PATH_INVALID', () => {
    expect(() => normalizePath('a\0b')).toThrow(expect.objectContaining({ code: 'TREE_PATH_INVALID' }));
  });
});

describe('comparePaths', () => {
  it('puts a directory right before its contents, byte-wise', () => {
    expect(['/a-b', '/a/b', '/a', '/B', '/ä'].sort(comparePaths)).toEqual(['/B', '/a', '/a/b', '/a-b', '/ä']);
  });
});

describe('Tree', () => {
  it('creates missing parents and iterates sorted', () => {
    const t = Tree.from([
      ['/z/y/x', file('1')],
      ['/a', file('2')],
    ]);
    expect(t.paths()).toEqual(['/', '/a', '/z', '/z/y', '/z/y/x']);
    expect(t.children('/z')).toEqual(['/z/y']);
  });
  it('refuses an entry below a non-directory with TREE_NOT_DIR', () => {
    expect(() =>
      Tree.from([
        ['/f', file('x')],
        ['/f/g', file('y')],
      ]),
    ).toThrow(expect.objectContaining({ code: 'TREE_NOT_DIR' }));
  });
  it('refuses two files at one path with TREE_CONFLICT', () => {
    expect(() =>
      Tree.from([
        ['/f', file('x')],
        ['/f', file('y')],
      ]),
    ).toThrow(expect.objectContaining({ code: 'TREE_CONFLICT' }));
  });
  it('refuses a hardlink to a missing file with TREE_HARDLINK_INVALID', () => {
    expect(() =>
      Tree.from([['/h', { kind: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 0, target: '/nope' }]]),
    ).toThrow(expect.objectContaining({ code: 'TREE_HARDLINK_INVALID' }));
  });
  describe('resolve', () => {
    const t = Tree.from([
      ['/usr/lib/libc.so.6', file('libc')],
      ['/lib', link('usr/lib')],
      ['/usr/lib/abs', link('/usr/lib/libc.so.6')],
      ['/up', link('../../../usr')],
      ['/loop1', link('loop2')],
      ['/loop2', link('/loop1')],
    ]);
    it('follows relative and absolute links inside the tree', async () => {
      expect(t.resolve('/lib/libc.so.6').path).toBe('/usr/lib/libc.so.6');
      expect(t.resolve('/lib/abs').path).toBe('/usr/lib/libc.so.6');
      expect(new TextDecoder().decode(await t.readFile('/lib/abs'))).toBe('libc');
    });
    it('keeps ".." at the root, as in a chroot', () => {
      expect(t.resolve('/up/lib/libc.so.6').path).toBe('/usr/lib/libc.so.6');
    });
    it('does not follow the last component unless asked', () => {
      expect(t.resolve('/lib', { follow: false }).entry?.kind).toBe('symlink');
    });
    it('throws TREE_SYMLINK_LOOP on a loop', () => {
      expect(() => t.resolve('/loop1/x')).toThrow(expect.objectContaining({ code: 'TREE_SYMLINK_LOOP' }));
    });
  });
  it('filter keeps parents and turns orphaned hardlinks into files', async () => {
    const t = new TreeBuilder()
      .put('/a/f', file('data', 0o755))
      .put('/b/h', { kind: 'hardlink', mode: 0o755, uid: 0, gid: 0, mtime: 0, target: '/a/f' })
      .build();
    const kept = t.filter((p) => p === '/b/h');
    expect(await dumpTree(kept)).toEqual({
      '/b': 'dir 0755 0:0',
      '/b/h': expect.stringMatching(/^file 0755 0:0 /),
    });
  });
  it('is never changed by a transform', async () => {
    await fc.assert(
      fc.asyncProperty(arbTree(), async (t) => {
        const before = await dumpTree(t, { mtime: true });
        t.with('/new', file('n'));
        t.without(t.paths()[1] ?? '/x');
        t.filter(() => false);
        expect(await dumpTree(t, { mtime: true })).toEqual(before);
      }),
      { numRuns: 30 },
    );
  });
});

describe('applyLayer', () => {
  const lower = Tree.from([
    ['/etc/a', file('a')],
    ['/etc/b', file('b')],
    ['/etc/sub/c', file('c')],
    ['/keep', file('k')],
  ]);
  it('deletes a path and its subtree for a .wh. file', async () => {
    const t = applyLayer(lower, [
      ['/etc/.wh.sub', file('')],
      ['/etc/.wh.a', file('')],
    ]);
    expect(Object.keys(await dumpTree(t))).toEqual(['/etc', '/etc/b', '/keep']);
  });
  it('hides everything from lower layers for an opaque whiteout, but keeps what the same layer adds', async () => {
    const t = applyLayer(lower, [
      ['/etc/.wh..wh..opq', file('')],
      ['/etc/new', file('n')],
    ]);
    expect(Object.keys(await dumpTree(t))).toEqual(['/etc', '/etc/new', '/keep']);
  });
  it('replaces a directory by a file, dropping its subtree', async () => {
    const t = applyLayer(lower, [['/etc/sub', file('now a file')]]);
    expect(t.get('/etc/sub/c')).toBeUndefined();
    expect(t.get('/etc/sub')?.kind).toBe('file');
  });
});

describe('merge', () => {
  it('throws TREE_CONFLICT naming the path when two trees have a file there', () => {
    expect(() => merge([Tree.from([['/x', file('1')]]), Tree.from([['/x', file('2')]])])).toThrow(
      expect.objectContaining({ code: 'TREE_CONFLICT', message: expect.stringContaining('"/x"') }),
    );
  });
  it('does not depend on the order of the trees when they do not conflict (directories aside)', async () => {
    const disjoint = fc.tuple(arbTree(), arbTree(), arbTree()).map(([a, b, c]) => {
      // note: each tree is moved under its own top directory, so only directories can overlap
      const prefix = (t: Tree, p: string) =>
        Tree.from(
          [...t]
            .filter(([q]) => q !== '/')
            .map(
              ([q, e]) =>
                [`${p}${q}`, e.kind === 'hardlink' ? { ...e, target: `${p}${e.target}` } : e] as const,
            ),
        );
      return [prefix(a, '/a'), prefix(b, '/b'), prefix(c, '/c')] as const;
    });
    await fc.assert(
      fc.asyncProperty(disjoint, async ([a, b, c]) => {
        const abc = await dumpTree(merge([a, b, c]));
        expect(await dumpTree(merge([c, a, b]))).toEqual(abc);
        expect(await dumpTree(merge([merge([a, b]), c]))).toEqual(abc);
        expect(await dumpTree(merge([a, merge([b, c])]))).toEqual(abc);
      }),
      { numRuns: 25 },
    );
  });
});

describe('hostFileContent', () => {
  const withFile = async (body: string, fn: (path: string) => Promise<void>) => {
    const dir = mkdtempSync(join(tmpdir(), 'pare-content-'));
    try {
      writeFileSync(join(dir, 'f'), body);
      await fn(join(dir, 'f'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const read = async (c: AsyncIterable<Uint8Array>) => {
    const parts: Buffer[] = [];
    for await (const chunk of c) parts.push(Buffer.from(chunk)); // copied at once, as a scratch reader requires
    return Buffer.concat(parts).toString();
  };

  describe('when read into a scratch buffer smaller than the file', () => {
    it('yields the same bytes as a plain read', async () => {
      await withFile('0123456789abcdefghij', async (path) => {
        const c = await hostFileContent(path);
        expect(await read(c.open(new Uint8Array(7)))).toBe('0123456789abcdefghij');
        expect(await read(c.open())).toBe('0123456789abcdefghij');
      });
    });

    it('refuses a file that grew or shrank since its size was taken, with TREE_CONFLICT', async () => {
      await withFile('0123456789', async (path) => {
        const c = await hostFileContent(path);
        appendFileSync(path, 'more');
        await expect(read(c.open(new Uint8Array(4)))).rejects.toThrow(
          expect.objectContaining({ code: 'TREE_CONFLICT', message: expect.stringContaining('changed') }),
        );
        writeFileSync(path, '01');
        await expect(read(c.open(new Uint8Array(4)))).rejects.toThrow(
          expect.objectContaining({ code: 'TREE_CONFLICT' }),
        );
      });
    });
  });
});
