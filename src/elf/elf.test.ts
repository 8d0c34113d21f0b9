import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ElfError } from '../errors.ts';
import { bufferContent, fileEntry, symlinkEntry, Tree } from '../fstree/index.ts';
import {
  craftElf,
  expandDst,
  fortifyFacts,
  fortifyListOf,
  hardeningFacts,
  Loader,
  NO_FORTIFY_LIST,
  openElf,
  parseLdCache,
  readLdConf,
  resolveImports,
  treeRootFs,
  writeLdCache,
} from './index.ts';

const open = (b: Uint8Array, name = 'test.elf') => openElf(bufferContent(b), name);

describe('openElf', () => {
  describe.each([
    ['x86_64', 62, 64, 'little'],
    ['aarch64', 183, 64, 'little'],
    ['i386', 3, 32, 'little'],
    ['arm', 40, 32, 'little'],
    ['riscv', 243, 64, 'little'],
    ['ppc64', 21, 64, 'little'],
    ['s390', 22, 64, 'big'],
    ['ppc', 20, 32, 'big'],
  ] as const)('when the file is %s ELF%i %s-endian', (name, machine, cls, endian) => {
    it('reads header, dynamic section, symbols and notes', async () => {
      const f = await open(
        craftElf({
          machine,
          class: cls,
          endian,
          interp: '/lib/ld.so.1',
          needed: ['libc.so.6', 'libm.so.6'],
          soname: 'libt.so.1',
          runpath: '$ORIGIN/../lib',
          flags1: 0x08000001,
          bindNow: true,
          imports: ['puts'],
          exports: ['main'],
          property: { type: 0xc0000002, bits: 3 },
        }),
      );
      expect(f.header).toMatchObject({ class: cls, endian, machine, machineName: name, type: 3 });
      expect(await f.interpreter()).toBe('/lib/ld.so.1');
      const d = (await f.dynamic())!;
      expect(d).toMatchObject({
        needed: ['libc.so.6', 'libm.so.6'],
        soname: 'libt.so.1',
        runpath: '$ORIGIN/../lib',
        rpath: undefined,
        flags1: 0x08000001,
        bindNowTag: true,
      });
      expect((await f.dynamicSymbols()).map((s) => [s.name, s.shndx !== 0])).toEqual([
        ['', false],
        ['puts', false],
        ['main', true],
      ]);
      expect((await f.notes()).x86Features).toEqual({ ibt: true, shstk: true });
      expect(f.sections.map((s) => s.name)).toContain('.dynsym');
    });
  });

  describe('when the input is not ELF or is malformed', () => {
    it.each([
      ['empty file', new Uint8Array(0), 'ELF_NOT_ELF'],
      ['a shell script', Buffer.from('#!/bin/sh\necho hi\n'), 'ELF_NOT_ELF'],
      [
        'a bad class',
        Buffer.from([0x7f, 0x45, 0x4c, 0x46, 9, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        'ELF_UNSUPPORTED',
      ],
      [
        'a truncated header',
        Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0]),
        'ELF_TRUNCATED',
      ],
    ])('throws a typed error for %s', async (_what, bytes, code) => {
      await expect(open(bytes, '/x/bad')).rejects.toThrow(expect.objectContaining({ code, file: '/x/bad' }));
    });

    it('names the field when program headers point past the end', async () => {
      const b = craftElf({ machine: 62 });
      new DataView(b.buffer).setBigUint64(32, 1n << 40n, true); // e_phoff
      await expect(open(b)).rejects.toThrow(
        expect.objectContaining({ code: 'ELF_TRUNCATED', field: 'program headers' }),
      );
    });

    it('refuses more sections than MAX_SECTIONS through extended numbering', async () => {
      const b = craftElf({ machine: 62 });
      const dv = new DataView(b.buffer);
      dv.setUint16(60, 0, true); // e_shnum = 0 → count in section 0's sh_size
      const shoff = Number(dv.getBigUint64(40, true));
      dv.setBigUint64(shoff + 32, 1n << 30n, true);
      await expect(open(b)).rejects.toThrow(expect.objectContaining({ code: 'ELF_LIMIT', field: 'e_shnum' }));
    });
  });
});

describe('hardeningFacts', () => {
  it('reports each fact with evidence for a crafted aarch64 PIE with BTI and PAC', async () => {
    const f = await open(
      craftElf({
        machine: 183,
        interp: '/lib/ld-linux-aarch64.so.1',
        needed: ['libc.so.6'],
        debug: true,
        flags1: 0x08000001,
        bindNow: true,
        property: { type: 0xc0000000, bits: 3 },
        imports: ['__stack_chk_fail', '__memcpy_chk', 'strcpy'],
      }),
    );
    const h = await hardeningFacts(f, {
      checked: new Set(['memcpy_chk', 'strcpy_chk']),
      plain: new Set(['memcpy', 'strcpy']),
      source: 'test',
    });
    expect(h.relro).toEqual({ value: 'full', evidence: 'PT_GNU_RELRO and DT_BIND_NOW, DT_FLAGS_1 NOW' });
    expect(h.pie.value).toBe('pie');
    expect(h.canary.value).toBe(true);
    expect(h.nx).toEqual({ value: true, evidence: 'PT_GNU_STACK flags RW-' });
    expect([h.bti.value, h.pac.value, h.ibt.value]).toEqual([true, true, null]);
    expect(h.fortify).toMatchObject({
      value: true,
      fortified: 1,
      fortifiable: 2,
      protected: ['memcpy'],
      unprotected: ['strcpy'],
    });
    expect(h.stackClash.value).toBe('unknown');
  });

  it('reports an executable stack, no RELRO and a DSO', async () => {
    const f = await open(craftElf({ machine: 62, soname: 'libx.so', relro: false, stackFlags: 7 }));
    const h = await hardeningFacts(f, NO_FORTIFY_LIST);
    expect([h.relro.value, h.nx.value, h.pie.value, h.linkage.value]).toEqual([
      'none',
      false,
      'dso',
      'standalone',
    ]);
  });

  it('reads the fortify list of a libc from its default-version _chk symbols', async () => {
    const libc = await openElf(
      bufferContent(readFileSync('/usr/lib/x86_64-linux-gnu/libc.so.6')),
      'libc.so.6',
    );
    const list = await fortifyListOf(libc);
    expect(list.checked.has('memcpy_chk')).toBe(true);
    expect(list.plain.has('memcpy')).toBe(true);
  });

  it('finds canary and fortify facts as a scan of the symbol objects does, for any names', async () => {
    const list = {
      checked: new Set(['memcpy_chk', 'printf_chk', 'fdelt_chk']),
      plain: new Set(['memcpy', 'printf', 'fdelt']),
      source: 'test',
    };
    // note: underscores, versions, `_chk` fragments and names longer than any in the list all take other paths.
    const name = fc
      .array(
        fc.constantFrom(
          '_',
          '__',
          'memcpy',
          'printf',
          'fdelt',
          '_chk',
          'chk',
          '@GLIBC_2.3.4',
          'x',
          '_ZN3foo',
          '__stack_chk_fail',
          '__intel_security_cookie',
        ),
        {
          minLength: 1,
          maxLength: 5,
        },
      )
      .map((parts) => parts.join(''));
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(name, { maxLength: 12 }),
        fc.uniqueArray(name, { maxLength: 6 }),
        async (imports, exports) => {
          const f = await open(
            craftElf({ machine: 62, imports, exports: exports.filter((e) => !imports.includes(e)) }),
          );
          const h = await hardeningFacts(f, list, { scanCode: false });
          const { listSource: _, ...want } = fortifyFacts(await f.dynamicSymbols(), undefined, list);
          const canary = (await f.dynamicSymbols()).find((x) =>
            ['__stack_chk_fail', '__stack_chk_guard', '__intel_security_cookie'].some((c) =>
              x.name.includes(c),
            ),
          );
          expect(h.canary.value).toBe(canary !== undefined);
          if (canary) expect(h.canary.evidence).toContain(`symbol ${canary.name} (.dynsym`);
          expect({
            source: h.fortify.value,
            fortified: h.fortify.fortified,
            fortifiable: h.fortify.fortifiable,
            protected: h.fortify.protected,
            unprotected: h.fortify.unprotected,
          }).toEqual(want);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('parseLdCache', () => {
  it('reads back what writeLdCache wrote, in either byte order', () => {
    const entries = [
      { flags: 0x0a03, key: 'libc.so.6', value: '/lib/aarch64-linux-gnu/libc.so.6' },
      { flags: 0x0303, key: 'libz.so.1', value: '/usr/lib/x86_64-linux-gnu/libz.so.1' },
    ];
    for (const le of [true, false])
      expect(parseLdCache(writeLdCache(entries, le), 'c', !le)).toEqual(
        entries.map((e) => ({ ...e, hwcap: 0n })),
      );
  });
  it('reads the host cache', () => {
    const e = parseLdCache(readFileSync('/etc/ld.so.cache'), '/etc/ld.so.cache');
    expect(e.find((x) => x.key === 'libc.so.6')).toMatchObject({ flags: 0x0303 });
  });
  it('throws ELF_CACHE_INVALID for a truncated cache', () => {
    const b = writeLdCache([{ flags: 3, key: 'a', value: '/a' }]);
    expect(() => parseLdCache(b.subarray(0, 60), 'c')).toThrow(
      expect.objectContaining({ code: 'ELF_CACHE_INVALID' }),
    );
  });
});

describe('expandDst', () => {
  const vars = { origin: '/opt/app/bin', lib: 'lib/x86_64-linux-gnu', platform: 'x86_64' };
  it.each([
    ['$ORIGIN/../lib', '/opt/app/bin/../lib'],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ld.so's ${ORIGIN} syntax, not a template
    ['${ORIGIN}/x', '/opt/app/bin/x'],
    ['/usr/$LIB/a', '/usr/lib/x86_64-linux-gnu/a'],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ld.so's ${PLATFORM} syntax, not a template
    ['/p/${PLATFORM}', '/p/x86_64'],
    ['/keep/$ORIGINAL', '/keep/$ORIGINAL'],
    ['/keep/$FOO', '/keep/$FOO'],
  ])('expands %s to %s', (inp, out) => expect(expandDst(inp, vars)).toBe(out));
  it('returns undefined when the origin is unknown', () =>
    expect(expandDst('$ORIGIN/x', { ...vars, origin: undefined })).toBeUndefined());
});

describe('readLdConf', () => {
  it('follows include globs in sorted order and ignores comments and hwcap lines', async () => {
    const t = Tree.from([
      ['/etc/ld.so.conf', fileEntry(bufferContent('# c\ninclude /etc/ld.so.conf.d/*.conf\n/opt/last\n'))],
      ['/etc/ld.so.conf.d/b.conf', fileEntry(bufferContent('/opt/b\nhwcap 1 x\n'))],
      ['/etc/ld.so.conf.d/a.conf', fileEntry(bufferContent('/opt/a # trailing\ninclude /etc/ld.so.conf\n'))],
      ['/etc/ld.so.conf.d/c.txt', fileEntry(bufferContent('/opt/never\n'))],
    ]);
    expect(await readLdConf(treeRootFs(t))).toEqual(['/opt/a', '/opt/b', '/opt/last']);
  });
});

describe('Loader', () => {
  describe('when symlinks form a cycle', () => {
    it('reports TREE_SYMLINK_LOOP from the root and keeps searching other directories', async () => {
      const t = Tree.from([
        [
          '/bin/app',
          fileEntry(bufferContent(craftElf({ machine: 62, needed: ['liba.so'] })), { mode: 0o755 }),
        ],
        ['/lib/liba.so', symlinkEntry('/usr/lib/liba.so')],
        ['/usr/lib/liba.so', symlinkEntry('/lib/liba.so')],
        ['/loop', symlinkEntry('/loop')],
      ]);
      const fs = treeRootFs(t);
      await expect(fs.stat('/loop')).rejects.toThrow(expect.objectContaining({ code: 'TREE_SYMLINK_LOOP' }));
      const c = await new Loader(fs).closure('/bin/app');
      expect(c.missing).toEqual(['liba.so']);
      expect(c.skipped.map((s) => s.path)).toContain('/lib/liba.so');
    });
  });
});

describe('ElfFile.gnuHashKeys', () => {
  it('returns, for every symbol the DT_GNU_HASH table covers, the key of its name bytes (real libc)', async () => {
    const libc = await openElf(
      bufferContent(readFileSync('/usr/lib/x86_64-linux-gnu/libc.so.6')),
      'libc.so.6',
    );
    const t = await libc.dynamicSymbolTable();
    const stored = (await libc.gnuHashKeys())!;
    expect(stored.first).toBeGreaterThan(0);
    expect(stored.first).toBeLessThan(t.count);
    for (let i = stored.first; i < t.count; i++) expect(stored.key(i)).toBe(t.nameHash(i));
  });

  it('returns undefined for a file without DT_GNU_HASH', async () => {
    expect(await (await open(craftElf({ machine: 62, exports: ['f'] }))).gnuHashKeys()).toBeUndefined();
  });
});

describe('resolveImports', () => {
  describe('when two names have the same hash', () => {
    it('binds by name bytes, not by hash', async () => {
      // note: "aB" and "b!" collide under h * 33 + c (97 * 33 + 66 === 98 * 33 + 33); only "aB" is defined.
      const t = Tree.from([
        [
          '/bin/app',
          fileEntry(
            bufferContent(craftElf({ machine: 62, needed: ['liba.so'], imports: ['aB', 'b!', 'c'] })),
            { mode: 0o755 },
          ),
        ],
        [
          '/lib/liba.so',
          fileEntry(bufferContent(craftElf({ machine: 62, soname: 'liba.so', exports: ['aB', 'c'] }))),
        ],
      ]);
      const loader = new Loader(treeRootFs(t));
      const c = await loader.closure('/bin/app');
      const imports = await resolveImports(loader, c);
      expect(
        imports.map((i) => [i.name, i.provider === undefined ? null : c.objects[i.provider]!.path]),
      ).toEqual([
        ['aB', '/lib/liba.so'],
        ['b!', null],
        ['c', '/lib/liba.so'],
      ]);
    });
  });
});

// Fuzzing: whatever the bytes, parsing either succeeds or throws an ElfError — never another exception, never a hang.
async function parseEverything(b: Uint8Array): Promise<void> {
  try {
    const f = await open(b);
    await f.dynamic();
    await f.dynamicSymbols();
    await f.symbolTable();
    await f.notes();
    await f.interpreter();
    await hardeningFacts(f, NO_FORTIFY_LIST);
  } catch (e) {
    if (!(e instanceof ElfError)) throw e;
  }
}

describe('fuzzing', () => {
  const real = readFileSync('/usr/bin/true');
  const crafted = craftElf({
    machine: 183,
    interp: '/lib/ld',
    needed: ['a', 'b'],
    imports: ['x'],
    exports: ['y'],
    property: { type: 0xc0000000, bits: 1 },
  });

  it('arbitrary bytes after an ELF magic throw only ElfError', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (tail) => {
        await parseEverything(Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), tail]));
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['a real binary', real],
    ['a crafted aarch64 binary', crafted],
  ])('mutated and truncated copies of %s throw only ElfError', async (_n, seed) => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.nat({ max: Math.min(seed.length - 1, 8191) }), fc.integer({ min: 0, max: 255 })),
          { maxLength: 24 },
        ),
        fc.nat({ max: seed.length }),
        async (mutations, cut) => {
          const b = Buffer.from(seed);
          for (const [at, v] of mutations) b[at] = v;
          await parseEverything(b.subarray(0, Math.max(cut, 0)));
          await parseEverything(b);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('bogus 64-bit offsets and counts in header fields throw only ElfError', async () => {
    const fields = [24, 32, 40, 54, 56, 58, 60, 62];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...fields),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        async (at, v) => {
          const b = Buffer.from(crafted);
          const dv = new DataView(b.buffer, b.byteOffset);
          if (at >= 52) dv.setUint16(at, Number(v & 0xffffn), true);
          else dv.setBigUint64(at, v, true);
          await parseEverything(b);
        },
      ),
      { numRuns: 200 },
    );
  });
});
