import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SliceError, UsageError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';
import type { RunConfig } from '../oci/index.ts';
import {
  type ExecUser,
  materializeTree,
  type PortMapping,
  resolveProcess,
  startSandbox,
} from '../run/index.ts';
import { findStrace, parseStraceLog, straceArgs } from '../slice/index.ts';

/**
 * `--http-probe [PORT][/PATH]`: the image's own Entrypoint + Cmd is started in the `pare run` sandbox under strace,
 * with each probed port published on 127.0.0.1 through pasta exactly as `pare run -p` does (src/run/network.ts);
 * once the server listens on the port (a LISTEN socket in its network namespace, /proc/PID/net/tcp{,6}), each path is
 * fetched with GET from the host, then the server is stopped with the image's StopSignal (SIGKILL after
 * STOP_GRACE_MS). What the server touched from start to stop is kept, like a `--probe` command's.
 */

export interface HttpProbe {
  /** As given (`8000/`, `/health`), for messages, the history and why-kept. */
  readonly spec: string;
  /** The container port; undefined: the image's only exposed TCP port. */
  readonly port?: number;
  /** The request path, `/` by default. */
  readonly path: string;
}

/** How long a stopped server may take to exit before it is killed (docker's default stop timeout). */
export const STOP_GRACE_MS = 10_000;
/** Most bytes of the server's output quoted in an error. */
const OUTPUT_TAIL = 2000;

/** Parses `--http-probe [PORT][/PATH]`. Throws USAGE (exit 2) for anything else. */
export function parseHttpProbe(text: string): HttpProbe {
  const m = /^(\d{1,5})?(\/[\x21-\x7e]*)?$/.exec(text);
  const port = m?.[1] !== undefined ? Number(m[1]) : undefined;
  if (!m || text === '' || (port !== undefined && (port < 1 || port > 65535)))
    throw new UsageError(
      'USAGE',
      `cannot use --http-probe ${JSON.stringify(text)}: want [PORT][/PATH], a port from 1 to 65535 and a path of printable characters without spaces, e.g. 8000/ or 8080/health`,
    );
  return { spec: text, ...(port !== undefined ? { port } : {}), path: m[2] ?? '/' };
}

/** The probes with their ports filled in from the image's ExposedPorts (its only TCP port). Throws SLICE_OPTIONS_INVALID. */
export function resolveHttpPorts(probes: readonly HttpProbe[], config: RunConfig): Required<HttpProbe>[] {
  const exposed = Object.keys(config.ExposedPorts ?? {})
    .map((k) => /^(\d+)(?:\/tcp)?$/.exec(k)?.[1])
    .filter((p): p is string => p !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  return probes.map((p) => {
    if (p.port !== undefined) return { ...p, port: p.port };
    if (exposed.length !== 1)
      throw new SliceError(
        'SLICE_OPTIONS_INVALID',
        `cannot use --http-probe ${JSON.stringify(p.spec)}: it names no port and the image exposes ${exposed.length === 0 ? 'no TCP port' : `${exposed.length} TCP ports (${exposed.join(', ')})`}; write the port, e.g. --http-probe ${exposed[0] ?? 8000}${p.path}`,
      );
    return { ...p, port: exposed[0]! };
  });
}

export interface HttpTraceOptions {
  readonly config: RunConfig;
  readonly user: ExecUser;
  /** Longest the whole probe may take until the last answer, ms. */
  readonly timeoutMs: number;
  readonly tmpDir?: string;
  /** Statuses the source answered (the re-probe must answer the same); without it any status below 400 passes. */
  readonly expect?: readonly number[];
  /** Said after the error's cause ("on the unsliced image; fix the probe command"). */
  readonly where?: string;
}

export interface HttpTrace {
  /** Image paths the server touched (unresolved, sorted). */
  readonly touched: string[];
  /** The status of each probe's answer, in order. */
  readonly statuses: number[];
}

async function freeLoopbackPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', resolve);
  });
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** True when the network namespace of `pid` has a TCP socket listening on `port` (any address, IPv4 or IPv6). */
async function listening(pid: number, port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const f of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/net/${f}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && cols[1]?.endsWith(`:${hex}`)) return true;
    }
  }
  return false;
}

function get(port: number, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'GET', agent: false, headers: { connection: 'close' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.setTimeout(Math.max(1, timeoutMs), () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The image's StopSignal as a Node signal name (SIGTERM when absent). Throws SLICE_OPTIONS_INVALID for an unknown one. */
export function stopSignal(config: RunConfig): NodeJS.Signals {
  const s = config.StopSignal?.trim();
  if (!s) return 'SIGTERM';
  const signals = osConstants.signals as Record<string, number>;
  const byNumber = /^\d+$/.test(s) ? Object.keys(signals).find((k) => signals[k] === Number(s)) : undefined;
  const name = byNumber ?? (s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`);
  if (signals[name] === undefined)
    throw new SliceError(
      'SLICE_OPTIONS_INVALID',
      `cannot stop the HTTP probe's server: the image's StopSignal ${JSON.stringify(s)} is not a signal of this host`,
    );
  return name as NodeJS.Signals;
}

/**
 * Starts the image's Entrypoint + Cmd on `tree` under strace with the probes' ports published, GETs each probe's path
 * once its port listens, stops it, and returns what it touched and the statuses. Throws SLICE_PROBE_FAILED when the
 * server exits or does not listen before the timeout, a request gets no answer, or a status is 400 or above (or not
 * the expected one); SLICE_PROBE_UNAVAILABLE without strace; the sandbox's and pasta's RunErrors as they are.
 */
export async function traceHttp(
  tree: Tree,
  probes: readonly Required<HttpProbe>[],
  o: HttpTraceOptions,
): Promise<HttpTrace> {
  const strace = findStrace();
  const signal = stopSignal(o.config);
  const process_ = resolveProcess(o.config, o.user);
  const what = probes.map((p) => `--http-probe ${p.spec}`).join(' ');
  const fail = (why: string, output = '') =>
    new SliceError(
      'SLICE_PROBE_FAILED',
      `cannot run slice probe ${JSON.stringify(what)}: ${why}${o.where ? ` ${o.where}` : ''}${output ? `: ${output.slice(-OUTPUT_TAIL).trim()}` : ''}`,
    );
  const work = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'pare-http-probe-'));
  try {
    const rootfs = join(work, 'root');
    await materializeTree(tree, rootfs);
    const containerPorts = [...new Set(probes.map((p) => p.port))].sort((a, b) => a - b);
    const publish: PortMapping[] = [];
    for (const c of containerPorts)
      publish.push({
        hostIp: '127.0.0.1',
        hostPort: await freeLoopbackPort(),
        containerPort: c,
        protocol: 'tcp',
      });
    const log = join(work, 'trace.log');
    const handle = await startSandbox(
      { rootfs, process: process_, user: o.user, publish, newSession: true },
      { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', wrap: [strace, ...straceArgs(log)] },
    );
    const output: Buffer[] = [];
    let outputBytes = 0;
    const collect = (c: Buffer) => {
      output.push(c);
      outputBytes += c.length;
      while (outputBytes > 4 * OUTPUT_TAIL && output.length > 1) outputBytes -= output.shift()!.length;
    };
    handle.stdout?.on('data', collect);
    handle.stderr?.on('data', collect);
    const said = () => Buffer.concat(output).toString('utf8');
    let exitCode: number | undefined;
    const exited = handle.exited.then(
      (c) => {
        exitCode = c;
        return c;
      },
      (e: unknown) => {
        exitCode = -1;
        throw e;
      },
    );
    exited.catch(() => {});
    const deadline = Date.now() + o.timeoutMs;
    const statuses: number[] = [];
    let failure: Error | undefined;
    try {
      // Wait for the state (each port listening in the server's namespace), checking again every 50 ms.
      for (const port of containerPorts) {
        for (;;) {
          if (exitCode !== undefined) {
            await exited;
            throw fail(
              `the entrypoint exited with status ${exitCode} before it listened on port ${port}`,
              said(),
            );
          }
          const pid = handle.commandPid();
          if (pid !== undefined && (await listening(pid, port))) break;
          if (Date.now() > deadline)
            throw fail(`nothing listened on port ${port} within ${o.timeoutMs} ms`, said());
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      for (let i = 0; i < probes.length; i++) {
        const p = probes[i]!;
        const hostPort = publish.find((m) => m.containerPort === p.port)!.hostPort;
        let status: number;
        try {
          status = await get(hostPort, p.path, deadline - Date.now());
        } catch (e) {
          throw fail(`GET ${p.path} on port ${p.port} got no answer (${(e as Error).message})`, said());
        }
        const want = o.expect?.[i];
        if (want !== undefined ? status !== want : status >= 400)
          throw fail(
            `GET ${p.path} on port ${p.port} answered ${status}${want !== undefined ? ` where the source answered ${want}` : ''}`,
            said(),
          );
        statuses.push(status);
      }
    } catch (e) {
      failure = e as Error;
    }
    // Stop: the image's StopSignal, then SIGKILL after the grace period.
    if (exitCode === undefined) {
      if (!handle.signal(signal)) handle.child.kill('SIGKILL');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          handle.signal('SIGKILL');
          resolve();
        }, STOP_GRACE_MS);
      });
      await Promise.race([exited.catch(() => {}), killed]);
      clearTimeout(timer);
    }
    try {
      await exited;
    } catch (e) {
      failure ??= e as Error;
    }
    if (failure) throw failure;
    return { touched: parseStraceLog(await readFile(log, 'utf8'), { cwd: process_.cwd }), statuses };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
