import { describe, expect, it } from 'vitest';
import { formatControl, Paragraph, parseControl } from './control.ts';

describe('parseControl', () => {
  describe('when given Packages-style stanzas', () => {
    const text =
      'Package: a\nVersion: 1.0\nDescription: short\n long line\n .\n more\n\nPackage: b\nversion: 2\n';
    it('returns one paragraph per stanza with case-insensitive fields', () => {
      const ps = parseControl(text);
      expect(ps).toHaveLength(2);
      expect(ps[0]!.get('package')).toBe('a');
      expect(ps[0]!.get('Description')).toBe('short\nlong line\n\nmore');
      expect(ps[1]!.get('Version')).toBe('2');
      expect(ps[1]!.line).toBe(8);
    });
    it('round-trips through formatControl', () => {
      const ps = parseControl(text);
      const again = parseControl(formatControl(ps));
      expect(again.map((p) => [...p.entries()])).toEqual(ps.map((p) => [...p.entries()]));
    });
  });
  describe('when the text is malformed', () => {
    it.each([
      ['no colon here\n', 'CONTROL_SYNTAX'],
      [' continuation first\n', 'CONTROL_SYNTAX'],
      ['A: 1\na: 2\n', 'CONTROL_DUPLICATE_FIELD'],
    ])('rejects %j with %s', (t, code) => {
      expect(() => parseControl(t, { source: 'Packages' })).toThrow(expect.objectContaining({ code }));
    });
  });
  it('skips comments only when asked', () => {
    expect(parseControl('# c\nTypes: deb\n', { comments: true })[0]!.get('types')).toBe('deb');
    expect(() => parseControl('# c\nTypes: deb\n')).toThrow(
      expect.objectContaining({ code: 'CONTROL_SYNTAX' }),
    );
  });
  it('Paragraph.with replaces in place', () => {
    const p = new Paragraph([
      ['A', '1'],
      ['B', '2'],
    ]).with('a', '3');
    expect([...p.entries()]).toEqual([
      ['A', '3'],
      ['B', '2'],
    ]);
  });
});
