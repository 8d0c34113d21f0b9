/**
 * DpkgIndex over a generated merged-/usr root: the batch lookup (`ownersOf`, what the audit uses) must give the
 * answers of the one-by-one lookup (`ownerOf`) for owned, unowned, symlinked and status.d files.
 */
import { describe, expect, it } from 'vitest';
import { DpkgIndex } from '../../src/audit/index.ts';
import { treeRootFs } from '../../src/elf/index.ts';
import { bufferContent, type Entry, fileEntry, symlinkEntry, Tree } from '../../src/fstree/index.ts';

const STATUS = `Package: coreutils
Status: install ok installed
Architecture: amd64
Version: 9.1-1

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
`;

const files: [string, string][] = [
  ['/var/lib/dpkg/status', STATUS],
  // note: listed under /bin and /lib, found under /usr (merged /usr); "ls" is in two lists, and the exact path
  // (/usr/bin/ls, libc6's) wins over one reached through the /bin symlink (coreutils').
  ['/var/lib/dpkg/info/coreutils.list', '/.\n/bin\n/bin/ls\n/bin/cat\n/usr/share/doc/coreutils\n'],
  ['/var/lib/dpkg/info/libc6:amd64.list', '/.\n/lib/x86_64-linux-gnu/libc.so.6\n/usr/bin/ls\n'],
  ['/var/lib/dpkg/info/gone.list', '/usr/bin/gone\n'],
  ['/var/lib/dpkg/info/libc6:amd64.md5sums', 'not read\n'],
  ['/var/lib/dpkg/status.d/tzdata', 'Package: tzdata\nArchitecture: all\nVersion: 2024a-1\n'],
  ['/var/lib/dpkg/status.d/tzdata.md5sums', 'd41d8cd98f00b204e9800998ecf8427e  usr/share/zoneinfo/UTC\n'],
  ['/usr/bin/ls', 'x'],
  ['/usr/bin/cat', 'x'],
  ['/usr/bin/gone', 'x'],
  ['/usr/bin/mine', 'x'],
  ['/usr/lib/x86_64-linux-gnu/libc.so.6', 'x'],
  ['/usr/share/zoneinfo/UTC', 'x'],
];

function root() {
  const e: [string, Entry][] = files.map(([p, t]) => [p, fileEntry(bufferContent(Buffer.from(t)))]);
  e.push(['/bin', symlinkEntry('usr/bin')], ['/lib', symlinkEntry('usr/lib')]);
  return treeRootFs(Tree.from(e), 'dpkg-tree');
}

const PATHS = [
  '/usr/bin/ls',
  '/usr/bin/cat',
  '/usr/bin/gone',
  '/usr/bin/mine',
  '/usr/lib/x86_64-linux-gnu/libc.so.6',
  '/usr/share/zoneinfo/UTC',
  '/nowhere/ls',
];

describe('DpkgIndex', () => {
  describe('ownersOf', () => {
    it('returns what ownerOf returns for each path', async () => {
      const one = new DpkgIndex(root());
      const expected = new Map();
      for (const p of PATHS) {
        const o = await one.ownerOf(p);
        if (o) expected.set(p, o);
      }
      expect(await new DpkgIndex(root()).ownersOf(PATHS)).toEqual(expected);
    });

    it('finds owners through merged-/usr symlinks, status versions and status.d', async () => {
      const owners = await new DpkgIndex(root()).ownersOf(PATHS);
      expect(Object.fromEntries(owners)).toEqual({
        '/usr/bin/ls': { package: 'libc6', architecture: 'amd64', version: '2.36-9' },
        '/usr/bin/cat': { package: 'coreutils', architecture: 'amd64', version: '9.1-1' },
        // note: "gone" is not installed, so its record carries no version.
        '/usr/bin/gone': { package: 'gone', architecture: undefined, version: undefined },
        '/usr/lib/x86_64-linux-gnu/libc.so.6': { package: 'libc6', architecture: 'amd64', version: '2.36-9' },
        '/usr/share/zoneinfo/UTC': { package: 'tzdata', architecture: 'all', version: '2024a-1' },
      });
    });

    it('returns an empty map for no paths and for a root without dpkg metadata', async () => {
      expect((await new DpkgIndex(root()).ownersOf([])).size).toBe(0);
      const bare = treeRootFs(Tree.from([['/usr/bin/ls', fileEntry(bufferContent(Buffer.from('x')))]]));
      expect((await new DpkgIndex(bare).ownersOf(['/usr/bin/ls'])).size).toBe(0);
    });
  });
});
