import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { pare } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

// One SOURCE_DATE_EPOCH parser (src/defaults.ts) for every command that stamps a time: a bad value is bad input
// (exit 2, the value and the bound in the message) everywhere, never silently replaced by now or the image's date.
describe('a bad SOURCE_DATE_EPOCH', () => {
  let dir: string;
  const env = { COSIGN_PASSWORD: 'epoch-pw', SOURCE_DATE_EPOCH: '0' };
  beforeAll(() => {
    dir = tempDir('pare-epoch-');
    const built = pare(['build', resolve('test/fixtures/build/files-only'), '-o', join(dir, 'out')], { env });
    expect(built.code, built.stderr).toBe(0);
    const key = pare(['key', 'generate', '--output-key-prefix', 'k'], { cwd: dir, env });
    expect(key.code, key.stderr).toBe(0);
    writeFileSync(
      join(dir, 'build.json'),
      JSON.stringify({
        subjects: [{ name: 'hello', digest: `sha256:${'0'.repeat(64)}` }],
        config: { path: 'pare.yaml', digest: `sha256:${'1'.repeat(64)}` },
        platforms: ['linux/amd64'],
        debs: [],
        releases: [],
        appFiles: [],
        pareVersion: '0.1.0',
      }),
    );
    writeFileSync(join(dir, 'findings.txt'), 'CVE-2022-37434 zlib1g\n');
  });

  const ref = () => `oci:${join(dir, 'out')}:hello`;
  const statement = () => join(dir, 'out', 'pare', 'hello', 'provenance.json');
  const commands: readonly [string, () => string[]][] = [
    ['build', () => ['build', resolve('test/fixtures/build/files-only'), '--dry-run']],
    ['sign', () => ['sign', '--key', 'k.key', ref()]],
    [
      'attest',
      () => ['attest', '--key', 'k.key', '--type', 'slsaprovenance', '--predicate', statement(), ref()],
    ],
    ['sbom', () => ['sbom', ref(), '--format', 'spdx', '-o', join(dir, 'sbom.json')]],
    ['provenance', () => ['provenance', '--input', 'build.json', '-o', join(dir, 'prov.json')]],
    ['vex', () => ['vex', ref(), '--report', 'findings.txt', '-o', join(dir, 'vex.json')]],
  ];
  for (const value of ['yesterday', '8589934592'])
    it.each(commands)(`is exit 2 in pare %s (${value})`, (_name, args) => {
      const r = pare(args(), { cwd: dir, env: { ...env, SOURCE_DATE_EPOCH: value } });
      expect(r.stderr).toContain(
        `cannot use SOURCE_DATE_EPOCH=${JSON.stringify(value)}: want whole seconds since 1970 from 0 to 8589934591`,
      );
      expect(r.code).toBe(2);
      expect(existsSync(join(dir, 'sbom.json'))).toBe(false);
      expect(existsSync(join(dir, 'prov.json'))).toBe(false);
      expect(existsSync(join(dir, 'vex.json'))).toBe(false);
    });

  it('is the largest tar mtime at most, and an empty value means unset', () => {
    const ok = pare(['provenance', '--input', 'build.json'], {
      cwd: dir,
      env: { ...env, SOURCE_DATE_EPOCH: '8589934591' },
    });
    expect(ok.code, ok.stderr).toBe(0);
    const empty = pare(['sbom', ref(), '--format', 'spdx'], {
      cwd: dir,
      env: { ...env, SOURCE_DATE_EPOCH: '' },
    });
    expect(empty.code, empty.stderr).toBe(0);
  });
});
