import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, pare, pareAsync } from '../helpers/cli.ts';
import { peersOrSkip, runPeer } from '../helpers/peers.ts';
import { type ReferrersApiProxy, startReferrersApi } from '../helpers/referrers-api.ts';
import { type RegistryServer, startRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

// Signatures travel with the image (issue 15 §3): push, pull and copy carry the referrers (cosign v3 bundles,
// attestations) and cosign v2 tags between layouts and the real distribution registry (which has no referrers API:
// the sha256-<hex> tag index is read and written), and the real cosign v3 / v2 verify the copies offline.
const p = peersOrSkip('registry', 'cosign', 'cosign2');

describe.skipIf(p.skip)('pare copy/push/pull carry signatures', () => {
  let reg: RegistryServer;
  let dir: string;
  let layout: string;
  let index = '';
  let amd64 = '';
  const env = { COSIGN_PASSWORD: 'carry-pw', SOURCE_DATE_EPOCH: '1700000000' };
  const run = (args: readonly string[]): CliResult => pare(args, { cwd: dir, env });
  const must = (args: readonly string[]): CliResult => {
    const r = run(args);
    if (r.code !== 0) throw new Error(`pare ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
    return r;
  };
  const verifyFlags = ['--insecure-ignore-tlog=true', '--allow-insecure-registry'];
  const cosign = (args: string[]) => runPeer(p.paths.cosign!, args, { cwd: dir, env });
  const cosign2 = (args: string[]) => runPeer(p.paths.cosign2!, args, { cwd: dir, env });

  beforeAll(async () => {
    reg = await startRegistry();
    dir = tempDir('pare-carry-');
    layout = join(dir, 'layout');
    must(['build', '-q', resolve('examples/hello'), '-o', layout]);
    index = must(['digest', `oci:${layout}:hello`]).stdout.trim();
    amd64 = must(['digest', '--platform', 'linux/amd64', `oci:${layout}:hello`]).stdout.trim();
    must(['key', 'generate', '--output-key-prefix', 'carry']);
    // The index signed the cosign v3 way and the v2 way, and attested; the amd64 image signed on its own.
    must(['sign', '--key', 'carry.key', `oci:${layout}:hello`]);
    must(['sign', '--legacy', '--key', 'carry.key', `oci:${layout}:hello`]);
    must(['sign', '--key', 'carry.key', `oci:${layout}:${amd64}`]);
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
  });

  it('push copies the layout referrers; cosign v3 and v2 verify the pushed index', () => {
    const r = must(['push', '-q', `oci:${layout}:hello`, `${reg.host}/app:1`]);
    expect(r.stdout.trim()).toBe(index);
    expect(r.stderr).toMatch(/copied 3 referrer\(s\) to .*: sha256:[0-9a-f]{12}, sha256-[0-9a-f]{64}\.sig, /);
    cosign(['verify', '--key', 'carry.pub', ...verifyFlags, `${reg.host}/app@${index}`]);
    cosign2(['verify', '--key', 'carry.pub', ...verifyFlags, `${reg.host}/app@${index}`]);
    cosign(['verify', '--key', 'carry.pub', ...verifyFlags, `${reg.host}/app@${amd64}`]);
    expect(must(['verify', '--key', 'carry.pub', `${reg.host}/app:1`]).stderr).toContain(
      'verified 2 signature(s)',
    );
  });

  it('--no-referrers pushes the image alone, and verify finds nothing', () => {
    must(['push', '-q', '--no-referrers', `oci:${layout}:hello`, `${reg.host}/bare:1`]);
    const v = run(['verify', '--key', 'carry.pub', `${reg.host}/bare:1`]);
    expect(v.code).toBe(1);
    expect(v.stderr).toContain('no signatures');
  });

  it('copy registry → registry carries what cosign v3 signed and attested there', () => {
    cosign(['signing-config', 'create', '--out', 'sc.json']);
    const amd = `${reg.host}/app@${amd64}`;
    cosign([
      'sign',
      '--key',
      'carry.key',
      '--signing-config',
      'sc.json',
      '--allow-insecure-registry',
      '-y',
      amd,
    ]);
    must(['copy', '-q', '--all', `docker://${reg.host}/app:1`, `docker://${reg.host}/mirror:1`]);
    cosign(['verify', '--key', 'carry.pub', ...verifyFlags, `${reg.host}/mirror@${index}`]);
    cosign(['verify', '--key', 'carry.pub', ...verifyFlags, `${reg.host}/mirror@${amd64}`]);
    // pare's signature and cosign's on the amd64 image both arrived
    expect(must(['verify', '--key', 'carry.pub', `${reg.host}/mirror@${amd64}`]).stderr).toContain(
      'verified 2 signature(s)',
    );
  });

  it('pull narrows the index, says so, says the index signatures stay behind, and carries the image ones', () => {
    const to = join(dir, 'pulled');
    const r = must(['pull', '-q', '--platform', 'linux/amd64', `${reg.host}/app:1`, `${to}:amd64`]);
    expect(r.stdout.trim()).toBe(amd64);
    expect(r.stderr).toContain('is an index of 2 manifests; using linux/amd64');
    expect(r.stderr).toMatch(/referrer\(s\) of the index sha256:[0-9a-f]{64} not copied/);
    const v = must(['verify', '--key', 'carry.pub', `oci:${to}:amd64`]);
    expect(v.stderr).toContain(`verified 2 signature(s) on oci:${to}@${amd64}`);
  });

  it('shows per-blob progress on stderr when forced to plain, and nothing of it on stdout', () => {
    const to = join(dir, 'pulled-progress');
    const args = ['--platform', 'linux/amd64', `${reg.host}/app:1`, `${to}:amd64`];
    const r = must(['pull', '--progress=plain', ...args]);
    expect(r.stdout).toBe(`${amd64}\n`);
    const layers = r.stderr.match(/^pare: [0-9a-f]{12}: pulling \(\d[^)]*\)$/gm) ?? [];
    expect(layers.length).toBeGreaterThan(0);
    for (const l of layers) expect(r.stderr).toContain(`${l.slice(6, 18)}: pulled (`);
    // Not a terminal and not forced: no progress; -q wins over PARE_PROGRESS.
    expect(must(['pull', ...args]).stderr).not.toMatch(/[0-9a-f]{12}: (pulling|pulled) \(/);
    expect(run(['pull', '-q', ...args]).stderr).not.toMatch(/[0-9a-f]{12}: (pulling|pulled) \(/);
    const q = pare(['pull', '-q', ...args], { cwd: dir, env: { ...env, PARE_PROGRESS: 'plain' } });
    expect(q.stderr).not.toMatch(/[0-9a-f]{12}: (pulling|pulled) \(/);
    const pushed = pare(['push', `oci:${to}:amd64`, `${reg.host}/app:1`], {
      cwd: dir,
      env: { ...env, PARE_PROGRESS: 'plain' },
    });
    expect(pushed.stdout).toBe(`${amd64}\n`);
    expect(pushed.stderr).toMatch(/^pare: [0-9a-f]{12}: already there \(/m);
  });

  it('copy into an archive says the referrers cannot come along', () => {
    const r = must([
      'copy',
      '-q',
      '--platform',
      'linux/amd64',
      `oci:${layout}:hello`,
      `oci-archive:${dir}/a.tar`,
    ]);
    expect(r.stderr).toContain('not copied: oci-archive:');
    expect(r.stderr).toContain('is an archive, which holds none');
  });

  describe('through the OCI 1.1 referrers API', () => {
    // The proxy runs in this process: pare and cosign must run without blocking the event loop.
    let api: ReferrersApiProxy;
    const runAsync = (args: readonly string[]) => pareAsync(args, { cwd: dir, env });
    const cosignAsync = (args: string[]) => promisify(execFile)(p.paths.cosign!, args, { cwd: dir, env });
    beforeAll(async () => {
      api = await startReferrersApi(reg.host);
    });
    afterAll(async () => {
      await api?.stop();
    });

    it('push attaches through the API (no sha256-<hex> index tag), cosign v3 verifies, copy back reads the API', async () => {
      const up = await runAsync(['push', '-q', `oci:${layout}:hello`, `${api.host}/viaapi:1`]);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stderr).toContain('copied 3 referrer(s)');
      const tagIndexPut = api.log.filter(
        (e) => e.method === 'PUT' && /\/manifests\/sha256-[0-9a-f]{64}$/.test(e.url),
      );
      expect(tagIndexPut).toEqual([]);
      await cosignAsync(['verify', '--key', 'carry.pub', ...verifyFlags, `${api.host}/viaapi@${index}`]);
      const back = await runAsync([
        'copy',
        '-q',
        '--all',
        `docker://${api.host}/viaapi:1`,
        `oci:${dir}/fromapi:x`,
      ]);
      expect(back.code, back.stderr).toBe(0);
      expect(
        api.log.some(
          (e) => e.method === 'GET' && e.url === `/v2/viaapi/referrers/${index}` && e.status === 200,
        ),
      ).toBe(true);
      const v = await runAsync(['verify', '--key', 'carry.pub', `oci:${dir}/fromapi:x`]);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stderr).toContain('verified 2 signature(s)');
    });
  });
});
