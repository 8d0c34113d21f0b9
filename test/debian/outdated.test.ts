import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { craftElf } from '../../src/elf/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { createFakeArchive, type FakeArchive, generateArchiveKey } from '../helpers/fake-debian-archive.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `pare outdated` end to end through the CLI against signed archives served on 127.0.0.1: a lock made when only the
 * old libfoo existed, then the archive gains a newer libfoo in -security whose changelog names a CVE.
 */

const entry = (version: string, body: string, date: string) =>
  `libfoo (${version}) bookworm-security; urgency=high\n\n${body}\n\n -- Security Team <team@security.debian.org>  ${date}\n\n`;
const OLD = entry('1.0-1', '  * Initial release.', 'Mon, 01 Jan 2024 00:00:00 +0000');
const NEW =
  entry(
    '1.0-1+deb12u2',
    '  * Fix heap overflow in the parser (CVE-2024-1234).\n  * Fix CVE-2024-5678: use after free.',
    'Wed, 01 May 2024 00:00:00 +0000',
  ) + entry('1.0-1+deb12u1', '  * Fix CVE-2024-0001.', 'Mon, 01 Apr 2024 00:00:00 +0000');

const COPYRIGHT = 'Format: copyright-format/1.0\n\nFiles: *\nLicense: MIT\n';
// A static program (an image must run: pare build checks it)
const appFiles = {
  'usr/bin/app': { content: craftElf({ machine: 62, type: 'EXEC' }), mode: 0o755 },
  'usr/share/doc/app/copyright': COPYRIGHT,
};

const libfoo = (version: string, changelog: string) => ({
  name: 'libfoo',
  version,
  files: { 'usr/share/doc/libfoo/changelog.Debian.gz': { content: gzipSync(changelog) } },
});

describe('pare outdated', () => {
  const dir = tempDir();
  let before: FakeArchive;
  let after: FakeArchive;
  beforeAll(async () => {
    const signingKey = await generateArchiveKey();
    const release = {
      name: 'bookworm',
      packages: [
        libfoo('1.0-1', OLD),
        { name: 'app', version: '2.0', fields: { Depends: 'libfoo' }, files: appFiles },
        {
          name: 'base-files',
          version: '12.4',
          files: {
            'etc/os-release':
              'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n',
            'usr/share/doc/base-files/copyright': COPYRIGHT,
          },
        },
      ],
    };
    // outdated reads -updates whatever pare.yaml says: the archives have one (empty, as it often is)
    const updates = { name: 'bookworm-updates', codename: 'bookworm-updates', packages: [] };
    before = await createFakeArchive({
      signingKey,
      suites: [release, updates, { name: 'bookworm-security', codename: 'bookworm-security', packages: [] }],
    });
    after = await createFakeArchive({
      signingKey,
      suites: [
        // app has a newer version in the release suite only: outdated, not a security update
        {
          ...release,
          packages: [...release.packages, { name: 'app', version: '2.1', fields: { Depends: 'libfoo' } }],
        },
        updates,
        {
          name: 'bookworm-security',
          codename: 'bookworm-security',
          packages: [libfoo('1.0-1+deb12u2', NEW + OLD)],
        },
      ],
    });
  });
  afterAll(async () => {
    await before?.close();
    await after?.close();
  });

  function project(name: string, archive: FakeArchive, security: boolean, packages = 'app'): string {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true });
    writeFileSync(
      join(p, 'pare.yaml'),
      `name: outdated\nplatforms: [linux/amd64]\ndebian:\n  suite: bookworm\n  updates: false\n  security: ${security}\n  mirror: ${archive.url}\n  securityMirror: ${archive.url}\n  keyring: ${before.keyringAsc}\npackages: [${packages}]\nimage:\n  entrypoint: [/usr/bin/app]\nslice: none\n`,
    );
    return p;
  }
  const env = () => ({ XDG_CACHE_HOME: join(dir, 'cache') });

  it('lists the security update with the CVEs fixed since the lock, exits 1; after lock --update exits 0', async () => {
    const p = project('p', before, true);
    const locked = await pare(['lock', p], { env: env() });
    expect(locked.stderr + locked.stdout).toContain('2 packages');
    expect(locked.code).toBe(0);
    const clean = await pare(['outdated', p], { env: env() });
    expect(clean.stdout).toBe('');
    expect(clean.code).toBe(0);

    // The archive moves on; the lock does not.
    project('p', after, true);
    const r = await pare(['outdated', p], { env: env() });
    expect(r.stderr).toContain('2 of 2 packages outdated, 1 with a security update');
    expect(r.stdout).toBe(
      'app:amd64 2.0 -> 2.1 (bookworm) (no changelog)\n' +
        'libfoo:amd64 1.0-1 -> 1.0-1+deb12u2 (bookworm-security) [security] CVE-2024-0001 CVE-2024-1234 CVE-2024-5678\n',
    );
    expect(r.code).toBe(1);

    const j = await pare(['outdated', p, '--json'], { env: env() });
    expect(j.code).toBe(1);
    const report = JSON.parse(j.stdout);
    expect(report.securityPending).toBe(true);
    expect(report.suites.map((s: { suite: string; kind: string }) => `${s.suite}:${s.kind}`)).toEqual([
      'bookworm:release',
      'bookworm-updates:updates',
      'bookworm-security:security',
    ]);
    expect(report.packages[1]).toEqual({
      name: 'libfoo',
      architecture: 'amd64',
      locked: '1.0-1',
      lockedSuite: 'bookworm',
      candidate: '1.0-1+deb12u2',
      suite: 'bookworm-security',
      security: true,
      cves: ['CVE-2024-0001', 'CVE-2024-1234', 'CVE-2024-5678'],
      changes: ['1.0-1+deb12u2', '1.0-1+deb12u1'],
      changelog: 'complete',
    });

    const updated = await pare(['lock', p, '--update'], { env: env() });
    expect(updated.code).toBe(0);
    const lock = JSON.parse(readFileSync(join(p, 'pare.lock'), 'utf8'));
    expect(lock.packages.map((x: { name: string; version: string }) => `${x.name}=${x.version}`)).toEqual([
      'app=2.1',
      'libfoo=1.0-1+deb12u2',
    ]);
    const done = await pare(['outdated', p], { env: env() });
    expect(done.stdout).toBe('');
    expect(done.code).toBe(0);
  });

  it('checks -security even when pare.yaml builds without it', async () => {
    const p = project('nosec', after, false);
    expect((await pare(['lock', p], { env: env() })).code).toBe(0);
    const lock = JSON.parse(readFileSync(join(p, 'pare.lock'), 'utf8'));
    expect(lock.packages.find((x: { name: string }) => x.name === 'libfoo').version).toBe('1.0-1');
    const r = await pare(['outdated', p, '--json'], { env: env() });
    expect(r.code).toBe(1);
    expect(
      JSON.parse(r.stdout).packages.map((x: { name: string; cves: string[] }) => `${x.name} ${x.cves}`),
    ).toEqual(['libfoo CVE-2024-0001,CVE-2024-1234,CVE-2024-5678']);
  });

  it('exits 2 without a lock or with a bad one, naming the file', async () => {
    const p = project('nolock', after, true);
    const r = await pare(['outdated', p], { env: env() });
    expect(r.stderr).toContain(join(p, 'pare.lock'));
    expect(r.stderr).toContain('pare lock');
    expect(r.code).toBe(2);
    writeFileSync(join(p, 'pare.lock'), '{"version": 1, "suites": [], "packages": [{"name": "x"}]}\n');
    const bad = await pare(['outdated', p], { env: env() });
    expect(bad.stderr).toContain('pare.lock');
    expect(bad.code).toBe(2);
  });

  it('refuses a candidate .deb that does not match the signed index', async () => {
    const p = project('tampered', after, false);
    expect((await pare(['lock', p], { env: env() })).code).toBe(0);
    const pool = after.poolPath('libfoo', '1.0-1+deb12u2');
    const good = await after.read(pool);
    const bad = Buffer.from(good);
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 1, bad.length - 1);
    await after.write(pool, bad);
    try {
      const r = await pare(['outdated', p], { env: { XDG_CACHE_HOME: join(dir, 'cache-tampered') } });
      expect(r.stderr).toMatch(/libfoo/);
      expect(r.stdout).toBe('');
      expect(r.code).not.toBe(0);
    } finally {
      await after.write(pool, good);
    }
  });

  it('checks an image by its dpkg metadata: pare outdated IMAGE', async () => {
    const p = project('image', before, true, 'base-files, app');
    const out = join(dir, 'image-out');
    const built = await pare(['build', p, '-o', out], { env: env() });
    expect(built.code, built.stderr).toBe(0);
    // The archive settings (mirror, keyring) from a pare.yaml that points at the archive as it is now.
    const now = project('image-now', after, true, 'base-files, app');
    const r = await pare(['outdated', `oci:${out}`, '--config', join(now, 'pare.yaml'), '--json'], {
      env: env(),
    });
    expect(r.code, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.image).toContain(out);
    expect(
      report.packages.map(
        (x: { name: string; locked: string; candidate: string; cves: string[] }) =>
          `${x.name} ${x.locked} -> ${x.candidate} ${x.cves.join(',')}`,
      ),
    ).toEqual(['app 2.0 -> 2.1 ', 'libfoo 1.0-1 -> 1.0-1+deb12u2 CVE-2024-0001,CVE-2024-1234,CVE-2024-5678']);
    expect(report.packages[1].lockedSuite).toBeUndefined();

    const same = await pare(['outdated', `oci:${out}`, '--config', join(p, 'pare.yaml')], { env: env() });
    expect(same.stdout).toBe('');
    expect(same.code, same.stderr).toBe(0);
  });
});
