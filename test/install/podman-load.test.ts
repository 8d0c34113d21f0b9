import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pare } from '../helpers/cli.ts';
import { isRoot, peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * A real client loads what pare writes (issue 15 §1): `podman load -i` of the `--tar` output of `pare build` and of
 * `pare copy` into oci-archive: and docker-archive:, each into a podman storage of its own under a temp directory
 * (--root/--runroot, vfs driver: the system storage is never touched), then `podman image inspect` shows the user,
 * entrypoint, env, ports, labels, stop signal, workdir, image id (= pare's config digest) and the digests. Both halves
 * of pare's archive are read: `podman load` takes the OCI half first; `podman pull docker-archive:` forces the docker
 * one. `podman run` cannot start here (crun cannot set RLIMIT_NOFILE in this sandbox), so only load and inspect.
 */

const ROOT = join(import.meta.dirname, '../..');
/** Returns why podman cannot run here (with a storage of its own), or undefined when it can. */
function podmanCannotRun(podman: string): string | undefined {
  const root = mkdtempSync('/tmp/pare-podman-');
  try {
    const r = spawnSync(podman, ['--root', join(root, 's'), '--runroot', join(root, 'r'), 'info'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return r.status === 0 ? undefined : `podman info exits ${r.status}: ${r.stderr.trim().split('\n').pop()}`;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const found = isRoot() ? peersOrSkip('podman') : { skip: true, paths: {} as Record<string, string> };
if (!isRoot()) console.warn('[skip] podman load: rootful podman (with its own --root) needs root');
const cannot = found.skip ? undefined : podmanCannotRun(found.paths.podman!);
if (cannot && process.env.PARE_REQUIRE_PEERS === '1') throw new Error(`PARE_REQUIRE_PEERS=1 but ${cannot}`);
if (cannot) console.warn(`[skip] podman load: ${cannot}`);
const peers = { ...found, skip: found.skip || cannot !== undefined };

describe.skipIf(peers.skip)('podman load -i of pare archives', () => {
  const dir = tempDir('pare-podman-load-');
  let n = 0;
  // podman refuses a runroot path longer than 50 characters: the run roots live directly under /tmp.
  const runroots: string[] = [];
  afterAll(() => {
    for (const r of runroots) rmSync(r, { recursive: true, force: true });
  });
  /** Returns a podman runner on a fresh storage of its own. */
  const storage = () => {
    const s = join(dir, `storage-${n++}`);
    mkdirSync(s);
    const run = mkdtempSync('/tmp/pare-podman-');
    runroots.push(run);
    return (args: string[]) => {
      const r = spawnSync(
        peers.paths.podman!,
        ['--root', s, '--runroot', run, '--storage-driver', 'vfs', ...args],
        { encoding: 'utf8', timeout: 120_000 },
      );
      if (r.status !== 0) throw new Error(`podman ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
      return r.stdout;
    };
  };
  const must = (args: string[]) => {
    const r = pare(args, { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  let index = '';
  let amd64 = '';
  let config = '';

  beforeAll(() => {
    index = must([
      'build',
      '-q',
      join(ROOT, 'examples/hello'),
      '-o',
      join(dir, 'out'),
      '--tar',
      join(dir, 'hello.tar'),
    ]);
    amd64 = must(['digest', '--platform', 'linux/amd64', `oci:${join(dir, 'out')}:hello`]);
    const m = JSON.parse(
      must(['inspect', '--raw', '--platform', 'linux/amd64', `oci:${join(dir, 'out')}:hello`]),
    );
    config = m.config.digest;
  }, 180_000);

  /** What podman understood of the image, in the form the assertions compare. */
  function inspect(podman: (a: string[]) => string, ref: string) {
    const [i] = JSON.parse(podman(['image', 'inspect', ref])) as {
      Id: string;
      Digest: string;
      RepoTags: string[];
      RepoDigests: string[];
      Architecture: string;
      Config: {
        User: string;
        Entrypoint: string[];
        Env: string[];
        ExposedPorts: Record<string, unknown>;
        Labels: Record<string, string>;
        StopSignal: string;
        WorkingDir: string;
      };
    }[];
    return i!;
  }
  function expectHello(i: ReturnType<typeof inspect>) {
    expect(`sha256:${i.Id}`).toBe(config);
    expect(i.Architecture).toBe('amd64');
    expect(i.Config.User).toBe('65532:65532');
    expect(i.Config.Entrypoint).toEqual(['/app/hello.sh']);
    expect(i.Config.Env).toContain('GREETING=hello');
    expect(Object.keys(i.Config.ExposedPorts)).toEqual(['8080/tcp']);
    expect(i.Config.Labels).toEqual({ 'org.opencontainers.image.source': 'examples/hello' });
    expect(i.Config.StopSignal).toBe('SIGTERM');
    expect(i.Config.WorkingDir).toBe('/app');
  }

  it('loads the --tar of a build (an index: the host platform is taken) with the digests pare printed', () => {
    const podman = storage();
    expect(podman(['load', '-i', join(dir, 'hello.tar')])).toContain('Loaded image: localhost/hello:hello');
    const i = inspect(podman, 'localhost/hello:hello');
    expectHello(i);
    expect(i.RepoDigests).toEqual(
      expect.arrayContaining([`localhost/hello@${index}`, `localhost/hello@${amd64}`]),
    );
  });

  it('reads the docker-archive half of the same file', () => {
    const podman = storage();
    podman(['pull', '-q', `docker-archive:${join(dir, 'hello.tar')}`]);
    expectHello(inspect(podman, 'localhost/hello:hello'));
  });

  it.each(['oci-archive', 'docker-archive'])('loads what pare copy writes to %s:', (transport) => {
    const file = join(dir, `${transport}.tar`);
    must(['copy', '--platform', 'linux/amd64', `oci:${join(dir, 'out')}:hello`, `${transport}:${file}:v1`]);
    const podman = storage();
    const out = podman(['load', '-i', file]);
    const name = /Loaded image: (\S+)/.exec(out)?.[1];
    expect(name, out).toMatch(/:v1$/);
    const i = inspect(podman, name!);
    expectHello(i);
    expect(i.RepoDigests.map((d) => d.slice(d.indexOf('@') + 1))).toContain(amd64);
  });
});
