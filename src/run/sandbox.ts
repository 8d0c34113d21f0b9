import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, constants as fsConstants, fstatSync, openSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { RunError } from '../errors.ts';
import { isWithin } from '../fstree/index.ts';
import { exists } from '../layout/atomic.ts';
import {
  type CreatedNetwork,
  connectNetwork,
  createNetwork,
  findNetworkTool,
  findNsenter,
  type NetworkHandle,
  type PortMapping,
} from './network.ts';
import { listTopLevel, lookupInRoot, type TopLevelEntry } from './rootfs.ts';
import { type SeccompArch, seccompProgram } from './seccomp.ts';
import type { ProcessSpec, Volume } from './spec.ts';
import { checkSandboxSupport, explainBwrapFailure } from './support.ts';
import type { ExecUser } from './user.ts';

/**
 * The bubblewrap sandbox: a read-only root built from an unpacked image, every namespace unshared (the network only
 * with `net`), a fresh /proc, a minimal /dev, a tmpfs /tmp, every capability dropped, no new privileges, the default
 * seccomp filter, dying with its parent.
 *
 * The root is a tmpfs with each top-level entry of the image bound read-only into it, remounted read-only once every
 * mount is in place. Binding the image directly as `/` would need the mount points (/proc, /dev, /tmp, volume
 * targets) to exist in the image, and making them there would write to the shared cache.
 *
 * bwrap sets PR_SET_NO_NEW_PRIVS itself before it executes the command (it must, to load a seccomp filter without
 * CAP_SYS_ADMIN); test/run/sandbox.test.ts checks `NoNewPrivs: 1` inside.
 */

/** File descriptors bwrap reads from, as placed in the spawn stdio array. */
export const SECCOMP_FD = 3;
export const INFO_FD = 4;
/** The generated /etc/hosts (`--ro-bind-data`). */
export const HOSTS_FD = 5;
/** With published ports: bwrap waits on it before it executes the command, until pasta has connected the network. */
export const BLOCK_FD = 6;
/** The first secret's content; secret i is on SECRET_FD + i. */
export const SECRET_FD = 7;

/** A `--secret NAME=FILE`: the file's content at /run/secrets/NAME, read-only, owned by the run user (mode 0400). */
export interface Secret {
  readonly name: string;
  /** Absolute host path. */
  readonly host: string;
}

/** Everything the sandbox needs; build the parts with resolveUser, resolveProcess and parseVolume. */
export interface SandboxSpec {
  /** The unpacked root filesystem on the host. */
  readonly rootfs: string;
  readonly process: ProcessSpec;
  readonly user: ExecUser;
  readonly volumes?: readonly Volume[];
  /** Share the host's network namespace (default: only a private loopback). */
  readonly net?: boolean;
  /**
   * Ports to publish from a private network namespace connected by pasta (not with `net`); see network.ts.
   */
  readonly publish?: readonly PortMapping[];
  readonly secrets?: readonly Secret[];
  /** Put the command in a new session (no controlling terminal, so no TIOCSTI on the caller's tty). Default true. */
  readonly newSession?: boolean;
  /** Load the seccomp filter (default true); false is for debugging only. */
  readonly seccomp?: boolean;
  /** Size limit of the /tmp tmpfs in bytes (default DEFAULT_TMP_SIZE): it is memory, so it is bounded. */
  readonly tmpSize?: number;
}

/** Default /tmp size: 64 MiB, the same as the `--print` outputs. */
export const DEFAULT_TMP_SIZE = 64 * 1024 * 1024;

const MANAGED = new Set(['proc', 'dev', 'tmp']);

/** What bwrapArgs needs to know about the image and the host beyond the spec (startSandbox reads it). */
export interface SandboxLayout {
  /**
   * The entries of the image's /etc, when /etc is to be rebuilt: a tmpfs with each entry bound read-only, plus the
   * generated /etc/hosts on HOSTS_FD and (with a network) the host's /etc/resolv.conf. An image /etc that is a
   * symlink is left alone. Without it, /etc is the image's.
   */
  readonly etc?: readonly TopLevelEntry[];
  /** The entries of the image's /run, rebuilt the same way when there are secrets. */
  readonly run?: readonly TopLevelEntry[];
  /** The host has an /etc/resolv.conf to bind when the sandbox has a network. */
  readonly resolvConf?: boolean;
  /**
   * With published ports: bwrap is started inside the network namespace pasta made (a caller who is not root, see
   * createNetwork), so it keeps that one (`--share-net`) instead of waiting on BLOCK_FD for pasta to connect its own.
   */
  readonly joinedNetwork?: boolean;
}

/** The /etc/hosts of a sandbox: localhost and the hostname, as podman writes them. */
export function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t${hostname}\n`;
}

/** Binds each entry of the image's `dir` into a tmpfs at `/dir` (except `skip`), as for the root. */
function rebuildDir(
  a: string[],
  rootfs: string,
  dir: string,
  entries: readonly TopLevelEntry[],
  skip: Set<string>,
) {
  a.push('--tmpfs', `/${dir}`);
  for (const e of entries) {
    if (skip.has(e.name)) continue;
    if (e.kind === 'symlink') a.push('--symlink', e.target!, `/${dir}/${e.name}`);
    else if (e.kind === 'dir' || e.kind === 'file')
      a.push('--ro-bind', join(rootfs, dir, e.name), `/${dir}/${e.name}`);
  }
}

/**
 * Returns bwrap's arguments for `spec`, given the root's top-level entries. Pure. The seccomp program is expected on
 * SECCOMP_FD, the info JSON is written to INFO_FD, and with `layout.etc` the hosts file is read from HOSTS_FD.
 */
export function bwrapArgs(
  spec: SandboxSpec,
  topLevel: readonly TopLevelEntry[],
  layout: SandboxLayout = {},
): string[] {
  const publish = (spec.publish ?? []).length > 0;
  // --unshare-all only *tries* a user namespace; ask for it outright, and forbid nesting another one inside (a second
  // line of defence behind seccomp's clone/unshare rules, which --no-seccomp turns off).
  const a: string[] = ['--unshare-all', '--unshare-user', '--disable-userns'];
  if (spec.net || (publish && layout.joinedNetwork)) a.push('--share-net');
  a.push('--die-with-parent');
  if (spec.newSession ?? true) a.push('--new-session');
  a.push('--uid', String(spec.user.uid), '--gid', String(spec.user.gid));
  a.push('--hostname', spec.process.hostname);
  a.push('--tmpfs', '/');
  const secrets = spec.secrets ?? [];
  const etcKind = topLevel.find((e) => e.name === 'etc')?.kind;
  const rebuildEtc = layout.etc !== undefined && etcKind !== 'symlink' && etcKind !== 'other';
  const runKind = topLevel.find((e) => e.name === 'run')?.kind;
  // Secrets are never dropped: a /run that is not a directory in the image is replaced.
  const rebuildRun = secrets.length > 0;
  for (const e of topLevel) {
    if (MANAGED.has(e.name)) continue;
    if (e.name === 'etc' && rebuildEtc) continue;
    if (e.name === 'run' && rebuildRun) continue;
    const host = join(spec.rootfs, e.name);
    if (e.kind === 'symlink') a.push('--symlink', e.target!, `/${e.name}`);
    else if (e.kind === 'dir' || e.kind === 'file') a.push('--ro-bind', host, `/${e.name}`);
  }
  a.push('--proc', '/proc', '--dev', '/dev');
  a.push('--size', String(spec.tmpSize ?? DEFAULT_TMP_SIZE), '--perms', '1777', '--tmpfs', '/tmp');
  const network = spec.net === true || publish;
  if (rebuildEtc) {
    const resolv = network && layout.resolvConf === true;
    rebuildDir(
      a,
      spec.rootfs,
      'etc',
      etcKind === 'dir' ? layout.etc! : [],
      new Set(resolv ? ['hosts', 'resolv.conf'] : ['hosts']),
    );
    a.push('--perms', '0444', '--ro-bind-data', String(HOSTS_FD), '/etc/hosts');
    if (resolv) a.push('--ro-bind', '/etc/resolv.conf', '/etc/resolv.conf');
    a.push('--remount-ro', '/etc');
  } else if (spec.net && layout.resolvConf) a.push('--ro-bind', '/etc/resolv.conf', '/etc/resolv.conf');
  if (rebuildRun) {
    rebuildDir(a, spec.rootfs, 'run', runKind === 'dir' ? (layout.run ?? []) : [], new Set(['secrets']));
    secrets.forEach((s, i) => {
      a.push('--perms', '0400', '--ro-bind-data', String(SECRET_FD + i), `/run/secrets/${s.name}`);
    });
    a.push('--remount-ro', '/run');
  }
  for (const v of spec.volumes ?? []) a.push(v.readOnly ? '--ro-bind' : '--bind', v.host, v.container);
  a.push('--remount-ro', '/');
  a.push('--chdir', spec.process.cwd);
  a.push('--clearenv');
  for (const [k, v] of spec.process.env) a.push('--setenv', k, v);
  a.push('--cap-drop', 'ALL');
  if (spec.seccomp ?? true) a.push('--seccomp', String(SECCOMP_FD));
  a.push('--info-fd', String(INFO_FD));
  if (publish && !layout.joinedNetwork) a.push('--block-fd', String(BLOCK_FD));
  a.push('--', ...spec.process.argv);
  return a;
}

/**
 * Checks that every volume target can be mounted: it exists in the image, or its first missing component lies
 * directly below `/` or below `/tmp` (both tmpfs in the sandbox). Throws RUN_VOLUME_INVALID otherwise, since bwrap
 * cannot create a directory inside the read-only image.
 */
export async function checkVolumeTargets(rootfs: string, volumes: readonly Volume[]): Promise<void> {
  for (const v of volumes) {
    const found = await lookupInRoot(rootfs, v.container);
    if (found.kind !== 'missing') continue;
    const missing = found.missingAt!;
    const parent = missing.slice(0, missing.lastIndexOf('/')) || '/';
    if (
      parent === '/' ||
      isWithin(parent, '/tmp') ||
      volumes.some((o) => o !== v && isWithin(parent, o.container))
    )
      continue;
    throw new RunError(
      'RUN_VOLUME_INVALID',
      `cannot mount ${JSON.stringify(v.host)} at ${JSON.stringify(v.container)}: ${JSON.stringify(missing)} does not exist in the image and ${JSON.stringify(parent)} is read-only; mount at a path the image has, at a new top-level path, or below /tmp`,
      { path: v.container },
    );
  }
}

/** How the sandbox's standard streams are wired. */
export interface SandboxStdio {
  readonly stdin?: 'inherit' | 'pipe' | 'ignore';
  readonly stdout?: 'inherit' | 'pipe';
  readonly stderr?: 'inherit' | 'pipe';
}

/** A running sandbox. */
export interface SandboxHandle {
  /** bwrap's process (its stdin/stdout/stderr are set when piped). */
  readonly child: ChildProcess;
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly stdin: Writable | null;
  /** The bwrap argv used (for `--dry-run` style output and debugging). */
  readonly args: readonly string[];
  /**
   * Resolves with the exit code to pass on: the command's exit status, or 128+N when it was killed by signal N (bwrap
   * reports it that way, as shells do). Rejects with RUN_SANDBOX_FAILED when bwrap failed before starting the command.
   */
  readonly exited: Promise<number>;
  /**
   * Sends `signal` to the sandboxed command (not to bwrap's init, which would drop it). Returns false when the command
   * is not running.
   */
  signal(signal: NodeJS.Signals): boolean;
  /** The sandboxed command's pid in pare's pid namespace, once it runs (undefined before and after). */
  commandPid(): number | undefined;
}

/** Options for startSandbox. */
export interface StartOptions extends SandboxStdio {
  /** Seccomp arch; default from the host (the image must match it anyway). */
  readonly arch?: SeccompArch;
  /** Path of bwrap; default: found by checkSandboxSupport. */
  readonly bwrap?: string;
  /**
   * A command bwrap runs under, as its argv up to bwrap's path (`strace -f -o LOG --`: src/slim's HTTP probe). It is
   * placed right before bwrap, so it sees bwrap and the sandbox only (not nsenter), and must pass file descriptors on.
   */
  readonly wrap?: readonly string[];
}

/**
 * Starts `spec` under bwrap and returns a handle. Checks host support first (RUN_BWRAP_MISSING, RUN_USERNS_DISABLED)
 * and the volume targets (RUN_VOLUME_INVALID). Does not forward the caller's own signals: the CLI does that with
 * `handle.signal`.
 */
export async function startSandbox(spec: SandboxSpec, options: StartOptions = {}): Promise<SandboxHandle> {
  const bwrap = options.bwrap ?? checkSandboxSupport();
  const arch = options.arch ?? hostSeccompArch();
  await checkVolumeTargets(spec.rootfs, spec.volumes ?? []);
  const publish = spec.publish ?? [];
  if (publish.length > 0 && spec.net) {
    throw new RunError(
      'RUN_PUBLISH_INVALID',
      'cannot publish ports with --net: the host network is shared already',
    );
  }
  const pasta = publish.length > 0 ? findNetworkTool() : undefined;
  // Root connects bwrap's own network namespace (connectNetwork, once bwrap announces its pid); anyone else has pasta
  // make the namespaces first and starts bwrap inside them through nsenter (createNetwork).
  const rootless = pasta !== undefined && process.getuid?.() !== 0;
  const nsenter = rootless ? findNsenter() : undefined;
  const topLevel = await listTopLevel(spec.rootfs);
  // Only a real directory is listed: a symlinked /etc or /run could point anywhere on the host.
  const listed = async (name: string) =>
    topLevel.find((e) => e.name === name)?.kind === 'dir' ? await listTopLevel(join(spec.rootfs, name)) : [];
  const layout: SandboxLayout = {
    etc: await listed('etc'),
    ...((spec.secrets ?? []).length > 0 ? { run: await listed('run') } : {}),
    resolvConf: (spec.net === true || publish.length > 0) && (await exists('/etc/resolv.conf')),
  };
  const secretFds = await openSecrets(spec.secrets ?? []);
  const args = bwrapArgs(spec, topLevel, { ...layout, ...(rootless ? { joinedNetwork: true } : {}) });
  const wrap = options.wrap ?? [];
  let created: CreatedNetwork | undefined;
  let child: ChildProcess;
  try {
    if (rootless) created = await createNetwork(pasta!, publish);
    const [command, argv] = created
      ? [
          nsenter!,
          [
            `--user=${created.userns}`,
            `--net=${created.netns}`,
            '--preserve-credentials',
            '--',
            ...wrap,
            bwrap,
            ...args,
          ],
        ]
      : wrap.length > 0
        ? [wrap[0]!, [...wrap.slice(1), bwrap, ...args]]
        : [bwrap, args];
    child = spawn(command, argv, {
      stdio: [
        options.stdin ?? 'inherit',
        options.stdout ?? 'inherit',
        options.stderr ?? 'inherit',
        'pipe',
        'pipe',
        'pipe',
        publish.length > 0 && !created ? 'pipe' : 'ignore',
        ...secretFds,
      ],
    });
  } catch (e) {
    await created?.stop();
    throw e;
  } finally {
    for (const fd of secretFds) closeSync(fd);
  }
  const seccompPipe = child.stdio[SECCOMP_FD] as Writable;
  const infoPipe = child.stdio[INFO_FD] as Readable;
  // A short filter fits the pipe buffer; bwrap reads it to EOF before it executes anything.
  seccompPipe.on('error', () => {});
  if (spec.seccomp ?? true) seccompPipe.end(Buffer.from(seccompProgram(arch)));
  else seccompPipe.end();
  const stdio = child.stdio as unknown as (Readable | Writable | null)[];
  const hostsPipe = stdio[HOSTS_FD] as Writable;
  hostsPipe.on('error', () => {});
  hostsPipe.end(hostsFile(spec.process.hostname));
  const blockPipe = publish.length > 0 && !created ? (stdio[BLOCK_FD] as Writable) : undefined;
  blockPipe?.on('error', () => {});

  let initPid: number | undefined;
  let commandPid: number | undefined;
  const infoChunks: Buffer[] = [];
  let network: Promise<NetworkHandle> | undefined = created ? Promise.resolve(created) : undefined;
  infoPipe.on('data', (c: Buffer) => {
    infoChunks.push(c);
    const m = /"child-pid"\s*:\s*(\d+)/.exec(Buffer.concat(infoChunks).toString('utf8'));
    if (m && initPid === undefined) {
      initPid = Number(m[1]);
      // bwrap waits on BLOCK_FD before it executes the command: connect the network first, then let it go.
      if (pasta && blockPipe) {
        const init = initPid;
        network = connectNetwork(pasta, init, publish);
        network.then(
          () => blockPipe.end('x'),
          () => {
            // Never release the block (the command would run unconnected): kill the sandbox's init, which takes its
            // pid namespace with it, and bwrap. Its pipes then close, and `exited` rejects with pasta's error.
            try {
              process.kill(init, 'SIGKILL');
            } catch {
              /* gone */
            }
            child.kill('SIGKILL');
          },
        );
      }
    }
  });
  infoPipe.on('error', () => {});
  let done = false;

  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', (e) =>
      reject(
        new RunError('RUN_SANDBOX_FAILED', `cannot start ${JSON.stringify(bwrap)}: ${e.message}`, {
          cause: e,
        }),
      ),
    );
    child.on('close', async (code, sig) => {
      done = true;
      if (network) {
        try {
          await (await network).stop();
        } catch (e) {
          reject(e);
          return;
        }
      }
      if (initPid === undefined && code !== 0) {
        reject(diagnoseStartFailure(bwrap, code, sig));
        return;
      }
      resolve(code ?? 128 + signalNumber(sig));
    });
  });

  const findCommand = (): number | undefined => {
    if (commandPid !== undefined || initPid === undefined) return commandPid;
    commandPid = childWithNsPid(initPid, 2);
    return commandPid;
  };

  return {
    child,
    stdout: child.stdout,
    stderr: child.stderr,
    stdin: child.stdin,
    args,
    exited,
    signal(sig) {
      if (done) return false;
      const pid = findCommand();
      try {
        if (pid !== undefined) process.kill(pid, sig);
        else child.kill(sig);
        return true;
      } catch {
        return false;
      }
    },
    commandPid: () => (done ? undefined : findCommand()),
  };
}

/** Returns the seccomp arch of this host; throws RUN_ARCH_UNSUPPORTED elsewhere. */
export function hostSeccompArch(): SeccompArch {
  if (process.arch === 'x64') return 'x86_64';
  if (process.arch === 'arm64') return 'aarch64';
  throw new RunError(
    'RUN_ARCH_UNSUPPORTED',
    `cannot run sandbox on ${process.arch}: pare's seccomp filter supports x86_64 and aarch64`,
  );
}

/**
 * Returns the pid (in our namespace) of the child of `parent` whose pid inside its namespace is `nsPid`, from
 * /proc/PID/task/PID/children and the NSpid line of /proc/PID/status. bwrap's init is pid 1; the command is pid 2.
 */
function childWithNsPid(parent: number, nsPid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
    for (const k of kids) {
      const status = readFileSync(`/proc/${k}/status`, 'utf8');
      const ns = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
      if (ns && Number(ns[ns.length - 1]) === nsPid) return k;
    }
  } catch {
    /* gone or not yet there */
  }
  return undefined;
}

function signalNumber(sig: NodeJS.Signals | null): number {
  if (!sig) return 0;
  return osConstants.signals[sig] ?? 0;
}

/** Largest secret, as podman's (pkg/secrets maxSecretSize): 512000 bytes. */
export const MAX_SECRET_SIZE = 512_000;

/** Opens each secret for bwrap to copy; throws RUN_SECRET_INVALID for a missing, non-regular or too large file. */
async function openSecrets(secrets: readonly Secret[]): Promise<number[]> {
  const fds: number[] = [];
  try {
    for (const s of secrets) {
      let fd: number;
      try {
        fd = openSync(s.host, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
      } catch (e) {
        throw new RunError(
          'RUN_SECRET_INVALID',
          `cannot read secret ${JSON.stringify(s.name)} from ${JSON.stringify(s.host)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
          { cause: e, path: s.host },
        );
      }
      fds.push(fd);
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > MAX_SECRET_SIZE) {
        throw new RunError(
          'RUN_SECRET_INVALID',
          `cannot use secret ${JSON.stringify(s.name)} from ${JSON.stringify(s.host)}: ${st.isFile() ? `${st.size} bytes, more than ${MAX_SECRET_SIZE}` : 'not a regular file'}`,
          { path: s.host },
        );
      }
    }
    return fds;
  } catch (e) {
    for (const fd of fds) closeSync(fd);
    throw e;
  }
}

/**
 * bwrap exited before the command started. Re-run the smallest user-namespace sandbox with captured stderr to tell a
 * host restriction (RUN_USERNS_DISABLED) from anything else (RUN_SANDBOX_FAILED); bwrap has already printed its own
 * message on the inherited stderr.
 */
function diagnoseStartFailure(bwrap: string, code: number | null, sig: NodeJS.Signals | null): RunError {
  const probe = spawnSync(
    bwrap,
    ['--unshare-user', '--unshare-pid', '--ro-bind', '/', '/', '--', bwrap, '--version'],
    {
      encoding: 'utf8',
      timeout: 10_000,
    },
  );
  const why = explainBwrapFailure(probe.stderr ?? '');
  if (probe.status !== 0 && why) return why;
  return new RunError(
    'RUN_SANDBOX_FAILED',
    `cannot run sandbox: bubblewrap failed before starting the command (${sig ? `signal ${sig}` : `exit ${code}`}); see its message above`,
  );
}
