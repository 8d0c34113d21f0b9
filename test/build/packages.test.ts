import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, provenanceInput } from '../../src/build/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { imageToTree, selectImage } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import {
  createFakeArchive,
  type FakeArchive,
  staticProgramPackages,
} from '../helpers/fake-debian-archive.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `packages:` builds end to end through the real CLI, against a signed Debian-style archive the test generates and
 * serves on 127.0.0.1 (offline, deterministic). The real mirror is exercised by test/build/examples.test.ts.
 */
/** A gzip-compressed file of a fake package. */
const gz = (text: string) => ({ content: gzipSync(text) });

describe('pare build with packages', () => {
  const dir = tempDir();
  let archive: FakeArchive;
  beforeAll(async () => {
    const copyright = 'Format: copyright-format/1.0\n\nFiles: *\nLicense: MIT\n';
    archive = await createFakeArchive({
      architectures: ['amd64', 'arm64'],
      suites: [
        {
          name: 'bookworm',
          packages: [
            {
              name: 'base-files',
              version: '12.4',
              files: {
                'etc/os-release':
                  'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
                'etc/debian_version': '12.4\n',
                'usr/share/doc/base-files/copyright': copyright,
                // The newest changelog entry of the lock: the default SOURCE_DATE_EPOCH (a native package: changelog.gz).
                'usr/share/doc/base-files/changelog.gz': gz(
                  'base-files (12.4) bookworm; urgency=medium\n\n  * Release.\n\n -- Santiago Vila <sanvila@debian.org>  Sat, 10 Feb 2024 10:00:00 +0000\n\nbase-files (12.3) bookworm; urgency=medium\n\n  * Older.\n\n -- Santiago Vila <sanvila@debian.org>  Sun, 01 Jan 2023 00:00:00 +0000\n',
                ),
              },
            },
            // A static program of each architecture's machine (the image must run: pare build checks it).
            ...staticProgramPackages('app', '1.0', {
              fields: { Depends: 'libfoo (>= 1.0) | libbar' },
              files: { 'usr/share/doc/app/copyright': copyright },
            }),
            { name: 'libfoo', version: '1.0', files: { 'usr/lib/libfoo.so.1': 'old' } },
            { name: 'unused', version: '1.0' },
          ],
        },
        {
          name: 'bookworm-security',
          codename: 'bookworm-security',
          packages: [{ name: 'libfoo', version: '1.1', files: { 'usr/lib/libfoo.so.1': 'patched' } }],
        },
      ],
    });
  });
  afterAll(async () => archive?.close());

  function project(name: string, packages: string[]): string {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true });
    writeFileSync(
      join(p, 'pare.yaml'),
      `name: pkgs\nplatforms: [linux/amd64, linux/arm64]\ndebian:\n  suite: bookworm\n  updates: false\n  mirror: ${archive.url}\n  securityMirror: ${archive.url}\n  keyring: ${archive.keyringAsc}\npackages: [${packages.join(', ')}]\nimage:\n  entrypoint: [/usr/bin/app]\n# note: the fake packages hold no real programs, so slicing would keep almost nothing\nslice: none\n`,
    );
    return p;
  }

  it('resolves (security wins), locks, and gives the same digest from two clean caches under other TZ and umask', async () => {
    const p = project('one', ['base-files', 'app']);
    const r1 = await pare(['build', p, '-o', join(dir, 'out1')], {
      env: { XDG_CACHE_HOME: join(dir, 'cache1'), TZ: 'Pacific/Kiritimati' },
      umask: '077',
    });
    expect(r1.stderr).toContain('pare.lock: 6 packages (written)');
    expect(r1.code).toBe(0);
    const lock = JSON.parse(readFileSync(join(p, 'pare.lock'), 'utf8')) as {
      packages: { name: string; version: string; architecture: string }[];
    };
    expect(lock.packages.map((x) => `${x.name}:${x.architecture}=${x.version}`)).toEqual([
      'app:amd64=1.0',
      'app:arm64=1.0',
      'base-files:amd64=12.4',
      'base-files:arm64=12.4',
      'libfoo:amd64=1.1',
      'libfoo:arm64=1.1',
    ]);
    const q = project('two', ['base-files', 'app']);
    writeFileSync(join(q, 'pare.lock'), readFileSync(join(p, 'pare.lock')));
    const r2 = await pare(['build', q, '-o', join(dir, 'out2'), '--locked'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache2'), TZ: 'UTC' },
      umask: '022',
    });
    expect(r2.code).toBe(0);
    expect(r2.stdout).toBe(r1.stdout);
    const layout = await OciLayout.open(join(dir, 'out1'));
    const img = await selectImage(await layout.readArtifact('latest'), {
      os: 'linux',
      architecture: 'arm64',
    });
    const tree = await imageToTree(img);
    expect(new TextDecoder().decode(await tree.readFile('/usr/lib/libfoo.so.1'))).toBe('patched');
    expect(tree.get('/var/lib/dpkg/status.d/libfoo')?.kind).toBe('file');
    expect(tree.get('/tmp')?.mode).toBe(0o1777);
    expect((await img.config()).config?.User).toBe('65532:65532');
    // No epoch given: the newest changelog date of the locked packages (base-files 12.4), not 1970.
    expect((await img.config()).created).toBe('2024-02-10T10:00:00Z');
    const given = await pare(['build', p, '--dry-run'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache1'), SOURCE_DATE_EPOCH: '1707559200' },
    });
    expect(given.stdout).toBe(r1.stdout);
    const other = await pare(['build', p, '--dry-run'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache1'), SOURCE_DATE_EPOCH: '0' },
    });
    expect(other.code).toBe(0);
    expect(other.stdout).not.toBe(r1.stdout);
  });

  it('builds from the lock and the cache alone, reading no index', async () => {
    const p = join(dir, 'one');
    const before = archive.requests.length;
    const r = await pare(['build', p, '-o', join(dir, 'out3')], {
      env: { XDG_CACHE_HOME: join(dir, 'cache1') },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('(unchanged)');
    expect(
      archive.requests.slice(before).filter((u) => u.includes('Packages') || u.includes('Release')),
    ).toEqual([]);
  });

  describe('when the layer cache holds the packages layer (a warm build into a fresh layout)', () => {
    it('writes the same records, byte for byte, as a build without the layer cache, with or without the cached rootfs facts', async () => {
      const p = project('five', ['base-files', 'app']);
      mkdirSync(join(p, 'docs'), { recursive: true });
      writeFileSync(join(p, 'docs', 'NOTES'), 'notes\n');
      // note: the dest is a directory the app package fills too, so provenance lists its copyright as well
      writeFileSync(
        join(p, 'pare.yaml'),
        `${readFileSync(join(p, 'pare.yaml'), 'utf8')}files:\n  - {src: docs, dest: /usr/share/doc/app}\n  - {content: "x=1\\n", dest: /etc/app.conf}\n`,
      );
      const env = { XDG_CACHE_HOME: join(dir, 'cache5') };
      const records = (out: string) => {
        const d = join(dir, out, 'pare', 'latest');
        return Object.fromEntries(readdirSync(d).map((f) => [f, readFileSync(join(d, f), 'utf8')]));
      };
      // The reference: every record computed from the assembled trees, nothing cached.
      const loaded = await loadConfig(p);
      const ref = await build(loaded, {
        output: join(dir, 'out5ref'),
        layerCache: false,
        debian: { archive: { cacheDir: join(dir, 'cache5', 'pare') } },
      });
      const cold = await pare(['build', p, '-o', join(dir, 'out5a')], { env });
      expect(cold.code).toBe(0);
      // Per platform, the rootfs facts, the SBOM texts and the passed run check (check.ts): the next build reads them
      // instead of unpacking the cached layer.
      // The default epoch (the newest changelog date) is remembered by the .deb digests too.
      const kept = readdirSync(join(dir, 'cache5', 'pare', 'records'));
      expect(kept).toHaveLength(7);
      expect(kept.filter((n) => n.startsWith('source-date-'))).toHaveLength(1);
      expect(kept.filter((n) => n.startsWith('check-'))).toHaveLength(2);
      const warm = await pare(['build', p, '-o', join(dir, 'out5b')], { env });
      expect(warm.code).toBe(0);
      rmSync(join(dir, 'cache5', 'pare', 'records'), { recursive: true });
      const unpacked = await pare(['build', p, '-o', join(dir, 'out5c')], { env });
      expect(unpacked.code).toBe(0);
      expect(warm.stdout).toBe(cold.stdout);
      expect(unpacked.stdout).toBe(cold.stdout);
      const want = records('out5ref');
      expect(Object.keys(want).sort()).toEqual([
        'build.json',
        'provenance.json',
        'sbom.cdx.json',
        'sbom.linux-arm64.cdx.json',
        'sbom.linux-arm64.spdx.json',
        'sbom.spdx.json',
      ]);
      // The user's files in the provenance are those of the first platform's tree at or below a files: dest.
      const prov = JSON.parse(want['provenance.json']!) as {
        predicate: { buildDefinition: { resolvedDependencies: { uri: string; name: string }[] } };
      };
      const fromTree = (await provenanceInput(loaded, ref)).appFiles;
      expect(fromTree.map((f) => `${f.path} ${f.source}`).sort()).toEqual([
        '/etc/app.conf pare.yaml',
        '/usr/share/doc/app/NOTES docs/NOTES',
        '/usr/share/doc/app/copyright docs/copyright',
      ]);
      expect(
        prov.predicate.buildDefinition.resolvedDependencies.filter((d) => d.uri.startsWith('file:')),
      ).toEqual(
        [...fromTree]
          .sort((a, b) => (a.path < b.path ? -1 : 1))
          .map((f) => ({ uri: `file:${f.source}`, digest: { sha256: f.sha256 }, name: f.path })),
      );
      expect(records('out5a')).toEqual(want);
      expect(records('out5b')).toEqual(want);
      expect(records('out5c')).toEqual(want);
    });
  });

  describe('when progress is forced to plain (--progress=plain or PARE_PROGRESS=plain)', () => {
    it('shows each long step on stderr, one line per event, and stdout and the image stay the same', async () => {
      const p = project('progress', ['base-files', 'app']);
      const quiet = await pare(['build', p, '--dry-run'], { env: { XDG_CACHE_HOME: join(dir, 'cache-pq') } });
      expect(quiet.code).toBe(0);
      // Not a terminal and not forced: no progress at all.
      expect(quiet.stderr).not.toMatch(/resolving|fetching|compressing/);
      const out = join(dir, 'out-progress');
      const r = await pare(['build', '--progress=plain', p, '-o', out], {
        env: { XDG_CACHE_HOME: join(dir, 'cache-p') },
      });
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(quiet.stdout);
      const lines = r.stderr.split('\n');
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      // In order: resolve, download every .deb with byte counts, unpack, compress, write.
      const order = [
        /^pare: resolving packages$/,
        /^pare: fetching 6 \.debs \(\d[^)]* (B|KiB)\)$/,
        /^pare: fetched 6\/6 \.debs \([^)]+\/[^)]+\): /,
        /^pare: resolved packages: 6 packages, /,
        /^pare: unpacking packages \(linux\/amd64\)$/,
        /^pare: unpacked packages \(linux\/arm64\): \d+ entries$/,
        /^pare: compressing layers$/,
        /^pare: compressed layers: 2 layers \(gzip\)$/,
        /^pare: writing$/,
        new RegExp(`^pare: wrote: oci:${out}:latest$`),
      ].map(at);
      expect(
        order.every((i) => i >= 0),
        r.stderr,
      ).toBe(true);
      expect(
        [...order].sort((a, b) => a - b),
        r.stderr,
      ).toEqual(order);
      expect(r.stderr).not.toContain('\x1b[');
      // The environment variable does the same; --json turns progress off whatever the mode, and stdout is only JSON.
      const j = await pare(['build', p, '--dry-run', '--json'], {
        env: { XDG_CACHE_HOME: join(dir, 'cache-p'), PARE_PROGRESS: 'plain' },
      });
      expect(j.code).toBe(0);
      expect(JSON.parse(j.stdout).digest).toBe(quiet.stdout.trim());
      expect(j.stderr).not.toMatch(/pare: (resolving|compressing)/);
      const e = await pare(['build', p, '--dry-run'], {
        env: { XDG_CACHE_HOME: join(dir, 'cache-p'), PARE_PROGRESS: 'plain' },
      });
      expect(e.stderr).toMatch(/^pare: compressing layers$/m);
      expect(e.stdout).toBe(quiet.stdout);
      const bad = await pare(['build', p, '--progress', 'fancy']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('cannot use --progress="fancy": want one of tty, plain, none, auto');
    });
  });

  it('explains why a package is in (pare why)', async () => {
    const r = await pare(['why', 'libfoo', join(dir, 'one')], {
      env: { XDG_CACHE_HOME: join(dir, 'cache1') },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /amd64: libfoo 1\.1\n\s+← app 1\.0 \(Depends: libfoo \(>= 1\.0\) \| libbar\)\n\s+\(app is requested in pare\.yaml\)/,
    );
  });

  describe('when --locked and the lock does not answer pare.yaml', () => {
    it('fails, says what differs and how to fix it, and keeps the lock', async () => {
      const p = project('three', ['base-files', 'app']);
      const none = await pare(['build', p, '--locked', '--dry-run'], {
        env: { XDG_CACHE_HOME: join(dir, 'cache1') },
      });
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/no .*pare\.lock; run "pare lock"/);
      expect((await pare(['lock', p], { env: { XDG_CACHE_HOME: join(dir, 'cache1') } })).code).toBe(0);
      const before = readFileSync(join(p, 'pare.lock'), 'utf8');
      writeFileSync(
        join(p, 'pare.yaml'),
        readFileSync(join(p, 'pare.yaml'), 'utf8').replace('[base-files, app]', '[base-files, app, unused]'),
      );
      const r = await pare(['build', p, '--locked', '--dry-run'], {
        env: { XDG_CACHE_HOME: join(dir, 'cache1') },
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/does not match packages: .*run "pare lock --update"/);
      expect(readFileSync(join(p, 'pare.lock'), 'utf8')).toBe(before);
    });
  });

  it('writes nothing, not even pare.lock, when pare.yaml is found wrong only after resolving', async () => {
    // note: the clash with the built-in nonroot is known only once the packages' /etc/passwd is assembled; pare.lock
    // used to be written by then
    const p = project('six', ['base-files', 'app']);
    writeFileSync(
      join(p, 'pare.yaml'),
      `${readFileSync(join(p, 'pare.yaml'), 'utf8')}accounts:\n  users: [{ name: app, uid: 65532, gid: 0 }]\n`,
    );
    const r = await pare(['build', p, '-o', join(dir, 'out6')], {
      env: { XDG_CACHE_HOME: join(dir, 'cache1') },
    });
    expect(r.stderr).toMatch(/pare\.yaml:\d+:\d+: uid 65532 is already user "nonroot"'s \(built in\)/);
    expect(r.code).toBe(2);
    expect(existsSync(join(p, 'pare.lock'))).toBe(false);
    expect(existsSync(join(dir, 'out6'))).toBe(false);
  });

  it('refuses an unknown package, naming it (bad input: exit 2)', async () => {
    const p = project('four', ['base-files', 'no-such-package']);
    const r = await pare(['build', p, '--dry-run'], { env: { XDG_CACHE_HOME: join(dir, 'cache1') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no-such-package');
  });
});
