/**
 * CIS-DI-0005 (`unsigned`) and PARE-R001 (`mtime-not-epoch`) end to end: `pare audit` looks for a cosign signature
 * where the image is stored — none, a bundle referrer from `pare sign` (cosign v3 shape), the `.sig` tag from
 * `pare sign --legacy` (cosign v2 shape), an archive (holds none) — and compares every entry's mtime with the
 * image's created time, naming the layer.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bufferContent, fileEntry, TreeBuilder } from '../../src/fstree/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { buildImage, layerFromTree } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

interface Finding {
  name: string;
  message: string;
  evidence: { path?: string; layer?: string; detail?: string };
}

describe('pare audit: unsigned and mtime-not-epoch', () => {
  const dir = tempDir('pare-unsigned-');
  const env = { COSIGN_PASSWORD: 'pw' };
  const findings = async (ref: string, name: string): Promise<Finding[]> => {
    const r = await pare(['audit', ref, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout).lint.findings.filter((f: Finding) => f.name === name);
  };
  let layers: string[] = [];

  beforeAll(async () => {
    // Two layers: the first clamped to the created time (2024-01-01), the second with a build-time mtime.
    const created = Date.parse('2024-01-01T00:00:00Z') / 1000;
    const one = new TreeBuilder()
      .mkdirp('/etc', { mtime: created })
      .put('/etc/motd', fileEntry(bufferContent('hi\n'), { mtime: created }))
      .build();
    const two = new TreeBuilder()
      .mkdirp('/app', { mtime: created })
      .put('/app/a', fileEntry(bufferContent('a'), { mtime: created }))
      .put('/app/b', fileEntry(bufferContent('b'), { mtime: created + 3600 }))
      .build();
    const image = buildImage({
      layers: [layerFromTree(one), layerFromTree(two)],
      platform: { os: 'linux', architecture: 'amd64' },
      created: '2024-01-01T00:00:00Z',
      config: { User: '65532' },
    });
    layers = await Promise.all((await image.layers()).map((l) => l.digest()));
    for (const name of ['plain', 'bundle', 'legacy'])
      await (await OciLayout.create(join(dir, name))).writeArtifact({ kind: 'image', image }, { tag: 't' });
    expect((await pare(['key', 'generate', '--output-key-prefix', join(dir, 'k')], { env })).code).toBe(0);
  }, 60_000);

  it('an unsigned image in a layout has the finding; a bundle referrer or a .sig tag removes it', async () => {
    const [f] = await findings(`oci:${join(dir, 'plain')}:t`, 'unsigned');
    expect(f!.message).toMatch(
      /^no signature: no sigstore bundle referrer and no sha256-[0-9a-f]{64}\.sig tag in oci:/,
    );
    const b = await pare(['sign', `oci:${join(dir, 'bundle')}:t`, '--key', join(dir, 'k.key')], { env });
    expect(b.code, b.stderr).toBe(0);
    expect(await findings(`oci:${join(dir, 'bundle')}:t`, 'unsigned')).toEqual([]);
    const l = await pare(['sign', `oci:${join(dir, 'legacy')}:t`, '--key', join(dir, 'k.key'), '--legacy'], {
      env,
    });
    expect(l.code, l.stderr).toBe(0);
    expect(await findings(`oci:${join(dir, 'legacy')}:t`, 'unsigned')).toEqual([]);
  });

  it('an archive carries no signature; the layer whose entries have other mtimes than the created time is named', async () => {
    const tar = join(dir, 'bundle.tar');
    expect((await pare(['copy', `oci:${join(dir, 'bundle')}:t`, `oci-archive:${tar}`])).code).toBe(0);
    const r = await pare(['audit', `oci-archive:${tar}`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const all: Finding[] = JSON.parse(r.stdout).lint.findings;
    const [u] = all.filter((f) => f.name === 'unsigned');
    expect(u!.message).toContain('is an archive, which carries no signatures');
    const m = all.filter((f) => f.name === 'mtime-not-epoch');
    expect(m).toHaveLength(1);
    expect(m[0]!.evidence).toMatchObject({ path: '/app/b', layer: layers[1] });
    expect(m[0]!.message).toBe(
      "1 entry has mtimes other than the image's created time 2024-01-01T00:00:00Z (1 distinct, 1 newer), e.g. /app/b at 2024-01-01T01:00:00Z",
    );
  });
});
