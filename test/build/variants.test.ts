import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAptSources } from '../../src/debian/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { imageToTree, selectImage } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import {
  createFakeArchive,
  type FakeArchive,
  staticProgramPackages,
} from '../helpers/fake-debian-archive.ts';
import { peersOrSkip, peersRequired } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `variants:` (Chainguard's -dev, distroless :debug): a second image per variant, tagged TAG-NAME, from the main
 * image's inputs plus the variant's, in the same run, from one pare.lock. Against a signed fake archive served on
 * 127.0.0.1 (digests, lock, records, errors), and against the host's Debian mirror for a shell that runs.
 */
// Several cold builds each: minutes on a busy 2-core machine, not the default minute.
describe('variants: against a fake archive', { timeout: 600_000 }, () => {
  const dir = tempDir();
  let archive: FakeArchive;
  beforeAll(async () => {
    archive = await createFakeArchive({
      architectures: ['amd64', 'arm64'],
      suites: [
        {
          name: 'bookworm',
          packages: [
            { name: 'base-files', version: '12.4', files: { 'etc/debian_version': '12.4\n' } },
            ...staticProgramPackages('app', '1.0', { files: { 'usr/share/doc/app/copyright': 'MIT\n' } }),
            // A shell: the program and Debian's /bin/sh link (assembled to /usr/bin/sh).
            ...staticProgramPackages('dash', '0.5.12', {
              files: { 'bin/sh': { content: '', symlink: 'dash' } },
            }),
            // A toolbox with a dependency of its own and a file nothing in the image reaches.
            ...staticProgramPackages('busybox', '1.35', {
              fields: { Depends: 'libtools' },
              files: { 'usr/share/busybox/applets': 'sh ls cat\n' },
            }),
            { name: 'libtools', version: '2.0', files: { 'usr/lib/libtools.txt': 'tools\n' } },
          ],
        },
      ],
    });
  });
  afterAll(async () => archive?.close());

  const header = () =>
    `name: vars\nplatforms: [linux/amd64, linux/arm64]\ndebian:\n  suite: bookworm\n  updates: false\n  security: false\n  mirror: ${archive.url}\n  keyring: ${archive.keyringAsc}\npackages: [base-files, app]\nimage:\n  entrypoint: [/usr/bin/app]\n  env: { MODE: prod }\n`;
  const dev = `variants:
  dev:
    packages: [busybox, dash]
    shell: true
    files:
      - { dest: /etc/dev-note, content: "debug build\\n" }
    image:
      env: { MODE: debug }
`;
  function project(name: string, yaml: string): string {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true });
    writeFileSync(join(p, 'pare.yaml'), yaml);
    return p;
  }
  const json = (stdout: string) =>
    JSON.parse(stdout) as {
      digest: string;
      variants: { tag: string; digest: string; records: string[] }[];
    };
  const treeOf = async (layout: string, tag: string, architecture: string) =>
    imageToTree(
      await selectImage(await (await OciLayout.open(layout)).readArtifact(tag), {
        os: 'linux',
        architecture,
      }),
    );

  it('builds TAG-dev beside the main image, twice to the same digests, and leaves the main image as it was', async () => {
    // The main image alone, then with a variant: adding a variant does not change one bit of it.
    const plain = project('plain', header());
    const r0 = await pare(['build', plain, '-o', join(dir, 'out0'), '--json'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache0') },
    });
    expect(r0.code, r0.stderr).toBe(0);
    const p = project('withdev', header() + dev);
    const r1 = await pare(['build', p, '-o', join(dir, 'out1'), '--json'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache1'), TZ: 'Pacific/Kiritimati' },
      umask: '077',
    });
    expect(r1.code, r1.stderr).toBe(0);
    const a = json(r1.stdout);
    expect(a.digest).toBe(json(r0.stdout).digest);
    expect(a.variants.map((v) => v.tag)).toEqual(['latest-dev']);
    expect(a.variants[0]!.digest).not.toBe(a.digest);

    // One lock for both images: the variant's packages and their dependencies are in it, so --locked covers them.
    const lock = JSON.parse(readFileSync(join(p, 'pare.lock'), 'utf8')) as {
      packages: { name: string; architecture: string }[];
    };
    expect([...new Set(lock.packages.map((x) => x.name))]).toEqual([
      'app',
      'base-files',
      'busybox',
      'dash',
      'libtools',
    ]);
    const q = project('again', header() + dev);
    writeFileSync(join(q, 'pare.lock'), readFileSync(join(p, 'pare.lock')));
    const r2 = await pare(['build', q, '-o', join(dir, 'out2'), '--json', '--locked'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache2'), TZ: 'UTC' },
      umask: '022',
    });
    expect(r2.code, r2.stderr).toBe(0);
    const b = json(r2.stdout);
    expect(b.digest).toBe(a.digest);
    expect(b.variants[0]!.digest).toBe(a.variants[0]!.digest);
    // A lock without the variant's packages does not answer the variant: --locked refuses it.
    const r = project('stale', header() + dev);
    writeFileSync(join(r, 'pare.lock'), readFileSync(join(plain, 'pare.lock')));
    const stale = await pare(['build', r, '-o', join(dir, 'out-stale'), '--locked'], {
      env: { XDG_CACHE_HOME: join(dir, 'cache2') },
    });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('--locked');
    expect(existsSync(join(dir, 'out-stale'))).toBe(false);

    // The layout holds both tags; per platform the variant has its packages (kept whole), a shell and its file.
    const out = join(dir, 'out1');
    for (const arch of ['amd64', 'arm64']) {
      const main = await treeOf(out, 'latest', arch);
      const v = await treeOf(out, 'latest-dev', arch);
      for (const path of ['/usr/bin/sh', '/usr/bin/dash', '/usr/bin/busybox', '/etc/dev-note'])
        expect(main.get(path), path).toBeUndefined();
      expect(v.get('/usr/bin/sh')).toMatchObject({ kind: 'symlink', target: 'dash' });
      expect(v.get('/bin')).toMatchObject({ kind: 'symlink', target: 'usr/bin' });
      expect(v.get('/usr/bin/dash')?.kind).toBe('file');
      expect(v.get('/usr/bin/busybox')?.kind).toBe('file');
      // Kept whole: a data file of busybox nothing refers to.
      expect(v.get('/usr/share/busybox/applets')?.kind).toBe('file');
      expect(new TextDecoder().decode(await v.readFile('/etc/dev-note'))).toBe('debug build\n');
      // Everything of the main image is in the variant too.
      for (const [path] of main) expect(v.get(path), path).toBeDefined();
    }
    const devImage = await selectImage(await (await OciLayout.open(out)).readArtifact('latest-dev'), {
      os: 'linux',
      architecture: 'amd64',
    });
    const c = (await devImage.config()).config;
    expect(c?.Env).toContain('MODE=debug');
    expect(c?.Entrypoint).toEqual(['/usr/bin/app']);

    // Records for each image in its own directory; each provenance lists that image's packages only.
    const deps = (tag: string) =>
      (
        JSON.parse(readFileSync(join(out, 'pare', tag, 'provenance.json'), 'utf8')) as {
          predicate: { buildDefinition: { resolvedDependencies: { name?: string; uri: string }[] } };
        }
      ).predicate.buildDefinition.resolvedDependencies
        .map((d) => d.name ?? '')
        .filter((n) => /^(app|busybox|dash|libtools|base-files)/.test(n));
    expect(readdirSync(join(out, 'pare', 'latest-dev')).sort()).toEqual(
      readdirSync(join(out, 'pare', 'latest')).sort(),
    );
    expect(deps('latest').some((n) => n.startsWith('busybox'))).toBe(false);
    expect(deps('latest-dev').some((n) => n.startsWith('busybox'))).toBe(true);
    const spdx = readFileSync(join(out, 'pare', 'latest-dev', 'sbom.spdx.json'), 'utf8');
    expect(spdx).toContain('"busybox"');
    expect(readFileSync(join(out, 'pare', 'latest', 'sbom.spdx.json'), 'utf8')).not.toContain('"busybox"');
  });

  it('refuses a bad variant with exit 2 at file:line:col, writing nothing', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'unknown key',
        'variants:\n  dev:\n    packges: [busybox]\n',
        /pare\.yaml:15:5: unknown key "packges" in variants\.dev/,
      ],
      [
        'bad name',
        'variants:\n  Dev!:\n    shell: true\n',
        /pare\.yaml:14:3: variants\.Dev!: want a variant name/,
      ],
      [
        'platforms',
        'variants:\n  dev:\n    platforms: [linux/amd64]\n',
        /pare\.yaml:15:5: unknown key "platforms"/,
      ],
      // shell: true promises /bin/sh: without a package that ships it, the build is refused, not silently shell-less.
      [
        'no sh',
        'variants:\n  dev:\n    packages: [busybox]\n    shell: true\n',
        /pare\.yaml:16:12: shell: true, but no package/,
      ],
    ];
    for (const [name, yaml, want] of cases) {
      const p = project(`bad-${name.replace(/ /g, '-')}`, header() + yaml);
      const r = await pare(['build', p, '-o', join(p, 'out')], {
        env: { XDG_CACHE_HOME: join(dir, 'cache1') },
      });
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toMatch(want);
      expect(existsSync(join(p, 'out')), name).toBe(false);
      expect(existsSync(join(p, 'pare.lock')), name).toBe(false);
    }
    // A files-only image has no packages for a variant's to add to.
    const f = project(
      'files-only',
      'name: f\nfiles:\n  - { dest: /x, content: "x" }\nvariants:\n  dev:\n    packages: [busybox]\n',
    );
    const r = await pare(['build', f, '-o', join(f, 'out')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pare\.yaml:6:15: a variant's packages: add to the main image's/);
  });
});

const sources = await readAptSources().catch(() => []);
const mirror = sources.some((s) => s.types.includes('deb'));
if (!mirror) {
  const reason = 'no Debian mirror in the host apt sources: the runnable variant needs one';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
}
const bwrap = peersOrSkip('bwrap');

describe.skipIf(!mirror || bwrap.skip)(
  'variants: a dev image with a shell that runs',
  { timeout: 600_000 },
  () => {
    const dir = tempDir();
    it('runs sh -c in the -dev image of a shell-less busybox image', async () => {
      const p = join(dir, 'tool');
      mkdirSync(p);
      writeFileSync(
        join(p, 'pare.yaml'),
        'name: tool\ndebian:\n  suite: bookworm\npackages: [busybox-static]\nimage:\n  cmd: [/bin/busybox, echo, hi]\nvariants:\n  dev:\n    packages: [dash]\n    shell: true\n',
      );
      const b = await pare(['build', p, '-o', join(dir, 'out'), '--json']);
      expect(b.code, b.stderr).toBe(0);
      const main = await pare(['run', `oci:${join(dir, 'out')}:latest`]);
      expect(main.stdout).toBe('hi\n');
      const noShell = await pare(['run', `oci:${join(dir, 'out')}:latest`, '--', 'sh', '-c', 'echo ok']);
      expect(noShell.code).not.toBe(0);
      const r = await pare(['run', `oci:${join(dir, 'out')}:latest-dev`, '--', 'sh', '-c', 'echo ok']);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('ok\n');
      expect(r.code).toBe(0);
    });
  },
);
