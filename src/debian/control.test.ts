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

describe('Paragraph.lazy', () => {
  const text =
    'Package: a\nMulti-Arch: same\nDescription: short\n long line\n .\n more\nDepends: b,\n\tc\nX-Ü: ä';
  describe('when given a byte range of a bigger buffer', () => {
    const bytes = Buffer.from(`junk\n\n${text}\n\nPackage: other\n`);
    const start = bytes.indexOf('Package: a');
    const end = start + Buffer.byteLength(text);
    it('returns fields as the full parser does, in any case, without reading outside the range', () => {
      const p = Paragraph.lazy({ bytes, start, end });
      const full = parseControl(text)[0]!;
      for (const [name, value] of full.entries()) expect(p.get(name.toUpperCase())).toBe(value);
      expect(p.get('multi-arch')).toBe('same');
      expect(p.get('Depends')).toBe('b,\nc');
      expect(p.get('Other')).toBeUndefined();
      expect(p.get('Junk')).toBeUndefined();
      expect([...p.entries()]).toEqual([...full.entries()]);
    });
  });
  describe('when the owner knows some fields', () => {
    it('asks it first, null meaning absent, and searches the text for the rest', () => {
      const asked: string[] = [];
      const known = {
        knownField(key: string) {
          asked.push(key);
          return key === 'package' ? 'from-owner' : key === 'depends' ? null : undefined;
        },
      };
      const p = Paragraph.lazy(text, 0, { known });
      expect(p.get('Package')).toBe('from-owner');
      expect(p.get('Depends')).toBeUndefined();
      expect(p.get('MULTI-ARCH')).toBe('same');
      expect(asked).toEqual(['package', 'depends', 'multi-arch']);
    });
  });
});
