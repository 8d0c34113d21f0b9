import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import { readAptSources } from '../../src/debian/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { imageToTree, selectImage } from '../../src/oci/index.ts';
import {
  type Decision,
  parseReport,
  parseVexDataFile,
  shippedVexData,
  type VexData,
  vexData,
  vexImage,
} from '../../src/vex/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersOrSkip, peersRequired } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';
import {
  dpkgVersions,
  type ReadelfFacts,
  readelfFacts,
  readelfImporters,
  unpackWithUmoci,
  type VexImageName,
  writeVexProject,
} from '../helpers/vex-images.ts';

/**
 * `pare vex` on curl, python3 and git images pare builds from the real Debian archive, with scanner reports written
 * from test/fixtures/openvex. Every verdict is checked against an independent one: umoci unpacks the image and
 * readelf lists what each ELF file imports; a `not_affected` from the execute path must have no importer there, an
 * `affected` must name exactly the importers readelf finds.
 */
const sources = await readAptSources().catch(() => []);
const mirror = sources.some((s) => s.types.includes('deb'));
if (!mirror) {
  const reason = 'no Debian mirror in the host apt sources: the vex images need one';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
}
const peers = peersOrSkip('umoci', 'readelf');
const FIXTURES = resolve('test/fixtures/openvex');

/** The known cases, as data entries (the shipped data may not have them yet; the engine is tested on these). */
const KNOWN: VexData = vexData(
  [
    {
      source: 'openssl',
      entries: [
        {
          id: 'CVE-2024-5535',
          binaries: ['libssl3'],
          libraries: ['libssl.so.3'],
          functions: ['SSL_select_next_proto'],
          reachability: 'function-level',
          confidence: 'high',
          source_ref: 'OpenSSL security advisory 27 June 2024 (SSL_select_next_proto buffer overread)',
          reasoning:
            'only callers of SSL_select_next_proto (NPN/ALPN selection callbacks) reach the overread',
        },
      ],
    },
    {
      source: 'curl',
      entries: [
        {
          id: 'CVE-2023-38546',
          binaries: ['libcurl4', 'libcurl3-gnutls'],
          libraries: ['libcurl.so.4', 'libcurl-gnutls.so.4'],
          functions: ['curl_easy_duphandle'],
          reachability: 'function-level',
          confidence: 'high',
          source_ref: 'curl advisory CVE-2023-38546 (cookie injection with none file)',
          reasoning: 'the cookie engine is loaded from "none" only in a handle made by curl_easy_duphandle',
        },
      ],
    },
    {
      source: 'zlib',
      entries: [
        {
          id: 'CVE-2022-37434',
          binaries: ['zlib1g'],
          libraries: ['libz.so.1'],
          functions: ['inflateGetHeader'],
          reachability: 'function-level',
          confidence: 'high',
          source_ref: 'zlib commit eff308af (fix extra field processing bug)',
          reasoning: 'the overflow copies into the gz_header buffer a caller registers with inflateGetHeader',
        },
      ],
    },
  ].map((d) => ({ file: `${d.source}.json`, data: parseVexDataFile(d, `${d.source}.json`) })),
);

interface Built {
  layout: string;
  rootfs: string;
  versions: Map<string, string>;
  elf: Map<string, ReadelfFacts>;
  decisions: Decision[];
}

/** Fills a fixture's `@NAME@` placeholders with the image's installed versions (0 when not installed). */
function reportFor(fixture: string, image: string, versions: ReadonlyMap<string, string>): string {
  return readFileSync(join(FIXTURES, fixture), 'utf8')
    .replaceAll('@image@', image)
    .replace(/@([a-z0-9][a-z0-9+.-]*)@/g, (_, name: string) => versions.get(name) ?? '0');
}

/** The independent check of one decision against readelf's view of the unpacked image. */
function checkIndependently(d: Decision, b: Built, data: VexData): void {
  const entry = data.byId.get(d.finding.id)?.[0];
  if (!entry) return;
  const importers = readelfImporters(b.elf, entry.functions, entry.libraries);
  const label = `${d.finding.id} ${d.finding.package}: ${d.status}/${d.justification}`;
  if (d.justification === 'vulnerable_code_not_in_execute_path') expect(importers, label).toEqual([]);
  if (d.justification === 'component_not_present') {
    const libs = [...b.elf.keys()].filter((p) => entry.libraries.some((l) => p.endsWith(`/${l}`)));
    const installed = b.versions.has(d.finding.package);
    expect(libs.length === 0 || !installed, label).toBe(true);
  }
  if (d.status === 'affected' && entry.reachability === 'function-level')
    expect([...new Set(d.evidence.importers.map((i) => i.slice(0, i.indexOf(':'))))].sort(), label).toEqual(
      importers,
    );
}

describe.skipIf(!mirror || peers.skip)('pare vex on pare-built images', { timeout: 900_000 }, () => {
  const dir = tempDir();
  const built = new Map<VexImageName, Built>();

  beforeAll(async () => {
    for (const name of ['curl', 'python', 'git'] as const) {
      const project = writeVexProject(dir, name);
      const layout = join(dir, `${name}-img`);
      const r = await pare(['build', project, '-o', layout]);
      expect(r.code, r.stderr).toBe(0);
      const rootfs = join(dir, `${name}-rootfs`);
      unpackWithUmoci(peers.paths.umoci!, layout, name, rootfs);
      const versions = dpkgVersions(rootfs);
      const artifact = await (await OciLayout.open(layout)).readArtifact(name);
      const tree = await imageToTree(await selectImage(artifact, { os: 'linux', architecture: 'amd64' }));
      const text = reportFor('grype.json', name, versions);
      const { findings } = parseReport(text, 'grype.json');
      const decisions = await vexImage(tree, findings, { name, data: KNOWN });
      built.set(name, {
        layout,
        rootfs,
        versions,
        elf: readelfFacts(peers.paths.readelf!, rootfs),
        decisions,
      });
    }
  }, 900_000);

  const decision = (image: VexImageName, id: string, pkg: string) => {
    const d = built.get(image)!.decisions.find((x) => x.finding.id === id && x.finding.package === pkg);
    expect(d, `${image}: ${id} ${pkg}`).toBeDefined();
    return d!;
  };

  it('CVE-2024-5535 (SSL_select_next_proto): python3 imports it through _ssl, curl does not', () => {
    const py = decision('python', 'CVE-2024-5535', 'libssl3');
    expect(py.status).toBe('affected');
    expect(
      py.evidence.importers.some((i) => /\/_ssl\.cpython-[^/]*\.so: SSL_select_next_proto /.test(i)),
    ).toBe(true);
    expect(py.action).toContain('openssl');
    const curl = decision('curl', 'CVE-2024-5535', 'libssl3');
    expect(readelfImporters(built.get('curl')!.elf, ['SSL_select_next_proto'], ['libssl.so.3'])).toEqual([]);
    expect(curl.status).toBe('not_affected');
    expect(curl.justification).toBe('vulnerable_code_not_in_execute_path');
    expect(curl.impact).toContain('/usr/lib/x86_64-linux-gnu/libssl.so.3');
  });

  it("CVE-2023-38546 (curl_easy_duphandle): git's http helpers import it", () => {
    const git = decision('git', 'CVE-2023-38546', 'libcurl3-gnutls');
    expect(git.status).toBe('affected');
    const paths = git.evidence.importers.map((i) => i.slice(0, i.indexOf(':')));
    expect(paths).toContain('/usr/lib/git-core/git-remote-http');
    expect(readelfImporters(built.get('git')!.elf, ['curl_easy_duphandle'], ['libcurl-gnutls.so.4'])).toEqual(
      [...new Set(paths)].sort(),
    );
    // git has no libcurl4 (the OpenSSL flavour): not installed.
    const other = decision('git', 'CVE-2023-38546', 'libcurl4');
    expect(built.get('git')!.versions.has('libcurl4')).toBe(false);
    expect(other.justification).toBe('component_not_present');
    // curl imports curl_easy_duphandle? readelf decides, pare must agree.
    const curl = decision('curl', 'CVE-2023-38546', 'libcurl4');
    const curlImporters = readelfImporters(built.get('curl')!.elf, ['curl_easy_duphandle'], ['libcurl.so.4']);
    expect(curl.status).toBe(curlImporters.length > 0 ? 'affected' : 'not_affected');
  });

  it('CVE-2022-37434 (inflateGetHeader): imported by none; python has ctypes, so it stays under investigation', () => {
    for (const image of ['curl', 'git', 'python'] as const)
      expect(readelfImporters(built.get(image)!.elf, ['inflateGetHeader'], ['libz.so.1']), image).toEqual([]);
    expect(decision('curl', 'CVE-2022-37434', 'zlib1g').justification).toBe(
      'vulnerable_code_not_in_execute_path',
    );
    expect(decision('git', 'CVE-2022-37434', 'zlib1g').justification).toBe(
      'vulnerable_code_not_in_execute_path',
    );
    const py = decision('python', 'CVE-2022-37434', 'zlib1g');
    expect(py.status).toBe('under_investigation');
    expect(py.evidence.ffi.some((f) => f.includes('_ctypes'))).toBe(true);
  });

  it('agrees with readelf on every decision of every image', () => {
    for (const b of built.values()) for (const d of b.decisions) checkIndependently(d, b, KNOWN);
  });

  it('writes OpenVEX 0.2.0 that validates against the schema, byte-identical twice, @id from image and report', async () => {
    const schema = JSON.parse(readFileSync(join(FIXTURES, 'openvex_json_schema.json'), 'utf8'));
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    (addFormats as unknown as (a: Ajv2020) => void)(ajv);
    // `iri` (every @id) is RFC 3987's absolute IRI: a scheme, then characters an IRI may hold (no space, control,
    // <>"{}|\^`). ajv-formats lacks it; ajv-formats-draft2019's also wants an IANA-registered scheme, which the purl
    // scheme `pkg:` (the spec's own examples) is not.
    ajv.addFormat('iri', /^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"{}|\\^`\u0000-\u001f]+$/u);
    const validate = ajv.compile(schema);
    const b = built.get('curl')!;
    const out = join(dir, 'out');
    mkdirSync(out, { recursive: true });
    const docs: string[] = [];
    for (const [fixture, n] of [
      ['grype.json', 1],
      ['grype.json', 2],
      ['trivy.json', 3],
    ] as const) {
      writeFileSync(join(out, `report${n}.json`), reportFor(fixture, 'curl', b.versions));
      const r = await pare(
        [
          'vex',
          `oci:${b.layout}:curl`,
          '--report',
          join(out, `report${n}.json`),
          '-o',
          join(out, `vex${n}.json`),
        ],
        { env: { SOURCE_DATE_EPOCH: '1700000000' } },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^STATUS +COUNT$/m);
      docs.push(readFileSync(join(out, `vex${n}.json`), 'utf8'));
    }
    expect(docs[1]).toBe(docs[0]);
    const doc = JSON.parse(docs[0]!);
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    expect(validate(JSON.parse(docs[2]!)), JSON.stringify(validate.errors)).toBe(true);
    // The validator can fail: a statement without status, and an @id that is no IRI, are refused.
    expect(validate({ ...doc, statements: [{ vulnerability: { name: 'x' } }] })).toBe(false);
    expect(validate({ ...doc, '@id': 'not an iri' })).toBe(false);
    expect(doc['@context']).toBe('https://openvex.dev/ns/v0.2.0');
    expect(doc.timestamp).toBe('2023-11-14T22:13:20Z');
    expect(doc['@id']).not.toBe(JSON.parse(docs[2]!)['@id']);
    expect(doc.statements).toHaveLength(4);
    const product = doc.statements[0].products[0]['@id'] as string;
    expect(product).toMatch(/^pkg:oci\/curl@sha256:[0-9a-f]{64}$/);
    // The subcomponent is the purl pare's SBOM gives the package.
    const sbom = JSON.parse(readFileSync(join(b.layout, 'pare', 'curl', 'sbom.spdx.json'), 'utf8')) as {
      packages: { name: string; externalRefs?: { referenceType: string; referenceLocator: string }[] }[];
    };
    const zlibPurl = sbom.packages
      .find((p) => p.name === 'zlib1g')
      ?.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator;
    expect(zlibPurl).toBeDefined();
    const zlib = doc.statements.find(
      (s: { vulnerability: { name: string } }) => s.vulnerability.name === 'CVE-2022-37434',
    );
    expect(zlib.products[0].subcomponents.map((c: { '@id': string }) => c['@id'])).toContain(zlibPurl);
  });

  it('pare vex apply filters grype and trivy reports, printing what it suppressed and why', async () => {
    const out = join(dir, 'out');
    // The reports and documents the schema test wrote: report1 is grype's, report3 trivy's.
    for (const [report, vex, fixture] of [
      ['report1.json', 'vex1.json', 'grype.json'],
      ['report3.json', 'vex3.json', 'trivy.json'],
    ] as const) {
      const r = await pare(['vex', 'apply', join(out, report), join(out, vex)]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(readFileSync(join(out, vex), 'utf8')) as { statements: { status: string }[] };
      const notAffected = doc.statements.filter((s) => s.status === 'not_affected').length;
      expect(notAffected).toBeGreaterThan(0);
      expect(r.stderr).toContain(`${notAffected} finding(s) suppressed`);
      expect(r.stderr).toMatch(
        /suppressed CVE-\d+-\d+ \S+: not_affected: (component_not_present|vulnerable_code)/,
      );
      const kept = parseReport(r.stdout, 'filtered').findings;
      const all = parseReport(readFileSync(join(out, report), 'utf8'), fixture).findings;
      expect(kept.length).toBe(all.length - notAffected);
    }
  });

  it('pare attest --type openvex attaches the document, and verify-attestation reads it back', async () => {
    const b = built.get('curl')!;
    const out = join(dir, 'out');
    const env = { COSIGN_PASSWORD: 'vex-pw', SOURCE_DATE_EPOCH: '1700000000' };
    const key = await pare(['key', 'generate', '--output-key-prefix', join(out, 'vex')], { env });
    expect(key.code, key.stderr).toBe(0);
    const ref = `oci:${b.layout}:curl`;
    const vex = join(out, 'vex1.json');
    const a = await pare(
      ['attest', '--key', join(out, 'vex.key'), '--type', 'openvex', '--predicate', vex, ref],
      { env },
    );
    expect(a.code, a.stderr).toBe(0);
    const v = await pare(['verify-attestation', '--key', join(out, 'vex.pub'), '--type', 'openvex', ref], {
      env,
    });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('"predicateType":"https://openvex.dev/ns');
    expect(v.stdout).toContain(JSON.parse(readFileSync(vex, 'utf8'))['@id']);
  });

  it('--explain prints the evidence chain; a report that is not one is exit 2 naming file:line:col', async () => {
    const b = built.get('curl')!;
    const list = join(dir, 'list.txt');
    writeFileSync(list, '# findings\nCVE-2022-37434 zlib1g\n');
    const r = await pare([
      'vex',
      `oci:${b.layout}:curl`,
      '--report',
      list,
      '--explain',
      'CVE-2022-37434',
      '-o',
      join(dir, 'x.json'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('CVE-2022-37434 in zlib1g:');
    expect(r.stdout).toMatch(/libraries: +\/usr\/lib\/x86_64-linux-gnu\/libz\.so\.1/);
    expect(r.stdout).toContain('dlopen users:');
    writeFileSync(list, 'CVE-2022-37434 zlib1g\nCVE-2022-37434\n');
    const bad = await pare(['vex', `oci:${b.layout}:curl`, '--report', list]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${list}:2:1`);
  });

  it('the shipped data decides at least as conservatively as readelf allows', async () => {
    const data = shippedVexData();
    for (const [name, b] of built) {
      const artifact = await (await OciLayout.open(b.layout)).readArtifact(name);
      const tree = await imageToTree(await selectImage(artifact, { os: 'linux', architecture: 'amd64' }));
      const findings = [...data.byId.values()].flatMap((es) =>
        es.flatMap((e) =>
          e.binaries.map((p) => ({ id: e.id, package: p, version: undefined, purl: undefined })),
        ),
      );
      for (const d of await vexImage(tree, findings, { name: 'x', data })) checkIndependently(d, b, data);
    }
  });
});
