import { describe, expect, it } from 'vitest';
import { parseConfigText } from './index.ts';

describe('parseConfigText', () => {
  it('fills defaults', () => {
    const c = parseConfigText('name: hello\n');
    expect(c.platforms).toEqual(['linux/amd64']);
    expect(c.base).toBe('minimal');
    expect(c.files).toEqual([]);
  });
  describe('when the config is wrong', () => {
    it.each([
      ['name: hello\nfiels: []\n', /pare.yaml:2:1: unknown key "fiels"/],
      ['image:\n  user: root\n  entrypiont: [x]\n', /pare.yaml:3:3: unknown key "entrypiont" in image/],
      [
        'files:\n  - dest: /a\n    src: a\n    content: b\n',
        /pare.yaml:2:5: files.0: give exactly one of src/,
      ],
      ['platforms: [windows/amd64]\n', /pare.yaml:1:13: platforms.0: want a platform/],
      ['image:\n  ports: [99999]\n', /pare.yaml:2:11: image.ports.0/],
      ['name: [unclosed\n', /pare.yaml:\d+:\d+: /],
      ['a: 1\na: 2\n', /pare.yaml:2:1: .*(unique|Map keys)/i],
    ])('%j → %s', (text, re) => {
      expect(() => parseConfigText(text)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(re) }),
      );
    });
  });
});
