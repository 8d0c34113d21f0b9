import { describe, expect, it } from 'vitest';
import { detachRecord, parsePackages, scanPackages } from './packages.ts';
import { PackageUniverse, resolveDependencies } from './resolve.ts';

const origin = { suite: 'stable', component: 'main', source: 'Packages' };
const stanza = (name: string, extra = '') =>
  `Package: ${name}\nVersion: 1.0-1\nArchitecture: amd64\n${extra}Filename: pool/main/${name}.deb\nSize: 10\nSHA256: ${'b'.repeat(64)}\nDescription: the ${name} package\n`;
const text = [
  stanza('app', 'Depends: libx (>= 1),\n libz\nMulti-Arch: foreign\n'),
  stanza('libx', 'Provides: libx-abi-1\n'),
  stanza('libz'),
].join('\n');

describe('detachRecord', () => {
  describe('when given a record of scanPackages', () => {
    it('returns the same record over its own copy of the stanza', () => {
      const bytes = Buffer.from(text);
      const [app] = scanPackages(bytes, origin);
      const copy = detachRecord(app!);
      // note: the index bytes are wiped after detaching; the copy must not read them any more
      bytes.fill(0x20);
      const { paragraph: _p, ...fields } = copy;
      const [want] = parsePackages(text, origin);
      const { paragraph: _w, ...wantFields } = want!;
      expect(fields).toEqual(wantFields);
      expect([...copy.paragraph.entries()]).toEqual([...want!.paragraph.entries()]);
      expect(copy.paragraph.get('depends')).toBe('libx (>= 1),\nlibz');
    });
  });
  describe('when given any other record', () => {
    it('returns it as it is', () => {
      const [r] = parsePackages(text, origin);
      expect(detachRecord(r!)).toBe(r);
    });
  });
});

describe('resolveDependencies over scanned records', () => {
  it('returns paragraphs that stay readable after the index bytes are gone', () => {
    const bytes = Buffer.from(text);
    const records = scanPackages(bytes, origin);
    const u = new PackageUniverse([{ suite: 'stable', paragraphs: records.map((r) => r.paragraph) }]);
    const res = resolveDependencies(u, ['app']);
    bytes.fill(0x20);
    expect(res.packages.map((p) => [p.name, p.paragraph.get('Description')])).toEqual([
      ['app', 'the app package'],
      ['libx', 'the libx package'],
      ['libz', 'the libz package'],
    ]);
    expect(res.why('libz').map((c) => c.map((l) => l.package))).toEqual([['app', 'libz']]);
  });
});
