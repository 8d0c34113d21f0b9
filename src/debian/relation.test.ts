import { describe, expect, it } from 'vitest';
import {
  archMatches,
  formatAlternatives,
  formatRelation,
  parseProvides,
  parseRelations,
  reduceRelations,
} from './relation.ts';

describe('parseRelations', () => {
  describe('when the field is well formed', () => {
    it('splits AND-groups and OR-alternatives', () => {
      const g = parseRelations('libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, perl:any');
      expect(g.map(formatAlternatives)).toEqual([
        'libc6 (>= 2.34)',
        'debconf (>= 0.5) | debconf-2.0',
        'perl:any',
      ]);
      expect(g[0]![0]!.constraint).toMatchObject({ op: '>=', version: { upstream: '2.34' } });
      expect(g[2]![0]!.archQualifier).toBe('any');
    });
    it('reads continuation lines, missing spaces, deprecated operators and trailing commas', () => {
      const g = parseRelations('a(>=1:2.0-1),\n b (<1),c (> 2),\n');
      expect(g.map(formatAlternatives)).toEqual(['a (>= 1:2.0-1)', 'b (<= 1)', 'c (>= 2)']);
    });
    it('reads architecture and profile restrictions', () => {
      const [[r]] = parseRelations('gcc-multilib [amd64 i386] <!nocheck> <stage1 cross>') as [[never]];
      expect(r).toMatchObject({
        name: 'gcc-multilib',
        archRestriction: { negated: false, archs: ['amd64', 'i386'] },
        profiles: [
          [{ negated: true, name: 'nocheck' }],
          [
            { negated: false, name: 'stage1' },
            { negated: false, name: 'cross' },
          ],
        ],
      });
      expect(formatRelation(r)).toBe('gcc-multilib [amd64 i386] <!nocheck> <stage1 cross>');
    });
    it('returns nothing for an empty field', () => {
      expect(parseRelations('  \n ')).toEqual([]);
    });
  });

  describe('when the field is malformed', () => {
    it.each([
      ['a (>= 1.0', 'unterminated version'],
      ['a (~ 1.0)', 'want "(op version)"'],
      ['a (=< 1.0)', 'invalid version operator'],
      ['a (>= )', 'want "(op version)"'],
      ['a [amd64 !i386]', 'all negated or all positive'],
      ['a [amd64', 'unterminated architecture list'],
      ['a <stage1', 'unterminated profile list'],
      ['a | | b', 'missing package name'],
      ['a b', 'unexpected "b"'],
      ['a:AMD64', 'invalid architecture qualifier'],
      ['a (>= 1:)', 'nothing after colon'],
    ])('rejects %j', (text, why) => {
      expect(() => parseRelations(text, { field: 'Depends', package: 'p' })).toThrow(
        expect.objectContaining({
          code: 'DEBIAN_RELATION_INVALID',
          message: expect.stringMatching(
            new RegExp(`Depends field of package "p".*${why.replace(/[()[\]|]/g, '\\$&')}`),
          ),
        }),
      );
    });
    it('enforces Policy names only when strict', () => {
      expect(parseRelations('Foo_Bar')[0]![0]!.name).toBe('Foo_Bar');
      expect(() => parseRelations('Foo_Bar', { strict: true })).toThrow(
        expect.objectContaining({ code: 'DEBIAN_RELATION_INVALID' }),
      );
    });
  });
});

describe('parseProvides', () => {
  it('reads versioned provides', () => {
    expect(parseProvides('awk, python3-foo (= 1.2)').map(formatRelation)).toEqual([
      'awk',
      'python3-foo (= 1.2)',
    ]);
  });
  it('rejects alternatives and operators other than "="', () => {
    expect(() => parseProvides('a | b')).toThrow(
      expect.objectContaining({ message: expect.stringContaining('alternatives') }),
    );
    expect(() => parseProvides('a (>= 1)')).toThrow(
      expect.objectContaining({ message: expect.stringContaining('only "="') }),
    );
  });
});

describe('archMatches', () => {
  it.each([
    ['amd64', 'any', true],
    ['amd64', 'amd64', true],
    ['amd64', 'linux-any', true],
    ['amd64', 'any-amd64', true],
    ['arm64', 'any-amd64', false],
    ['kfreebsd-amd64', 'linux-any', false],
    ['kfreebsd-amd64', 'kfreebsd-any', true],
    ['arm64', 'amd64', false],
  ])('%s matches %s: %s', (arch, pattern, want) => {
    expect(archMatches(arch, pattern)).toBe(want);
  });
});

describe('reduceRelations', () => {
  it('drops alternatives restricted away and groups left empty', () => {
    const g = parseRelations('a [amd64] | b, c [!amd64], d <!nocheck>, e <stage1>');
    expect(reduceRelations(g, 'amd64').map(formatAlternatives)).toEqual(['a [amd64] | b', 'd <!nocheck>']);
    expect(reduceRelations(g, 'arm64', ['stage1', 'nocheck']).map(formatAlternatives)).toEqual([
      'b',
      'c [!amd64]',
      'e <stage1>',
    ]);
  });
});
