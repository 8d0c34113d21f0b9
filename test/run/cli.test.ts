import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { bufferContent, dirEntry, fileEntry, hostFileContent, Tree } from '../../src/fstree/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import { buildImage, hostPlatform, layerFromTree } from '../../src/oci/index.ts';
import { entryRunnableBy } from '../helpers/installed.ts';
import { isRoot, peersOrSkip } from '../helpers/peers.ts';
import { compileProbe } from '../helpers/probe.ts';

/**
 * `pare run` end to end on a real OCI image layout: two layers (the second whites out a file of the first), a config
 * with User, Entrypoint, Cmd, Env, WorkingDir, ExposedPorts and Volumes, run through the command's CLI wiring in a
 * child process of the real `bin/pare.js` (so signals reach it the way they reach any `pare`).
 */

const peers = peersOrSkip('bwrap', 'gcc');
const rootless = isRoot() ? peersOrSkip('setpriv') : { skip: true, paths: {} as Record<string, string> };
const NODE = process.execPath;
const PARE = join(import.meta.dirname, '../../bin/pare.js');

let work: string;
let layout: string;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function pare(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  prefix: string[] = [],
  entry: readonly [node: string, script: string] = [NODE, PARE],
): { child: ChildProcess; done: Promise<Result> } {
  const [cmd, ...pre] = prefix.length > 0 ? prefix : [entry[0]];
  const child = spawn(cmd!, [...pre, ...(prefix.length > 0 ? [entry[0]] : []), entry[1], ...args], {
    env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const done = new Promise<Result>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done };
}

function pareAs(
  prefix: string[],
  args: string[],
  env: NodeJS.ProcessEnv,
  entry?: readonly [node: string, script: string],
): Promise<Result> {
  return pare(args, env, prefix, entry).done;
}

const PASSWD = 'root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000:app:/home/app:/sbin/nologin\n';

describe.skipIf(peers.skip)('pare run (CLI, OCI layout)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'pare-run-cli-'));
    const probe = compileProbe(peers.paths.gcc!, join(work, 'probe'));
    const base = Tree.from([
      ['/bin/probe', fileEntry(await hostFileContent(probe), { mode: 0o755 })],
      ['/etc/passwd', fileEntry(bufferContent(PASSWD))],
      ['/etc/group', fileEntry(bufferContent('root:x:0:\napp:x:1000:\n'))],
      ['/etc/removed', fileEntry(bufferContent('from the base layer\n'))],
      ['/etc/motd', fileEntry(bufferContent('base\n'))],
      ['/home/app', dirEntry({ uid: 1000, gid: 1000 })],
      // note: a read-only directory with content and a setuid file: a rootless unpack must still write below the
      // directory (its mode is applied last) and must drop the setuid bit
      ['/usr/lib/app/data', fileEntry(bufferContent('lib data\n'))],
      ['/usr/lib/app', dirEntry({ mode: 0o555 })],
      ['/usr/bin/su', fileEntry(bufferContent('#!/bin/false\n'), { mode: 0o4755 })],
    ]);
    const top = Tree.from([
      // note: a whiteout deletes /etc/removed from the layer below; /etc/motd is replaced
      ['/etc/.wh.removed', fileEntry(bufferContent(''))],
      ['/etc/motd', fileEntry(bufferContent('top\n'))],
    ]);
    const image = buildImage({
      layers: [layerFromTree(base), layerFromTree(top)],
      platform: hostPlatform(),
      config: {
        User: 'app',
        Entrypoint: ['/bin/probe'],
        Cmd: [
          'id',
          'cwd',
          'env',
          'GREETING',
          'read',
          '/etc/motd',
          'read',
          '/etc/removed',
          'status',
          'exit',
          '5',
        ],
        Env: ['GREETING=hello', 'PATH=/bin'],
        WorkingDir: '/home/app',
        ExposedPorts: { '8080/tcp': {}, '9090/udp': {} },
        Volumes: { '/var/lib/app': {} },
      },
    });
    layout = join(work, 'layout');
    await (await OciLayout.create(layout)).writeArtifact({ kind: 'image', image }, { tag: 'v1' });
  });

  afterAll(() => {
    if (work) {
      execFileSync('chmod', ['-R', 'u+w', work]);
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('runs the image config: user, workdir, env, layers with whiteouts, exit code', async () => {
    const r = await pare(['run', `oci:${layout}:v1`]).done;
    expect(r.stdout.trim().split('\n')).toEqual([
      'id: uid=1000 gid=1000',
      'cwd: /home/app',
      'env GREETING: hello',
      'read /etc/motd: top',
      'read /etc/removed: ENOENT',
      'status: CapEff: 0000000000000000',
      'status: NoNewPrivs: 1',
      'status: Seccomp: 2',
    ]);
    expect(r.code).toBe(5);
  });

  it('takes the command after -- and -e, --user, -v from the command line', async () => {
    const r = await pare([
      'run',
      '-e',
      'GREETING=hi',
      '--user',
      '4242',
      '-v',
      `${work}:/mnt:ro`,
      `oci:${layout}:v1`,
      '--',
      'id',
      'env',
      'GREETING',
      'write',
      '/mnt/x',
      'keyctl',
    ]).done;
    expect(r.stdout.trim().split('\n')).toEqual([
      'id: uid=4242 gid=4242',
      'env GREETING: hi',
      'write /mnt/x: EROFS',
      'keyctl: EPERM',
    ]);
    expect(r.code).toBe(0);
  });

  it('forwards SIGTERM sent to pare to the command and passes its exit code on', async () => {
    const p = pare(['run', `oci:${layout}:v1`, '--', 'wait']);
    await new Promise<void>((resolve) => {
      p.child.stdout!.on('data', (c: Buffer) => {
        if (c.toString().includes('ready')) resolve();
      });
    });
    p.child.kill('SIGTERM');
    const r = await p.done;
    expect(r.stdout).toContain('signal: 15');
    expect(r.code).toBe(115);
  });

  it('unpacks once into the cache by manifest digest', async () => {
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    const hex = index.manifests[0]!.digest.split(':')[1]!;
    expect(readdirSync(join(work, 'cache', 'pare', 'rootfs'))).toEqual([hex]);
  });

  it.each([
    [['-v', 'named:/data'], 'named volumes are not supported'],
    [['--user', 'a:b:c'], 'want user[:group]'],
    [['--tmp-size', 'huge'], 'cannot use size "huge"'],
    [['-w', 'relative'], 'it must be absolute'],
  ])('reports bad flags %j as usage errors (exit 2)', async (flags, why) => {
    const r = await pare(['run', ...flags, `oci:${layout}:v1`]).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(why);
  });

  it('opens registry references through the one reference opener', async () => {
    const r = await pare(['run', '--retries', '0', 'docker://registry.invalid/x:1']).done;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot reach registry at "registry.invalid"');
  });

  it('says how to fix a missing bwrap', async () => {
    const r = await pare(['run', `oci:${layout}:v1`], { PARE_BWRAP: join(work, 'no-such-bwrap') }).done;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pare: error: cannot run sandbox: bubblewrap');
    expect(r.stderr).toContain('install it (Debian/Ubuntu: apt-get install bubblewrap');
  });

  describe.skipIf(rootless.skip)('when pare itself runs as an unprivileged user', () => {
    it('unpacks into that user’s cache and runs in a user namespace with the same hardening', async () => {
      const home = join(work, 'nobody-home');
      mkdirSync(home, { mode: 0o755 });
      chownSync(home, 65534, 65534);
      chmodSync(work, 0o755);
      chmodSync(layout, 0o755);
      const as = [rootless.paths.setpriv!, '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
      const r = await pareAs(
        as,
        [
          'run',
          `oci:${layout}:v1`,
          '--',
          'id',
          'read',
          '/usr/lib/app/data',
          'status',
          'write',
          '/x',
          'unshare',
          'net',
        ],
        { HOME: home, XDG_CACHE_HOME: '' },
        entryRunnableBy(as, join(work, 'for-nobody')),
      );
      expect(r.stderr).toContain('dropped setuid/setgid bits for the rootless run: /usr/bin/su');
      expect(r.stdout.trim().split('\n')).toEqual([
        'id: uid=1000 gid=1000',
        'read /usr/lib/app/data: lib data',
        'status: CapEff: 0000000000000000',
        'status: NoNewPrivs: 1',
        'status: Seccomp: 2',
        'write /x: EROFS',
        'unshare: EPERM',
        'net: lo',
      ]);
      expect(r.code).toBe(0);
      const cache = join(home, '.cache', 'pare', 'rootfs');
      const [dir] = readdirSync(cache);
      expect(statSync(join(cache, dir!)).uid).toBe(65534);
      expect(statSync(join(cache, dir!, 'usr/lib/app')).mode & 0o777).toBe(0o555);
    }, 600_000); // from a clone under a 0700 home, it packs and installs pare first
  });

  describe('--print', () => {
    it('prints hardened docker flags derived from the image', async () => {
      const r = await pare([
        'run',
        '--print',
        'docker',
        '--image',
        'registry.invalid/hello:1',
        `oci:${layout}:v1`,
      ]).done;
      expect(r.code).toBe(0);
      const flags = r.stdout.replaceAll(' \\\n  ', ' ').trim();
      const digest = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')).manifests[0].digest;
      expect(flags).toBe(
        `docker run --rm --read-only --cap-drop=ALL --security-opt=no-new-privileges --user 1000:1000 --tmpfs /tmp:rw,noexec,nosuid,nodev,size=64m --publish 127.0.0.1:8080:8080/tcp --publish 127.0.0.1:9090:9090/udp registry.invalid/hello:1@${digest}`,
      );
    });

    it('refuses --image without --print (exit 2) instead of ignoring it', async () => {
      const r = await pare(['run', '--image', 'registry.invalid/hello:1', `oci:${layout}:v1`, '--', 'id'])
        .done;
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('cannot use --image without --print');
    });

    it('refuses to print a local reference no other runtime can pull (exit 2), saying to push and give --image', async () => {
      const r = await pare(['run', '--print', 'podman', `oci:${layout}:v1`]).done;
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `it is a local image, which docker, podman and Kubernetes cannot pull; push it (pare push oci:${layout}:v1 REGISTRY/REPO:TAG) and give --image REGISTRY/REPO:TAG`,
      );
    });

    it('prints a Pod that validates against the Pod schema and the restricted profile', async () => {
      const r = await pare([
        'run',
        '--print',
        'kubernetes',
        '--ref',
        'registry.invalid/hello:1',
        '-e',
        'MODE=prod',
        `oci:${layout}:v1`,
        '--',
        'serve',
      ]).done;
      expect(r.code).toBe(0);
      const pod = parseYaml(r.stdout) as Record<string, unknown>;
      const ajv = new Ajv({ allErrors: true, strict: true });
      const schema = JSON.parse(
        readFileSync(join(import.meta.dirname, '../fixtures/run/pod.schema.json'), 'utf8'),
      );
      const restricted = JSON.parse(
        readFileSync(join(import.meta.dirname, '../fixtures/run/pod-restricted.schema.json'), 'utf8'),
      );
      const valid = ajv.compile(schema);
      expect(valid(pod), JSON.stringify(valid.errors)).toBe(true);
      const hardened = ajv.compile(restricted);
      expect(hardened(pod), JSON.stringify(hardened.errors)).toBe(true);
      expect(pod).toMatchObject({
        metadata: { name: 'hello' },
        spec: {
          securityContext: { runAsUser: 1000, runAsGroup: 1000, runAsNonRoot: true },
          containers: [
            {
              image: expect.stringMatching(/^registry\.invalid\/hello:1@sha256:[0-9a-f]{64}$/),
              args: ['serve'],
              env: [{ name: 'MODE', value: 'prod' }],
              ports: [
                { containerPort: 8080, protocol: 'TCP' },
                { containerPort: 9090, protocol: 'UDP' },
              ],
              volumeMounts: [
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'vol-var-lib-app', mountPath: '/var/lib/app' },
              ],
            },
          ],
        },
      });
    });
  });
});
