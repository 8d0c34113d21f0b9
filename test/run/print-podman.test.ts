import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pare } from '../helpers/cli.ts';
import { isRoot, peersOrSkip } from '../helpers/peers.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * `pare run --print podman` checked by podman itself: the image is copied into podman's storage with skopeo, the
 * printed `podman secret create` is run as printed and the printed `podman run` as `podman create` (this sandbox
 * cannot start a container: crun cannot set RLIMIT_NOFILE), then `podman inspect` shows what podman understood.
 */

const peers = isRoot()
  ? peersOrSkip('podman', 'skopeo')
  : { skip: true, paths: {} as Record<string, string> };
if (!isRoot()) console.warn('[skip] podman storage is shared; the podman print test runs as root only');

const ROOT = join(import.meta.dirname, '../..');
const NAME = `pare-print-${process.pid}`;

describe.skipIf(peers.skip)('pare run --print podman, read by podman', () => {
  const dir = tempDir('pare-print-podman-');
  const podman = (args: string[]) =>
    spawnSync(peers.paths.podman!, args, { encoding: 'utf8', timeout: 120_000 });

  beforeAll(() => {
    const b = pare(['build', join(ROOT, 'examples/hello'), '-o', join(dir, 'img'), '-t', 'hello'], {
      env: { SOURCE_DATE_EPOCH: '0', XDG_CACHE_HOME: join(dir, 'cache') },
    });
    expect(b.code, b.stderr).toBe(0);
    execFileSync(peers.paths.skopeo!, [
      'copy',
      '-q',
      `oci:${join(dir, 'img')}:hello`,
      `containers-storage:localhost/${NAME}:1`,
    ]);
  }, 180_000);
  afterAll(() => {
    if (peers.skip) return;
    podman(['rm', '-f', NAME]);
    podman(['secret', 'rm', `${NAME}-token`]);
    podman(['rmi', '-f', `localhost/${NAME}:1`]);
  });

  it('creates the secret and a container with the hardening, the ports, the secret and the pinned image', () => {
    writeFileSync(join(dir, 'token'), 'tok\n');
    const r = pare(
      [
        'run',
        '--print',
        'podman',
        '--image',
        `localhost/${NAME}:1`,
        '--secret',
        `${NAME}-token=token`,
        `oci:${join(dir, 'img')}:hello`,
      ],
      { cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    const [create, ...run] = r.stdout.trim().split('\n');
    expect(create).toBe(`podman secret create ${NAME}-token ${join(dir, 'token')}`);
    const script = `${create}\n${run.join('\n').replace(/^podman run /, `podman create --name ${NAME} `)}\n`;
    const sh = spawnSync('sh', ['-e'], { input: script, encoding: 'utf8', timeout: 120_000 });
    expect(sh.status, sh.stderr).toBe(0);
    const digest = JSON.parse(readFileSync(join(dir, 'img', 'index.json'), 'utf8')).manifests[0].digest;
    const inspect = podman([
      'inspect',
      NAME,
      '--format',
      '{{.ImageDigest}}|{{.Config.User}}|{{json .HostConfig.ReadonlyRootfs}}|{{json .HostConfig.CapDrop}}|{{json .HostConfig.SecurityOpt}}|{{json .HostConfig.PortBindings}}|{{range .Config.Secrets}}{{.Name}} {{.UID}}:{{.GID}} {{.Mode}}{{end}}',
    ]);
    expect(inspect.status, inspect.stderr).toBe(0);
    const [image, user, ro, caps, secopt, ports, secret] = inspect.stdout.trim().split('|');
    expect(image).toBe(digest);
    expect(user).toBe('65532:65532');
    expect(ro).toBe('true');
    // --cap-drop=ALL: podman lists every capability of its default set as dropped
    expect(JSON.parse(caps!)).toEqual(
      expect.arrayContaining(['CAP_CHOWN', 'CAP_NET_BIND_SERVICE', 'CAP_SETUID']),
    );
    expect(JSON.parse(secopt!)).toContain('no-new-privileges');
    // examples/hello declares 8080/tcp: published on the loopback only
    expect(JSON.parse(ports!)).toEqual({ '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }] });
    expect(secret).toBe(`${NAME}-token 65532:65532 256`);
  });
});
