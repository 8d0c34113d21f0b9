import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recordFields } from '../../test/helpers/package-record.ts';
import { formatLock, parseLock } from './lock.ts';
import { parseDeb822Sources, parseOneLineSources, resolveSuites } from './mirror.ts';
import { isSafePoolPath, parsePackages, scanPackages } from './packages.ts';
import { checkRelease, parseRelease, parseReleaseDate } from './release.ts';

// Pure parsing of the archive-access half: apt sources, Release, Packages (fast scan vs full parse), lockfile.
// Hosts below use the reserved .invalid TLD (RFC 2606): they are never contacted.

describe('parseOneLineSources', () => {
  it('reads options, components and skips comments', () => {
    const got = parseOneLineSources(
      '# comment\ndeb [arch=amd64 signed-by=/k/a.gpg] http://mirror.invalid/debian bookworm main contrib # tail\n' +
        'deb-src http://mirror.invalid/debian bookworm main\n',
      '/etc/apt/sources.list',
    );
    expect(got).toEqual([
      {
        types: ['deb'],
        uris: ['http://mirror.invalid/debian'],
        suites: ['bookworm'],
        components: ['main', 'contrib'],
        signedBy: '/k/a.gpg',
        enabled: true,
        origin: '/etc/apt/sources.list:2',
      },
      expect.objectContaining({ types: ['deb-src'], origin: '/etc/apt/sources.list:3' }),
    ]);
  });

  it.each([
    ['deb [arch=amd64 http://x.invalid/ bookworm main', /option list "\[" is not closed/],
    ['deb http://x.invalid/', /want "deb \[options\] uri suite/],
    ['rpm http://x.invalid/ a b', /unknown type "rpm"/],
  ])('throws DEBIAN_SOURCES_INVALID for %j', (line, message) => {
    expect(() => parseOneLineSources(line, 'f.list')).toThrow(
      expect.objectContaining({ code: 'DEBIAN_SOURCES_INVALID', message: expect.stringMatching(message) }),
    );
  });
});

describe('parseDeb822Sources', () => {
  it('reads several suites, Enabled: no and an inline Signed-By block', () => {
    const got = parseDeb822Sources(
      'Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n' +
        'Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n\n' +
        '# off\nTypes: deb\nURIs: http://other.invalid/\nSuites: x\nEnabled: no\n',
      'debian.sources',
    );
    expect(got[0]!.suites).toEqual(['bookworm', 'bookworm-updates']);
    expect(got[0]!.signedBy).toBe(
      '\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----',
    );
    expect(got[1]!.enabled).toBe(false);
  });

  it('throws DEBIAN_SOURCES_INVALID for a stanza without URIs', () => {
    expect(() => parseDeb822Sources('Types: deb\nSuites: a\n', 'x.sources')).toThrow(
      expect.objectContaining({
        code: 'DEBIAN_SOURCES_INVALID',
        message: expect.stringMatching(/x\.sources:1/),
      }),
    );
  });
});

describe('resolveSuites', () => {
  const none = { aptDir: '/nonexistent-apt-dir', env: {} };
  it('takes pare.yaml over the environment', async () => {
    const s = await resolveSuites(
      { suite: 'bookworm', mirror: 'http://a.invalid/debian', securityMirror: 'http://s.invalid/sec' },
      { ...none, env: { PARE_DEBIAN_MIRROR: 'http://b.invalid/' } },
    );
    expect(s.map((x) => [x.name, x.baseUrl])).toEqual([
      ['bookworm', 'http://a.invalid/debian/'],
      ['bookworm-updates', 'http://a.invalid/debian/'],
      ['bookworm-security', 'http://s.invalid/sec/'],
    ]);
  });

  it('maps a snapshot to <base>/archive/debian/<ts>/ and debian-security', async () => {
    const s = await resolveSuites(
      { suite: 'bookworm', snapshot: '20250101T000000Z', updates: false },
      { ...none, env: { PARE_DEBIAN_SNAPSHOT_MIRROR: 'http://snap.invalid' } },
    );
    expect(s.map((x) => x.baseUrl)).toEqual([
      'http://snap.invalid/archive/debian/20250101T000000Z/',
      'http://snap.invalid/archive/debian-security/20250101T000000Z/',
    ]);
  });

  it.each([
    [{ suite: 'bookworm' }, 'DEBIAN_NO_MIRROR', /set debian\.mirror in pare\.yaml, or PARE_DEBIAN_MIRROR/],
    [{ suite: 'bookworm', mirror: 'http://a.invalid/' }, 'DEBIAN_NO_MIRROR', /debian\.security: false/],
    [{ suite: 'bookworm', snapshot: '2025-01-01' }, 'DEBIAN_SOURCES_INVALID', /want a timestamp/],
    [{ suite: 'bookworm', snapshot: '20250101T000000Z' }, 'DEBIAN_NO_MIRROR', /PARE_DEBIAN_SNAPSHOT_MIRROR/],
    [
      { suite: 'bookworm', mirror: 'ftp://a.invalid/', security: false },
      'DEBIAN_SOURCES_INVALID',
      /only http/,
    ],
  ])('for %j throws %s', async (source, code, message) => {
    await expect(resolveSuites(source, none)).rejects.toThrow(
      expect.objectContaining({ code, message: expect.stringMatching(message) }),
    );
  });
});

describe('parseReleaseDate', () => {
  it.each([
    ['Sat, 11 Jul 2026 10:16:37 UTC', '2026-07-11T10:16:37.000Z'],
    ['Sat, 11 Jul 2026 10:16:37 +0200', '2026-07-11T08:16:37.000Z'],
    ['1 Jan 2025 00:00:00 GMT', '2025-01-01T00:00:00.000Z'],
    ['Sat, 11 Jul 2026 10:16:37', undefined],
    ['Sat, 11 Foo 2026 10:16:37 UTC', undefined],
  ])('parses %j as %s', (s, iso) => {
    expect(parseReleaseDate(s)?.toISOString()).toBe(iso);
  });
});

describe('parseRelease + checkRelease', () => {
  const text =
    'Suite: stable\nCodename: bookworm\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nValid-Until: Sat, 18 Jul 2026 10:16:37 UTC\n' +
    'Acquire-By-Hash: yes\nArchitectures: amd64 arm64\nComponents: main\nSHA256:\n' +
    ` ${'a'.repeat(64)} 12 main/binary-amd64/Packages.xz\n`;
  const at = (iso: string) => new Date(iso);

  it('reads the fields and the SHA256 list', () => {
    const r = parseRelease(text, 'InRelease');
    expect(r.files.get('main/binary-amd64/Packages.xz')).toEqual({
      path: 'main/binary-amd64/Packages.xz',
      size: 12,
      sha256: `sha256:${'a'.repeat(64)}`,
    });
    expect([r.acquireByHash, r.architectures, r.codename]).toEqual([true, ['amd64', 'arm64'], 'bookworm']);
  });

  it.each([
    ['stable', '2026-07-12T00:00:00Z', undefined],
    ['bookworm', '2026-07-12T00:00:00Z', undefined],
    ['trixie', '2026-07-12T00:00:00Z', 'DEBIAN_SUITE_MISMATCH'],
    ['bookworm', '2026-07-19T00:00:00Z', 'DEBIAN_EXPIRED'],
    ['bookworm', '2026-07-11T10:13:00Z', undefined], // note: within the 5 minute skew
    ['bookworm', '2026-07-10T00:00:00Z', 'DEBIAN_RELEASE_INVALID'],
  ])('for suite %s at %s gives %s', (suite, now, code) => {
    const run = () => checkRelease(parseRelease(text, 'InRelease'), { suite, now: at(now) }, 'InRelease');
    if (code) expect(run).toThrow(expect.objectContaining({ code }));
    else expect(run).not.toThrow();
  });

  it.each([
    ['SHA256:\n zz 1 a\n', /is not "<hex> <size> <path>"/],
    [`SHA256:\n ${'a'.repeat(64)} 1 ../x\n`, /unsafe path/],
    ['Suite: x\n', /no SHA256 section/],
    [`Date: yesterday\nSHA256:\n ${'a'.repeat(64)} 1 x\n`, /not an RFC 2822 date/],
  ])('throws DEBIAN_RELEASE_INVALID for %j', (t, message) => {
    expect(() => parseRelease(t, 'R')).toThrow(
      expect.objectContaining({ code: 'DEBIAN_RELEASE_INVALID', message: expect.stringMatching(message) }),
    );
  });
});

type StanzaSpec = {
  name: string;
  version: string;
  arch: string;
  size: number;
  sha: string;
  provides: string[] | undefined;
  desc: string[];
  multilineProvides: boolean;
  order: boolean;
};

describe('scanPackages', () => {
  const origin = { suite: 's', component: 'main', source: 'Packages' };
  const word = fc.stringMatching(/^[a-z0-9][a-z0-9.+-]{0,12}$/);
  const stanza = fc.record({
    name: word,
    version: word,
    arch: fc.constantFrom('amd64', 'all', 'arm64'),
    size: fc.integer({ min: 1, max: 10_000_000 }), // Size: 0 is refused: a .deb is never empty
    sha: fc.stringMatching(/^[0-9a-f]{64}$/),
    provides: fc.option(fc.array(word, { minLength: 1, maxLength: 3 }), { nil: undefined }),
    desc: fc.array(
      fc.string({ maxLength: 20 }).map((s) => s.replace(/[\n\r]/g, '')),
      { maxLength: 3 },
    ),
    multilineProvides: fc.boolean(),
    order: fc.boolean(),
  });
  const render = (s: StanzaSpec) => {
    const prov = s.provides
      ? `Provides: ${s.multilineProvides ? `\n ${s.provides.join(',\n ')}` : s.provides.join(', ')}\n`
      : '';
    const head = s.order
      ? `Package: ${s.name}\nVersion: ${s.version}\n`
      : `Version: ${s.version}\nPackage: ${s.name}\n`;
    return (
      `${head}Architecture: ${s.arch}\n${prov}Filename: pool/main/${s.name}.deb\nSize: ${s.size}\nSHA256: ${s.sha}\n` +
      `Description: x\n${s.desc.map((d) => ` ${d.trim() === '' ? '.' : d}\n`).join('')}`
    );
  };

  it('gives the same records as the full parser (property)', () => {
    fc.assert(
      fc.property(fc.array(stanza, { maxLength: 8 }), fc.constantFrom('\n', '\n\n'), (stanzas, sep) => {
        const text = stanzas.map(render).join(sep === '\n' ? '\n' : '\n\n');
        const slow = parsePackages(text, origin);
        const fast = scanPackages(Buffer.from(text), origin);
        // note: get() on a lazy paragraph searches the text; compare it before entries() builds the map
        const lazy = scanPackages(Buffer.from(text), origin);
        for (const [i, r] of slow.entries()) {
          for (const [name, value] of r.paragraph.entries()) {
            expect(lazy[i]!.paragraph.get(name.toUpperCase())).toBe(value);
          }
          expect(lazy[i]!.paragraph.get('Not-There')).toBeUndefined();
        }
        const view = (r: (typeof slow)[number]) => ({
          ...recordFields(r),
          paragraph: [...r.paragraph.entries()],
        });
        expect(fast.map(view)).toEqual(slow.map(view));
      }),
    );
  });

  it.each([
    [
      'Package: a\nVersion: 1\nArchitecture: all\nFilename: ../../etc/passwd\nSize: 1\nSHA256: ' +
        'a'.repeat(64),
      /unsafe Filename/,
    ],
    [
      'Package: a\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: ' + 'a'.repeat(64),
      /Packages:1: stanza "a" has no Filename/,
    ],
    [
      'Package: a\nVersion: 1\nArchitecture: all\nFilename: p/a.deb\nSize: -1\nSHA256: x',
      /malformed SHA256 or Size/,
    ],
  ])('throws DEBIAN_INDEX_INVALID for %j', (text, message) => {
    for (const parse of [() => scanPackages(Buffer.from(text), origin), () => parsePackages(text, origin)]) {
      expect(parse).toThrow(
        expect.objectContaining({ code: 'DEBIAN_INDEX_INVALID', message: expect.stringMatching(message) }),
      );
    }
  });

  it.each([
    ['pool/main/a/a.deb', true],
    ['/etc/passwd', false],
    ['pool/../x', false],
    ['pool//x', false],
    ['pool/./x', false],
    ['pool/x\n', false],
    ['pool\\x', false],
  ])('isSafePoolPath(%j) is %s', (p, ok) => {
    expect(isSafePoolPath(p)).toBe(ok);
  });
});

describe('parseLock', () => {
  const good = {
    version: 1,
    suites: [
      {
        suite: 'bookworm',
        codename: 'bookworm',
        date: '2026-07-11T10:16:37.000Z',
        inRelease: `sha256:${'b'.repeat(64)}`,
      },
    ],
    packages: [
      {
        name: 'b',
        version: '1',
        architecture: 'amd64',
        filename: 'pool/main/b/b.deb',
        sha256: `sha256:${'c'.repeat(64)}`,
        size: 3,
        suite: 'bookworm',
      },
      {
        name: 'a',
        version: '1',
        architecture: 'amd64',
        filename: 'pool/main/a/a.deb',
        sha256: `sha256:${'d'.repeat(64)}`,
        size: 3,
        suite: 'bookworm',
      },
    ],
  };

  it('sorts and formats canonically, whatever the input order', () => {
    const text = formatLock(parseLock(JSON.stringify(good)));
    expect(JSON.parse(text).packages.map((p: { name: string }) => p.name)).toEqual(['a', 'b']);
    expect(formatLock(parseLock(text))).toBe(text);
  });

  it.each([
    ['{', /cannot read lockfile pare\.lock: /],
    [JSON.stringify({ ...good, version: 2 }), /version/],
    [
      JSON.stringify({ ...good, packages: [{ ...good.packages[0], sha256: 'md5:x' }] }),
      /packages\.0\.sha256/,
    ],
    [
      JSON.stringify({ ...good, packages: [{ ...good.packages[0], filename: 'pool/../../x' }] }),
      /unsafe filename/,
    ],
  ])('throws DEBIAN_LOCK_INVALID for %s', (text, message) => {
    expect(() => parseLock(text)).toThrow(
      expect.objectContaining({ code: 'DEBIAN_LOCK_INVALID', message: expect.stringMatching(message) }),
    );
  });
});
