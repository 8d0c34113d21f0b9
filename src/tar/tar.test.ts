import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbTree, canonicalHardlinks } from '../../test/helpers/arbitraries.ts';
import { bufferContent, dumpTree, readHostDir, Tree, TreeBuilder } from '../fstree/index.ts';
import { BLOCK, encodeHeader, paxRecord } from './header.ts';
import { collect, readTar, tarFromTree, tarToTree } from './index.ts';

async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}
async function* inPieces(b: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

function member(
  path: string,
  type: 'file' | 'dir' | 'symlink' | 'hardlink',
  data = '',
  linkname = '',
): Uint8Array {
  const body = new TextEncoder().encode(data);
  const h = encodeHeader({
    path,
    type,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    linkname,
    devmajor: 0,
    devminor: 0,
    xattrs: {},
  });
  const pad = new Uint8Array(Math.ceil(body.length / BLOCK) * BLOCK);
  pad.set(body);
  return Buffer.concat([h, pad]);
}
function archive(...members: Uint8Array[]): Uint8Array {
  return Buffer.concat([...members, new Uint8Array(1024)]);
}

describe('tarFromTree', () => {
  describe('when given any tree', () => {
    it('reads back to the same tree (hardlinks canonical), in any chunking', async () => {
      await fc.assert(
        fc.asyncProperty(
          arbTree({ devices: true }),
          fc.integer({ min: 1, max: 2000 }),
          async (tree, chunk) => {
            const bytes = await collect(tarFromTree(tree));
            expect(bytes.length % BLOCK).toBe(0);
            const back = await tarToTree(inPieces(bytes, chunk));
            expect(await dumpTree(back, { mtime: true })).toEqual(
              await dumpTree(canonicalHardlinks(tree), { mtime: true }),
            );
          },
        ),
        { numRuns: 60 },
      );
    });
    it('is deterministic: the same tree gives the same bytes', async () => {
      await fc.assert(
        fc.asyncProperty(arbTree(), async (tree) => {
          const a = await collect(tarFromTree(tree));
          const b = await collect(tarFromTree(Tree.from([...tree].reverse())));
          expect(Buffer.compare(a, b)).toBe(0);
        }),
        { numRuns: 30 },
      );
    });
  });
  describe('when an epoch is given', () => {
    it('clamps mtimes to it', async () => {
      const t = new TreeBuilder()
        .put('/f', {
          kind: 'file',
          mode: 0o644,
          uid: 0,
          gid: 0,
          mtime: 2_000_000_000,
          content: bufferContent('x'),
        })
        .build();
      const back = await tarToTree(tarFromTree(t, { epoch: 1000 }));
      expect(back.get('/f')!.mtime).toBe(1000);
    });
  });
  describe('when file bodies are read into one reused buffer', () => {
    it('gives the same bytes as without, for a consumer that copies each chunk at once', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pare-tar-reuse-'));
      try {
        // Host files around the 1 MiB buffer's size and the 512-byte tar block, with distinct bytes.
        for (const size of [0, 1, 511, 512, 1 << 20, (1 << 20) + 5, (2 << 20) + 700])
          writeFileSync(
            join(dir, `f${size}`),
            Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff)),
          );
        const tree = await readHostDir(dir);
        const copied: Uint8Array[] = [];
        for await (const c of tarFromTree(tree, { reuse: true }))
          copied.push(Uint8Array.prototype.slice.call(c));
        expect(Buffer.compare(Buffer.concat(copied), await collect(tarFromTree(tree)))).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
  describe('when content lies about its size', () => {
    it('throws TAR_HEADER_INVALID', async () => {
      const liar = { ...bufferContent('abc'), size: 5 };
      const t = new TreeBuilder()
        .put('/f', { kind: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: liar })
        .build();
      await expect(collect(tarFromTree(t))).rejects.toThrow(
        expect.objectContaining({ code: 'TAR_HEADER_INVALID' }),
      );
    });
  });
});

describe('readTar', () => {
  describe('when the archive is malformed', () => {
    it('throws TAR_CHECKSUM for a flipped header byte', async () => {
      const a = archive(member('a', 'file', 'hello'));
      a[10] = a[10]! ^ 0x01;
      await expect(tarToTree(once(a))).rejects.toThrow(expect.objectContaining({ code: 'TAR_CHECKSUM' }));
    });
    it('throws TAR_TRUNCATED when a body is cut', async () => {
      const a = member('a', 'file', 'x'.repeat(1000)).subarray(0, 700);
      await expect(tarToTree(once(a))).rejects.toThrow(expect.objectContaining({ code: 'TAR_TRUNCATED' }));
    });
    it('throws TAR_PAX_INVALID for a record overrunning its header', async () => {
      const bad = new TextEncoder().encode('99 path=x\n');
      const h = encodeHeader({
        path: 'PaxHeaders.0/x',
        type: 'file',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: bad.length,
        mtime: 0,
        linkname: '',
        devmajor: 0,
        devminor: 0,
        xattrs: {},
      });
      h[156] = 'x'.charCodeAt(0);
      // fix the checksum after changing the type flag
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
      h.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, '0')}\0 `), 148);
      const body = new Uint8Array(BLOCK);
      body.set(bad);
      await expect(tarToTree(once(archive(h, body, member('x', 'file'))))).rejects.toThrow(
        expect.objectContaining({ code: 'TAR_PAX_INVALID' }),
      );
    });
    it('never throws anything but TarError on random bytes', async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 3000 }), async (junk) => {
          try {
            await tarToTree(once(junk));
          } catch (e) {
            expect((e as Error).name).toBe('TarError');
          }
        }),
        { numRuns: 200 },
      );
    });
  });
  describe('when members use PAX records', () => {
    it('applies path, linkpath, size and xattrs', async () => {
      const long = `${'d'.repeat(200)}/ünï-${'f'.repeat(150)}`;
      const t = new TreeBuilder()
        .put(`/${long}`, {
          kind: 'file',
          mode: 0o4755,
          uid: 3_000_000,
          gid: 1,
          mtime: 5,
          content: bufferContent('pax'),
          xattrs: { 'security.capability': new Uint8Array([1, 0, 0, 2]) },
        })
        .put('/l', { kind: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, target: long })
        .build();
      const back = await tarToTree(tarFromTree(t));
      const f = back.get(`/${long}`);
      expect(f).toMatchObject({ kind: 'file', mode: 0o4755, uid: 3_000_000 });
      expect(f?.xattrs?.['security.capability']).toEqual(new Uint8Array([1, 0, 0, 2]));
      expect(back.get('/l')).toMatchObject({ kind: 'symlink', target: long });
    });
    it('writes a record whose length counts itself', () => {
      expect(new TextDecoder().decode(paxRecord('path', 'a'))).toBe('9 path=a\n');
      // note: 94 and 95 bytes of value push the length from two digits to three
      expect(paxRecord('k', 'x'.repeat(93)).length).toBe(99);
      expect(new TextDecoder().decode(paxRecord('k', 'x'.repeat(94))).slice(0, 4)).toBe('101 ');
      expect(paxRecord('k', 'x'.repeat(95)).length).toBe(102);
    });
  });
});

describe('tarToTree', () => {
  describe('when the archive tries to escape the root', () => {
    it.each([
      ['an absolute path', archive(member('/etc/passwd', 'file', 'x'))],
      ['a ".." component', archive(member('a/../../x', 'file', 'x'))],
      ['a symlink climbing out', archive(member('a', 'dir'), member('a/l', 'symlink', '', '../../etc'))],
      ['a hardlink to nothing earlier', archive(member('h', 'hardlink', '', 'etc/shadow'))],
      ['a hardlink climbing out', archive(member('f', 'file', 'x'), member('h', 'hardlink', '', '../f'))],
      [
        'a write through a symlinked dir',
        archive(member('d', 'symlink', '', '/etc'), member('d/passwd', 'file', 'x')),
      ],
    ])('refuses %s with TAR_UNSAFE_PATH', async (_what, a) => {
      await expect(tarToTree(once(a))).rejects.toThrow(expect.objectContaining({ code: 'TAR_UNSAFE_PATH' }));
    });
  });
  describe('when a member name repeats', () => {
    it('keeps the later one, as extraction does', async () => {
      const t = await tarToTree(once(archive(member('a', 'file', '1'), member('a', 'file', '22'))));
      expect(t.get('/a')).toMatchObject({ kind: 'file' });
      expect(new TextDecoder().decode(await t.readFile('/a'))).toBe('22');
    });
  });
  it('reads members of a GNU tar with ./ prefixes', async () => {
    const entries = [];
    for await (const m of readTar(once(archive(member('./x', 'file', 'y'))))) entries.push(m.header.path);
    expect(entries).toEqual(['x']);
  });
});
