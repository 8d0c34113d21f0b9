import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunError } from '../errors.ts';
import { type HostProbe, hostProbe } from './support.ts';

/** The program that connects the sandbox's network namespace to the host: pasta, else slirp4netns. */
export interface NetworkTool {
  readonly kind: 'pasta' | 'slirp4netns';
  readonly path: string;
}

/**
 * Published ports, the way rootless podman does them: the sandbox keeps its private network namespace, and pasta
 * (Debian package `passt`) connects it to the host, forwarding each published host port into the namespace. podman's
 * arguments (containers/common libnetwork/pasta): `--config-net`, one `-t`/`-u ADDR/HOST:CTR` per port, and `none`
 * for every direction not asked for (pasta's default `auto` would forward every port the container binds, and
 * `-T`/`-U auto` would let the container reach the host's loopback services), `--no-map-gw` (the gateway address does
 * not lead to the host). pasta configures the namespace, forks into the background and exits 0; pare stops it when
 * the sandbox ends.
 */

/** One `-p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]`. */
export interface PortMapping {
  /** Host address to bind (IPv4 or IPv6, no brackets); undefined: every address, as podman does. */
  readonly hostIp?: string;
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp';
}

function port(s: string, what: string, bad: (why: string) => RunError): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535)
    throw bad(`the ${what} port ${JSON.stringify(s)} is not a number from 1 to 65535`);
  return Number(s);
}

/** Parses `-p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]` (an IPv6 address in brackets). Throws RUN_PUBLISH_INVALID. */
export function parsePublish(s: string): PortMapping {
  const bad = (why: string) =>
    new RunError(
      'RUN_PUBLISH_INVALID',
      `cannot publish ${JSON.stringify(s)}: ${why}; want [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp], e.g. 127.0.0.1:8080:80`,
    );
  let rest = s;
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1);
    if (p !== 'tcp' && p !== 'udp') throw bad(`unknown protocol ${JSON.stringify(p)}`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  let hostIp: string | undefined;
  const v6 = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  if (v6) {
    if (isIP(v6[1]!) !== 6) throw bad(`${JSON.stringify(v6[1])} is not an IPv6 address`);
    hostIp = v6[1]!;
    rest = v6[2]!;
  }
  const parts = rest.split(':');
  if (!v6 && parts.length === 3) {
    if (isIP(parts[0]!) !== 4) throw bad(`${JSON.stringify(parts[0])} is not an IPv4 address`);
    hostIp = parts.shift()!;
  }
  if (parts.length !== 2) throw bad('give both the host and the container port');
  return {
    ...(hostIp !== undefined ? { hostIp } : {}),
    hostPort: port(parts[0]!, 'host', bad),
    containerPort: port(parts[1]!, 'container', bad),
    protocol,
  };
}

/** Formats a mapping back into the `-p` form (docker, podman). */
export function formatPublish(m: PortMapping): string {
  const ip = m.hostIp === undefined ? '' : m.hostIp.includes(':') ? `[${m.hostIp}]:` : `${m.hostIp}:`;
  return `${ip}${m.hostPort}:${m.containerPort}/${m.protocol}`;
}

/**
 * The pasta arguments that forward `ports` into a network namespace: an existing one (`netns`, as root: see
 * connectNetwork) or a new one holding `command` (see createNetwork). Pure.
 */
export function pastaArgs(
  ports: readonly PortMapping[],
  target: { readonly netns: string; readonly pidFile: string } | { readonly command: readonly string[] },
): string[] {
  const a = ['--config-net'];
  for (const m of ports) {
    a.push(
      m.protocol === 'tcp' ? '-t' : '-u',
      `${m.hostIp !== undefined ? `${m.hostIp}/` : ''}${m.hostPort}:${m.containerPort}`,
    );
  }
  if (!ports.some((m) => m.protocol === 'tcp')) a.push('-t', 'none');
  if (!ports.some((m) => m.protocol === 'udp')) a.push('-u', 'none');
  a.push('-T', 'none', '-U', 'none', '--no-map-gw', '--quiet');
  if ('netns' in target) {
    // pasta drops to "nobody" when started as root, and nobody may not open another process's namespaces; stay
    // root (pasta still isolates itself: its own mount namespace, no capabilities beyond the network namespace).
    a.push('--runas', '0');
    a.push('--pid', target.pidFile, '--netns', target.netns);
  } else {
    a.push('--foreground', '--', ...target.command);
  }
  return a;
}

/** Finds pasta: PARE_PASTA, else `pasta` on PATH. Throws RUN_NETWORK_MISSING naming the package. */
export function findPasta(probe: HostProbe = hostProbe, env: NodeJS.ProcessEnv = process.env): string {
  const found = probe.which(env.PARE_PASTA || 'pasta');
  if (found) return found;
  throw new RunError(
    'RUN_NETWORK_MISSING',
    env.PARE_PASTA
      ? `cannot publish ports: PARE_PASTA=${JSON.stringify(env.PARE_PASTA)} is not an executable`
      : 'cannot publish ports: pasta is not installed',
    { hint: 'install the Debian package passt (apt-get install passt) or set PARE_PASTA to its path' },
  );
}

/**
 * Finds the program that publishes ports, as podman does: pasta, else slirp4netns (podman's default before 5.0).
 * `PARE_NETWORK=pasta|slirp4netns` picks one (and fails when it is missing); PARE_PASTA / PARE_SLIRP4NETNS name their
 * paths (default: on PATH). Throws RUN_NETWORK_MISSING naming the Debian packages, or USAGE for another PARE_NETWORK.
 */
export function findNetworkTool(
  probe: HostProbe = hostProbe,
  env: NodeJS.ProcessEnv = process.env,
): NetworkTool {
  const want = env.PARE_NETWORK || undefined;
  if (want !== undefined && want !== 'pasta' && want !== 'slirp4netns')
    throw new RunError(
      'RUN_PUBLISH_INVALID',
      `cannot publish ports: PARE_NETWORK=${JSON.stringify(want)} is neither pasta nor slirp4netns`,
    );
  if (want === 'pasta' || (want === undefined && env.PARE_PASTA))
    return { kind: 'pasta', path: findPasta(probe, env) };
  if (want === undefined) {
    const pasta = probe.which('pasta');
    if (pasta) return { kind: 'pasta', path: pasta };
  }
  const slirp = probe.which(env.PARE_SLIRP4NETNS || 'slirp4netns');
  if (slirp) return { kind: 'slirp4netns', path: slirp };
  throw new RunError(
    'RUN_NETWORK_MISSING',
    env.PARE_SLIRP4NETNS
      ? `cannot publish ports: PARE_SLIRP4NETNS=${JSON.stringify(env.PARE_SLIRP4NETNS)} is not an executable`
      : want === 'slirp4netns'
        ? 'cannot publish ports: slirp4netns is not installed'
        : 'cannot publish ports: neither pasta nor slirp4netns is installed',
    {
      hint:
        want === 'slirp4netns'
          ? 'install the Debian package slirp4netns (apt-get install slirp4netns)'
          : 'install the Debian package passt (apt-get install passt), or slirp4netns',
    },
  );
}

/** Finds nsenter (util-linux), which starts bwrap in the namespaces pasta made for a caller who is not root. */
export function findNsenter(probe: HostProbe = hostProbe): string {
  const found = probe.which('nsenter');
  if (found) return found;
  throw new RunError('RUN_NETWORK_MISSING', 'cannot publish ports: nsenter is not installed', {
    hint: 'install the Debian package util-linux (apt-get install util-linux)',
  });
}

/** A running pasta. */
export interface NetworkHandle {
  /** Stops pasta (idempotent). */
  stop(): Promise<void>;
}

/** A user and network namespace made by pasta, for a caller who is not root. */
export interface CreatedNetwork extends NetworkHandle {
  /** /proc paths of the namespaces (of the process pasta runs in them) to join with nsenter. */
  readonly userns: string;
  readonly netns: string;
}

/** The process pasta runs in the namespaces it made: says it is there, then lives until pare closes its stdin. */
const HOLDER = ['sh', '-c', 'echo ready; exec cat'];

/**
 * Makes a new user and network namespace connected by pasta with `ports` published, for a caller who is not root:
 * pasta runs a holder process in them (it starts it once the namespace is configured and the host ports are bound),
 * and bwrap is started inside them with nsenter (see startSandbox). The holder lives until stop() closes its stdin, or
 * until pare dies (the pipe closes with it); pasta exits with it. Throws RUN_NETWORK_FAILED with pasta's message.
 */
export async function createNetwork(
  tool: NetworkTool | string,
  ports: readonly PortMapping[],
  probe: HostProbe = hostProbe,
): Promise<CreatedNetwork> {
  const t: NetworkTool = typeof tool === 'string' ? { kind: 'pasta', path: tool } : tool;
  if (t.kind === 'slirp4netns') return createSlirpNetwork(t.path, ports, probe);
  const pasta = t.path;
  const child = spawn(pasta, pastaArgs(ports, { command: HOLDER }), { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    if (err.length < 64 * 1024) err += c.toString('utf8');
  });
  child.stdin!.on('error', () => {});
  const closed = new Promise<number | null>((resolve) => {
    child.on('close', resolve);
    child.on('error', () => resolve(null));
  });
  const ready = await new Promise<boolean>((resolve) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (out.includes('ready\n')) resolve(true);
    });
    closed.then(() => resolve(false));
  });
  const stop = async () => {
    child.stdin!.end();
    child.kill('SIGTERM');
    await closed;
  };
  const holder = ready ? childrenOf(child.pid!)[0] : undefined;
  if (holder === undefined) {
    await stop();
    throw new RunError(
      'RUN_NETWORK_FAILED',
      `cannot publish ports ${ports.map(formatPublish).join(', ')}: pasta failed${pastaMessage(err) ? `: ${pastaMessage(err)}` : ''}`,
    );
  }
  return { userns: `/proc/${holder}/ns/user`, netns: `/proc/${holder}/ns/net`, stop };
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** pasta's stderr without the lines saying it could not reach syslog (those say nothing about the failure). */
function pastaMessage(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/^Failed to send \d+ bytes to syslog/.test(l))
    .join('; ');
}

/**
 * Connects the network namespace of process `pid` (bwrap's sandbox init, held before it starts the command) to the
 * host with `ports` published. Resolves once pasta has configured the namespace and bound the host ports. Only a root
 * caller can do it this way (joining the namespace without its user namespace; others use createNetwork). Throws
 * RUN_NETWORK_FAILED with pasta's own message when pasta fails (a port in use, a bad address).
 */
export async function connectNetwork(
  tool: NetworkTool | string,
  pid: number,
  ports: readonly PortMapping[],
): Promise<NetworkHandle> {
  const t: NetworkTool = typeof tool === 'string' ? { kind: 'pasta', path: tool } : tool;
  if (t.kind === 'slirp4netns') return startSlirp(t.path, { pid }, ports);
  const pasta = t.path;
  const dir = await mkdtemp(join(tmpdir(), 'pare-pasta-'));
  const pidFile = join(dir, 'pid');
  const args = pastaArgs(ports, { netns: `/proc/${pid}/ns/net`, pidFile });
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn(pasta, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => {
      if (err.length < 64 * 1024) err += c.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stderr: err }));
  }).catch(async (e: Error) => {
    await rm(dir, { recursive: true, force: true });
    throw new RunError('RUN_NETWORK_FAILED', `cannot start ${JSON.stringify(pasta)}: ${e.message}`, {
      cause: e,
    });
  });
  let daemon: number | undefined;
  try {
    daemon = Number((await readFile(pidFile, 'utf8')).trim()) || undefined;
  } catch {
    /* no pid file: pasta failed before forking */
  }
  const stop = async () => {
    if (daemon !== undefined) {
      try {
        process.kill(daemon, 'SIGTERM');
      } catch {
        /* already gone */
      }
      daemon = undefined;
    }
    await rm(dir, { recursive: true, force: true });
  };
  if (code !== 0) {
    await stop();
    const why = pastaMessage(stderr);
    throw new RunError(
      'RUN_NETWORK_FAILED',
      `cannot publish ports ${ports.map(formatPublish).join(', ')}: pasta failed (exit ${code})${why ? `: ${why}` : ''}`,
    );
  }
  return { stop };
}

/**
 * The slirp4netns arguments that configure the namespace of `target` (a process's, as root; or namespace paths, for
 * a caller who is not root) as podman does: `--configure`, MTU 65520, `--disable-host-loopback` (the sandbox cannot
 * reach the host's loopback services), as root its own mount namespace (`--enable-sandbox`), a seccomp filter, an API socket
 * to add the published ports on, and the ready/exit descriptors (slirp4netns exits when pare's end of `exit` closes,
 * so it never outlives pare). Pure.
 */
export function slirp4netnsArgs(
  target: { readonly pid: number } | { readonly userns: string; readonly netns: string },
  fds: { readonly ready: number; readonly exit: number; readonly apiSocket: string },
): string[] {
  const a = [
    '--configure',
    '--mtu=65520',
    '--disable-host-loopback',
    // Its own mount namespace needs setegid(0), which only root has here (podman runs it inside its user namespace).
    ...('pid' in target ? ['--enable-sandbox'] : []),
    '--enable-seccomp',
    `--ready-fd=${fds.ready}`,
    `--exit-fd=${fds.exit}`,
    `--api-socket=${fds.apiSocket}`,
  ];
  // By path: given a pid, slirp4netns would join the process's user namespace too, where root has no right over the
  // host (setns fails); root joins the network namespace alone, as pasta's --netns does.
  if ('pid' in target) a.push('--netns-type=path', `/proc/${target.pid}/ns/net`, 'tap0');
  else a.push(`--userns-path=${target.userns}`, '--netns-type=path', target.netns, 'tap0');
  return a;
}

/** The API request that publishes one port (slirp4netns forwards it to the guest address, 10.0.2.100). */
export function slirpHostfwd(m: PortMapping): Record<string, unknown> {
  return {
    execute: 'add_hostfwd',
    arguments: {
      proto: m.protocol,
      host_addr: m.hostIp ?? '0.0.0.0',
      host_port: m.hostPort,
      guest_port: m.containerPort,
    },
  };
}

/** Sends one request to the slirp4netns API socket and returns its parsed answer. */
async function slirpApi(socket: string, request: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let out = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.end(JSON.stringify(request)));
    c.on('data', (d: string) => {
      if (out.length < 64 * 1024) out += d;
    });
    c.on('error', reject);
    c.on('close', () => {
      try {
        resolve(JSON.parse(out) as Record<string, unknown>);
      } catch {
        reject(new Error(`unreadable answer ${JSON.stringify(out.slice(0, 200))}`));
      }
    });
  });
}

/** Descriptor numbers slirp4netns gets for ready and exit (after stdin, stdout, stderr). */
const SLIRP_READY_FD = 3;
const SLIRP_EXIT_FD = 4;

/**
 * Starts slirp4netns on `target`, waits until it has configured the namespace, then adds each published port through
 * its API socket. Throws RUN_NETWORK_FAILED with slirp4netns's message (a port in use, a bad address).
 */
async function startSlirp(
  slirp: string,
  target: { readonly pid: number } | { readonly userns: string; readonly netns: string },
  ports: readonly PortMapping[],
  onStop: () => Promise<void> = async () => {},
): Promise<NetworkHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'pare-slirp-'));
  const apiSocket = join(dir, 'api.sock');
  const what = `cannot publish ports ${ports.map(formatPublish).join(', ')}: slirp4netns failed`;
  let child: ChildProcess | undefined;
  let closed: Promise<number | null> = Promise.resolve(null);
  const stop = async () => {
    // Closing our end of the exit descriptor ends slirp4netns; SIGTERM covers one that stopped reading it.
    (child?.stdio[SLIRP_EXIT_FD] as { destroy?: () => void } | null)?.destroy?.();
    child?.kill('SIGTERM');
    await closed;
    await rm(dir, { recursive: true, force: true });
    await onStop();
  };
  let err = '';
  try {
    const c = spawn(
      slirp,
      slirp4netnsArgs(target, { ready: SLIRP_READY_FD, exit: SLIRP_EXIT_FD, apiSocket }),
      { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
    );
    child = c;
    c.stderr!.on('data', (d: Buffer) => {
      if (err.length < 64 * 1024) err += d.toString('utf8');
    });
    closed = new Promise((resolve) => {
      c.on('close', resolve);
      c.on('error', () => resolve(null));
    });
    const ready = await new Promise<boolean>((resolve) => {
      const r = c.stdio[SLIRP_READY_FD] as NodeJS.ReadableStream;
      r.on('data', (d: Buffer) => d.toString('utf8').includes('1') && resolve(true));
      r.on('error', () => {});
      closed.then(() => resolve(false));
    });
    if (!ready) throw new RunError('RUN_NETWORK_FAILED', `${what}${slirpMessage(err)}`);
    for (const m of ports) {
      const answer = await slirpApi(apiSocket, slirpHostfwd(m)).catch((e: Error) => ({
        error: { desc: e.message },
      }));
      if ('error' in answer) {
        const desc = (answer.error as { desc?: unknown } | undefined)?.desc;
        throw new RunError(
          'RUN_NETWORK_FAILED',
          `${what} to publish ${formatPublish(m)}: ${typeof desc === 'string' ? desc : JSON.stringify(answer.error)}`,
        );
      }
    }
  } catch (e) {
    await stop();
    throw e instanceof RunError
      ? e
      : new RunError('RUN_NETWORK_FAILED', `cannot start ${JSON.stringify(slirp)}: ${(e as Error).message}`, {
          cause: e,
        });
  }
  return { stop };
}

function slirpMessage(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.length ? `: ${lines.slice(-3).join('; ')}` : '';
}

/**
 * createNetwork with slirp4netns: `unshare` (util-linux) makes the user and network namespaces and runs the holder in
 * them, then slirp4netns connects them by path.
 */
async function createSlirpNetwork(
  slirp: string,
  ports: readonly PortMapping[],
  probe: HostProbe,
): Promise<CreatedNetwork> {
  const unshare = probe.which('unshare');
  if (!unshare)
    throw new RunError('RUN_NETWORK_MISSING', 'cannot publish ports: unshare is not installed', {
      hint: 'install the Debian package util-linux (apt-get install util-linux)',
    });
  const child = spawn(unshare, ['--user', '--map-root-user', '--net', '--', ...HOLDER], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    if (err.length < 64 * 1024) err += c.toString('utf8');
  });
  child.stdin!.on('error', () => {});
  const closed = new Promise<number | null>((resolve) => {
    child.on('close', resolve);
    child.on('error', () => resolve(null));
  });
  const ready = await new Promise<boolean>((resolve) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (out.includes('ready\n')) resolve(true);
    });
    closed.then(() => resolve(false));
  });
  const stopHolder = async () => {
    child.stdin!.end();
    child.kill('SIGTERM');
    await closed;
  };
  // unshare execs the holder itself: its pid is the child's.
  if (!ready) {
    await stopHolder();
    throw new RunError(
      'RUN_NETWORK_FAILED',
      `cannot publish ports ${ports.map(formatPublish).join(', ')}: unshare failed${slirpMessage(err)}`,
    );
  }
  const ns = { userns: `/proc/${child.pid}/ns/user`, netns: `/proc/${child.pid}/ns/net` };
  const handle = await startSlirp(slirp, ns, ports, stopHolder);
  return { ...ns, stop: handle.stop };
}
