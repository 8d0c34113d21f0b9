/**
 * Exit codes end to end (README: 0 success · 1 a check failed or an operation could not be completed · 2 bad usage
 * or bad input): refused inputs exit 2 with one `pare: error:` line naming the input and no stack trace, through every
 * command that reads them; a failed check stays 1. The inputs are generated here.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pare } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';

const sha = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Writes an OCI layout with one empty image tagged v1; `tamper` changes the stored manifest after it is named. */
function layout(dir: string, tamper?: 'manifest' | 'config' | 'index'): string {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const blob = (b: string) => {
    writeFileSync(join(dir, 'blobs/sha256', sha(b)), b);
    return { digest: `sha256:${sha(b)}`, size: Buffer.byteLength(b) };
  };
  const config = blob(
    '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}',
  );
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [],
    }),
  );
  const index = JSON.stringify({
    schemaVersion: 2,
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...manifest,
        annotations: { 'org.opencontainers.image.ref.name': 'v1' },
      },
    ],
  });
  writeFileSync(join(dir, 'index.json'), tamper === 'index' ? index.slice(0, -3) : index);
  // note: same size, other bytes: only the digest can tell
  if (tamper === 'manifest')
    writeFileSync(join(dir, 'blobs/sha256', manifest.digest.slice(7)), 'x'.repeat(manifest.size));
  if (tamper === 'config')
    writeFileSync(join(dir, 'blobs/sha256', config.digest.slice(7)), ' '.repeat(config.size));
  return dir;
}

describe('pare exit codes', () => {
  const work = tempDir('pare-exit-');
  const good = layout(join(work, 'good'));

  it('reads the untampered layout (exit 0), so the cases below fail for the reason they name', () => {
    expect(pare(['inspect', `oci:${good}:v1`]).code).toBe(0);
  });

  const garbage = join(work, 'garbage.tar');
  writeFileSync(garbage, 'this is not a tar archive\n'.repeat(40));
  const cases: [string, string, string[][]][] = [
    [
      'a manifest whose bytes do not match its digest',
      `oci:${layout(join(work, 'm'), 'manifest')}:v1`,
      [['inspect'], ['audit'], ['sbom']],
    ],
    [
      'a config whose bytes do not match its digest',
      `oci:${layout(join(work, 'c'), 'config')}:v1`,
      [['inspect'], ['audit'], ['sbom']],
    ],
    [
      'an index.json that is not JSON',
      `oci:${layout(join(work, 'i'), 'index')}:v1`,
      [['inspect'], ['audit'], ['sbom']],
    ],
    ['an oci-archive that is not a tar', `oci-archive:${garbage}`, [['inspect'], ['audit']]],
    ['a docker-archive that is not a tar', `docker-archive:${garbage}`, [['inspect'], ['audit']]],
  ];
  describe.each(cases)('when given %s', (_what, ref, commands) => {
    it.each(commands)('pare %s exits 2 with one message and no stack trace', (command) => {
      const r = pare([command!, ref]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^pare: error: cannot /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stderr).not.toContain('internal error');
    });
  });

  it('a failed check stays 1: verify-store on a tampered layout', () => {
    const r = pare(['verify-store', layout(join(work, 'vs'), 'manifest')]);
    expect(r.code).toBe(1);
  });
});

describe('registry flags', () => {
  // --timeout 0 would abort every request at once; 0x10, 1e1 and ' 5' are not the decimal numbers they look like.
  it.each([
    ['--timeout', '0', 'want a whole number from 1'],
    ['--timeout', '1e1', 'want a whole number from 1'],
    ['--retries', '0x10', 'want a whole number'],
    ['--retries', ' 5', 'want a whole number'],
  ])('pare tags %s %j exits 2 before any request', (flag, value, want) => {
    const r = pare(['tags', flag, value, '127.0.0.1:9/none/x']);
    expect(r.stderr).toBe(`pare: error: cannot use ${flag} ${JSON.stringify(value)}: ${want}\n`);
    expect(r.code).toBe(2);
  });
});
