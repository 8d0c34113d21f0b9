import { PackageURL } from 'packageurl-js';
import { describe, expect, it } from 'vitest';
import { elfWithPackageNote, fixtureTree } from '../../test/sbom/fixture-tree.ts';
import { bufferContent, fileEntry, Tree } from '../fstree/index.ts';
import { parseCopyright } from './copyright.ts';
import { readDpkgDatabase } from './dpkg.ts';
import { readPackageNote } from './elf-note.ts';
import { inventory } from './inventory.ts';
import { debianExpressionToSpdx, debianLicenseToSpdx } from './licenses.ts';
import { distroQualifier, parseOsRelease, readOsRelease } from './os-release.ts';
import { uuidV5 } from './uuid.ts';

describe('debianLicenseToSpdx', () => {
  it.each([
    ['GPL-2', 'GPL-2.0-only'],
    ['GPL-2+', 'GPL-2.0-or-later'],
    ['LGPL-2.1+', 'LGPL-2.1-or-later'],
    ['GPL-3+', 'GPL-3.0-or-later'],
    ['Expat', 'MIT'],
    ['BSD-3-clause', 'BSD-3-Clause'],
    ['Apache-2.0', 'Apache-2.0'],
    ['zlib', 'Zlib'],
    ['Artistic', 'Artistic-1.0-Perl'],
    ['MPL-2.0', 'MPL-2.0'],
    ['ISC', 'ISC'],
    ['public-domain', 'LicenseRef-public-domain'],
    ['permissive', 'LicenseRef-permissive'],
    ['Custom+', 'LicenseRef-Custom-or-later'],
  ])('maps %s to %s', (deb, spdx) => {
    expect(debianLicenseToSpdx(deb)).toBe(spdx);
  });
});

describe('debianExpressionToSpdx', () => {
  it.each([
    ['GPL-2+ or Artistic', 'GPL-2.0-or-later OR Artistic-1.0-Perl'],
    ['LGPL-2.1+ and BSD-3-clause', 'LGPL-2.1-or-later AND BSD-3-Clause'],
    ['GPL-3+ with GCC-runtime-library exception', 'GPL-3.0-or-later WITH GCC-exception-3.1'],
    ['GPL-2+ with Unknown exception', 'LicenseRef-GPL-2-or-later-with-Unknown-exception'],
    ['MIT or GPL-2 and BSD-2-clause', 'MIT OR (GPL-2.0-only AND BSD-2-Clause)'],
  ])('maps %j to %j', (deb, spdx) => {
    expect(debianExpressionToSpdx(deb)).toBe(spdx);
  });
});

describe('parseCopyright', () => {
  describe('when the file is not machine-readable', () => {
    it('returns no licenses', () => {
      expect(parseCopyright('This package was debianized by someone.\nIt is GPL.\n')).toEqual({
        expression: undefined,
        refs: [],
      });
    });
  });
  describe('when a License paragraph stands alone', () => {
    it('uses its text for the LicenseRef', () => {
      const r = parseCopyright(
        'Format: urn:x:copyright-format/1.0/\n\nFiles: *\nCopyright: x\nLicense: Foo\n\nLicense: Foo\n Text of foo.\n',
      );
      expect(r).toEqual({
        expression: 'LicenseRef-Foo',
        refs: [{ id: 'LicenseRef-Foo', name: 'Foo', text: 'Text of foo.' }],
      });
    });
  });
});

describe('package purls', () => {
  // As syft writes them (syft/pkg/cataloger/debian/package.go) and grype reads them: the epoch stays in the version
  // (the purl deb type's own example: attr@1:2.4.47-2; deb has no epoch qualifier), and upstream= is what Source:
  // says — the name, with @VERSION when the field gives one.
  const status = [
    'Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\nSource: zlib\n',
    'Package: libgcc-s1\nVersion: 12.2.0-14\nArchitecture: amd64\nSource: gcc-12\n',
    'Package: libstdc++6\nVersion: 12.2.0-14+b1\nArchitecture: amd64\nSource: gcc-12 (12.2.0-14)\n',
    'Package: login\nVersion: 1:4.13+dfsg1-1+b1\nArchitecture: amd64\nSource: shadow (1:4.13+dfsg1-1)\n',
    'Package: dash\nVersion: 0.5.12-2\nArchitecture: amd64\n',
  ]
    .map((x) => `${x}Status: install ok installed\n`)
    .join('\n');
  const tree = Tree.from([
    ['/etc/os-release', fileEntry(bufferContent('ID=debian\nVERSION_ID="12"\n'))],
    ['/var/lib/dpkg/status', fileEntry(bufferContent(status))],
  ]);

  it.each([
    [
      'zlib1g',
      'pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12&upstream=zlib',
      '1:1.2.13.dfsg-1',
      'zlib',
    ],
    [
      'libgcc-s1',
      'pkg:deb/debian/libgcc-s1@12.2.0-14?arch=amd64&distro=debian-12&upstream=gcc-12',
      '12.2.0-14',
      'gcc-12',
    ],
    [
      'libstdc++6',
      'pkg:deb/debian/libstdc%2B%2B6@12.2.0-14+b1?arch=amd64&distro=debian-12&upstream=gcc-12%4012.2.0-14',
      '12.2.0-14+b1',
      'gcc-12@12.2.0-14',
    ],
    [
      'login',
      'pkg:deb/debian/login@1:4.13+dfsg1-1+b1?arch=amd64&distro=debian-12&upstream=shadow%401%3A4.13%2Bdfsg1-1',
      '1:4.13+dfsg1-1+b1',
      'shadow@1:4.13+dfsg1-1',
    ],
    ['dash', 'pkg:deb/debian/dash@0.5.12-2?arch=amd64&distro=debian-12', '0.5.12-2', undefined],
  ])('%s: %s', async (name, purl, version, upstream) => {
    const inv = await inventory(tree, { name: 'x', files: false });
    const p = inv.packages.find((x) => x.name === name)!;
    expect(p.purl).toBe(purl);
    const parsed = PackageURL.fromString(p.purl);
    expect(parsed.version).toBe(version);
    expect(parsed.qualifiers?.upstream).toBe(upstream);
    expect(parsed.qualifiers?.epoch).toBeUndefined();
  });
});

describe('readDpkgDatabase', () => {
  describe.each(['distroless', 'classic'] as const)('when the layout is %s', (layout) => {
    it('lists installed packages with source, sliced marker and owned files', async () => {
      const pkgs = await readDpkgDatabase(fixtureTree({ layout }));
      expect(pkgs.map((p) => [p.name, p.version, p.architecture, p.source, p.sliced])).toEqual([
        [
          'libc6',
          '2.36-9+deb12u10',
          'amd64',
          { name: 'glibc', version: '2.36-9+deb12u10', stated: 'name' },
          false,
        ],
        [
          'libssl3',
          '3.0.15-1~deb12u1',
          'amd64',
          { name: 'openssl', version: '3.0.15-1~deb12u1', stated: 'name-version' },
          true,
        ],
      ]);
      expect(pkgs[0]!.files).toContain('/bin/ldd');
      expect(pkgs[0]!.md5sums.get('/bin/ldd')).toMatch(/^[0-9a-f]{32}$/);
    });
  });
  describe('when the status file is malformed', () => {
    it('throws SBOM_DPKG_INVALID naming the file', async () => {
      const t = Tree.from([
        ['/var/lib/dpkg/status', fileEntry(bufferContent('Package: x\nnot a field line\n'))],
      ]);
      await expect(readDpkgDatabase(t)).rejects.toThrow(
        expect.objectContaining({
          code: 'SBOM_DPKG_INVALID',
          message: expect.stringContaining('/var/lib/dpkg/status'),
        }),
      );
    });
  });
  describe('when a stanza has no Version', () => {
    it('throws SBOM_DPKG_INVALID', async () => {
      const t = Tree.from([['/var/lib/dpkg/status.d/x', fileEntry(bufferContent('Package: x\n'))]]);
      await expect(readDpkgDatabase(t)).rejects.toThrow(
        expect.objectContaining({ code: 'SBOM_DPKG_INVALID' }),
      );
    });
  });
  describe('when there is no dpkg database', () => {
    it('returns []', async () => {
      expect(await readDpkgDatabase(Tree.empty())).toEqual([]);
    });
  });
});

describe('readOsRelease', () => {
  it('follows /etc/os-release to /usr/lib/os-release and derives the distro qualifier', async () => {
    const os = await readOsRelease(fixtureTree({ layout: 'distroless' }));
    expect(os?.id).toBe('debian');
    expect(os?.prettyName).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(distroQualifier(os)).toBe('debian-12');
  });
  it('unquotes values and skips comments', () => {
    expect([...parseOsRelease('# c\nA="x \\"y\\""\nB=\'z\'\nC=plain\nbad line\n')]).toEqual([
      ['A', 'x "y"'],
      ['B', 'z'],
      ['C', 'plain'],
    ]);
  });
});

describe('readPackageNote', () => {
  it('returns the JSON of .note.package', async () => {
    expect(await readPackageNote(bufferContent(elfWithPackageNote('{"type":"deb","name":"x"}')))).toEqual({
      type: 'deb',
      name: 'x',
    });
  });
  it('returns undefined for non-ELF, truncated ELF and bad JSON, never throws', async () => {
    const elf = elfWithPackageNote('{"type":"deb"}');
    expect(await readPackageNote(bufferContent('hello world'.repeat(10)))).toBeUndefined();
    expect(await readPackageNote(bufferContent(elf.subarray(0, 80)))).toBeUndefined();
    expect(await readPackageNote(bufferContent(elfWithPackageNote('{not json')))).toBeUndefined();
  });
});

describe('uuidV5', () => {
  it('gives the RFC 9562 test vector for the DNS namespace', () => {
    // RFC 9562 Appendix A.4: UUIDv5 of "www.example.com" in the DNS namespace.
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });
});
