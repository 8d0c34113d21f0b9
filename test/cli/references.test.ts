import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type CliResult, pare, pareAsync } from '../helpers/cli.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { type RegistryServer, startRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

// Every image-reading command against every way of naming an image (issue 15 §2): one reference model, so a command
// either works on a transport or refuses it with a message that says why and what to do. The images are
// examples/hello built by pare (an index of linux/amd64 + linux/arm64), copied by pare into each transport; the
// registry is the real distribution registry on loopback.
const p = peersOrSkip('registry');

type Transport = 'oci' | 'bare path' | 'oci-archive' | 'docker-archive' | 'docker://' | 'HOST/REPO:TAG';
const TRANSPORTS: readonly Transport[] = [
  'oci',
  'bare path',
  'oci-archive',
  'docker-archive',
  'docker://',
  'HOST/REPO:TAG',
];
const ARCHIVES: readonly Transport[] = ['oci-archive', 'docker-archive'];
const REGISTRY: readonly Transport[] = ['docker://', 'HOST/REPO:TAG'];

interface Want {
  readonly code: number;
  /** Substring (or pattern) of stdout. */
  readonly out?: string | RegExp;
  /** Substring of stderr. */
  readonly err?: string;
}

describe.skipIf(p.skip)('every command × every transport', () => {
  let reg: RegistryServer;
  let dir: string;
  let layout: string;
  const digests = { index: '', amd64: '', arm64: '' };
  const env = { COSIGN_PASSWORD: 'refs-pw', SOURCE_DATE_EPOCH: '1700000000' };
  const run = (args: readonly string[]): CliResult => pare(args, { cwd: dir, env });

  const ref = (t: Transport): string => {
    switch (t) {
      case 'oci':
        return `oci:${layout}:hello`;
      case 'bare path':
        return layout;
      case 'oci-archive':
        return `oci-archive:${join(dir, 'hello.tar')}`;
      case 'docker-archive':
        return `docker-archive:${join(dir, 'hello-amd64.tar')}`;
      case 'docker://':
        return `docker://${reg.host}/hello:1`;
      case 'HOST/REPO:TAG':
        return `${reg.host}/hello:1`;
    }
  };
  const archiveRefusal: Want = { code: 2, err: 'an archive holds no signatures or referrers' };
  const slug = (t: Transport) => t.replace(/[^a-z]+/gi, '-').toLowerCase();

  /** command → [args for a reference, expectation per transport]. Run in this order (sign before verify). */
  const COMMANDS: readonly [string, (r: string, t: Transport) => string[], (t: Transport) => Want][] = [
    [
      'inspect',
      (r) => ['inspect', r],
      (t) => ({ code: 0, out: t === 'docker-archive' ? 'Labels:' : 'Manifests:' }),
    ],
    [
      'inspect --platform',
      (r) => ['inspect', '--platform', 'linux/amd64', r],
      () => ({ code: 0, out: /Labels:\n\s+org\.opencontainers\.image\.source\s+examples\/hello/ }),
    ],
    [
      'digest',
      (r) => ['digest', r],
      (t) => ({ code: 0, out: t === 'docker-archive' ? digests.amd64 : digests.index }),
    ],
    [
      'digest --platform',
      (r) => ['digest', '--platform', 'linux/amd64', r],
      () => ({ code: 0, out: digests.amd64 }),
    ],
    [
      'digest --platform (another)',
      (r) => ['digest', '--platform', 'linux/arm64', r],
      (t) =>
        t === 'docker-archive'
          ? { code: 2, err: 'it is a single linux/amd64 image' }
          : { code: 0, out: digests.arm64, err: 'is an index of 2 manifests; using linux/arm64' },
    ],
    [
      'tags',
      (r) => ['tags', r],
      // An archive lists what it selects by: an OCI archive its ref names, docker-archive: its RepoTags.
      (t) => ({
        code: 0,
        out: REGISTRY.includes(t)
          ? '1\n'
          : t === 'oci-archive'
            ? 'latest\n'
            : t === 'docker-archive'
              ? 'pare/image:latest\n'
              : 'hello\n',
      }),
    ],
    [
      'audit',
      (r) => ['audit', '--platform', 'linux/amd64', r],
      () => ({ code: 0, out: /\/usr\/bin\/dash\n[\s\S]*\d+ ELF files, 0 unreadable/ }),
    ],
    [
      'sbom',
      (r) => ['sbom', '--platform', 'linux/amd64', r],
      () => ({ code: 0, out: '"fileName": "/app/hello.sh"' }),
    ],
    [
      'why-kept',
      (r) => ['why-kept', '--shell', '/app/hello.sh', r, '--platform', 'linux/amd64'],
      () => ({ code: 0, out: 'root (entrypoint "/app/hello.sh")' }),
    ],
    [
      'run --print',
      (r) => ['run', '--print', 'docker', '--platform', 'linux/amd64', r],
      (t) =>
        REGISTRY.includes(t)
          ? { code: 0, out: `${reg.host}/hello:1@${digests.amd64}` }
          : { code: 2, err: 'it is a local image, which docker, podman and Kubernetes cannot pull' },
    ],
    [
      'copy',
      (r, t) => ['copy', '--platform', 'linux/amd64', r, `oci:${join(dir, `copy-${slug(t)}`)}:c`],
      (t) => ({
        code: 0,
        out: digests.amd64,
        ...(t === 'docker-archive' ? {} : { err: 'is an index of 2 manifests; using linux/amd64' }),
      }),
    ],
    [
      'push',
      (r, t) => ['push', '-q', r, `${reg.host}/pushed-${slug(t)}:1`],
      (t) =>
        REGISTRY.includes(t)
          ? { code: 2, err: 'it is a registry reference; use pare copy' }
          : { code: 0, out: t === 'docker-archive' ? digests.amd64 : digests.index },
    ],
    [
      'pull',
      (r, t) => ['pull', '-q', '--platform', 'linux/amd64', r, join(dir, `pulled-${slug(t)}`)],
      (t) =>
        REGISTRY.includes(t)
          ? { code: 0, out: digests.amd64 }
          : { code: 2, err: 'it is a local image; pull takes a registry image' },
    ],
    [
      'sign',
      (r) => ['sign', '--key', 'refs.key', r],
      (t) => (ARCHIVES.includes(t) ? archiveRefusal : { code: 0, err: 'signed ' }),
    ],
    [
      'attest',
      (r) => ['attest', '--key', 'refs.key', '--type', 'openvex', '--predicate', 'vex.json', r],
      (t) => (ARCHIVES.includes(t) ? archiveRefusal : { code: 0, err: 'attested ' }),
    ],
    [
      'verify',
      (r) => ['verify', '--key', 'refs.pub', r],
      (t) => (ARCHIVES.includes(t) ? archiveRefusal : { code: 0, err: `on ` }),
    ],
    [
      'verify-attestation',
      (r) => ['verify-attestation', '--key', 'refs.pub', '--type', 'openvex', r],
      (t) =>
        ARCHIVES.includes(t) ? archiveRefusal : { code: 0, out: '"predicateType":"https://openvex.dev/ns' },
    ],
    [
      'referrers',
      (r) => ['referrers', r],
      (t) =>
        ARCHIVES.includes(t)
          ? archiveRefusal
          : { code: 0, out: 'application/vnd.dev.sigstore.bundle.v0.3+json' },
    ],
  ];

  beforeAll(async () => {
    reg = await startRegistry();
    dir = tempDir('pare-refs-');
    layout = join(dir, 'layout');
    const must = (args: readonly string[]) => {
      const r = run(args);
      if (r.code !== 0) throw new Error(`pare ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      return r.stdout.trim();
    };
    must(['build', '-q', resolve('examples/hello'), '-o', layout]);
    digests.index = must(['digest', `oci:${layout}:hello`]);
    digests.amd64 = must(['digest', '--platform', 'linux/amd64', `oci:${layout}:hello`]);
    digests.arm64 = must(['digest', '--platform', 'linux/arm64', `oci:${layout}:hello`]);
    must(['copy', '--all', `oci:${layout}:hello`, ref('oci-archive')]);
    must(['copy', '--platform', 'linux/amd64', `oci:${layout}:hello`, ref('docker-archive')]);
    must(['push', '-q', `oci:${layout}:hello`, ref('HOST/REPO:TAG')]);
    must(['key', 'generate', '--output-key-prefix', 'refs']);
    const vex = {
      '@context': 'https://openvex.dev/ns/v0.2.0',
      '@id': 'urn:pare:test',
      author: 'test',
      timestamp: '2023-11-14T22:13:20Z',
      version: 1,
      statements: [],
    };
    writeFileSync(join(dir, 'vex.json'), JSON.stringify(vex));
  }, 120_000);
  afterAll(async () => {
    await reg?.stop();
  });

  for (const [name, args, want] of COMMANDS) {
    describe(`pare ${name}`, () => {
      // Commands that write the same store from two transports (oci and the bare path name one layout; docker:// and
      // HOST/REPO one repository) run one after the other; the rest run side by side.
      const each = name === 'sign' || name === 'attest' ? it.for(TRANSPORTS) : it.concurrent.for(TRANSPORTS);
      each('on %s', async (t, { expect }) => {
        const w = want(t);
        const r = await pareAsync(args(ref(t), t), { cwd: dir, env });
        const show = `pare ${args(ref(t), t).join(' ')}\nexit ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr}`;
        expect(r.code, show).toBe(w.code);
        if (w.out instanceof RegExp) expect(r.stdout, show).toMatch(w.out);
        else if (w.out !== undefined) expect(r.stdout, show).toContain(w.out);
        if (w.err !== undefined) expect(r.stderr, show).toContain(w.err);
        if (w.code !== 0) expect(r.stderr, show).not.toContain('internal error');
      });
    });
  }
});
