import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pareAsync as pare } from '../helpers/cli.ts';
import { appArchive, type FakeArchive } from '../helpers/fake-debian-archive.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * Many images at once (issue 20 §4): `pare build DIR` builds every project under DIR in one process, downloading
 * each .deb once for all of them, to the digests each gives alone; `--matrix` prints them for CI runners to fan out.
 */

describe('pare build of several projects', () => {
  const dir = tempDir('pare-several-');
  let archive: FakeArchive;
  const env = () => ({ XDG_CACHE_HOME: join(dir, 'cache') });

  function project(name: string, tag: string | undefined, motd: string): void {
    const p = join(dir, 'projects', name);
    mkdirSync(p, { recursive: true });
    writeFileSync(
      join(p, 'pare.yaml'),
      [
        `name: ${name}`,
        'platforms: [linux/amd64]',
        'debian:',
        '  suite: bookworm',
        '  updates: false',
        '  security: false',
        `  mirror: ${archive.url}`,
        `  keyring: ${archive.keyringAsc}`,
        'packages: [base-files, app]',
        'files:',
        `  - {dest: /etc/motd, content: ${JSON.stringify(motd)}}`,
        'image:',
        '  entrypoint: [/usr/bin/app]',
        'slice: none',
        ...(tag ? ['output:', `  tag: ${tag}`] : []),
        '',
      ].join('\n'),
    );
  }

  beforeAll(async () => {
    archive = await appArchive();
    project('api', 'api', 'api\n');
    project('worker', 'worker', 'worker\n');
  }, 120_000);
  afterAll(async () => archive?.close());

  it('prints the projects as a GitHub Actions matrix, building nothing', async () => {
    const r = await pare(['build', 'projects', '--matrix'], { cwd: dir, env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      include: [
        { project: join('projects', 'api'), name: 'api' },
        { project: join('projects', 'worker'), name: 'worker' },
      ],
    });
    expect(archive.requests).toEqual([]);
  });

  it('builds every project of a directory, each .deb downloaded once, to the digests each gives alone', async () => {
    const all = await pare(['build', 'projects', '-o', 'out'], { cwd: dir, env: env() });
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^sha256:[0-9a-f]{64} {2}projects\/api$/);
    expect(lines[1]).toMatch(/^sha256:[0-9a-f]{64} {2}projects\/worker$/);
    expect(lines[0]!.split(' ')[0]).not.toBe(lines[1]!.split(' ')[0]);
    // two packages, fetched once for both images
    expect(archive.requests.filter((r) => r.startsWith('pool/'))).toHaveLength(2);
    for (const [n, name] of ['api', 'worker'].entries()) {
      const alone = await pare(['build', join('projects', name), '-o', `alone-${name}`, '-q'], {
        cwd: dir,
        env: { XDG_CACHE_HOME: join(dir, `cache-${name}`) },
      });
      expect(alone.code, alone.stderr).toBe(0);
      expect(alone.stdout.trim()).toBe(lines[n]!.split(' ')[0]);
    }
    const json = await pare(['build', 'projects/api', 'projects/worker', '-o', 'out', '--json'], {
      cwd: dir,
      env: env(),
    });
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { project: string; digest: string; tag: string }[];
    expect(parsed.map((p) => [p.project, p.digest, p.tag])).toEqual([
      ['projects/api', lines[0]!.split(' ')[0], 'api'],
      ['projects/worker', lines[1]!.split(' ')[0], 'worker'],
    ]);
  });

  it('refuses projects that would write the same name, -t/--tar with several, and a directory with none (exit 2)', async () => {
    project('third', undefined, 'a\n');
    project('fourth', undefined, 'b\n');
    const clash = await pare(['build', 'projects/third', 'projects/fourth'], { cwd: dir, env: env() });
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain(':latest; give each pare.yaml its own output.tag or output.layout');
    const tagged = await pare(['build', 'projects/api', 'projects/worker', '-t', 'x'], {
      cwd: dir,
      env: env(),
    });
    expect(tagged.code).toBe(2);
    expect(tagged.stderr).toContain('cannot use -t/--tag with several projects');
    const twice = await pare(['build', 'projects/api', 'projects/api/pare.yaml'], { cwd: dir, env: env() });
    expect(twice.code).toBe(2);
    mkdirSync(join(dir, 'empty'));
    const none = await pare(['build', 'empty'], { cwd: dir, env: env() });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no pare.yaml in it or in its subdirectories');
  });
});
