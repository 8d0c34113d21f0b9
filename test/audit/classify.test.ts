/**
 * Classification on built trees (crafted ELF files, no network), and `pare audit` on an OCI layout built with
 * buildImage: lint findings with layer evidence, the class, --accept, the ignore file and the exit codes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditTree, classifyImage, type LintConfig } from '../../src/audit/index.ts';
import { craftElf } from '../../src/elf/index.ts';
import { bufferContent, fileEntry, symlinkEntry, type Tree, TreeBuilder } from '../../src/fstree/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { buildImage, layerFromTree } from '../../src/oci/index.ts';
import { pare } from '../helpers/cli.ts';

const bytes = (b: Uint8Array, mode = 0o755) => fileEntry(bufferContent(b), { mode });
const text = (s: string, mode = 0o644) => bytes(new TextEncoder().encode(s), mode);
const LD = '/lib64/ld-linux-x86-64.so.2';
const staticExe = craftElf({ machine: 62, type: 'EXEC' });
const dynExe = craftElf({ machine: 62, interp: LD, needed: ['libc.so.6'], debug: true, imports: ['puts'] });
const libc = craftElf({ machine: 62, type: 'DYN', soname: 'libc.so.6', exports: ['puts'] });
const ldso = craftElf({ machine: 62, type: 'DYN', soname: 'ld-linux-x86-64.so.2' });

/** A distroless-like runtime: a dynamic /app/server, libc and ld.so, accounts and data files. */
function runtime(): TreeBuilder {
  return new TreeBuilder()
    .put('/etc/passwd', text('root:x:0:0::/root:/sbin/nologin\n'))
    .put('/etc/os-release', text('ID=debian\n'))
    .put('/usr/lib/x86_64-linux-gnu/libc.so.6', bytes(libc, 0o644))
    .put('/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', bytes(ldso))
    .put('/lib64', symlinkEntry('usr/lib64'))
    .put('/usr/lib64/ld-linux-x86-64.so.2', symlinkEntry('../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'))
    .put('/lib', symlinkEntry('usr/lib'))
    .put('/app/server', bytes(dynExe));
}
const APP: LintConfig = { Entrypoint: ['/app/server'], User: '65532' };

async function classify(tree: Tree, config: LintConfig | undefined) {
  const report = await auditTree(tree, { packages: false, scanCode: false });
  return classifyImage(tree, config, report.files);
}

describe('classification', () => {
  it('full: a shell and a package manager', async () => {
    const t = runtime().put('/usr/bin/dash', bytes(dynExe)).put('/usr/bin/sh', symlinkEntry('dash'));
    t.put('/usr/bin/apt-get', bytes(dynExe)).put('/bin', symlinkEntry('usr/bin'));
    const c = await classify(t.build(), APP);
    expect(c.class).toBe('full');
    expect(c.shells).toEqual(['/usr/bin/dash', '/usr/bin/sh']);
    expect(c.packageManagers).toEqual(['/usr/bin/apt-get']);
  });

  it('slim: busybox and its applet links, no package manager', async () => {
    const t = new TreeBuilder().put('/bin/busybox', bytes(staticExe));
    for (const a of ['sh', 'ls', 'wget']) t.put(`/bin/${a}`, symlinkEntry('busybox'));
    // Busybox's dpkg applet unpacks a local .deb; it is not a package manager.
    t.put('/bin/dpkg', symlinkEntry('busybox'));
    const c = await classify(t.build(), { Cmd: ['sh'] });
    expect(c.class).toBe('slim');
    expect(c.packageManagers).toEqual([]);
    expect(c.evidence).toEqual(['shell: /bin/busybox, /bin/sh', 'no package manager']);
  });

  it('distroless: only the dynamic entrypoint, its complete closure and data', async () => {
    const c = await classify(runtime().build(), APP);
    expect(c.class, c.evidence.join('\n')).toBe('distroless');
    expect(c.entrypoint).toBe('/app/server');
    expect(c.otherPrograms).toEqual([]);
  });

  it('not distroless with a stray /bin/sh (distroless #1178): slim', async () => {
    const c = await classify(runtime().put('/usr/bin/sh', bytes(dynExe)).build(), APP);
    expect(c.class).toBe('slim');
    expect(c.shells).toEqual(['/usr/bin/sh']);
  });

  it('shell-less: no shell, but another program or a script besides the entrypoint', async () => {
    const c = await classify(runtime().put('/usr/bin/tool', bytes(dynExe)).build(), APP);
    expect(c.class).toBe('shell-less');
    expect(c.otherPrograms).toEqual(['/usr/bin/tool']);
    // A script runs under its interpreter: a program when that is another program of the image.
    const s = await classify(
      runtime()
        .put('/usr/bin/tool', bytes(dynExe))
        .put('/usr/local/bin/run.py', text('#!/usr/bin/env tool -x\n', 0o755))
        .put('/usr/bin/env', bytes(dynExe))
        .build(),
      APP,
    );
    expect(s.otherPrograms).toEqual(['/usr/bin/env', '/usr/bin/tool', '/usr/local/bin/run.py']);
  });

  it("distroless: scripts of the entrypoint's own interpreter, or of one the image lacks, are not programs", async () => {
    const t = runtime()
      .put('/usr/lib/python3.11/base64.py', text('#! /usr/bin/python3\n', 0o755))
      .put('/usr/bin/python3', symlinkEntry('/app/server'))
      .put('/usr/share/x/tool.pl', text('#!/usr/bin/perl\n', 0o755))
      .build();
    const c = await classify(t, APP);
    expect(c.class, c.evidence.join('\n')).toBe('distroless');
    // The same script, not executable, is data either way.
    expect((await classify(runtime().put('/x.py', text('#!/usr/bin/python3\n')).build(), APP)).class).toBe(
      'distroless',
    );
  });

  it('binary-less: a runtime with no program (a base image) or an entrypoint whose closure is incomplete', async () => {
    expect((await classify(runtime().build().without('/app/server'), undefined)).class).toBe('binary-less');
    // With its program but no entrypoint naming it, the program is just another program.
    expect((await classify(runtime().build(), undefined)).class).toBe('shell-less');
    const gone = runtime().build().without('/usr/lib/x86_64-linux-gnu/libc.so.6');
    const c = await classify(gone.with('/usr/lib/x86_64-linux-gnu/libm.so.6', bytes(libc, 0o644)), APP);
    expect(c.class).toBe('binary-less');
  });

  it('scratch: a static binary and data files, no shared objects', async () => {
    const t = new TreeBuilder()
      .put('/etc/ssl/certs/ca-certificates.crt', text('-----BEGIN CERTIFICATE-----\n'))
      .put('/server', bytes(staticExe))
      .build();
    expect((await classify(t, { Entrypoint: ['/server'] })).class).toBe('scratch');
    // Data only (pare's examples/static has no ELF file at all).
    expect((await classify(t.without('/server'), undefined)).class).toBe('scratch');
  });
});

describe('pare audit on an image: lint and classification', () => {
  const work = mkdtempSync(join(tmpdir(), 'pare-lint-'));
  const created = '2024-01-01T00:00:00Z';

  async function layout(name: string, layers: Tree[], config: LintConfig): Promise<string> {
    const image = buildImage({
      layers: layers.map((t) => layerFromTree(t)),
      platform: { os: 'linux', architecture: 'amd64' },
      created,
      config,
    });
    const dir = join(work, name);
    await (await OciLayout.create(dir)).writeArtifact({ kind: 'image', image }, { tag: 'v1' });
    return dir;
  }

  it('names the layer that added a finding; a fatal finding exits 1 until accepted', async () => {
    const first = runtime().build();
    const second = new TreeBuilder()
      .put('/app/id_rsa', text('-----BEGIN RSA PRIVATE KEY-----\n', 0o600))
      .build();
    const dir = await layout('secret', [first, second], APP);
    const j = pare(['audit', `oci:${dir}:v1`, '--json']);
    expect(j.code, j.stderr).toBe(1);
    const report = JSON.parse(j.stdout);
    const secret = report.lint.findings.find((f: { name: string }) => f.name === 'secret-file');
    const manifest = JSON.parse(pare(['inspect', '--raw', `oci:${dir}:v1`]).stdout);
    const layers = manifest.layers.map((l: { digest: string }) => l.digest);
    expect(secret).toMatchObject({ id: 'CIS-DI-0010', severity: 'fatal', evidence: { path: '/app/id_rsa' } });
    expect(layers).toHaveLength(2);
    expect(secret.evidence.layer).toBe(layers[1]);
    expect(report.lint.summary).toMatchObject({ fatal: 1, passed: false });
    expect(report.classification.class).toBe('distroless');

    const t = pare(['audit', `oci:${dir}:v1`, '--accept', 'secret-file:/app/*']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(
      /^accepted +CIS-DI-0010 +secret-file +\/app\/id_rsa is named like a credential file/m,
    );
    expect(t.stdout).toContain('CLASS distroless');

    writeFileSync(join(work, 'ignore'), '# reviewed\nCIS-DI-0010:/app/id_rsa\n');
    expect(pare(['audit', `oci:${dir}:v1`, '--ignore-file', join(work, 'ignore')]).code).toBe(0);
    writeFileSync(join(work, 'bad-ignore'), 'secret-file\nno-such-rule\n');
    const bad = pare(['audit', `oci:${dir}:v1`, '--ignore-file', join(work, 'bad-ignore')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${join(work, 'bad-ignore')}:2:1: unknown lint rule "no-such-rule"`);
    // ./.pareignore is read by default.
    writeFileSync(join(work, '.pareignore'), 'secret-file\n');
    expect(pare(['audit', `oci:${dir}:v1`], { cwd: work }).code).toBe(0);
  });

  it('a clean image exits 0; --no-lint leaves lint and classification out', async () => {
    const dir = await layout('clean', [runtime().build()], APP);
    const r = pare(['audit', `oci:${dir}:v1`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    // Info findings only: it is not signed, and its entries keep mtime 0 while it says it was created in 2024.
    expect(report.lint.findings.map((f: { name: string }) => f.name)).toEqual([
      'unsigned',
      'no-healthcheck',
      'mtime-not-epoch',
    ]);
    const n = JSON.parse(pare(['audit', `oci:${dir}:v1`, '--json', '--no-lint']).stdout);
    expect(n.lint).toBeUndefined();
    expect(n.classification).toBeUndefined();
  });
});
