import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { vexDataIndex } from '../../scripts/vex-data-index.ts';
import type { AuditFile, AuditReport } from '../audit/index.ts';
import { bufferContent, fileEntry, symlinkEntry, Tree } from '../fstree/index.ts';
import type { SbomPackage } from '../sbom/index.ts';
import { parseVexDataFile, shippedVexData, type VexEntry, vexData } from './data.ts';
import { decide } from './decide.ts';
import { type Finding, parseReport, reportFormat } from './findings.ts';
import { applyVex, ociPurl, parseOpenVex, toOpenVex } from './openvex.ts';
import { renderExplain, renderSummary } from './render.ts';

const DATA_DIR = join(import.meta.dirname, 'data');

describe('vex data', () => {
  it('data/index.ts imports every data file of the folder (else: node scripts/vex-data-index.ts)', () => {
    expect(readFileSync(join(DATA_DIR, 'index.ts'), 'utf8')).toBe(vexDataIndex(DATA_DIR));
  });

  it('every shipped file validates, and every one is loaded', () => {
    const files = readdirSync(DATA_DIR).filter((f) => f.endsWith('.json'));
    const data = shippedVexData();
    expect(data.files).toEqual(files.sort());
    expect(data.entries).toBeGreaterThan(0);
    expect(data.byId.get('CVE-2022-37434')?.[0]?.functions).toContain('inflateGetHeader');
  });

  const good: VexEntry = {
    id: 'CVE-2024-5535',
    binaries: ['libssl3'],
    libraries: ['libssl.so.3'],
    functions: ['SSL_select_next_proto'],
    reachability: 'function-level',
    confidence: 'high',
    fixed: { bookworm: '3.0.14-1~deb12u1' },
    source_ref: 'advisory',
    reasoning: 'why',
  };
  it.each([
    ['an unknown key', { ...good, function: ['x'] }, 'entries[0]: Unrecognized key: "function"'],
    ['a bad id', { ...good, id: 'CVE-24-1' }, 'entries[0].id: want a CVE id'],
    [
      'a function-level entry without functions',
      { ...good, functions: [] },
      'entries[0].functions: a function-level',
    ],
    [
      'a function that is not an identifier',
      { ...good, functions: ['SSL select'] },
      'entries[0].functions[0]',
    ],
    [
      'a library that is not a .so',
      { ...good, libraries: ['libssl'] },
      'entries[0].libraries[0]: want a library',
    ],
    ['a bad reachability', { ...good, reachability: 'maybe' }, 'entries[0].reachability'],
    ['no source_ref', { ...good, source_ref: '' }, 'entries[0].source_ref: want the advisory'],
    [
      'a bad fixed version',
      { ...good, fixed: { bookworm: 'new' } },
      'entries[0].fixed.bookworm: want a Debian version',
    ],
  ])('refuses %s', (_, entry, message) => {
    expect(() => parseVexDataFile({ source: 'openssl', entries: [entry] }, 'openssl.json')).toThrow(
      expect.objectContaining({ code: 'INPUT_INVALID', message: expect.stringContaining(message) }),
    );
  });

  it('refuses a file not named after its source, and a CVE listed twice', () => {
    expect(() => parseVexDataFile({ source: 'openssl', entries: [good] }, 'curl.json')).toThrow(
      expect.objectContaining({ message: expect.stringContaining('belongs in openssl.json') }),
    );
    expect(() => parseVexDataFile({ source: 'openssl', entries: [good, good] }, 'openssl.json')).toThrow(
      expect.objectContaining({ message: expect.stringContaining('CVE-2024-5535 is listed twice') }),
    );
  });

  it('accepts a not-function-level entry without functions', () => {
    const e = { ...good, functions: [], reachability: 'not-function-level' };
    expect(parseVexDataFile({ source: 'openssl', entries: [e] }, 'openssl.json').entries).toHaveLength(1);
  });
});

describe('parseReport', () => {
  it('reads grype matches[].vulnerability.id and artifact name/version/purl', () => {
    const text = JSON.stringify({
      matches: [
        {
          vulnerability: { id: 'CVE-1-1' },
          artifact: { name: 'libssl3', version: '3.0.1', purl: 'pkg:deb/debian/libssl3@3.0.1?arch=amd64' },
        },
        { vulnerability: { id: 'CVE-1-1' }, artifact: { name: 'libssl3', version: '3.0.1' } },
      ],
    });
    expect(parseReport(text, 'g.json')).toEqual({
      format: 'grype',
      findings: [
        {
          id: 'CVE-1-1',
          package: 'libssl3',
          version: '3.0.1',
          purl: 'pkg:deb/debian/libssl3@3.0.1?arch=amd64',
        },
      ],
    });
  });

  it('reads trivy Results[].Vulnerabilities[] (object and old array form), skipping results without any', () => {
    const v = {
      VulnerabilityID: 'CVE-1-2',
      PkgName: 'zlib1g',
      InstalledVersion: '1:1.2',
      PkgIdentifier: { PURL: 'pkg:deb/debian/zlib1g@1:1.2' },
    };
    const want = [
      { id: 'CVE-1-2', package: 'zlib1g', version: '1:1.2', purl: 'pkg:deb/debian/zlib1g@1:1.2' },
    ];
    expect(
      parseReport(JSON.stringify({ Results: [{ Target: 'x' }, { Vulnerabilities: [v] }] }), 't').findings,
    ).toEqual(want);
    expect(parseReport(JSON.stringify([{ Vulnerabilities: [v] }]), 't').findings).toEqual(want);
    expect(parseReport(JSON.stringify({ SchemaVersion: 2 }), 't').findings).toEqual([]);
  });

  it('reads a list with comments', () => {
    expect(parseReport('# x\n\nCVE-1-3 curl # why\r\n', 'l').findings).toEqual([
      { id: 'CVE-1-3', package: 'curl', version: undefined, purl: undefined },
    ]);
    expect(reportFormat('  {"matches": []}')).toBe('grype');
  });

  it.each([
    ['a list line with one field', 'CVE-1-1 a\nCVE-1-2\n', 'r.txt:2:1: want "CVE-ID PACKAGE"'],
    ['a list line with a bad id', 'x/y a\n', 'r.txt:1:1: "x/y" is not a vulnerability id'],
    [
      'a grype match without artifact name',
      '{"matches":[{"vulnerability":{"id":"C-1"}}]}',
      'matches[0].artifact.name',
    ],
    [
      'a trivy finding with a bad purl',
      '{"Results":[{"Vulnerabilities":[{"VulnerabilityID":"C-1","PkgName":"a","PkgIdentifier":{"PURL":"nope"}}]}]}',
      'PkgIdentifier.PURL: "nope" is not a package URL',
    ],
    ['JSON that does not parse', '{"matches": [', 'not JSON'],
  ])('refuses %s, naming where', (_, text, message) => {
    expect(() => parseReport(text, 'r.txt')).toThrow(
      expect.objectContaining({ code: 'INPUT_INVALID', message: expect.stringContaining(message) }),
    );
  });
});

// --- decide, on a crafted image: a tree, the audit facts decide reads, and installed packages ---

function pkg(name: string, version: string, source = name): SbomPackage {
  return {
    name,
    version,
    architecture: 'amd64',
    source: { name: source, version },
    sliced: true,
    purl: `pkg:deb/debian/${name}@${version}?arch=amd64&distro=debian-12`,
  } as unknown as SbomPackage;
}

function elf(path: string, imports: string[], extra: Partial<AuditFile> = {}): AuditFile {
  return {
    path,
    soname: null,
    needed: [],
    imports: imports.map((name) => ({ name, library: '/lib/x/libz.so.1' })),
    linkedFunctions: [],
    ...extra,
  } as unknown as AuditFile;
}

const ZLIB: VexEntry = {
  id: 'CVE-2022-37434',
  binaries: ['zlib1g'],
  libraries: ['libz.so.1'],
  functions: ['inflateGetHeader'],
  reachability: 'function-level',
  confidence: 'high',
  fixed: { bookworm: '1:1.2.13.dfsg-2' },
  source_ref: 'zlib fix',
  reasoning: 'only callers of inflateGetHeader',
};
const F: Finding = { id: 'CVE-2022-37434', package: 'zlib1g', version: undefined, purl: undefined };

async function run(
  o: {
    files?: [string, string][];
    audit?: AuditFile[];
    errors?: AuditReport['errors'];
    packages?: SbomPackage[] | undefined;
    entry?: Partial<VexEntry> | null;
    finding?: Partial<Finding>;
  } = {},
) {
  const files: [string, string][] = o.files ?? [['/lib/x/libz.so.1.2.13', 'zlib code']];
  const tree = Tree.from([
    ...files.map(([p, c]) => [p, fileEntry(bufferContent(c))] as const),
    ['/lib/x/libz.so.1', symlinkEntry('libz.so.1.2.13')] as const,
  ]);
  const audit = {
    files: o.audit ?? [
      elf('/lib/x/libz.so.1.2.13', [], { soname: 'libz.so.1' }),
      elf('/usr/bin/app', ['inflate']),
    ],
    errors: o.errors ?? [],
  } as unknown as AuditReport;
  const entries = o.entry === null ? [] : [{ ...ZLIB, ...o.entry }];
  const data = vexData([{ file: 'zlib.json', data: { source: 'zlib', entries } }]);
  const packages = 'packages' in o ? o.packages : [pkg('zlib1g', '1:1.2.13.dfsg-1')];
  const [d] = await decide({ tree, audit, packages, codename: 'bookworm', data }, [{ ...F, ...o.finding }]);
  return d!;
}

describe('decide', () => {
  it('proves vulnerable_code_not_in_execute_path when nothing imports the function', async () => {
    const d = await run();
    expect([d.status, d.justification]).toEqual(['not_affected', 'vulnerable_code_not_in_execute_path']);
    expect(d.impact).toContain('/lib/x/libz.so.1');
    expect(d.purl).toBe('pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12');
  });

  it('is affected, naming the importers, when another file imports it (the own library does not count)', async () => {
    const d = await run({
      audit: [
        elf('/lib/x/libz.so.1.2.13', ['inflateGetHeader'], { soname: 'libz.so.1' }),
        elf('/usr/lib/libpng.so', ['inflateGetHeader']),
      ],
    });
    expect(d.status).toBe('affected');
    expect(d.evidence.importers).toEqual(['/usr/lib/libpng.so: inflateGetHeader (/lib/x/libz.so.1)']);
    expect(d.action).toContain('zlib');
  });

  it('counts a function linked in statically', async () => {
    const d = await run({ audit: [elf('/usr/bin/static', [], { linkedFunctions: ['inflateGetHeader'] })] });
    expect(d.status).toBe('affected');
  });

  it('is under_investigation when a dlopen user names the library, not_affected when it names none', async () => {
    const names = await run({
      files: [
        ['/lib/x/libz.so.1.2.13', 'zlib'],
        ['/usr/bin/loader', 'ELF ... libz.so.1 ...'],
      ],
      audit: [elf('/usr/bin/loader', ['dlopen', 'dlsym'])],
    });
    expect(names.status).toBe('under_investigation');
    expect(names.evidence.dlopenUsers).toEqual(['/usr/bin/loader: names libz.so']);
    const none = await run({
      files: [
        ['/lib/x/libz.so.1.2.13', 'zlib'],
        ['/usr/bin/loader', 'ELF ... libfoo.so ...'],
      ],
      audit: [elf('/usr/bin/loader', ['dlopen'])],
    });
    expect(none.justification).toBe('vulnerable_code_not_in_execute_path');
    expect(none.evidence.dlopenUsers).toEqual(['/usr/bin/loader: names none of libz.so']);
    // A file that links libz.so.1 has the name once in .dynstr: that is not a dlopen of it; a second one may be.
    const linked = (text: string) =>
      run({
        files: [
          ['/lib/x/libz.so.1.2.13', 'zlib'],
          ['/usr/bin/loader', text],
        ],
        audit: [elf('/usr/bin/loader', ['dlopen'], { needed: ['libz.so.1', 'libc.so.6'] })],
      });
    expect((await linked('.dynstr libz.so.1 libc.so.6')).justification).toBe(
      'vulnerable_code_not_in_execute_path',
    );
    expect((await linked('.dynstr libz.so.1 .rodata libz.so.1')).status).toBe('under_investigation');
  });

  it('is under_investigation with an FFI module (ctypes) in the image', async () => {
    const d = await run({
      files: [
        ['/lib/x/libz.so.1.2.13', 'zlib'],
        ['/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so', 'x'],
      ],
    });
    expect(d.status).toBe('under_investigation');
    expect(d.evidence.ffi).toEqual([
      '/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so (Python ctypes)',
    ]);
  });

  it('is under_investigation when an ELF file could not be read', async () => {
    const d = await run({ errors: [{ path: '/usr/bin/bad', code: 'ELF_TRUNCATED', message: 'x' }] });
    expect(d.status).toBe('under_investigation');
    expect(d.impact).toContain('/usr/bin/bad');
  });

  it('never proves not_affected from reachability for a not-function-level entry', async () => {
    const d = await run({ entry: { reachability: 'not-function-level', functions: [] } });
    expect(d.status).toBe('affected');
    expect(d.action).toBeDefined();
  });

  it('says component_not_present for a package that is not installed or a library sliced away', async () => {
    const gone = await run({ packages: [pkg('libc6', '2.36')] });
    expect([gone.status, gone.justification]).toEqual(['not_affected', 'component_not_present']);
    const sliced = await run({ files: [['/usr/bin/app', 'x']] });
    expect(sliced.justification).toBe('component_not_present');
    expect(sliced.impact).toContain('the slicer removed it');
  });

  it('says vulnerable_code_not_present when the changelog names the CVE or the fixed version is installed', async () => {
    const log = gzipSync(
      'zlib (1:1.2.13.dfsg-1) unstable; urgency=medium\n\n  * Fix CVE-2022-37434.\n\n -- M <m@example.org>  Thu, 01 Feb 2024 12:00:00 +0000\n',
    );
    const d = await decide(
      {
        tree: Tree.from([
          ['/lib/x/libz.so.1', fileEntry(bufferContent('zlib'))],
          ['/usr/share/doc/zlib1g/changelog.Debian.gz', fileEntry(bufferContent(new Uint8Array(log)))],
        ]),
        audit: { files: [], errors: [] } as unknown as AuditReport,
        packages: [pkg('zlib1g', '1:1.2.13.dfsg-1')],
        codename: 'bookworm',
        data: vexData([{ file: 'zlib.json', data: { source: 'zlib', entries: [ZLIB] } }]),
      },
      [F],
    );
    expect([d[0]!.status, d[0]!.justification]).toEqual(['not_affected', 'vulnerable_code_not_present']);
    expect(d[0]!.impact).toContain('changelog');
    const fixed = await run({
      entry: { fixed: { bookworm: '1:1.2.13.dfsg-1' }, reachability: 'not-function-level' },
    });
    expect(fixed.justification).toBe('vulnerable_code_not_present');
    const older = await run({
      entry: { fixed: { bookworm: '1:1.2.13.dfsg-2' }, reachability: 'not-function-level' },
    });
    expect(older.status).toBe('affected');
    expect(older.action).toContain('1:1.2.13.dfsg-2');
  });

  it('is under_investigation without data, without a dpkg database, or for a report of another version', async () => {
    expect((await run({ entry: null })).status).toBe('under_investigation');
    expect((await run({ packages: undefined })).status).toBe('under_investigation');
    const other = await run({ finding: { version: '1:1.2.11' } });
    expect(other.status).toBe('under_investigation');
    expect(other.impact).toContain('another image');
  });
});

describe('toOpenVex, applyVex', () => {
  it('writes one statement per finding with the image product and the package subcomponent; apply filters', async () => {
    const d = await run();
    const doc = toOpenVex([d], {
      product: ociPurl('app', 'sha256:ab'),
      imageDigest: 'sha256:ab',
      report: new Uint8Array([1]),
      author: 'pare',
      timestamp: 0,
      tooling: 'pare test',
    });
    expect(doc['@id']).toMatch(/^urn:uuid:[0-9a-f-]{36}$/);
    expect(doc.timestamp).toBe('1970-01-01T00:00:00Z');
    expect(doc.statements[0]).toMatchObject({
      vulnerability: { name: 'CVE-2022-37434' },
      products: [{ '@id': 'pkg:oci/app@sha256:ab', subcomponents: [{ '@id': d.purl }] }],
      status: 'not_affected',
      justification: 'vulnerable_code_not_in_execute_path',
    });
    const vex = parseOpenVex(JSON.stringify(doc), 'v.json');
    const r = applyVex('CVE-2022-37434 zlib1g\nCVE-2022-37434 libz-other\n', 'l.txt', vex);
    expect(r.text).toBe('CVE-2022-37434 libz-other\n');
    expect(r.suppressed.map((s) => s.why)).toEqual([`vulnerable_code_not_in_execute_path: ${d.impact}`]);
    expect(renderSummary([d])).toMatch(/not_affected \/ vulnerable_code_not_in_execute_path +1/);
    expect(renderExplain([d], 'CVE-2022-37434')).toContain('dlopen users: none considered');
    expect(() => parseOpenVex('{"statements": []}', 'v.json')).toThrow(
      expect.objectContaining({
        code: 'INPUT_INVALID',
        message: expect.stringContaining('v.json: @context'),
      }),
    );
  });
});
