import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciLayout } from '../../src/layout/index.ts';
import { type Image, imageToTree, selectImage } from '../../src/oci/index.ts';
import { collectEntries } from '../../src/tar/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import {
  createFakeArchive,
  type FakeArchive,
  staticProgramPackages,
} from '../helpers/fake-debian-archive.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `packages:` on a Debian image base: the base (built by pare from a signed fake archive served on 127.0.0.1, so it has
 * a dpkg status.d database) keeps its layers; what its dpkg database has at the locked version is skipped, the rest
 * goes on top as pare's layer; another version, another release or no database is exit 2 naming the base's digest.
 */
// Several cold builds each: minutes on a busy 2-core machine, not the default minute.
describe('packages: on an image base', { timeout: 600_000 }, () => {
  const dir = tempDir();
  let archive: FakeArchive;
  const osRelease = (codename: string) =>
    `PRETTY_NAME="Debian GNU/Linux"\nID=debian\nVERSION_CODENAME=${codename}\n`;
  beforeAll(async () => {
    archive = await createFakeArchive({
      architectures: ['amd64'],
      suites: [
        {
          name: 'bookworm',
          packages: [
            { name: 'base-files', version: '12.4', files: { 'etc/os-release': osRelease('bookworm') } },
            ...staticProgramPackages('app', '1.0', { fields: { Depends: 'libfoo' } }),
            { name: 'libfoo', version: '1.0', files: { 'usr/lib/libfoo.so.1': 'old' } },
          ].filter((p) => !('architecture' in p) || p.architecture === 'amd64'),
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

  const debian = (security: boolean) =>
    `debian:\n  suite: bookworm\n  updates: false\n  security: ${security}\n  mirror: ${archive.url}\n  securityMirror: ${archive.url}\n  keyring: ${archive.keyringAsc}\n`;
  function project(name: string, yaml: string): string {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true });
    writeFileSync(join(p, 'pare.yaml'), yaml);
    return p;
  }
  const env = { XDG_CACHE_HOME: join(dir, 'cache') };
  async function imageAt(layout: string): Promise<Image> {
    return selectImage(await (await OciLayout.open(layout)).readArtifact('latest'), {
      os: 'linux',
      architecture: 'amd64',
    });
  }
  const layerDigests = async (img: Image) => (await img.manifest()).layers.map((l) => l.digest);

  let baseDigest: string;
  // biome-ignore lint/suspicious/noDuplicateTestHooks: runs after the archive hook above; builds the base from it
  beforeAll(async () => {
    // The base: base-files and libfoo 1.0 (no security suite), unsliced, with its dpkg status.d entries.
    const b = project('base', `name: base\n${debian(false)}packages: [base-files, libfoo]\nslice: none\n`);
    const r = await pare(['build', b, '-o', join(dir, 'base-out'), '-q'], { env });
    expect(r.code, r.stderr).toBe(0);
    baseDigest = r.stdout.trim();
  }, 600_000);

  it('skips what the base has at the same version, installs the rest on top, keeps the base layers, rebuilds the same', async () => {
    const yaml = `name: app\nbase: oci:../base-out:latest\n${debian(false)}packages: [app]\nimage:\n  entrypoint: [/usr/bin/app]\n`;
    const p = project('app', yaml);
    const r1 = await pare(['build', p, '-o', join(dir, 'app-out1'), '-q'], { env });
    expect(r1.code, r1.stderr).toBe(0);
    // One pare.lock: the packages as resolved (libfoo too: the lock is the resolution) and the base's pin.
    const lock = JSON.parse(readFileSync(join(p, 'pare.lock'), 'utf8')) as {
      packages: { name: string }[];
      base: { digest: string };
    };
    expect(lock.packages.map((x) => x.name)).toEqual(['app', 'libfoo']);
    expect(lock.base.digest).toBe(baseDigest);
    const base = await imageAt(join(dir, 'base-out'));
    const img = await imageAt(join(dir, 'app-out1'));
    const baseLayers = await layerDigests(base);
    const layers = await layerDigests(img);
    expect(layers.slice(0, baseLayers.length)).toEqual(baseLayers);
    expect(layers).toHaveLength(baseLayers.length + 1);
    // pare's layer: app and its dpkg entry; nothing of libfoo (the base has 1.0, the lock says 1.0), no base file.
    const own = (await img.layers())[baseLayers.length]!;
    const files = (await collectEntries(own.uncompressed()))
      .filter(([, e]) => e.kind !== 'dir')
      .map(([path]) => path)
      .sort();
    expect(files).toEqual([
      '/usr/bin/app',
      '/var/lib/dpkg/status.d/app',
      '/var/lib/dpkg/status.d/app.md5sums',
    ]);
    const tree = await imageToTree(img);
    expect(new TextDecoder().decode(await tree.readFile('/usr/lib/libfoo.so.1'))).toBe('old');
    expect(tree.get('/var/lib/dpkg/status.d/libfoo')?.kind).toBe('file');
    expect(tree.get('/bin')).toMatchObject({ kind: 'symlink', target: 'usr/bin' });
    const r2 = await pare(['build', p, '-o', join(dir, 'app-out2'), '-q', '--locked'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache2'), TZ: 'Pacific/Kiritimati' },
      umask: '077',
    });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toBe(r1.stdout);
  });

  it("slice: { base: true } re-slices the base with pare's packages into one layer, the same twice", async () => {
    const yaml = `name: app\nbase: oci:../base-out:latest\n${debian(false)}packages: [app]\nslice: { base: true }\nimage:\n  entrypoint: [/usr/bin/app]\n`;
    const p = project('resliced', yaml);
    const r1 = await pare(['build', p, '-o', join(dir, 'resliced-1'), '-q'], { env });
    expect(r1.code, r1.stderr).toBe(0);
    const base = await imageAt(join(dir, 'base-out'));
    const img = await imageAt(join(dir, 'resliced-1'));
    const layers = await layerDigests(img);
    // One layer of pare's: the base's layer digests are gone, and so are the annotations that would claim them.
    expect(layers).toHaveLength(1);
    expect(layers).not.toContain((await layerDigests(base))[0]);
    const m = await img.manifest();
    expect(m.annotations?.['org.opencontainers.image.base.digest']).toBeUndefined();
    expect((await img.config()).history).toHaveLength(1);
    const tree = await imageToTree(img);
    expect(tree.file('/usr/bin/app')).toBeDefined();
    // What nothing needs is sliced away, base files included (libfoo's file: the static app does not load it).
    expect(tree.get('/usr/lib/libfoo.so.1')).toBeUndefined();
    expect(tree.get('/bin')).toMatchObject({ kind: 'symlink', target: 'usr/bin' });
    const r2 = await pare(['build', p, '-o', join(dir, 'resliced-2'), '-q'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache3') },
    });
    expect(r2.stdout).toBe(r1.stdout);
    // Without an image base there is nothing to re-slice: exit 2 at the key.
    const q = project('no-base', `name: q\n${debian(false)}packages: [app]\nslice: { base: true }\n`);
    const r3 = await pare(['build', q, '-o', join(q, 'out')], { env });
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/pare\.yaml:10:\d+: slice\.base re-slices an image base/);
  });

  it('refuses another version, another release and a base without dpkg metadata with exit 2, writing nothing', async () => {
    // The security suite resolves libfoo 1.1; the base has 1.0.
    const v = project(
      'version',
      `name: app\nbase: oci:../base-out:latest\n${debian(true)}packages: [app]\nimage:\n  entrypoint: [/usr/bin/app]\n`,
    );
    const rv = await pare(['build', v, '-o', join(v, 'out')], { env });
    expect(rv.code).toBe(2);
    expect(rv.stderr).toContain(`base ${baseDigest} has libfoo:amd64 1.0, and pare.lock resolves 1.1`);
    expect(rv.stderr).toMatch(/pare\.yaml:\d+:\d+: /);
    expect(existsSync(join(v, 'out'))).toBe(false);
    expect(existsSync(join(v, 'pare.lock'))).toBe(false);

    // A base that says it is trixie.
    const t = project(
      'trixie-base',
      `name: t\n${debian(false)}packages: [base-files, libfoo]\nslice: none\nfiles:\n  - { dest: /etc/os-release, content: "ID=debian\\nVERSION_CODENAME=trixie\\n" }\n`,
    );
    const rt0 = await pare(['build', t, '-o', join(dir, 'trixie-out'), '-q'], { env });
    expect(rt0.code, rt0.stderr).toBe(0);
    const on = project(
      'on-trixie',
      `name: app\nbase: oci:../trixie-out:latest\n${debian(false)}packages: [app]\nimage:\n  entrypoint: [/usr/bin/app]\n`,
    );
    const rt = await pare(['build', on, '-o', join(on, 'out')], { env });
    expect(rt.code).toBe(2);
    expect(rt.stderr).toMatch(
      new RegExp(
        `pare\\.yaml:4:10: the linux/amd64 base ${rt0.stdout.trim()} is Debian trixie, and debian\\.suite is bookworm`,
      ),
    );
    expect(existsSync(join(on, 'out'))).toBe(false);

    // A files-only image: Debian by its os-release, but no dpkg database.
    const f = project(
      'files-base',
      'name: f\nfiles:\n  - { dest: /etc/os-release, content: "ID=debian\\nVERSION_CODENAME=bookworm\\n" }\n',
    );
    const rf0 = await pare(['build', f, '-o', join(dir, 'files-out'), '-q'], { env });
    expect(rf0.code, rf0.stderr).toBe(0);
    const nf = project(
      'on-files',
      `name: app\nbase: oci:../files-out:latest\n${debian(false)}packages: [app]\nimage:\n  entrypoint: [/usr/bin/app]\n`,
    );
    const rn = await pare(['build', nf, '-o', join(nf, 'out')], { env });
    expect(rn.code).toBe(2);
    expect(rn.stderr).toContain(`base ${rf0.stdout.trim()} has no dpkg database`);
    expect(existsSync(join(nf, 'out'))).toBe(false);
  });
});
