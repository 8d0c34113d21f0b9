import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Tree } from '../../src/fstree/index.ts';
import { readLocal } from '../../src/layout/index.ts';
import { type Image, imageToTree } from '../../src/oci/index.ts';
import { readDpkgDatabase } from '../../src/sbom/index.ts';
import { pareAsync } from '../helpers/cli.ts';
import { debianImage } from '../helpers/mmdebstrap.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `pare slim` on an image pare did not build: mmdebstrap (`--variant=apt`: shell, apt and dpkg inside, plus python3
 * and curl) packed by umoci; more tags of it made with umoci (curl as the entrypoint; a static program added). The slimmed image must pass its probe under `pare run`, be at most 30% of the input's compressed
 * size, hold no shell, apt or dpkg, and carry a dpkg database a scanner can trust; and a slimmed image that would fail
 * a probe is refused with the missing path and the `--keep` that brings it back.
 */

const peers = peersOrSkip('mmdebstrap', 'umoci', 'bwrap', 'strace', 'gcc');
const PROBE = 'python3 -c "import json, ssl; print(json.dumps([ssl.OPENSSL_VERSION[:7]]))"';
const SHELL_PROBE = `python3 -c "import subprocess; subprocess.run(['sh', '-c', 'exit 0'], check=True)"`;

async function imageAt(layout: string, tag: string): Promise<Image> {
  const a = await readLocal({ transport: 'oci', path: layout, tag });
  if (a.kind !== 'image') throw new Error(`${layout}:${tag} is not an image`);
  return a.image;
}

function exists(tree: Tree, path: string): boolean {
  try {
    return tree.resolve(path).entry !== undefined;
  } catch {
    return false;
  }
}

describe.skipIf(peers.skip)('pare slim on an mmdebstrap + umoci python3 image', () => {
  const work = peers.skip ? '' : tempDir('pare-slim-');
  let src = '';
  let layout = '';
  beforeAll(() => {
    ({ ref: src, layout } = debianImage(
      { mmdebstrap: peers.paths.mmdebstrap!, umoci: peers.paths.umoci! },
      {
        include: ['python3', 'curl'],
        config: [
          '--config.cmd=python3',
          '--config.workingdir=/tmp',
          '--config.label=org.example.purpose=slim-test',
          '--config.stopsignal=SIGINT',
          '--config.env=LANG=C.UTF-8',
        ],
      },
    ));
  }, 600_000);

  it('keeps what the probe needs, passes it under pare run, ≤ 30% of the input, scanner-true, deterministic', async () => {
    const out = join(work, 'out');
    const args = ['slim', src, `oci:${out}:a`, '--probe', PROBE, '--json'];
    const first = await pareAsync(args);
    expect(first.stderr).not.toMatch(/^pare: error/m);
    expect(first.code).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.schema).toBe('pare.slim/v1');
    expect(report.compressed / report.source.compressed).toBeLessThanOrEqual(0.3);
    expect(report.packages.find((p: { name: string }) => p.name === 'dpkg').kept).toBe(false);

    // Deterministic: the same source and options give the same digest.
    const again = await pareAsync(['slim', src, `oci:${out}:b`, '--probe', PROBE, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).digest).toBe(report.digest);

    const run = await pareAsync([
      'run',
      '--cache-dir',
      join(work, 'rootfs'),
      `oci:${out}:a`,
      '--',
      ...['python3', '-c', 'import json, ssl; print(json.dumps([ssl.OPENSSL_VERSION[:7]]))'],
    ]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('["OpenSSL"]\n');

    const source = await imageAt(src.replace(/^oci:/, '').replace(/:base$/, ''), 'base');
    const slim = await imageAt(out, 'a');
    expect(await slim.digest()).toBe(report.digest);
    const [sc, oc, m] = await Promise.all([source.config(), slim.config(), slim.manifest()]);
    expect(oc.config).toEqual(sc.config);
    expect(oc.config?.Labels?.['org.example.purpose']).toBe('slim-test');
    expect(oc.config?.StopSignal).toBe('SIGINT');
    expect(m.annotations?.['org.opencontainers.image.base.digest']).toBe(await source.digest());
    expect(JSON.parse(m.annotations?.['dev.pare.slim.probes'] ?? '')).toEqual([
      ['python3', '-c', 'import json, ssl; print(json.dumps([ssl.OPENSSL_VERSION[:7]]))'],
    ]);
    expect(oc.history?.at(-1)?.created_by).toMatch(/^pare slim --probe /);

    const tree = await imageToTree(slim);
    for (const gone of [
      '/bin/sh',
      '/usr/bin/dash',
      '/usr/bin/bash',
      '/usr/bin/apt',
      '/usr/bin/apt-get',
      '/usr/bin/dpkg',
      '/usr/bin/perl',
    ])
      expect(exists(tree, gone), gone).toBe(false);
    expect(exists(tree, '/etc/os-release')).toBe(true);
    // A scanner's view (src/sbom reads /var/lib/dpkg like syft and trivy): only packages that are there, and every
    // file each lists exists.
    const db = await readDpkgDatabase(tree);
    const names = db.map((p) => p.name);
    expect(names).toContain('python3.11-minimal');
    expect(names).toContain('libc6');
    for (const n of ['apt', 'dpkg', 'dash', 'bash', 'perl-base', 'coreutils']) expect(names).not.toContain(n);
    for (const p of db) {
      expect(
        p.files.some((f) => tree.get(f)?.kind !== 'dir'),
        `${p.name} has a file`,
      ).toBe(true);
      for (const f of p.files) expect(exists(tree, f), `${p.name}: ${f}`).toBe(true);
    }
    expect(db.find((p) => p.name === 'libc6')?.sliced).toBe(true);
  }, 600_000);

  it('refuses a slimmed image that fails a probe, naming the missing path and the --keep that fixes it', async () => {
    const out = join(work, 'broken');
    const failed = await pareAsync(['slim', src, `oci:${out}:a`, '--probe', SHELL_PROBE]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/the slimmed image fails probe/);
    expect(failed.stderr).toContain('/usr/bin/sh: add --keep /usr/bin/sh');
    expect(failed.stderr).toMatch(/nothing was written/);
    expect(failed.stdout).toBe('');
    expect(
      exists(
        await imageToTree(await imageAt(src.replace(/^oci:/, '').replace(/:base$/, ''), 'base')),
        '/bin/sh',
      ),
    ).toBe(true);
    await expect(readLocal({ transport: 'oci', path: out, tag: 'a' })).rejects.toThrow();

    // The --keep it names is the fix.
    const fixed = await pareAsync([
      'slim',
      src,
      `oci:${out}:a`,
      '--probe',
      SHELL_PROBE,
      '--keep',
      '/usr/bin/sh',
    ]);
    expect(fixed.stderr).not.toMatch(/^pare: error/m);
    expect(fixed.code).toBe(0);
  }, 600_000);

  it('a curl image: the file:// probe passes under pare run, ≤ 30% of the input', async () => {
    const umoci = peers.paths.umoci!;
    execFileSync(umoci, [
      'config',
      '--image',
      `${layout}:base`,
      '--tag',
      'curl',
      '--config.entrypoint=curl',
      '--clear=config.cmd',
    ]);
    const out = join(work, 'curl');
    const r = await pareAsync([
      'slim',
      `oci:${layout}:curl`,
      `oci:${out}:a`,
      '--probe',
      'curl -sI file:///etc/os-release',
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/^pare: error/m);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.compressed / report.source.compressed).toBeLessThanOrEqual(0.3);
    const run = await pareAsync([
      'run',
      '--cache-dir',
      join(work, 'rootfs'),
      `oci:${out}:a`,
      '--',
      '-sI',
      'file:///etc/os-release',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Content-Length: \d+/m);
    const tree = await imageToTree(await imageAt(out, 'a'));
    for (const gone of ['/bin/sh', '/usr/bin/python3', '/usr/bin/apt', '/usr/bin/dpkg'])
      expect(exists(tree, gone), gone).toBe(false);
    const names = (await readDpkgDatabase(tree)).map((p) => p.name);
    expect(names).toContain('curl');
    expect(names).not.toContain('python3.11-minimal');
  }, 600_000);

  it('a static program on a full Debian base: the result holds the program and little else (≤ 2 MiB)', async () => {
    const umoci = peers.paths.umoci!;
    const c = join(work, 'hello.c');
    writeFileSync(c, '#include <stdio.h>\nint main(void) { puts("static hello"); return 0; }\n');
    execFileSync(peers.paths.gcc!, ['-static', '-O2', '-o', join(work, 'hello'), c]);
    execFileSync(umoci, [
      'insert',
      '--image',
      `${layout}:base`,
      '--tag',
      'static',
      join(work, 'hello'),
      '/usr/local/bin/hello',
    ]);
    execFileSync(umoci, [
      'config',
      '--image',
      `${layout}:static`,
      '--config.entrypoint=/usr/local/bin/hello',
      '--clear=config.cmd',
    ]);
    const out = join(work, 'static');
    const r = await pareAsync([
      'slim',
      `oci:${layout}:static`,
      `oci:${out}:a`,
      '--probe',
      '/usr/local/bin/hello',
      '--json',
    ]);
    expect(r.stderr).not.toMatch(/^pare: error/m);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.compressed).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(report.bytes.after).toBeLessThanOrEqual(2 * 1024 * 1024);
    const run = await pareAsync(['run', '--cache-dir', join(work, 'rootfs'), `oci:${out}:a`]);
    expect(run.stdout).toBe('static hello\n');
    const tree = await imageToTree(await imageAt(out, 'a'));
    expect(exists(tree, '/usr/local/bin/hello')).toBe(true);
    for (const gone of ['/usr/bin/python3', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/bin/sh'])
      expect(exists(tree, gone), gone).toBe(false);
  }, 600_000);
});

describe('pare slim: bad options are exit 2 before any image is read', () => {
  it('a probe with shell syntax, a bad --probe-timeout', async () => {
    const pipe = await pareAsync([
      'slim',
      'oci:/nonexistent',
      'oci:/nonexistent-out',
      '--probe',
      'python3 -V | cat',
    ]);
    expect(pipe.code).toBe(2);
    expect(pipe.stderr).toMatch(
      /cannot use --probe "python3 -V \| cat": "\|" means something to a shell at column 12/,
    );
    const t = await pareAsync(['slim', 'oci:/nonexistent', 'oci:/nonexistent-out', '--probe-timeout', '0']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--probe-timeout "0": want whole seconds, at least 1/);
  });
});
