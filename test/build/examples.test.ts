import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { auditTree } from '../../src/audit/index.ts';
import { readAptSources } from '../../src/debian/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { imageToTree, selectImage } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersOrSkip, peersRequired } from '../helpers/peers.ts';
import { compileProbe } from '../helpers/probe.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * The shipped examples, built from the real Debian archive the host's apt sources name (nothing hard-coded), twice
 * with a different TZ and umask (same digest), checked for a complete ELF closure after slicing, and run hardened
 * under `pare run`: the apps as they are, the bases (static, cc) with a program of the test's on top.
 */
const sources = await readAptSources().catch(() => []);
const mirror = sources.some((s) => s.types.includes('deb'));
if (!mirror) {
  const reason = 'no Debian mirror in the host apt sources: the example builds need one';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
}
const bwrap = peersOrSkip('bwrap');
const gcc = peersOrSkip('gcc');
// The C app links against OpenSSL: its headers come from libssl-dev (in .ci/run's apt-get line).
const openssl = !gcc.skip && existsSync('/usr/include/openssl/ssl.h');
if (!openssl) {
  const reason =
    'no OpenSSL headers (/usr/include/openssl/ssl.h): examples/c-app needs libssl-dev to compile';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
}

// Each example builds cold twice and runs: minutes on a busy 2-core machine, not the default minute.
describe.skipIf(!mirror)('examples built from the Debian archive', { timeout: 600_000 }, () => {
  const dir = tempDir();

  async function buildTwice(name: string, prepare?: (project: string) => void) {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true });
    cpSync(resolve('examples', name), p, { recursive: true });
    prepare?.(p);
    const a = await pare(['build', p, '-o', join(dir, `${name}-a`)], {
      env: { TZ: 'Pacific/Kiritimati' },
      umask: '077',
    });
    expect(a.stderr).toContain('built oci:');
    expect(a.code).toBe(0);
    const b = await pare(['build', p, '-o', join(dir, `${name}-b`), '--locked'], {
      env: { TZ: 'UTC', LC_ALL: 'C' },
      umask: '022',
    });
    expect(b.code).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    const artifact = await (await OciLayout.open(join(dir, `${name}-a`))).readArtifact(name);
    return { project: p, layout: join(dir, `${name}-a`), artifact, digest: a.stdout.trim(), log: a.stderr };
  }

  async function closureComplete(artifact: Awaited<ReturnType<typeof buildTwice>>['artifact'], arch: string) {
    const tree = await imageToTree(await selectImage(artifact, { os: 'linux', architecture: arch }));
    const report = await auditTree(tree, { imports: false } as never);
    const missing = report.files.flatMap((f) => f.missing.map((m) => `${f.path} needs ${m}`));
    expect(missing).toEqual([]);
    expect(report.summary.missingLibraries).toBe(0);
    return tree;
  }

  it('python: sliced to at most half, complete closure, runs ssl/json/sqlite3/zlib/hashlib and tz as uid 65532', async () => {
    const { layout, artifact, log } = await buildTwice('python');
    const kept = /total .*?(\d+(?:\.\d+)?)% kept/.exec(log);
    expect(Number(kept?.[1])).toBeLessThanOrEqual(50);
    const tree = await closureComplete(artifact, 'amd64');
    expect(tree.get('/bin/sh')).toBeUndefined();
    expect(tree.get('/usr/bin/dpkg')).toBeUndefined();
    if (bwrap.skip) return;
    const code = [
      'import ssl, json, sqlite3, zlib, hashlib, os, datetime, zoneinfo',
      'print(ssl.OPENSSL_VERSION)',
      'print("uid", os.getuid())',
      'print("certs", ssl.create_default_context().cert_store_stats()["x509_ca"])',
      'print(datetime.datetime(2024, 1, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")).isoformat())',
      'open("/should-fail", "w")',
    ].join('; ');
    const r = await pare(['run', `oci:${layout}:python`, '--', '-c', code]);
    expect(r.stdout).toMatch(/^OpenSSL 3\./m);
    expect(r.stdout).toContain('uid 65532');
    expect(Number(/certs (\d+)/.exec(r.stdout)?.[1])).toBeGreaterThan(100);
    expect(r.stdout).toContain('2024-01-01T12:00:00+01:00');
    expect(r.stderr).toMatch(/Read-only file system|Permission denied/);
    expect(r.code).toBe(1);
  });

  it('node: complete closure, require("https") works as uid 65532', async () => {
    const { layout, artifact } = await buildTwice('node');
    await closureComplete(artifact, 'amd64');
    if (bwrap.skip) return;
    const r = await pare([
      'run',
      `oci:${layout}:node`,
      '--',
      '-e',
      'require("https"); require("tls"); console.log("ok", process.getuid())',
    ]);
    expect(r.stdout.trim()).toBe('ok 65532');
    expect(r.code).toBe(0);
  });

  it('static: amd64 + arm64 index with CA bundle, zoneinfo, os-release and dpkg status, no shell', async () => {
    const { artifact, log } = await buildTwice('static');
    expect(artifact.kind).toBe('index');
    // distroless static is about 2 MiB; the summary prints "total  N → M  X MiB → Y MiB"
    const after = /^total .*→ .*→ ([\d.]+) (KiB|MiB)/m.exec(log);
    expect(after && Number(after[1]) * (after[2] === 'MiB' ? 1024 : 1)).toBeLessThanOrEqual(2048);
    for (const arch of ['amd64', 'arm64']) {
      const tree = await imageToTree(await selectImage(artifact, { os: 'linux', architecture: arch }));
      const bundle = new TextDecoder().decode(await tree.readFile('/etc/ssl/certs/ca-certificates.crt'));
      expect(bundle.match(/BEGIN CERTIFICATE/g)?.length ?? 0).toBeGreaterThan(100);
      expect(tree.file('/usr/share/zoneinfo/Europe/Paris')).toBeDefined();
      expect(new TextDecoder().decode(await tree.readFile('/etc/os-release'))).toContain('ID=debian');
      expect(tree.get('/var/lib/dpkg/status.d/tzdata')?.kind).toBe('file');
      expect(tree.get('/bin/sh')).toBeUndefined();
      expect(tree.get('/tmp')?.mode).toBe(0o1777);
      expect(tree.get('/bin')).toMatchObject({ kind: 'symlink', target: 'usr/bin' });
    }
    if (bwrap.skip || gcc.skip) return;
    // A base runs a program of the user's: the static probe, as an app on top of the example.
    const layout = await onTop('static', (p) => compileProbe(gcc.paths.gcc!, join(p, 'probe')));
    const r = await pare([
      'run',
      `oci:${layout}:static`,
      '--',
      'id',
      'read',
      '/etc/os-release',
      'read',
      '/etc/passwd',
    ]);
    expect(r.stdout.split('\n')).toEqual([
      'id: uid=65532 gid=65532',
      'read /etc/os-release: PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
      'read /etc/passwd: root:x:0:0:root:/root:/sbin/nologin',
      '',
    ]);
    expect(r.code).toBe(0);
  });

  it('cc: the runtime libraries of both platforms resolve inside the image, arm64 in a foreign-arch tree (no ldd there)', async () => {
    const { artifact } = await buildTwice('cc');
    for (const [arch, triplet, machine] of [
      ['amd64', 'x86_64-linux-gnu', 'x86_64'],
      ['arm64', 'aarch64-linux-gnu', 'aarch64'],
    ] as const) {
      const tree = await closureComplete(artifact, arch);
      const report = await auditTree(tree, { imports: false } as never);
      const ssl = report.files.find((f) => f.path === `/usr/lib/${triplet}/libssl.so.3`);
      expect(ssl?.machine).toBe(machine);
      expect(ssl?.libraries?.map((l) => l.name).sort()).toEqual(
        expect.arrayContaining(['libc.so.6', 'libcrypto.so.3']),
      );
      expect(tree.get('/bin/sh')).toBeUndefined();
    }
    if (bwrap.skip || gcc.skip) return;
    // A dynamically linked C program of the user's runs on it: loader and libc come from the image.
    const layout = await onTop('cc', (p) =>
      compileProbe(gcc.paths.gcc!, join(p, 'probe'), { dynamic: true }),
    );
    const r = await pare(['run', `oci:${layout}:cc`, '--', 'id', 'exit', '7']);
    expect(r.stdout).toBe('id: uid=65532 gid=65532\n');
    expect(r.code).toBe(7);
  });

  /**
   * Builds the example copied by buildTwice with a program of the test's at /usr/local/bin/probe as its entrypoint,
   * for the host's platform only (the program is a host binary), and returns the layout.
   */
  async function onTop(name: string, compile: (project: string) => void): Promise<string> {
    const p = join(dir, name);
    compile(p);
    const project = parseYaml(readFileSync(join(p, 'pare.yaml'), 'utf8'));
    project.platforms = ['linux/amd64'];
    project.files = [...(project.files ?? []), { src: 'probe', dest: '/usr/local/bin/probe', mode: '0755' }];
    project.image = { ...(project.image ?? {}), entrypoint: ['/usr/local/bin/probe'] };
    writeFileSync(join(p, 'pare.yaml'), stringify(project));
    const out = join(dir, `${name}-probe`);
    const r = await pare(['build', p, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    return out;
  }

  it('hello: a #!/bin/sh app on dash (shell: true) runs, and --entrypoint /bin/sh works', async () => {
    const { layout, artifact } = await buildTwice('hello');
    for (const arch of ['amd64', 'arm64']) {
      const tree = await closureComplete(artifact, arch);
      for (const d of ['bin', 'sbin', 'lib'])
        expect(tree.get(`/${d}`)).toMatchObject({ kind: 'symlink', target: `usr/${d}` });
      expect(tree.get('/usr/bin/sh')).toMatchObject({ kind: 'symlink', target: 'dash' });
      expect(tree.get('/usr/bin/dash')?.kind).toBe('file');
    }
    if (bwrap.skip) return;
    const r = await pare(['run', `oci:${layout}:hello`]);
    expect([r.code, r.stdout]).toEqual([0, 'hello from pare\n']);
    const sh = await pare([
      'run',
      '--entrypoint',
      '/bin/sh',
      `oci:${layout}:hello`,
      '--',
      '-c',
      'read m < /etc/motd; IFS=: read u rest < /etc/passwd; echo "$0: $m, first user $u"; exit 4',
    ]);
    expect([sh.code, sh.stdout]).toEqual([4, '/bin/sh: built by pare, first user root\n']);
  });

  it.skipIf(!openssl)(
    'c-app: an OpenSSL program under /usr/local/bin keeps < 60% of its packages, and runs',
    async () => {
      const { layout, artifact, log } = await buildTwice('c-app', (p) =>
        execFileSync(gcc.paths.gcc!, [
          '-O2',
          '-o',
          join(p, 'digest'),
          join(p, 'digest.c'),
          '-lssl',
          '-lcrypto',
        ]),
      );
      const kept = /^total .*?(\d+(?:\.\d+)?)% kept/m.exec(log);
      expect(Number(kept?.[1])).toBeLessThan(60);
      const tree = await closureComplete(artifact, 'amd64');
      expect(tree.get('/usr/local/bin/digest')?.mode).toBe(0o755);
      expect(tree.get('/usr/bin/openssl')).toBeUndefined();
      expect(tree.get('/usr/bin/perl')).toBeUndefined();
      if (bwrap.skip) return;
      const r = await pare(['run', `oci:${layout}:c-app`, '--', 'abc']);
      expect(r.stdout).toMatch(/^OpenSSL 3\./);
      expect(r.stdout).toContain(
        'sha256(abc) = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
      );
      expect(Number(/trusted CAs: (\d+)/.exec(r.stdout)?.[1])).toBeGreaterThan(100);
      expect(r.code).toBe(0);
    },
  );

  it('python-app: its http.server answers an HTTP request inside pare run', async () => {
    const { layout, artifact } = await buildTwice('python-app');
    for (const arch of ['amd64', 'arm64']) {
      const tree = await closureComplete(artifact, arch);
      expect(tree.file('/app/greeting.py')).toBeDefined();
    }
    if (bwrap.skip) return;
    // No port publishing: one python process starts the image's own command (the server) and asks it over loopback.
    const client = [
      'import subprocess, sys, time, urllib.request',
      'srv = subprocess.Popen([sys.executable, "/app/server.py", "8080"], stdout=subprocess.PIPE, text=True)',
      'print(srv.stdout.readline().strip())',
      'for _ in range(300):',
      '    try:',
      '        r = urllib.request.urlopen("http://127.0.0.1:8080/hello?name=<you>", timeout=10); break',
      '    except OSError:',
      '        time.sleep(0.1)',
      'print(r.status, r.headers["Content-Type"], r.read().decode().strip())',
      'srv.terminate(); srv.wait()',
    ].join('\n');
    const r = await pare(['run', `oci:${layout}:python-app`, '--', '-c', client]);
    expect(r.stdout.split('\n')).toEqual([
      'listening on 8080',
      '200 text/plain; charset=utf-8 hello, &lt;you&gt;, from pare',
      '',
    ]);
    expect(r.stderr).toContain('GET /hello?name=<you>');
    expect(r.code).toBe(0);
  });

  it('node-app: a script with a node_modules dependency runs as uid 65532', async () => {
    const { layout, artifact } = await buildTwice('node-app');
    const tree = await closureComplete(artifact, 'amd64');
    expect(tree.file('/app/node_modules/slugify-lite/index.js')).toBeDefined();
    if (bwrap.skip) return;
    const r = await pare(['run', `oci:${layout}:node-app`, '--', 'Crème', 'Brûlée!']);
    expect(r.stdout).toMatch(/^creme-brulee\nuid 65532, node v\d+\.\d+\.\d+, \d+ root certificates\n$/);
    expect(r.code).toBe(0);
  });
});
