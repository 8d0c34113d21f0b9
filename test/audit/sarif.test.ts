/**
 * `pare audit --format sarif -o FILE`: the SARIF log validates against the official SARIF 2.1.0 schema (vendored in
 * test/fixtures/sarif with its source), and every result has a ruleId and a physical location whose artifact URI is
 * the path in the image (GitHub code scanning rejects results without one, dockle #197).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { craftElf } from '../../src/elf/index.ts';
import { bufferContent, fileEntry, TreeBuilder } from '../../src/fstree/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { buildImage, layerFromTree } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

/** The vendored schema is draft-04; Ajv 8 reads it as draft-07 once the top-level `id` is `$id` (no other change). */
function sarifValidator() {
  const raw = JSON.parse(readFileSync(resolve('test/fixtures/sarif/sarif-schema-2.1.0.json'), 'utf8'));
  const { id, $schema: _draft04, ...rest } = raw;
  const ajv = new Ajv({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv.compile({ $id: id, ...rest });
}

describe('pare audit --format sarif', () => {
  const dir = tempDir('pare-sarif-');

  it('validates against the SARIF 2.1.0 schema; every result has a ruleId and the path in the image', async () => {
    const exe = (mode: number) => fileEntry(bufferContent(craftElf({ machine: 62, type: 'EXEC' })), { mode });
    const tree = new TreeBuilder()
      .put('/app/server', exe(0o755))
      .put('/usr/bin/su', exe(0o4755))
      .put('/srv/drop zone', fileEntry(bufferContent(new Uint8Array([1])), { mode: 0o666 }))
      .build();
    const image = buildImage({
      layers: [layerFromTree(tree)],
      platform: { os: 'linux', architecture: 'amd64' },
      created: '2024-01-01T00:00:00Z',
      config: { Entrypoint: ['/app/server'], Env: ['API_TOKEN=abc'] },
    });
    const layout = join(dir, 'img');
    await (await OciLayout.create(layout)).writeArtifact({ kind: 'image', image }, { tag: 't' });
    writeFileSync(join(dir, 'policy.yaml'), 'classes: [distroless]\nmaxSize: 1KiB\n');
    const out = join(dir, 'report.sarif');
    const r = await pare([
      'audit',
      `oci:${layout}:t`,
      '--format',
      'sarif',
      '-o',
      out,
      '--require',
      'relro=full',
      '--accept',
      'world-writable',
      '--policy',
      join(dir, 'policy.yaml'),
    ]);
    // A fatal finding (the token), the --require gate and the policy fail the run; the report is written anyway.
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    const log = JSON.parse(readFileSync(out, 'utf8'));
    const validate = sarifValidator();
    expect(validate(log), JSON.stringify(validate.errors, null, 1)).toBe(true);

    const results = log.runs[0].results as {
      ruleId: string;
      level: string;
      locations: { physicalLocation: { artifactLocation: { uri: string } } }[];
      suppressions?: unknown[];
    }[];
    for (const res of results) {
      expect(res.ruleId).toMatch(/\S/);
      expect(res.locations[0]!.physicalLocation.artifactLocation.uri).toMatch(/^\//);
    }
    const by = (id: string) => results.filter((x) => x.ruleId === id);
    expect(by('CIS-DI-0008')[0]!.locations[0]!.physicalLocation.artifactLocation.uri).toBe('/usr/bin/su');
    expect(by('CIS-DI-0010/secret-env')[0]!.level).toBe('error');
    expect(by('PARE-F001')[0]).toMatchObject({
      locations: [{ physicalLocation: { artifactLocation: { uri: '/srv/drop%20zone' } } }],
      suppressions: [{ kind: 'external' }],
    });
    expect(
      by('require/relro=full').map((x) => x.locations[0]!.physicalLocation.artifactLocation.uri),
    ).toEqual(['/app/server', '/usr/bin/su']);
    expect(by('policy/classes')).toHaveLength(1);
    expect(by('policy/maxSize')).toHaveLength(1);
    // Every ruleId of a result is described in the driver's rules.
    const described = new Set(log.runs[0].tool.driver.rules.map((x: { id: string }) => x.id));
    expect(results.map((x) => x.ruleId).filter((id) => !described.has(id))).toEqual([]);

    // -o with --format json writes what --json prints.
    const j = join(dir, 'report.json');
    await pare(['audit', `oci:${layout}:t`, '--format', 'json', '-o', j]);
    expect(readFileSync(j, 'utf8')).toBe((await pare(['audit', `oci:${layout}:t`, '--json'])).stdout);
    const bad = await pare(['audit', `oci:${layout}:t`, '--format', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('want table, json, sarif or html');
  });
});
