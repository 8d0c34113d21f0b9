import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAptSources, resolveSuites } from '../../src/debian/index.ts';
import { entryRunnableBy } from '../helpers/installed.ts';
import { isRoot, peersOrSkip, peersRequired } from '../helpers/peers.ts';

/**
 * A real Debian image in the sandbox: examples/python built by `pare build` from the Debian mirror the host's apt
 * sources name (nothing here names a host), then run with `pare run`. Python probes the sandbox from the inside.
 * Skipped with a printed reason when the host has no usable Debian source (fails under PARE_REQUIRE_PEERS=1), or on
 * a non-amd64 host (the example is built for linux/amd64 only).
 */

const peers = peersOrSkip('bwrap');
const ROOT = join(import.meta.dirname, '../..');

async function mirrorSkipReason(): Promise<string> {
  if (process.arch !== 'x64') return 'examples/python is built for linux/amd64 only';
  const suite = (await readAptSources().catch(() => []))
    .filter((e) => e.enabled && e.types.includes('deb'))
    .flatMap((e) => e.suites)
    .find((s) => /^[a-z]+$/.test(s));
  if (!suite) return 'no Debian release suite in the host apt sources';
  try {
    const [m] = await resolveSuites({ suite, security: false, updates: false });
    const res = await fetch(`${m!.baseUrl}dists/${suite}/InRelease`, {
      method: 'HEAD',
      signal: AbortSignal.timeout(10_000),
    });
    if (res.status !== 200) return `the configured Debian mirror answered ${res.status}`;
  } catch (e) {
    return `no reachable Debian mirror in the host apt sources: ${(e as Error).message}`;
  }
  return '';
}

const skipReason = peers.skip ? peers.reason : await mirrorSkipReason();
if (skipReason && !peers.skip) {
  if (peersRequired) throw new Error(`PARE_REQUIRE_PEERS=1 but ${skipReason}`);
  console.warn(`[skip] ${skipReason}`);
}

let work: string;
let image: string;

/** -p connects the sandbox with pasta, which pare can only do as root (see src/run/network.ts). */
const publishPeers = peersOrSkip('pasta', 'curl');
const publishSkip = publishPeers.skip
  ? publishPeers.reason
  : isRoot()
    ? ''
    : 'publishing ports (pasta) needs pare to run as root';
if (publishSkip && !publishPeers.skip) console.warn(`[skip] ${publishSkip}`);

/** slirp4netns, podman's other port forwarder: pare uses it when pasta is missing. */
const slirp = publishSkip ? { skip: true } : peersOrSkip('slirp4netns');

/** pare itself as an unprivileged user (root runs it through setpriv in a private mount namespace). */
const rootless =
  isRoot() && !publishSkip
    ? peersOrSkip('setpriv', 'unshare')
    : { skip: true, paths: {} as Record<string, string> };

/** A port nothing listens on right now (the kernel picks it). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function pareArgs(args: string[]): string[] {
  return [join(ROOT, 'bin/pare.js'), ...args];
}

function pare(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, pareArgs(args), { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const PROBE = `
import ctypes, os, signal, sys
print("id", os.getuid(), os.getgid(), os.environ["HOME"])
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
print("status", status["CapEff"].strip(), status["NoNewPrivs"].strip(), status["Seccomp"].strip())
for p in ("/usr/lib/x", "/tmp/x"):
    try:
        open(p, "w").close(); print("write", p, "ok")
    except OSError as e:
        print("write", p, e.strerror)
print("net", " ".join(sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:])))
libc = ctypes.CDLL(None, use_errno=True)
print("keyctl", libc.syscall(250, 0, -3, 0), os.strerror(ctypes.get_errno()))
print("unshare", libc.unshare(0x10000000), os.strerror(ctypes.get_errno()))  # CLONE_NEWUSER
import socket
print("resolve", socket.gethostbyname("localhost"), socket.gethostbyname(socket.gethostname()))
sys.exit(42)
`;

describe.skipIf(skipReason !== '')('pare run on a Debian image (examples/python)', () => {
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'pare-run-debian-'));
    cpSync(join(ROOT, 'examples/python/pare.yaml'), join(work, 'pare.yaml'));
    image = join(work, 'out');
    const b = pare(['build', work, '-o', image]);
    expect(b.code, b.stderr).toBe(0);
  }, 300_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('runs python3 as nonroot with every hardening in place', () => {
    const r = pare(['run', '--cache-dir', join(work, 'cache'), `oci:${image}:python`, '--', '-c', PROBE]);
    expect(r.stdout.trim().split('\n')).toEqual([
      'id 65532 65532 /home/nonroot',
      'status 0000000000000000 1 2',
      'write /usr/lib/x Read-only file system',
      'write /tmp/x ok',
      'net lo',
      'keyctl -1 Operation not permitted',
      'unshare -1 Operation not permitted',
      'resolve 127.0.0.1 127.0.1.1',
    ]);
    expect(r.code).toBe(42);
  });

  describe.skipIf(publishSkip !== '')('with -p (pasta)', () => {
    /** Runs python http.server behind `-p`, curls it from the host, stops pare, checks the port is closed. */
    async function serveThroughPublish(
      prefix: readonly string[],
      cacheDir: string,
      env: NodeJS.ProcessEnv = {},
      entry: readonly [node: string, script: string] = [process.execPath, join(ROOT, 'bin/pare.js')],
    ) {
      const site = join(work, 'site');
      mkdirSync(site, { recursive: true, mode: 0o755 });
      writeFileSync(join(site, 'index.txt'), 'hello through pasta\n', { mode: 0o644 });
      const port = await freePort();
      const argv = [
        ...prefix,
        ...entry,
        ...[
          'run',
          '--cache-dir',
          cacheDir,
          '-p',
          `127.0.0.1:${port}:8000`,
          '-v',
          `${site}:/srv:ro`,
          `oci:${image}:python`,
          '--',
          '-u',
          '-m',
          'http.server',
          '-d',
          '/srv',
          '8000',
        ],
      ];
      const child = spawn(argv[0]!, argv.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
      let err = '';
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
      // pasta is connected before the command starts, so the port answers once the server says it listens.
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => c.toString().includes('Serving HTTP') && resolve());
        closed.then((code) => reject(new Error(`pare exited ${code}: ${err}`)));
      });
      const curl = (path: string) =>
        spawnSync(publishPeers.paths.curl!, ['-sS', '--max-time', '30', `http://127.0.0.1:${port}${path}`], {
          encoding: 'utf8',
        });
      const r = curl('/index.txt');
      expect([r.status, r.stdout, r.stderr]).toEqual([0, 'hello through pasta\n', '']);
      child.kill('SIGTERM');
      expect(await closed).toBe(128 + 15);
      // pasta is gone with the sandbox: nothing listens on the port any more
      expect(curl('/index.txt').status).toBe(7);
    }

    it('serves python http.server to curl on the host through the published port, then stops pasta', async () => {
      await serveThroughPublish([], join(work, 'cache'));
    });

    it.skipIf(slirp.skip)(
      'does the same through slirp4netns (the fallback when pasta is missing; PARE_NETWORK=slirp4netns picks it)',
      async () => {
        await serveThroughPublish([], join(work, 'cache'), { PARE_NETWORK: 'slirp4netns' });
      },
    );

    it.skipIf(rootless.skip).for([
      ['pasta', 'pasta makes the namespaces'],
      ['slirp4netns', 'unshare makes the namespaces, slirp4netns connects them'],
    ] as const)(
      'does the same when pare runs as an unprivileged user through %s (%s, bwrap joins them)',
      // from a clone under a 0700 home, it packs and installs pare first
      { timeout: 600_000 },
      async ([tool], { skip }) => {
        if (tool === 'slirp4netns' && slirp.skip) skip('slirp4netns is not installed');
        // pasta needs /dev/net/tun, which a Debian host makes 0666; a private mount namespace gives the unprivileged
        // user one where this host's is 0600 (root only). The host's device node is not changed.
        const tun = join(work, 'tun');
        mkdirSync(tun, { recursive: true });
        const home = join(work, 'nobody-home');
        mkdirSync(home, { recursive: true, mode: 0o755 });
        chownSync(home, 65534, 65534);
        for (let d = image; d.startsWith(work); d = dirname(d)) chmodSync(d, 0o755);
        chmodSync(work, 0o755);
        execFileSync('chmod', ['-R', 'a+rX', image]);
        const as = [rootless.paths.setpriv!, '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
        await serveThroughPublish(
          [
            rootless.paths.unshare!,
            '--mount',
            '--propagation',
            'private',
            'sh',
            '-ec',
            'mount -t tmpfs tmpfs "$0"; mknod -m 666 "$0/tun" c 10 200; mount --bind "$0/tun" /dev/net/tun; shift; exec "$@"',
            tun,
            '--',
            ...as,
          ],
          join(home, `cache-${tool}`),
          { HOME: home, PARE_NETWORK: tool },
          entryRunnableBy(as, join(work, 'for-nobody')),
        );
      },
    );

    it('fails (exit 1) with pasta’s message when the host port is taken', async () => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as { port: number };
      try {
        const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(
            process.execPath,
            pareArgs([
              'run',
              '--cache-dir',
              join(work, 'cache'),
              '-p',
              `127.0.0.1:${port}:8000`,
              `oci:${image}:python`,
              '--',
              '-c',
              'print("ran")',
            ]),
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
          let stderr = '';
          child.stderr.on('data', (c: Buffer) => {
            stderr += c.toString();
          });
          child.stdout.on('data', (c: Buffer) => {
            stderr += `stdout: ${c}`;
          });
          child.on('close', (code) => resolve({ code, stderr }));
        });
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(
          `cannot publish ports 127.0.0.1:${port}:8000/tcp: pasta failed (exit 1): `,
        );
        expect(r.stderr).not.toContain('ran');
      } finally {
        server.close();
      }
    });

    it('refuses -p with --net (the host network is shared already)', () => {
      const r = pare(['run', '--net', '-p', '8080:80', `oci:${image}:python`, '--', '-c', 'pass']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('cannot publish ports with --net');
    });
  });

  it('terminates a command without signal handlers on SIGTERM (it is not pid 1)', async () => {
    const child = spawn(
      process.execPath,
      pareArgs([
        'run',
        '--cache-dir',
        join(work, 'cache'),
        `oci:${image}:python`,
        '--',
        '-c',
        'import time; print("ready", flush=True); time.sleep(60)',
      ]),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (c: Buffer) => c.toString().includes('ready') && resolve()),
    );
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(128 + 15);
  });
});
