/**
 * Closure, binding and audit inside a foreign-architecture root where ldd cannot run: an arm64 tree built from
 * crafted aarch64 ELF files (this machine has no arm64 dpkg architecture and no cross compiler). The same tree is
 * checked as an in-memory FsTree and written to a host directory (lazy host RootFs); both must agree.
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditRoot, symbolUsers } from '../../src/audit/index.ts';
import {
  craftElf,
  hostRootFs,
  Loader,
  type RootFs,
  resolveImports,
  treeRootFs,
  writeLdCache,
} from '../../src/elf/index.ts';
import { bufferContent, type Entry, fileEntry, symlinkEntry, Tree } from '../../src/fstree/index.ts';

const A64 = 183;
const T = 'aarch64-linux-gnu';
const files: [string, Uint8Array | string][] = [
  [
    '/usr/bin/app',
    craftElf({
      machine: A64,
      interp: '/lib/ld-linux-aarch64.so.1',
      needed: ['libfoo.so.1', 'libc.so.6'],
      debug: true,
      flags1: 0x08000001,
      runpath: '$ORIGIN/../lib/app',
      imports: ['foo', 'puts', 'nowhere'],
      property: { type: 0xc0000000, bits: 1 },
    }),
  ],
  [
    '/usr/bin/old',
    craftElf({
      machine: A64,
      interp: '/lib/ld-linux-aarch64.so.1',
      needed: ['libbar.so.2', 'libgone.so.9'],
      rpath: '/opt/rp',
      debug: true,
      imports: ['bar'],
    }),
  ],
  // Wrong machine first on the RUNPATH: ld.so skips it silently and keeps searching.
  ['/usr/lib/app/libfoo.so.1', craftElf({ machine: 62, soname: 'libfoo.so.1', exports: ['foo'] })],
  [
    `/usr/lib/${T}/libfoo.so.1.0.0`,
    craftElf({
      machine: A64,
      soname: 'libfoo.so.1',
      needed: ['libc.so.6'],
      exports: ['foo'],
      imports: ['puts'],
    }),
  ],
  [
    `/usr/lib/${T}/libc.so.6`,
    craftElf({
      machine: A64,
      soname: 'libc.so.6',
      needed: ['ld-linux-aarch64.so.1'],
      exports: ['puts', 'memcpy'],
    }),
  ],
  [`/usr/lib/${T}/ld-linux-aarch64.so.1`, craftElf({ machine: A64, soname: 'ld-linux-aarch64.so.1' })],
  // Found only through ld.so.cache (not in a default directory); the RPATH of the loader is searched first.
  [
    '/opt/cached/libbar.so.2',
    craftElf({ machine: A64, soname: 'libbar.so.2', needed: ['libc.so.6'], exports: ['bar'] }),
  ],
  ['/var/lib/dpkg/status.d/libfoo1', 'Package: libfoo1\nArchitecture: arm64\nVersion: 1.0-1\n'],
  [
    '/var/lib/dpkg/status.d/libfoo1.md5sums',
    `d41d8cd98f00b204e9800998ecf8427e  usr/lib/${T}/libfoo.so.1.0.0\n`,
  ],
];
const links: [string, string][] = [
  ['/lib', 'usr/lib'],
  [`/usr/lib/${T}/libfoo.so.1`, 'libfoo.so.1.0.0'],
  ['/usr/lib/ld-linux-aarch64.so.1', `${T}/ld-linux-aarch64.so.1`],
  ['/opt/rp', '/opt/rp'],
];
const cache = writeLdCache([
  { flags: 0x0303, key: 'libbar.so.2', value: '/nonexistent/x86/libbar.so.2' }, // x86-64 entry: wrong flags, skipped
  { flags: 0x0a03, key: 'libbar.so.2', value: '/opt/cached/libbar.so.2' },
]);

function tree(): Tree {
  const e: [string, Entry][] = files.map(([p, b]) => [p, fileEntry(bufferContent(b), { mode: 0o755 })]);
  e.push(['/etc/ld.so.cache', fileEntry(bufferContent(cache))]);
  for (const [p, t] of links) e.push([p, symlinkEntry(t)]);
  return Tree.from(e);
}

function hostDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'pare-arm64-'));
  mkdirSync(join(root, 'usr/lib'), { recursive: true });
  for (const [p, t] of links) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    symlinkSync(t, join(root, p));
  }
  for (const [p, b] of [...files, ['/etc/ld.so.cache', cache] as const]) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), b);
  }
  return root;
}

describe.each([
  ['an FsTree', () => treeRootFs(tree(), 'arm64-tree')],
  ['a host directory', () => hostRootFs(hostDir())],
] as [string, () => RootFs][])('an arm64 root as %s', (_what, make) => {
  it('resolves the closure as ld.so on arm64 would', async () => {
    const loader = new Loader(make());
    const c = await loader.closure('/usr/bin/app');
    expect(c.objects.map((o) => [o.name, o.path, o.realPath, o.foundBy])).toEqual([
      ['/usr/bin/app', '/usr/bin/app', '/usr/bin/app', 'main'],
      [
        '/lib/ld-linux-aarch64.so.1',
        '/lib/ld-linux-aarch64.so.1',
        `/usr/lib/${T}/ld-linux-aarch64.so.1`,
        'interpreter',
      ],
      ['libfoo.so.1', `/lib/${T}/libfoo.so.1`, `/usr/lib/${T}/libfoo.so.1.0.0`, 'default'],
      ['libc.so.6', `/lib/${T}/libc.so.6`, `/usr/lib/${T}/libc.so.6`, 'default'],
    ]);
    expect(c.skipped).toContainEqual({
      path: '/usr/lib/app/libfoo.so.1',
      reason: 'wrong ELF class/machine (x86_64/64)',
    });
    expect(c.missing).toEqual([]);
    const imports = await resolveImports(loader, c);
    expect(
      imports.map((i) => [i.name, i.provider === undefined ? null : c.objects[i.provider]!.name]),
    ).toEqual([
      ['foo', 'libfoo.so.1'],
      ['nowhere', null],
      ['puts', 'libc.so.6'],
    ]);
  });

  it('uses the arm64 ld.so.cache entry, survives an RPATH symlink loop, and reports what is missing', async () => {
    const c = await new Loader(make()).closure('/usr/bin/old');
    expect(c.objects.find((o) => o.name === 'libbar.so.2')).toMatchObject({
      path: '/opt/cached/libbar.so.2',
      foundBy: 'ld.so.cache',
    });
    expect(c.missing).toEqual(['libgone.so.9']);
  });

  it('audits the tree: facts, packages from status.d, --uses', async () => {
    const r = await auditRoot(make(), { paths: ['/usr/bin', '/usr/lib'] });
    const app = r.files.find((f) => f.path === '/usr/bin/app')!;
    expect(app).toMatchObject({ machine: 'aarch64', class: 64 });
    expect([
      app.hardening.bti.value,
      app.hardening.pac.value,
      app.hardening.ibt.value,
      app.hardening.pie.value,
    ]).toEqual([true, false, null, 'pie']);
    expect(app.libraries!.find((l) => l.name === 'libfoo.so.1')!.package).toEqual({
      package: 'libfoo1',
      architecture: 'arm64',
      version: '1.0-1',
    });
    expect(symbolUsers(r, 'foo')).toEqual([
      {
        path: '/usr/bin/app',
        symbol: 'foo',
        version: null,
        library: `/lib/${T}/libfoo.so.1`,
        package: 'libfoo1',
      },
    ]);
    expect(r.files.find((f) => f.path === '/usr/bin/old')!.missing).toEqual(['libgone.so.9']);
  });
});
