import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../src/digest/index.ts';
import { cycloneDxJson } from '../../src/sbom/cyclonedx.ts';
import { readDpkgDatabase } from '../../src/sbom/dpkg.ts';
import { inventory } from '../../src/sbom/inventory.ts';
import { spdxJson } from '../../src/sbom/spdx.ts';
import { fixtureTree } from './fixture-tree.ts';

// SBOMs of generated image trees: schema-valid, complete against the dpkg database, byte-identical across runs.
const FIX = new URL('../fixtures/sbom/', import.meta.url).pathname;
const addFormats = addFormatsModule as unknown as (a: Ajv) => Ajv;
const OPTS = { toolVersion: '0.1.0', created: 1700000000 };
const DIGEST = sha256('fixture image manifest');

async function build(layout: 'distroless' | 'classic') {
  const tree = fixtureTree({ layout });
  const inv = await inventory(tree, {
    name: 'registry.invalid/app',
    digest: DIGEST,
    debSha256: new Map([['libc6:amd64', 'e'.repeat(64)]]),
  });
  return { tree, inv, spdx: spdxJson(inv, OPTS), cdx: cycloneDxJson(inv, OPTS) };
}

function golden(name: string, text: string) {
  const path = join(FIX, 'golden', name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(join(FIX, 'golden'), { recursive: true });
    writeFileSync(path, text);
  }
  expect(text).toBe(readFileSync(path, 'utf8'));
}

describe.each(['distroless', 'classic'] as const)('SBOM of a %s-layout image', (layout) => {
  it('SPDX 2.3 validates against the schema and lists exactly the dpkg packages', async () => {
    const { tree, spdx } = await build(layout);
    const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
    addFormats(ajv);
    const validate = ajv.compile(JSON.parse(readFileSync(join(FIX, 'spdx-2.3.schema.json'), 'utf8')));
    const doc = JSON.parse(spdx);
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
    const dpkg = await readDpkgDatabase(tree);
    const listed = doc.packages.filter((p: { SPDXID: string }) =>
      p.SPDXID.startsWith('SPDXRef-Package-deb-'),
    );
    expect(listed.map((p: { name: string; versionInfo: string }) => `${p.name}=${p.versionInfo}`)).toEqual(
      dpkg.map((p) => `${p.name}=${p.version}`),
    );
    // the schema is not a rubber stamp: a file without its SHA1 and an unknown relationship type are refused
    const broken = structuredClone(doc);
    broken.files[0].checksums = broken.files[0].checksums.slice(1);
    broken.relationships[0].relationshipType = 'OWNS';
    expect(validate(broken)).toBe(false);
    expect(validate.errors?.length).toBeGreaterThanOrEqual(2);
    // every relationship points at an element that exists
    const ids = new Set([
      'SPDXRef-DOCUMENT',
      ...doc.packages.map((p: { SPDXID: string }) => p.SPDXID),
      ...doc.files.map((f: { SPDXID: string }) => f.SPDXID),
    ]);
    for (const r of doc.relationships) {
      expect(ids.has(r.spdxElementId)).toBe(true);
      expect(ids.has(r.relatedSpdxElement)).toBe(true);
    }
  });

  it('CycloneDX 1.6 validates with the library validator and lists exactly the dpkg packages', async () => {
    const { tree, cdx } = await build(layout);
    const err = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(cdx);
    expect(err).toBeNull();
    const doc = JSON.parse(cdx);
    const dpkg = await readDpkgDatabase(tree);
    const libs = doc.components.filter((c: { type: string }) => c.type === 'library');
    expect(libs.map((c: { name: string; version: string }) => `${c.name}=${c.version}`).sort()).toEqual(
      dpkg.map((p) => `${p.name}=${p.version}`),
    );
  });

  it('is byte-identical across runs and matches the golden file', async () => {
    const a = await build(layout);
    const b = await build(layout);
    expect(a.spdx).toBe(b.spdx);
    expect(a.cdx).toBe(b.cdx);
    golden(`${layout}.spdx.json`, a.spdx);
    golden(`${layout}.cdx.json`, a.cdx);
  });
});

describe('SBOM content', () => {
  it('marks the sliced package, keeps ELF notes, maps licenses and separates app files', async () => {
    const { spdx, cdx } = await build('distroless');
    const s = JSON.parse(spdx);
    const ssl = s.packages.find((p: { name: string }) => p.name === 'libssl3');
    expect(ssl.annotations[0].comment).toMatch(/^pare:sliced=true/);
    expect(ssl.licenseDeclared).toBe('Apache-2.0 AND (MIT OR LicenseRef-Custom-Curve)');
    expect(s.hasExtractedLicensingInfos).toEqual([
      {
        licenseId: 'LicenseRef-Custom-Curve',
        name: 'Custom-Curve',
        extractedText: 'Permission is granted to use this code for curves.',
      },
    ]);
    const libc = s.packages.find((p: { name: string }) => p.name === 'libc6');
    expect(libc.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: 'e'.repeat(64) }]);
    expect(libc.externalRefs[0].referenceLocator).toBe(
      'pkg:deb/debian/libc6@2.36-9+deb12u10?arch=amd64&distro=debian-12&upstream=glibc',
    );
    const server = s.files.find((f: { fileName: string }) => f.fileName === '/app/server');
    expect(server.annotations[0].comment).toBe(
      'pare:elf-note-package={"type":"app","name":"server","version":"1.4.0"}',
    );
    const contains = (from: string, to: string) =>
      s.relationships.some(
        (r: { spdxElementId: string; relatedSpdxElement: string; relationshipType: string }) =>
          r.spdxElementId === from && r.relatedSpdxElement === to && r.relationshipType === 'CONTAINS',
      );
    expect(contains('SPDXRef-Image', server.SPDXID)).toBe(true);
    // note: libc6 lists /bin/ldd; usrmerge puts the file at /usr/bin/ldd and the relationship must follow.
    const ldd = s.files.find((f: { fileName: string }) => f.fileName === '/usr/bin/ldd');
    expect(contains(libc.SPDXID, ldd.SPDXID)).toBe(true);
    const c = JSON.parse(cdx);
    const sslC = c.components.find((x: { name: string }) => x.name === 'libssl3');
    expect(sslC.properties).toContainEqual({ name: 'pare:sliced', value: 'true' });
    expect(c.metadata.component.version).toBe(DIGEST);
  });
});
