import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareFragments,
  compareVersions,
  formatVersion,
  parseVersion,
  parseVersionOp,
  satisfiesVersion,
} from './version.ts';

type Triple = readonly [string, string, -1 | 0 | 1];

// From dpkg's scripts/t/Dpkg_Version.t data table (the Perl module's conformance list).
const DPKG_TRIPLES: Triple[] = [
  ['1.0-1', '2.0-2', -1],
  ['2.2~rc-4', '2.2-1', -1],
  ['2.2-1', '2.2~rc-4', 1],
  ['1.0000-1', '1.0-1', 0],
  ['1', '0:1', 0],
  ['0', '0:0-0', 0],
  ['2:2.5', '1:7.5', 1],
  ['1:0foo', '0foo', 1],
  ['0:0foo', '0foo', 0],
  ['0foo', '0foo', 0],
  ['0foo-0', '0foo', 0],
  ['0foo', '0foo-0', 0],
  ['0foo', '0fo', 1],
  ['0foo-0', '0foo+', -1],
  ['0foo~1', '0foo', -1],
  ['0foo~foo+Bar', '0foo~foo+bar', -1],
  ['0foo~~', '0foo~', -1],
  ['1~', '1', -1],
  ['12345+that-really-is-some-ver-0', '12345+that-really-is-some-ver-10', -1],
  ['0foo-0', '0foo-01', -1],
  ['0foo.bar', '0foobar', 1],
  ['0foo.bar', '0foo1bar', 1],
  ['0foo.bar', '0foo0bar', 1],
  ['0foo1bar-1', '0foobar-1', -1],
  ['0foo2.0', '0foo2', 1],
  ['0foo2.0.0', '0foo2.10.0', -1],
  ['0foo2.0', '0foo2.0.0', -1],
  ['0foo2.0', '0foo2.10', -1],
  ['0foo2.1', '0foo2.10', -1],
  ['1.09', '1.9', 0],
  ['1.0.8+nmu1', '1.0.8', 1],
  ['3.11', '3.10+nmu1', 1],
  ['0.9j-20080306-4', '0.9i-20070324-2', 1],
  ['1.2.0~b7-1', '1.2.0~b6-1', 1],
  ['1.011-1', '1.06-2', 1],
  ['0.0.9+dfsg1-1', '0.0.8+dfsg1-3', 1],
  ['4.6.99+svn6582-1', '4.6.99+svn6496-1', 1],
  ['53', '52', 1],
  ['0.9.9~pre122-1', '0.9.9~pre111-1', 1],
  ['2:2.3.2-2+lenny2', '2:2.3.2-2', 1],
  ['1:3.8.1-1', '3.8.GA-1', 1],
  ['1.0.1+gpl-1', '1.0.1-2', 1],
  ['1a', '1000a', -1],
];

// From dpkg's lib/dpkg/t/t-version.c (test_version_compare), written as text.
const DPKG_C_TRIPLES: Triple[] = [
  ['0-0', '0-0', 0],
  ['0-00', '00-0', 0],
  ['1:2-3', '1:2-3', 0],
  ['0-0', '1:0-0', -1],
  ['a-0', 'b-0', -1],
  ['0-a', '0-b', -1],
];

// From apt's test/libapt versions.lst (which mirrors dpkg's behaviour; cupt's cases included there).
const APT_TRIPLES: Triple[] = [
  ['7.6p2-4', '7.6-0', 1],
  ['1.0.3-3', '1.0-1', 1],
  ['1.3', '1.2.2-2', 1],
  ['1.3', '1.2.2', 1],
  ['0-pre', '0-pre', 0],
  ['0-pre', '0-pree', -1],
  ['1.1.6r2-2', '1.1.6r-1', 1],
  ['2.6b2-1', '2.6b-2', 1],
  ['98.1p5-1', '98.1-pre2-b6-2', -1],
  ['0.4a6-2', '0.4-1', 1],
  ['1:3.0.5-2', '1:3.0.5.1', -1],
  ['3.0~rc1-1', '3.0-1', -1],
  ['1.0', '1.0-0', 0],
  ['0.2', '1.0-0', -1],
  ['1.0', '1.0-0+b1', -1],
  ['1.0', '1.0-0~', 1],
  ['0:0-0-0', '0-0', 1],
  ['0', '0', 0],
  ['0', '00', 0],
  ['1.2.3', '1.2.3', 0],
  ['4.4.3-2', '4.4.3-2', 0],
  ['1:2ab:5', '1:2ab:5', 0],
  ['7:1-a:b-5', '7:1-a:b-5', 0],
  ['57:1.2.3abYZ+~-4-5', '57:1.2.3abYZ+~-4-5', 0],
  ['1.2.3', '0:1.2.3', 0],
  ['1.2.3', '1.2.3-0', 0],
  ['009', '9', 0],
  ['009ab5', '9ab5', 0],
  ['1.2.3', '1.2.3-1', -1],
  ['1.2.3', '1.2.4', -1],
  ['1.2.4', '1.2.3', 1],
  ['1.2.24', '1.2.3', 1],
  ['0.10.0', '0.8.7', 1],
  ['3.2', '2.3', 1],
  ['1.3.2a', '1.3.2', 1],
  ['0.5.0~git', '0.5.0~git2', -1],
  ['2a', '21', -1],
  ['1.3.2a', '1.3.2b', -1],
  ['1:1.2.3', '1.2.4', 1],
  ['1:1.2.3', '1:1.2.4', -1],
  ['1.2a+~bCd3', '1.2a++', -1],
  ['1.2a+~bCd3', '1.2a+~', 1],
  ['5:2', '304-2', 1],
  ['5:2', '304:2', -1],
  ['25:2', '3:2', 1],
  ['1:2:123', '1:12:3', -1],
  ['1.2-5', '1.2-3-5', -1],
  ['5.10.0', '5.005', 1],
  ['3a9.8', '3.10.2', -1],
  ['3a9.8', '3~10', 1],
  ['1.4+OOo3.0.0~', '1.4+OOo3.0.0-4', -1],
  ['2.4.7-1', '2.4.7-z', -1],
  ['1.002-1+b2', '1.00', 1],
];

// Policy §5.6.12's own examples: "~~ < ~~a < ~ < (empty) < a".
const POLICY_TRIPLES: Triple[] = [
  ['1.0~~', '1.0~~a', -1],
  ['1.0~~a', '1.0~', -1],
  ['1.0~', '1.0', -1],
  ['1.0', '1.0a', -1],
  ['1.0a', '1.0+', -1],
];

describe('compareVersions', () => {
  describe.each([
    ['dpkg Dpkg_Version.t', DPKG_TRIPLES],
    ['dpkg t-version.c', DPKG_C_TRIPLES],
    ['apt versions.lst', APT_TRIPLES],
    ['Debian Policy 5.6.12', POLICY_TRIPLES],
  ] as const)('when given the %s table', (_name, table) => {
    it.each(table)('compares %s with %s as %d', (a, b, want) => {
      expect(compareVersions(a, b)).toBe(want);
      expect(compareVersions(b, a)).toBe(want === 0 ? 0 : -want);
    });
  });

  describe('when versions are arbitrary', () => {
    it('is antisymmetric', () => {
      fc.assert(
        fc.property(versionArb, versionArb, (a, b) => compareVersions(a, b) + compareVersions(b, a) === 0),
      );
    });
    it('is transitive', () => {
      fc.assert(
        fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
          const [x, y, z] = [a, b, c].sort(compareVersions);
          return compareVersions(x!, y!) <= 0 && compareVersions(y!, z!) <= 0 && compareVersions(x!, z!) <= 0;
        }),
      );
    });
    it('is reflexive and survives format(parse(v))', () => {
      fc.assert(
        fc.property(versionArb, (a) => {
          const p = parseVersion(a);
          return compareVersions(a, a) === 0 && compareVersions(formatVersion(p), a) === 0;
        }),
      );
    });
    it('orders appending "~" below and a letter above the shorter version', () => {
      fc.assert(
        fc.property(versionArb, (a) => {
          const v = parseVersion(a);
          const up = { ...v, upstream: `${v.upstream}~` };
          const down = { ...v, upstream: `${v.upstream}a` };
          return compareVersions(up, v) === -1 && compareVersions(down, v) === 1;
        }),
      );
    });
  });
});

describe('compareFragments', () => {
  it('treats leading zeros and the empty string as zero', () => {
    expect(compareFragments('', '0')).toBe(0);
    expect(compareFragments('007', '7')).toBe(0);
  });
});

describe('parseVersion', () => {
  describe('when the version is well formed', () => {
    it.each([
      ['1.0', { epoch: 0, upstream: '1.0', revision: '' }],
      ['2:1.0-3', { epoch: 2, upstream: '1.0', revision: '3' }],
      ['1.0-2-3', { epoch: 0, upstream: '1.0-2', revision: '3' }],
      ['  1:2:3-4  ', { epoch: 1, upstream: '2:3', revision: '4' }],
    ])('splits %j', (text, want) => {
      expect(parseVersion(text)).toEqual(want);
    });
  });
  describe('when the version is malformed', () => {
    it.each([
      ['', 'version string is empty'],
      ['1 0', 'embedded spaces'],
      [':1', 'epoch in version is empty'],
      ['a:1', 'epoch in version is not number'],
      ['-1:1', 'epoch in version is not number'],
      ['99999999999:1', 'epoch in version is too big'],
      ['1:', 'nothing after colon'],
      ['1-', 'revision number is empty'],
      ['-1', 'version number is empty'],
    ])('rejects %j', (text, why) => {
      expect(() => parseVersion(text)).toThrow(
        expect.objectContaining({ code: 'DEBIAN_VERSION_INVALID', message: expect.stringContaining(why) }),
      );
    });
    it('accepts what dpkg only warns about, unless strict', () => {
      expect(parseVersion('abc').upstream).toBe('abc');
      expect(() => parseVersion('abc', { strict: true })).toThrow(
        expect.objectContaining({ message: expect.stringContaining('does not start with digit') }),
      );
      expect(() => parseVersion('1.0-a_b', { strict: true })).toThrow(
        expect.objectContaining({ message: expect.stringContaining('invalid character in revision') }),
      );
    });
  });
});

describe('satisfiesVersion', () => {
  it.each([
    ['1.0', '<<', '1.1', true],
    ['1.1', '<<', '1.1', false],
    ['1.1', '<=', '1.1', true],
    ['1.1', '=', '1.1-0', true],
    ['1.1', '>=', '1.1', true],
    ['1.1', '>>', '1.1', false],
    ['1.2', '>>', '1.1', true],
  ] as const)('%s %s %s is %s', (v, op, ref, want) => {
    expect(satisfiesVersion(v, op, ref)).toBe(want);
  });
  it('reads the deprecated < and > as <= and >=', () => {
    expect(parseVersionOp('<')).toBe('<=');
    expect(parseVersionOp('>')).toBe('>=');
    expect(parseVersionOp('=>')).toBeUndefined();
  });
});

const upstreamChar = fc.constantFrom(...'0123456789abzABZ.+~'.split(''));
const revisionChar = fc.constantFrom(...'0123456789abzAZ.+~'.split(''));
/** Valid versions biased toward the tricky parts: `~`, letters vs punctuation, leading zeros, epochs. */
const versionArb = fc
  .tuple(
    fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    fc.integer({ min: 0, max: 20 }),
    fc.array(upstreamChar, { maxLength: 8 }),
    fc.option(fc.array(revisionChar, { minLength: 1, maxLength: 5 }), { nil: undefined }),
  )
  .map(
    ([e, d, u, r]) =>
      `${e === undefined ? '' : `${e}:`}${d}${u.join('')}${r === undefined ? '' : `-${r.join('')}`}`,
  );
