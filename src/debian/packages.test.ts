import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recordFields } from '../../test/helpers/package-record.ts';
import { detachRecord, IndexScanner, parsePackages, scanPackages } from './packages.ts';
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

describe('IndexScanner', () => {
  const fields = recordFields;
  const scanInChunks = (bytes: Buffer, cuts: readonly number[]) => {
    const s = new IndexScanner(origin);
    let at = 0;
    for (const c of [...cuts].sort((a, b) => a - b)) {
      s.push(bytes.subarray(at, Math.max(at, c)));
      at = Math.max(at, c);
    }
    s.push(bytes.subarray(at));
    return s.end();
  };
  const word = fc.stringMatching(/^[a-z0-9][a-z0-9.+-]{0,8}$/);
  const stanzaArb = fc.record({
    name: word,
    provides: fc.option(fc.array(word, { minLength: 1, maxLength: 3 }), { nil: undefined }),
    depends: fc.option(fc.array(word, { minLength: 1, maxLength: 3 }), { nil: undefined }),
    multiline: fc.boolean(),
    lower: fc.boolean(),
    desc: fc.array(
      fc.string({ maxLength: 12 }).map((s) => s.replace(/[\n\r]/g, '').trim() || '.'),
      {
        maxLength: 2,
      },
    ),
  });
  type Spec = typeof stanzaArb extends fc.Arbitrary<infer T> ? T : never;
  const render = (s: Spec) => {
    const list = (xs: string[]) => (s.multiline ? `\n ${xs.join(',\n ')}` : ` ${xs.join(', ')}`);
    return (
      `${s.lower ? 'package' : 'Package'}: ${s.name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: someone\n` +
      (s.provides ? `Provides:${list(s.provides)}\n` : '') +
      (s.depends ? `Depends:${list(s.depends)}\n` : '') +
      `Filename: pool/${s.name}.deb\nSize: 12\nSHA256: ${'c'.repeat(64)}\nDescription: x\n${s.desc.map((d) => ` ${d}\n`).join('')}`
    );
  };

  it('gives the records of parsePackages with only the kept fields, however the bytes are cut (property)', () => {
    fc.assert(
      fc.property(
        fc.array(stanzaArb, { maxLength: 6 }),
        fc.constantFrom('\n', '\n\n\n'),
        fc.array(fc.nat(2000), { maxLength: 6 }),
        (stanzas, sep, cuts) => {
          const text = stanzas.map(render).join(sep);
          const want = parsePackages(text, origin);
          const got = scanInChunks(Buffer.from(text), cuts);
          expect(got.map(fields)).toEqual(want.map(fields));
          for (const [i, r] of want.entries()) {
            for (const f of ['Package', 'Depends', 'Provides', 'Filename', 'SHA256'])
              expect(got[i]!.paragraph.get(f)).toBe(r.paragraph.get(f));
            expect(got[i]!.paragraph.get('Description')).toBeUndefined();
            expect(got[i]!.paragraph.get('Maintainer')).toBeUndefined();
            expect(detachRecord(got[i]!).paragraph.get('depends')).toBe(r.paragraph.get('Depends'));
          }
        },
      ),
    );
  });

  it('reads CRLF stanzas with the full parser', () => {
    const got = scanInChunks(Buffer.from(text.replaceAll('\n', '\r\n')), [17, 100]);
    expect(got.map(fields)).toEqual(parsePackages(text, origin).map(fields));
    expect(got[0]!.paragraph.get('Depends')).toBe('libx (>= 1),\nlibz');
  });

  it.each([
    [
      'Package: a\nVersion: 1\nArchitecture: all\nSize: 1\nSHA256: ' + 'a'.repeat(64),
      /stanza "a" has no Filename/,
    ],
    [
      'Package: a\nVersion: 1\nArchitecture: all\nFilename: p/a.deb\nSize: -1\nSHA256: x',
      /malformed SHA256 or Size/,
    ],
  ])('throws DEBIAN_INDEX_INVALID naming the line as scanPackages does for %j', (bad, message) => {
    const bytes = Buffer.from(`${text}\n${bad}\n`);
    // note: the bad stanza starts on line 29 of the index, and the cuts put it in a later region than the first
    const at = /:(\d+): /;
    expect(() => scanPackages(bytes, origin)).toThrow(
      expect.objectContaining({ message: expect.stringMatching(at) }),
    );
    const line = (() => {
      try {
        scanPackages(bytes, origin);
      } catch (e) {
        return at.exec((e as Error).message)![1];
      }
    })();
    expect(line).toBe('29');
    for (const cuts of [[50, 120], [], [bytes.length - 3]])
      expect(() => scanInChunks(bytes, cuts)).toThrow(
        expect.objectContaining({
          code: 'DEBIAN_INDEX_INVALID',
          message: expect.stringMatching(new RegExp(`Packages:${line}: .*${message.source}`)),
        }),
      );
  });
});
