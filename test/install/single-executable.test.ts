import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  keyVerifier,
  loadPublicKey,
  parseBundle,
  verifyMessageBundle,
  writeKeyFiles,
} from '../../src/attest/index.ts';
import { type CliResult, collectChild, NODE, pareAsync } from '../helpers/cli.ts';
import {
  createFakeArchive,
  type FakeArchive,
  staticProgramPackages,
} from '../helpers/fake-debian-archive.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * The single executable (`npm run package`, issue 15 §1) on a PATH that holds no Node (and no xz, so the embedded
 * liblzma addon decompresses the .debs): it answers, builds examples/hello, and builds from a signed Debian archive
 * (served here on 127.0.0.1), each to the digest the clone builds.
 */

const ROOT = resolve(import.meta.dirname, '../..');
const PASSWORD = 'release-test';
const cosign = peersOrSkip('cosign');
let work: string;
let exe: string;
let archive: FakeArchive;
let emptyPath: string;

/** Runs the executable with nothing on PATH, in `cwd`, without blocking (the fake archive is served by this process). */
function runExe(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return collectChild(spawn(exe, args, { cwd, env: { PATH: emptyPath, HOME: work, NO_COLOR: '1', ...env } }));
}

describe('the single executable', () => {
  beforeAll(async () => {
    work = tempDir('pare-sea-');
    emptyPath = join(work, 'empty-bin');
    mkdirSync(emptyPath);
    // a cosign-format key pair, as `pare key generate` writes it, to sign the executable with
    const keys = await writeKeyFiles(PASSWORD, { prefix: join(work, 'release') });
    execFileSync(NODE, [join(ROOT, 'scripts/package.ts'), '--sign', keys.privatePath, join(work, 'dist')], {
      stdio: 'pipe',
      env: { ...process.env, COSIGN_PASSWORD: PASSWORD },
    });
    exe = join(work, 'dist', `pare-linux-${arch()}`);
    archive = await createFakeArchive({
      architectures: ['amd64', 'arm64'],
      suites: [
        {
          name: 'bookworm',
          packages: [
            {
              name: 'base-files',
              version: '12.4',
              files: { 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'etc/debian_version': '12.4\n' },
            },
            ...staticProgramPackages('app', '1.0'),
          ],
        },
      ],
    });
  }, 600_000);
  afterAll(async () => archive?.close());

  it('is one file with its SHA-256 beside it, the same when built again elsewhere', () => {
    const [hex, name] = readFileSync(`${exe}.sha256`, 'utf8').trim().split(/\s+/);
    expect(name).toBe(`pare-linux-${arch()}`);
    expect(hex).toBe(createHash('sha256').update(readFileSync(exe)).digest('hex'));
    execFileSync(NODE, [join(ROOT, 'scripts/package.ts'), join(work, 'again')], { stdio: 'pipe' });
    expect(readFileSync(join(work, 'again', `pare-linux-${arch()}.sha256`), 'utf8')).toBe(
      readFileSync(`${exe}.sha256`, 'utf8'),
    );
  }, 600_000);

  it('is signed: cosign verify-blob and pare accept the bundle, and refuse it for another file', async (ctx) => {
    const bundle = parseBundle(readFileSync(`${exe}.sigstore.json`));
    const verifier = keyVerifier(loadPublicKey(readFileSync(join(work, 'release.pub'))));
    expect(() => verifyMessageBundle(bundle, readFileSync(exe), verifier)).not.toThrow();
    const other = join(work, 'other');
    writeFileSync(other, 'not pare\n');
    expect(() => verifyMessageBundle(bundle, readFileSync(other), verifier)).toThrow(
      expect.objectContaining({ code: 'ATTEST_SUBJECT_MISMATCH' }),
    );
    if (cosign.skip) return ctx.skip();
    const verify = (file: string) =>
      spawnSync(
        cosign.paths.cosign!,
        [
          'verify-blob',
          '--key',
          join(work, 'release.pub'),
          '--bundle',
          `${exe}.sigstore.json`,
          '--insecure-ignore-tlog=true',
          file,
        ],
        { encoding: 'utf8' },
      );
    const ok = verify(exe);
    expect(ok.status, ok.stderr).toBe(0);
    expect(verify(other).status).not.toBe(0);
  });

  it('runs with no node on PATH', async () => {
    expect(existsSync(join(emptyPath, 'node'))).toBe(false);
    const version = await runExe(['--version'], work);
    expect(version).toEqual({
      code: 0,
      stdout: `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`,
      stderr: '',
    });
    const help = await runExe(['--help'], work);
    expect(help.code).toBe(0);
    for (const c of ['build', 'inspect', 'push', 'sign', 'run', 'audit'])
      expect(help.stdout).toContain(`  ${c} `);
  });

  it('builds examples/hello to the digest the clone builds', async () => {
    const dir = join(work, 'hello');
    cpSync(join(ROOT, 'examples/hello'), join(dir, 'examples/hello'), { recursive: true });
    const sea = await runExe(['build', 'examples/hello', '-o', 'out-sea'], dir);
    expect(sea.code, sea.stderr).toBe(0);
    const clone = await pareAsync(['build', 'examples/hello', '-o', 'out-clone'], { cwd: dir });
    expect(clone.code, clone.stderr).toBe(0);
    expect(sea.stdout.split('\n')[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(sea.stdout.split('\n')[0]).toBe(clone.stdout.split('\n')[0]);
    const inspect = await runExe(['inspect', `oci:${join(dir, 'out-sea')}:hello`], dir);
    expect(inspect.stdout).toContain(sea.stdout.split('\n')[0]);
    // The vulnerable-function data (src/vex/data/*.json) is bundled: --explain names the entry it found.
    writeFileSync(join(dir, 'findings.txt'), 'CVE-2022-37434 zlib1g\n');
    const vex = await runExe(
      [
        'vex',
        `oci:${join(dir, 'out-sea')}:hello`,
        '--report',
        'findings.txt',
        '--explain',
        'CVE-2022-37434',
        '-o',
        'vex.json',
      ],
      dir,
    );
    expect(vex.code, vex.stderr).toBe(0);
    expect(vex.stdout).toContain('zlib.json: CVE-2022-37434 (function-level');
    expect(JSON.parse(readFileSync(join(dir, 'vex.json'), 'utf8'))['@context']).toBe(
      'https://openvex.dev/ns/v0.2.0',
    );
  });

  it('builds from a signed Debian archive (signature, fetch, xz through the embedded liblzma) like the clone', async () => {
    const yaml = [
      'name: debs',
      'platforms: [linux/amd64, linux/arm64]',
      'debian:',
      '  suite: bookworm',
      '  updates: false',
      `  mirror: ${archive.url}`,
      '  security: false',
      `  keyring: ${archive.keyringAsc}`,
      'packages: [base-files, app]',
      'image:',
      '  entrypoint: [/usr/bin/app]',
      '# note: the fake packages hold no real programs, so slicing would keep almost nothing',
      'slice: none',
      '',
    ].join('\n');
    const digests: string[] = [];
    for (const who of ['sea', 'clone'] as const) {
      const p = join(work, `debs-${who}`);
      mkdirSync(p);
      writeFileSync(join(p, 'pare.yaml'), yaml);
      const env = { XDG_CACHE_HOME: join(work, `cache-${who}`) };
      const r =
        who === 'sea'
          ? await runExe(['build', p, '-o', join(p, 'out')], work, env)
          : await pareAsync(['build', p, '-o', join(p, 'out')], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('pare.lock: 4 packages (written)');
      digests.push(r.stdout.split('\n')[0]!);
    }
    expect(digests[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(digests[0]).toBe(digests[1]);
    // The executable caches the packages layers under the keys the clone uses: its embedded code fingerprint is the
    // one the clone computes from the same sources (src/build/fingerprint.ts), so caching is on and never stale.
    const layers = (who: string) => readdirSync(join(work, `cache-${who}`, 'pare', 'layers')).sort();
    expect(layers('sea')).toHaveLength(2);
    expect(layers('sea')).toEqual(layers('clone'));
  });
});
