import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunError } from '../errors.ts';
import { type HostProbe, hostProbe } from './support.ts';

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
export async function createNetwork(pasta: string, ports: readonly PortMapping[]): Promise<CreatedNetwork> {
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
  pasta: string,
  pid: number,
  ports: readonly PortMapping[],
): Promise<NetworkHandle> {
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
