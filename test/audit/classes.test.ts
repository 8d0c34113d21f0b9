/**
 * Classification of real images, through `pare audit --json`: an mmdebstrap `--variant=apt` image (full), Debian's
 * busybox-static with its applet links (slim), pare's examples/static (scratch), examples/python (distroless) and
 * the same python image with a stray /usr/bin/sh layered on top (slim: distroless #1178). mmdebstrap + umoci make
 * the images pare did not build; the Debian mirror comes from the host's apt sources (no host name here). Prints the
 * table src/audit/README.md shows. Skipped with a printed reason without mmdebstrap/umoci or a mirror (fails under
 * PARE_REQUIRE_PEERS=1).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, symlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readAptSources, resolveSuites } from '../../src/debian/index.ts';
import { bufferContent, fileEntry, TreeBuilder } from '../../src/fstree/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { buildImage, layerFromTree, selectImage } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersOrSkip, peersRequired } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

const peers = peersOrSkip('mmdebstrap', 'umoci');
const suite = (await readAptSources().catch(() => []))
  .filter((e) => e.enabled && e.types.includes('deb'))
  .flatMap((e) => e.suites)
  .find((s) => /^[a-z]+$/.test(s));
let skip = peers.skip;
if (!skip && (!suite || process.arch !== 'x64')) {
  const reason = !suite
    ? 'no Debian release suite in the host apt sources'
    : 'the examples build linux/amd64';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
  skip = true;
}

interface Row {
  image: string;
  class: string;
  evidence: string[];
}

describe.skipIf(skip)('classification of real images', { timeout: 1_200_000 }, () => {
  const dir = tempDir('pare-classes-');
  const rows: Row[] = [];

  /** mmdebstrap ARGS into a umoci bundle, repacked as an OCI layout; returns `oci:LAYOUT:t`. */
  async function mmdebstrap(name: string, args: string[], after?: (rootfs: string) => void): Promise<string> {
    const [m] = await resolveSuites({ suite: suite!, security: false, updates: false });
    const p = join(dir, name);
    const run = (cmd: string, a: string[]) => execFileSync(cmd, a, { stdio: ['ignore', 'ignore', 'pipe'] });
    run('umoci', ['init', '--layout', `${p}/layout`]);
    run('umoci', ['new', '--image', `${p}/layout:t`]);
    run('umoci', ['unpack', '--image', `${p}/layout:t`, `${p}/bundle`]);
    run('mmdebstrap', ['-q', ...args, suite!, `${p}/bundle/rootfs`, `deb ${m!.baseUrl} ${suite} main`]);
    after?.(`${p}/bundle/rootfs`);
    run('umoci', ['repack', '--image', `${p}/layout:t`, `${p}/bundle`]);
    return `oci:${p}/layout:t`;
  }

  async function classify(image: string, ref: string): Promise<Row> {
    const r = await pare(['audit', '--platform', 'linux/amd64', '--json', '--no-imports', ref]);
    expect([0, 1], r.stderr).toContain(r.code);
    const c = JSON.parse(r.stdout).classification;
    const row = { image, class: c.class, evidence: c.evidence };
    rows.push(row);
    return row;
  }

  it('mmdebstrap --variant=apt is full', async () => {
    const row = await classify('mmdebstrap --variant=apt', await mmdebstrap('apt', ['--variant=apt']));
    expect(row.class).toBe('full');
    expect(row.evidence.join('\n')).toMatch(/^shell: .*\/usr\/bin\/bash/m);
    expect(row.evidence.join('\n')).toMatch(/^package manager: .*\/usr\/bin\/apt/m);
  });

  it('busybox-static with its applet links is slim', async () => {
    const ref = await mmdebstrap('busybox', ['--variant=extract', '--include=busybox-static'], (root) => {
      const bb = join(root, 'bin/busybox');
      const applets = execFileSync(bb, ['--list'], { encoding: 'utf8' }).trim().split('\n');
      for (const a of applets) if (a !== 'busybox') symlinkSync('busybox', join(root, 'bin', a));
    });
    const row = await classify('busybox-static + applet links', ref);
    expect(row.class).toBe('slim');
    expect(row.evidence).toContain('no package manager');
  });

  it('examples/static is scratch', async () => {
    const p = join(dir, 'static');
    cpSync(resolve('examples/static'), p, { recursive: true });
    const b = await pare(['build', p, '-o', join(dir, 'static-out'), '-q']);
    expect(b.code, b.stderr).toBe(0);
    const row = await classify('examples/static', `oci:${join(dir, 'static-out')}:static`);
    expect(row.class).toBe('scratch');
  });

  it('examples/python is distroless; with a stray /usr/bin/sh on top it is slim', async () => {
    const p = join(dir, 'python');
    cpSync(resolve('examples/python'), p, { recursive: true });
    const out = join(dir, 'python-out');
    const b = await pare(['build', p, '-o', out, '-q']);
    expect(b.code, b.stderr).toBe(0);
    const row = await classify('examples/python', `oci:${out}:python`);
    expect(row.class, row.evidence.join('\n')).toBe('distroless');

    // The same image plus one layer holding a real dash as /usr/bin/sh (it needs only libc, which python has).
    const base = await selectImage(await (await OciLayout.open(out)).readArtifact('python'), {
      os: 'linux',
      architecture: 'amd64',
    });
    const cfg = await base.config();
    const stray = new TreeBuilder()
      .put('/usr/bin/sh', fileEntry(bufferContent(readFileSync('/usr/bin/dash')), { mode: 0o755 }))
      .build();
    const image = buildImage({
      layers: [...(await base.layers()), layerFromTree(stray)],
      platform: { os: 'linux', architecture: 'amd64' },
      ...(cfg.created ? { created: cfg.created } : {}),
      ...(cfg.config ? { config: cfg.config } : {}),
    });
    const layout = join(dir, 'python-sh');
    await (await OciLayout.create(layout)).writeArtifact({ kind: 'image', image }, { tag: 't' });
    const sh = await classify('examples/python + stray /usr/bin/sh', `oci:${layout}:t`);
    expect(sh.class).toBe('slim');
    expect(sh.evidence[0]).toBe('shell: /usr/bin/sh');

    console.log(
      ['| image | class | evidence |', '| --- | --- | --- |']
        .concat(rows.map((r) => `| ${r.image} | \`${r.class}\` | ${r.evidence.join('; ')} |`))
        .join('\n'),
    );
  });
});
