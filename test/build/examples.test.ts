import { cpSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditTree } from '../../src/audit/index.ts';
import { readAptSources } from '../../src/debian/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { imageToTree, selectImage } from '../../src/oci/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { peersOrSkip, peersRequired } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * The shipped examples, built from the real Debian archive the host's apt sources name (nothing hard-coded), twice
 * with a different TZ and umask (same digest), checked for a complete ELF closure after slicing, and run hardened.
 */
const sources = await readAptSources().catch(() => []);
const mirror = sources.some((s) => s.types.includes('deb'));
if (!mirror) {
  const reason = 'no Debian mirror in the host apt sources: the example builds need one';
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${reason}`);
  console.warn(`[skip] ${reason}`);
}
const bwrap = peersOrSkip('bwrap');

describe.skipIf(!mirror)('examples built from the Debian archive', () => {
  const dir = tempDir();

  async function buildTwice(name: string) {
    const p = join(dir, name);
    mkdirSync(p, { recursive: true });
    cpSync(resolve('examples', name), p, { recursive: true });
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
    return { layout: join(dir, `${name}-a`), artifact, digest: a.stdout.trim(), log: a.stderr };
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
    }
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
  });
});
