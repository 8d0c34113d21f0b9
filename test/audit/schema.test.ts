/**
 * The `pare.audit/v2` JSON Schema (src/audit/schema/pare.audit.v2.schema.json) validates real reports: a host
 * directory's (v1 fields only), and an image's with every section (image, lint, classification, policy). Its objects
 * are closed, so a field added to the report without adding it to the schema fails here.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { craftElf } from '../../src/elf/index.ts';
import { bufferContent, fileEntry, TreeBuilder } from '../../src/fstree/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { buildImage, layerFromTree } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const validate = new Ajv({ allErrors: true, strict: true }).compile(
  JSON.parse(readFileSync(resolve('src/audit/schema/pare.audit.v2.schema.json'), 'utf8')),
);
const errors = () => JSON.stringify(validate.errors, null, 1);

describe('pare.audit/v2 JSON Schema', () => {
  const dir = tempDir('pare-schema-');

  it('validates the report of a host directory', async () => {
    writeFileSync(
      join(dir, 'app'),
      craftElf({
        machine: 62,
        interp: '/lib64/ld-linux-x86-64.so.2',
        needed: ['libc.so.6', 'libpare-none.so.1'],
        imports: ['puts', 'gone'],
      }),
      { mode: 0o755 },
    );
    const r = await pare(['audit', join(dir, 'app'), '--json', '--require', 'relro=full']);
    const report = JSON.parse(r.stdout);
    expect(report.files[0].imports.length).toBeGreaterThan(0);
    expect(validate(report), errors()).toBe(true);
    // The schema is not a rubber stamp: an unknown field, a missing one, a wrong type fail.
    expect(validate({ ...report, extra: 1 })).toBe(false);
    const { summary: _s, ...noSummary } = report;
    expect(validate(noSummary)).toBe(false);
    expect(validate({ ...report, files: [{ ...report.files[0], size: '1' }] })).toBe(false);
    expect(validate({ ...report, schema: 'pare.audit/v1' })).toBe(false);
  });

  it('validates the report of an image with every section', async () => {
    const exe = (mode: number) => fileEntry(bufferContent(craftElf({ machine: 62, type: 'EXEC' })), { mode });
    const tree = new TreeBuilder()
      .put('/app/server', exe(0o755))
      .put('/usr/bin/su', exe(0o4755))
      .put('/usr/bin/sh', exe(0o755))
      .put(
        '/var/lib/dpkg/status',
        fileEntry(bufferContent('Package: app\nStatus: install ok installed\nVersion: 1\n')),
      )
      .put('/var/lib/dpkg/info/app.list', fileEntry(bufferContent('/app/server\n')))
      .build();
    const image = buildImage({
      layers: [layerFromTree(tree)],
      platform: { os: 'linux', architecture: 'amd64' },
      created: '2024-01-01T00:00:00Z',
      config: { Entrypoint: ['/app/server'], Env: ['API_TOKEN=abc'] },
    });
    const layout = join(dir, 'img');
    await (await OciLayout.create(layout)).writeArtifact({ kind: 'image', image }, { tag: 't' });
    writeFileSync(join(dir, 'policy.yaml'), 'deny: [setuid]\nclasses: [distroless]\nmaxSize: 1KiB\n');
    const r = await pare([
      'audit',
      `oci:${layout}:t`,
      '--json',
      '--accept',
      'shell-present',
      '--policy',
      join(dir, 'policy.yaml'),
    ]);
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout);
    for (const k of ['image', 'lint', 'classification', 'policy']) expect(report[k], k).toBeDefined();
    expect(report.image.packages).toContainEqual({ name: 'app', version: '1', files: 1, bytes: 840 });
    expect(validate(report), errors()).toBe(true);
  });
});
