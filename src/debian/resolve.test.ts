import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Paragraph, parseControl } from './control.ts';
import { scanPackages } from './packages.ts';
import { type PackageSource, PackageUniverse, resolveDependencies } from './resolve.ts';

/** A package paragraph from `name version arch` plus fields. */
function pkg(spec: string, fields: Record<string, string> = {}): Paragraph {
  const [name, version, arch = 'amd64'] = spec.split(' ');
  return new Paragraph([
    ['Package', name!],
    ['Version', version!],
    ['Architecture', arch],
    ...Object.entries(fields),
  ]);
}

function universe(
  paragraphs: Paragraph[],
  more: PackageSource[] = [],
  architectures = ['amd64'],
): PackageUniverse {
  return new PackageUniverse([{ suite: 'stable', paragraphs }, ...more], { architectures });
}

function names(u: PackageUniverse, ...req: string[]): string[] {
  return resolveDependencies(u, req).packages.map((p) => `${p.name}=${p.version}:${p.architecture}`);
}

describe('resolveDependencies', () => {
  describe('when dependencies are plain', () => {
    it('follows Depends and Pre-Depends but not Recommends, Suggests or Essential packages', () => {
      const u = universe([
        pkg('app 1', { Depends: 'liba', 'Pre-Depends': 'libb', Recommends: 'rec', Suggests: 'sug' }),
        pkg('liba 1', { Depends: 'libc6 (>= 2)' }),
        pkg('libb 1'),
        pkg('libc6 2.36'),
        pkg('rec 1'),
        pkg('sug 1'),
        pkg('bash 5', { Essential: 'yes', Priority: 'required' }),
      ]);
      expect(names(u, 'app')).toEqual(['app=1:amd64', 'liba=1:amd64', 'libb=1:amd64', 'libc6=2.36:amd64']);
      expect(resolveDependencies(u, ['app'], { recommends: true }).packages.map((p) => p.name)).toContain(
        'rec',
      );
    });
  });

  describe('when several suites carry a package', () => {
    it('takes the highest version, so a security update wins, and records the suite', () => {
      const u = universe(
        [pkg('app 1', { Depends: 'libssl3 (>= 3.0.1)' }), pkg('libssl3 3.0.11-1~deb12u2')],
        [{ suite: 'stable-security', paragraphs: [pkg('libssl3 3.0.15-1~deb12u1')] }],
      );
      const r = resolveDependencies(u, ['app']);
      expect(r.packages.find((p) => p.name === 'libssl3')).toMatchObject({
        version: '3.0.15-1~deb12u1',
        suite: 'stable-security',
      });
    });
    it('installs a pinned version or suite when asked', () => {
      const u = universe([pkg('a 1')], [{ suite: 'stable-security', paragraphs: [pkg('a 2')] }]);
      expect(names(u, 'a=1')).toEqual(['a=1:amd64']);
      expect(names(u, 'a/stable')).toEqual(['a=1:amd64']);
      expect(names(u, 'a')).toEqual(['a=2:amd64']);
    });
  });

  describe('when a group has alternatives', () => {
    it('takes the first satisfiable alternative', () => {
      const u = universe([
        pkg('app 1', { Depends: 'missing | b (>= 2) | c | d' }),
        pkg('b 1'),
        pkg('c 1'),
        pkg('d 1'),
      ]);
      expect(names(u, 'app')).toEqual(['app=1:amd64', 'c=1:amd64']);
    });
    it('prefers an alternative that is already selected', () => {
      const u = universe([
        pkg('app 1', { Depends: 'x, b | c' }),
        pkg('x 1', { Depends: 'c' }),
        pkg('b 1'),
        pkg('c 1'),
      ]);
      expect(names(u, 'app')).toEqual(['app=1:amd64', 'c=1:amd64', 'x=1:amd64']);
    });
    it('rolls back an alternative whose own dependencies fail and tries the next', () => {
      const u = universe([pkg('app 1', { Depends: 'b | c' }), pkg('b 1', { Depends: 'gone' }), pkg('c 1')]);
      expect(names(u, 'app')).toEqual(['app=1:amd64', 'c=1:amd64']);
    });
  });

  describe('when names are virtual', () => {
    it('uses Provides, versioned ones only for versioned dependencies', () => {
      const u = universe([
        pkg('app 1', { Depends: 'awk, python3-foo (>= 1.2)' }),
        pkg('mawk 1.3', { Provides: 'awk', Priority: 'required' }),
        pkg('gawk 5', { Provides: 'awk', Priority: 'optional' }),
        pkg('foo-unversioned 1', { Provides: 'python3-foo' }),
        pkg('foo-versioned 1', { Provides: 'python3-foo (= 1.3)' }),
      ]);
      // mawk beats gawk by Priority (apt's CompareProviders); only the versioned provide satisfies (>= 1.2).
      expect(names(u, 'app')).toEqual(['app=1:amd64', 'foo-versioned=1:amd64', 'mawk=1.3:amd64']);
    });
    it('prefers Essential providers, then native ones, then the name', () => {
      const u = universe([
        pkg('app 1', { Depends: 'v' }),
        pkg('zz 1', { Provides: 'v', Essential: 'yes' }),
        pkg('aa 1', { Provides: 'v' }),
      ]);
      expect(names(u, 'app')).toEqual(['app=1:amd64', 'zz=1:amd64']);
    });
    it('resolves a request for a virtual package with a single provider', () => {
      const u = universe([pkg('real 1', { Provides: 'virt' })]);
      expect(names(u, 'virt')).toEqual(['real=1:amd64']);
      const two = universe([pkg('r1 1', { Provides: 'virt' }), pkg('r2 1', { Provides: 'virt' })]);
      expect(() => names(two, 'virt')).toThrow(
        expect.objectContaining({
          code: 'DEBIAN_PACKAGE_NOT_FOUND',
          message: expect.stringContaining('provided by "r1", "r2"'),
        }),
      );
    });
  });

  describe('when packages conflict', () => {
    it('skips an alternative that Conflicts with or Breaks a selected package', () => {
      const u = universe([
        pkg('app 1', { Depends: 'x, b | c, d | e' }),
        pkg('x 1', { Conflicts: 'b', Breaks: 'd (<< 2)' }),
        pkg('b 1'),
        pkg('c 1'),
        pkg('d 1'),
        pkg('e 1'),
      ]);
      expect(names(u, 'app')).toEqual(['app=1:amd64', 'c=1:amd64', 'e=1:amd64', 'x=1:amd64']);
    });
    it('honours conflicts on virtual names but never against the package itself', () => {
      const u = universe([
        pkg('app 1', { Depends: 'mta1, mta2' }),
        pkg('mta1 1', { Provides: 'mail-transport-agent', Conflicts: 'mail-transport-agent' }),
        pkg('mta2 1', { Provides: 'mail-transport-agent', Conflicts: 'mail-transport-agent' }),
      ]);
      expect(names(u, 'mta1')).toEqual(['mta1=1:amd64']);
      expect(() => names(u, 'app')).toThrow(
        expect.objectContaining({
          code: 'DEBIAN_CONFLICT',
          message: expect.stringMatching(
            /app 1 → \(Depends: mta2\) mta2 1: .*Conflicts with mail-transport-agent/,
          ),
        }),
      );
    });
  });

  describe('when the selection spans architectures', () => {
    const u = universe(
      [
        pkg('app 1 arm64', { Depends: 'libc6, perl:any, tool, data' }),
        pkg('libc6 2 amd64', { 'Multi-Arch': 'same' }),
        pkg('libc6 2 arm64', { 'Multi-Arch': 'same' }),
        pkg('perl 5 amd64', { 'Multi-Arch': 'allowed' }),
        pkg('perl 5 arm64', { 'Multi-Arch': 'allowed' }),
        pkg('tool 1 amd64', { 'Multi-Arch': 'foreign' }),
        pkg('tool 1 arm64', { 'Multi-Arch': 'foreign' }),
        pkg('data 1 all', { Depends: 'libc6', 'Multi-Arch': 'foreign' }),
        pkg('nativedata 1 all'),
        pkg('plain 1 amd64'),
        pkg('plain 1 arm64'),
      ],
      [],
      ['amd64', 'arm64'],
    );
    it('resolves a foreign package against its own architecture, foreign/allowed ones natively, and all as native', () => {
      expect(names(u, 'app:arm64')).toEqual([
        'app=1:arm64',
        'data=1:all',
        'libc6=2:amd64',
        'libc6=2:arm64',
        'perl=5:amd64',
        'tool=1:amd64',
      ]);
    });
    it('lets Multi-Arch: same packages be co-installed and refuses other doubles', () => {
      expect(names(u, 'libc6:amd64', 'libc6:arm64')).toHaveLength(2);
      expect(() => names(u, 'plain:amd64', 'plain:arm64')).toThrow(
        expect.objectContaining({ code: 'DEBIAN_CONFLICT' }),
      );
    });
    it('treats an Architecture: all package as native, as dpkg does (so it needs Multi-Arch: foreign here)', () => {
      expect(names(u, 'nativedata')).toEqual(['nativedata=1:all']);
      const v = universe([pkg('a 1 arm64', { Depends: 'd' }), pkg('d 1 all')], [], ['amd64', 'arm64']);
      expect(() => names(v, 'a:arm64')).toThrow(expect.objectContaining({ code: 'DEBIAN_UNSATISFIABLE' }));
    });
    it('refuses :any on a package that is not Multi-Arch: allowed', () => {
      const v = universe([pkg('a 1', { Depends: 'b:any' }), pkg('b 1')]);
      expect(() => names(v, 'a')).toThrow(expect.objectContaining({ code: 'DEBIAN_UNSATISFIABLE' }));
    });
  });

  describe('when nothing satisfies a dependency', () => {
    it('throws DEBIAN_UNSATISFIABLE with the chain from the request', () => {
      const u = universe([
        pkg('app 1', { Depends: 'mid' }),
        pkg('mid 2', { Depends: 'leaf (>= 3) | other' }),
        pkg('leaf 2'),
      ]);
      expect(() => names(u, 'app')).toThrow(
        expect.objectContaining({
          code: 'DEBIAN_UNSATISFIABLE',
          chain: ['app', 'mid'],
          message:
            'cannot resolve app 1 → (Depends: mid) mid 2: nothing satisfies (Depends: leaf (>= 3) | other); "leaf" candidate is 2 (amd64, stable); "other" is in no index',
        }),
      );
    });
    it('throws DEBIAN_PACKAGE_NOT_FOUND for an unknown request and a vanished pinned version', () => {
      const u = universe([pkg('a 1')]);
      expect(() => names(u, 'nope')).toThrow(expect.objectContaining({ code: 'DEBIAN_PACKAGE_NOT_FOUND' }));
      expect(() => names(u, 'a=0.9')).toThrow(
        expect.objectContaining({
          code: 'DEBIAN_PACKAGE_NOT_FOUND',
          message: expect.stringContaining('snapshot'),
        }),
      );
    });
  });

  describe('why', () => {
    it('returns one shortest chain per depender, root first', () => {
      const u = universe([
        pkg('app 1', { Depends: 'a, b' }),
        pkg('a 1', { Depends: 'libz (>= 1)' }),
        pkg('b 1', { Depends: 'c' }),
        pkg('c 1', { Depends: 'libz' }),
        pkg('libz 1'),
      ]);
      const r = resolveDependencies(u, ['app']);
      const fmt = (n: string) =>
        r
          .why(n)
          .map((c) =>
            c.map((l) => (l.relation ? `${l.field}:${l.relation}>${l.package}` : l.package)).join(' '),
          );
      expect(fmt('libz')).toEqual([
        'app Depends:a>a Depends:libz (>= 1)>libz',
        'app Depends:b>b Depends:c>c Depends:libz>libz',
      ]);
      expect(fmt('app')).toEqual(['app']);
      expect(fmt('absent')).toEqual([]);
    });
  });

  describe('determinism', () => {
    it('gives the same selection whatever the order of paragraphs in an index', () => {
      const paragraphs = [
        pkg('app 1', { Depends: 'v, w | x' }),
        pkg('p1 1', { Provides: 'v' }),
        pkg('p2 1', { Provides: 'v' }),
        pkg('w 1', { Depends: 'v' }),
        pkg('x 1'),
      ];
      const want = names(universe(paragraphs), 'app');
      fc.assert(
        fc.property(fc.shuffledSubarray(paragraphs, { minLength: paragraphs.length }), (shuffled) => {
          expect(names(universe(shuffled), 'app')).toEqual(want);
        }),
      );
    });
  });

  describe('when the paragraphs are index records', () => {
    // note: every stanza carries the fields scanPackages insists on; the resolver reads the rest from the bytes.
    const stanza = (spec: string, fields: Record<string, string>) => {
      const [name, version, arch = 'amd64'] = spec.split(' ');
      const extra = Object.entries(fields).map(([k, v]) => `${k}: ${v}\n`);
      return `Package: ${name}\nVersion: ${version}\nArchitecture: ${arch}\n${extra.join('')}Filename: pool/${name}.deb\nSize: 1\nSHA256: ${'a'.repeat(64)}\n`;
    };
    const text = [
      stanza('app 1', { Depends: 'v,\n w | x', 'Pre-Depends': 'pre' }),
      stanza('pre 1', { 'multi-arch': 'foreign', Breaks: 'x (<< 2)' }),
      stanza('p1 1', { Provides: 'v (= 1)', Priority: 'optional' }),
      stanza('p2 1', { Provides: 'v', Priority: 'required' }),
      stanza('w 1', { Depends: 'v (>= 1)' }),
      stanza('x 1', {}),
      stanza('old 2', { Provides: 'w' }),
      stanza('old 1', { Provides: 'v' }),
    ].join('\n');
    it('resolves the same over the lazy records as over fully parsed paragraphs', () => {
      const records = scanPackages(Buffer.from(text), {
        suite: 'stable',
        component: 'main',
        source: 'Packages',
      });
      const lazy = new PackageUniverse([{ suite: 'stable', paragraphs: records.map((r) => r.paragraph) }]);
      const full = new PackageUniverse([{ suite: 'stable', paragraphs: parseControl(text) }]);
      for (const req of ['app', 'v', 'old', 'old=1', 'w']) {
        const got = (u: PackageUniverse) => {
          try {
            return resolveDependencies(u, [req]).packages.map((p) => `${p.name}=${p.version}`);
          } catch (e) {
            return (e as Error).message;
          }
        };
        expect(got(lazy)).toEqual(got(full));
      }
      // v: p2 wins by Priority; w's (>= 1) needs p1's versioned Provides as well
      expect(names(lazy, 'app')).toEqual([
        'app=1:amd64',
        'p1=1:amd64',
        'p2=1:amd64',
        'pre=1:amd64',
        'w=1:amd64',
      ]);
      // only the candidate (old 2) provides: old 1's "v" is not offered
      expect(lazy.providers('v').map((p) => p.pkg.name)).toEqual(['p1', 'p2']);
      expect(lazy.candidate('pre', 'amd64')?.multiArch).toBe('foreign');
    });
  });

  describe('when a Provides field is malformed', () => {
    it('throws DEBIAN_RELATION_INVALID naming the package once the resolver looks at it, not before', () => {
      const u = universe([
        pkg('app 1', { Depends: 'v' }),
        pkg('bad 1', { Provides: 'v (>= 1)' }),
        pkg('x 1'),
      ]);
      expect(names(u, 'x')).toEqual(['x=1:amd64']);
      expect(() => names(u, 'app')).toThrow(
        expect.objectContaining({
          code: 'DEBIAN_RELATION_INVALID',
          message: expect.stringContaining('"bad"'),
        }),
      );
    });
  });

  describe('when a Depends chain is very deep', () => {
    // The walk was recursive: 3000 levels gave "Maximum call stack size exceeded"; copies of the chain and the
    // selection per level made it quadratic besides.
    const DEPTH = 100_000;
    const chain = (bottom: Record<string, string>) =>
      universe([
        ...Array.from({ length: DEPTH - 1 }, (_, i) => pkg(`p${i} 1`, { Depends: `p${i + 1}` })),
        pkg(`p${DEPTH - 1} 1`, bottom),
      ]);

    it('resolves every link, and why() walks back to the root', () => {
      const r = resolveDependencies(chain({}), ['p0']);
      expect(r.packages).toHaveLength(DEPTH);
      const why = r.why(`p${DEPTH - 1}`);
      expect(why).toHaveLength(1);
      expect(why[0]).toHaveLength(DEPTH);
      expect(why[0]![DEPTH - 1]).toMatchObject({ package: `p${DEPTH - 1}`, field: 'Depends' });
    });

    it('throws DEBIAN_UNSATISFIABLE with the whole chain when the bottom cannot be met', () => {
      let error: unknown;
      try {
        resolveDependencies(chain({ Depends: 'missing' }), ['p0']);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'DEBIAN_UNSATISFIABLE', package: `p${DEPTH - 1}` });
      expect((error as { chain: string[] }).chain).toHaveLength(DEPTH);
    });

    it('falls back to the next alternative deep down, rolling back what the first one selected', () => {
      const u = universe([
        ...Array.from({ length: 5000 }, (_, i) => pkg(`p${i} 1`, { Depends: `p${i + 1}` })),
        pkg('p5000 1', { Depends: 'bad | good' }),
        pkg('bad 1', { Depends: 'b0' }),
        ...Array.from({ length: 5000 }, (_, i) => pkg(`b${i} 1`, { Depends: `b${i + 1}` })),
        pkg('b5000 1', { Depends: 'missing' }),
        pkg('good 1'),
      ]);
      const got = resolveDependencies(u, ['p0']).packages.map((p) => p.name);
      expect(got).toHaveLength(5002);
      expect(got).toContain('good');
      expect(got.filter((n) => n === 'bad' || n.startsWith('b'))).toEqual([]);
    });
  });
});
