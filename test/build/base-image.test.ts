import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAptSources } from '../../src/debian/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersOrSkip, peersRequired, runPeer } from '../helpers/peers.ts';
import { type RegistryServer, startRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `base:` an existing image, end to end with images pare did not build: a busybox root made by mmdebstrap (from the
 * host's apt sources) and packed by umoci, and pare's own examples/static pushed by skopeo to a loopback registry.
 * skopeo reads what pare wrote: the base's layer digests come first, unchanged; pare run runs the files added on top.
 */
const peers = peersOrSkip('mmdebstrap', 'umoci', 'skopeo', 'bwrap', 'registry');
const sources = await readAptSources().catch(() => []);
const mirror = sources.some((s) => s.types.includes('deb'));
if (!mirror) {
  const reason = 'no Debian mirror in the host apt sources: mmdebstrap and examples/static need one';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
}

interface Inspect {
  Digest: string;
  Layers: string[];
}
const inspect = (ref: string, ...args: string[]): Inspect =>
  JSON.parse(runPeer(peers.paths.skopeo!, ['inspect', ...args, ref]));
const config = (ref: string) =>
  JSON.parse(runPeer(peers.paths.skopeo!, ['inspect', '--config', ref])) as {
    config: Record<string, unknown>;
  };
const rawManifest = (ref: string) =>
  JSON.parse(runPeer(peers.paths.skopeo!, ['inspect', '--raw', ref])) as {
    annotations?: Record<string, string>;
  };
const lockOf = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'pare.lock'), 'utf8')) as {
    base?: { reference: string; digest: string };
  };

describe.skipIf(peers.skip || !mirror)('base: an existing image', () => {
  const dir = tempDir();

  it('keeps an mmdebstrap + umoci base byte for byte, inherits its config and pins it in pare.lock', async () => {
    // A busybox root from the host's apt sources, reproducible by SOURCE_DATE_EPOCH, with a root-only /etc/passwd.
    const rootTar = join(dir, 'root.tar');
    runPeer(
      peers.paths.mmdebstrap!,
      [
        '--variant=extract',
        '--include=busybox-static',
        '--skip=output/dev',
        '--customize-hook=printf "root:x:0:0:root:/root:/bin/sh\\n" > "$1/etc/passwd" && printf "root:x:0:\\n" > "$1/etc/group"',
        'bookworm',
        rootTar,
      ],
      { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } },
    );
    const layout = join(dir, 'base');
    const umoci = (...args: string[]) => runPeer(peers.paths.umoci!, args);
    umoci('init', '--layout', layout);
    umoci('new', '--image', `${layout}:deb`);
    umoci('raw', 'add-layer', '--image', `${layout}:deb`, rootTar);
    umoci(
      'config',
      '--image',
      `${layout}:deb`,
      '--config.env',
      'GREETING=hello',
      '--config.workingdir',
      '/tmp',
      '--config.label',
      'org.example.base=mmdebstrap',
      '--config.entrypoint',
      '/bin/busybox',
      '--config.cmd',
      'true',
    );
    const base = inspect(`oci:${layout}:deb`);
    expect(base.Layers).toHaveLength(1);

    const p = join(dir, 'app');
    mkdirSync(p);
    const yaml = (ref: string, extra = '') =>
      `name: on-base
base: ${ref}
accounts:
  groups: [{ name: app, gid: 1234 }]
  users: [{ name: app, uid: 1234, gid: 1234, home: /home/app }]
files:
  - { dest: /srv/hello.txt, content: "hi from pare\\n", owner: app, mode: "0400" }
image:
  user: app
  env: { EXTRA: "1" }
  cmd: [cat, /srv/hello.txt]
${extra}`;
    writeFileSync(join(p, 'pare.yaml'), yaml(`oci:../base:deb`));
    const out1 = join(dir, 'out1');
    const b1 = await pare(['build', p, '-o', out1, '--json']);
    expect(b1.code, b1.stderr).toBe(0);
    const digest = JSON.parse(b1.stdout).digest as string;
    expect(lockOf(p).base).toEqual({ reference: 'oci:../base:deb', digest: base.Digest });

    // skopeo: the base's layer first, the same digest; then pare's accounts layer and files layer.
    const built = inspect(`oci:${out1}:latest`);
    expect(built.Digest).toBe(digest);
    expect(built.Layers.slice(0, 1)).toEqual(base.Layers);
    expect(built.Layers).toHaveLength(3);
    const c = config(`oci:${out1}:latest`).config;
    expect(c.Env).toEqual(expect.arrayContaining(['GREETING=hello', 'EXTRA=1']));
    expect(c).toMatchObject({
      User: '1234:1234',
      WorkingDir: '/tmp',
      Labels: { 'org.example.base': 'mmdebstrap' },
      Entrypoint: ['/bin/busybox'],
      Cmd: ['cat', '/srv/hello.txt'],
    });
    expect(rawManifest(`oci:${out1}:latest`).annotations).toMatchObject({
      'org.opencontainers.image.base.digest': base.Digest,
      // As written in pare.yaml (relative to it): the digest does not depend on where the project is checked out.
      'org.opencontainers.image.base.name': 'oci:../base:deb',
    });

    // Rebuilt: the same digest. Run: busybox from the base reads pare's file as the appended account.
    const out2 = join(dir, 'out2');
    const b2 = await pare(['build', p, '-o', out2, '-q']);
    expect(b2.code, b2.stderr).toBe(0);
    expect(b2.stdout.trim()).toBe(digest);
    const run = await pare(['run', `oci:${out1}:latest`]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('hi from pare\n');
    const id = await pare(['run', `oci:${out1}:latest`, '--', 'id', '-un']);
    expect(id.stdout).toBe('app\n');

    // The same base as an oci-archive (copied by skopeo): pinned to the same digest, the same layers kept.
    runPeer(peers.paths.skopeo!, ['copy', `oci:${layout}:deb`, `oci-archive:${join(dir, 'base.tar')}:deb`]);
    const pa = join(dir, 'app-archive');
    mkdirSync(pa);
    writeFileSync(join(pa, 'pare.yaml'), yaml('oci-archive:../base.tar:deb'));
    const ba = await pare(['build', pa, '-o', join(dir, 'out-archive'), '-q']);
    expect(ba.code, ba.stderr).toBe(0);
    expect(lockOf(pa).base?.digest).toBe(base.Digest);
    expect(inspect(`oci:${join(dir, 'out-archive')}:latest`).Layers.slice(1)).toEqual(built.Layers.slice(1));
    expect(inspect(`oci:${join(dir, 'out-archive')}:latest`).Layers[0]).toBe(base.Layers[0]);

    // The tag moves: --locked refuses it, a plain build keeps the pinned digest, --update re-pins.
    umoci('config', '--image', `${layout}:deb`, '--config.env', 'GREETING=moved');
    const moved = inspect(`oci:${layout}:deb`).Digest;
    expect(moved).not.toBe(base.Digest);
    const locked = await pare(['build', p, '-o', join(dir, 'out3'), '--locked', '-q']);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain(`now names ${moved}`);
    const again = await pare(['build', p, '-o', join(dir, 'out3'), '-q']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(digest);
    const updated = await pare(['build', p, '-o', join(dir, 'out4'), '--update', '--json']);
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout).digest).not.toBe(digest);
    expect(lockOf(p).base?.digest).toBe(moved);

    // packages: on this base (mmdebstrap's extract variant: no base-files, no dpkg-installed database) is refused at
    // its line naming the base's digest, nothing written (test/build/base-packages.test.ts installs on a Debian base).
    writeFileSync(join(p, 'pare.yaml'), yaml(`oci:../base:deb`, 'packages: [hello]\n'));
    const refused = await pare(['build', p, '-o', join(dir, 'out5')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/pare\.yaml:\d+:\d+: .*linux\/amd64 base sha256:[0-9a-f]{64}/);
    expect(existsSync(join(dir, 'out5'))).toBe(false);
  }, 600_000);

  describe('from a loopback registry', () => {
    let registry: RegistryServer | undefined;
    afterAll(async () => {
      await registry?.stop();
    });

    it('builds on examples/static pulled by docker:// for both platforms, keeping its layers', async () => {
      registry = await startRegistry();
      const ex = join(dir, 'static');
      cpSync('examples/static', ex, { recursive: true });
      const b = await pare(['build', ex, '-o', join(dir, 'static-out'), '-q']);
      expect(b.code, b.stderr).toBe(0);
      runPeer(peers.paths.skopeo!, [
        'copy',
        '--all',
        '--dest-tls-verify=false',
        `oci:${join(dir, 'static-out')}:static`,
        `docker://${registry.host}/static:v1`,
      ]);
      const p = join(dir, 'remote');
      mkdirSync(p);
      writeFileSync(
        join(p, 'pare.yaml'),
        `name: on-static
base: docker://${registry.host}/static:v1
platforms: [linux/amd64, linux/arm64]
files:
  - { dest: /etc/app.conf, content: "x=1\\n" }
image:
  env: { APP_CONF: /etc/app.conf }
`,
      );
      const r1 = await pare(['build', p, '-o', join(dir, 'remote1'), '-q']);
      expect(r1.code, r1.stderr).toBe(0);
      const r2 = await pare(['build', p, '-o', join(dir, 'remote2'), '-q']);
      expect(r2.code, r2.stderr).toBe(0);
      expect(r2.stdout).toBe(r1.stdout);
      for (const arch of ['amd64', 'arm64']) {
        const want = inspect(
          `docker://${registry.host}/static:v1`,
          '--tls-verify=false',
          '--override-arch',
          arch,
        );
        const got = inspect(`oci:${join(dir, 'remote1')}:latest`, '--override-arch', arch);
        expect(got.Layers.slice(0, want.Layers.length)).toEqual(want.Layers);
        expect(got.Layers).toHaveLength(want.Layers.length + 1);
        const c = config(`oci:${join(dir, 'remote1')}:latest`).config;
        // examples/static's user and PATH are inherited.
        expect(c.User).toBe('65532:65532');
      }
      const lock = lockOf(p).base!;
      expect(lock.reference).toBe(`docker://${registry.host}/static:v1`);
      const index = runPeer(peers.paths.skopeo!, [
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${registry.host}/static:v1`,
      ]);
      expect(lock.digest).toBe(`sha256:${createHash('sha256').update(index).digest('hex')}`);
    }, 600_000);
  });
});
