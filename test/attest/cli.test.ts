import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pare } from '../helpers/cli.ts';
import { peersOrSkip, runPeer } from '../helpers/peers.ts';
import { type RegistryServer, startRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

// The real `pare` binary the way the README uses it: key generate, sign, attest, verify, sbom — against a loopback
// registry and an OCI layout, checked by the real cosign.
const p = peersOrSkip('cosign', 'registry', 'crane');

describe.skipIf(p.skip)('pare key/sign/attest/verify/sbom CLI', () => {
  let reg: RegistryServer;
  let dir: string;
  let ref: string;
  const env = { COSIGN_PASSWORD: 'cli-pw', SOURCE_DATE_EPOCH: '1700000000' };
  const run = (args: string[]) => pare(args, { cwd: dir, env });

  beforeAll(async () => {
    reg = await startRegistry();
    dir = tempDir('pare-cli-attest-');
    mkdirSync(join(dir, 'root', 'app'), { recursive: true });
    writeFileSync(join(dir, 'root', 'app', 'hello.txt'), 'hello\n');
    execFileSync('tar', ['-C', join(dir, 'root'), '-cf', join(dir, 'l.tar'), 'app']);
    runPeer(p.paths.crane!, ['append', '--insecure', '-f', join(dir, 'l.tar'), '-t', `${reg.host}/cli:v1`]);
    ref = `${reg.host}/cli:v1`;
    runPeer(p.paths.crane!, ['pull', '--insecure', '--format=oci', ref, join(dir, 'layout')]);
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('key generate writes a cosign-format key pair and refuses to overwrite it', () => {
    const r = run(['key', 'generate', '--output-key-prefix', 'pare']);
    expect(r.stderr).toContain('Private key written to pare.key');
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'pare.key'), 'utf8')).toMatch(
      /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----/,
    );
    const again = run(['key', 'generate', '--output-key-prefix', 'pare']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('it exists');
  });

  it('sign + attest on the registry are accepted by cosign and by pare verify', () => {
    expect(run(['sign', '--key', 'pare.key', ref]).code).toBe(0);
    writeFileSync(
      join(dir, 'build.json'),
      JSON.stringify({
        subjects: [{ name: `${reg.host}/cli`, digest: `sha256:${'0'.repeat(64)}` }],
        config: { path: 'pare.yaml', digest: `sha256:${'1'.repeat(64)}` },
        platforms: ['linux/amd64'],
        debs: [],
        releases: [],
        appFiles: [{ path: '/app/hello.txt', source: 'root/app/hello.txt', sha256: '2'.repeat(64) }],
        pareVersion: '0.1.0',
      }),
    );
    const prov = run(['provenance', '--input', 'build.json', '-o', 'prov.json']);
    expect(prov.code).toBe(0);
    expect(
      run(['attest', '--key', 'pare.key', '--type', 'slsaprovenance1', '--predicate', 'prov.json', ref]).code,
    ).toBe(0);
    runPeer(
      p.paths.cosign!,
      ['verify', '--key', 'pare.pub', '--insecure-ignore-tlog=true', '--allow-insecure-registry', ref],
      { cwd: dir },
    );
    runPeer(
      p.paths.cosign!,
      [
        'verify-attestation',
        '--key',
        'pare.pub',
        '--type',
        'slsaprovenance1',
        '--insecure-ignore-tlog=true',
        '--allow-insecure-registry',
        ref,
      ],
      { cwd: dir },
    );
    const v = run(['verify', '--key', 'pare.pub', ref]);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout.trim()).predicateType).toBe('https://sigstore.dev/cosign/sign/v1');
    const va = run(['verify-attestation', '--key', 'pare.pub', '--type', 'slsaprovenance1', ref]);
    expect(va.code).toBe(0);
    expect(JSON.parse(va.stdout.trim()).predicate.runDetails.metadata.startedOn).toBe('2023-11-14T22:13:20Z');
  });

  it('verify with another key fails with a reason per signature', () => {
    run(['key', 'generate', '--output-key-prefix', 'other']);
    const r = run(['verify', '--key', 'other.pub', ref]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('does not match the public key');
  });

  it('signs and verifies an image in an OCI layout, in both formats', () => {
    expect(run(['sign', '--key', 'pare.key', 'oci:layout']).code).toBe(0);
    expect(run(['sign', '--legacy', '--key', 'pare.key', 'oci:layout']).code).toBe(0);
    const v = run(['verify', '--key', 'pare.pub', 'oci:layout']);
    expect(v.code).toBe(0);
    expect(v.stderr).toContain('verified 2 signature(s)');
    expect(run(['verify', '--key', 'other.pub', 'oci:layout']).code).not.toBe(0);
  });

  it('sbom of the layout image is byte-identical twice and lists the app file', () => {
    const a = run(['sbom', '--format', 'spdx', 'oci:layout']);
    const b = run(['sbom', '--format', 'spdx', 'oci:layout']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(JSON.parse(a.stdout).files.map((f: { fileName: string }) => f.fileName)).toEqual([
      '/app/hello.txt',
    ]);
    const c = run(['sbom', '--format', 'cyclonedx', '-o', 'bom.cdx.json', 'oci:layout']);
    expect(c.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'bom.cdx.json'), 'utf8')).specVersion).toBe('1.6');
  });
});
