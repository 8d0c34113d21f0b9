import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { SliceError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';
import {
  bwrapArgs,
  checkSandboxSupport,
  DEFAULT_PATH,
  hostSeccompArch,
  listTopLevel,
  materializeTree,
  seccompProgram,
} from '../run/index.ts';
import { parseStraceLog } from './strace.ts';

/**
 * The slice probe: run commands in the bubblewrap sandbox on the *unsliced* tree and record every path they touch,
 * for what static analysis cannot see (dlopen'ed libraries, data files named at run time).
 *
 * How strace is run: on the host, around bwrap (`strace -f -y -e trace=file,process -o LOG -- bwrap …`). strace
 * cannot run inside the sandbox: the sandbox's seccomp filter denies ptrace (src/run/seccomp.ts), and the image
 * has no strace of its own. Tracing bwrap from outside needs neither: ptrace of a child that enters a user namespace
 * the tracer's user owns is allowed, and since bwrap pivots into the image root before it execs the command, the
 * paths strace logs for the command and its descendants are already image paths (strace.ts tells them apart from
 * bwrap's own set-up). The sandbox is the one `pare run` uses (same bwrap arguments and seccomp filter), minus the
 * network unless `net` is set.
 */

export interface ProbeOptions {
  /** Share the host network (default: a private loopback only). */
  readonly net?: boolean;
  /** User and group to run as (default 65532:65532, the image's nonroot user). */
  readonly uid?: number;
  readonly gid?: number;
  /** Longest a probe command may run, ms (default 120 000). */
  readonly timeoutMs?: number;
  /** Path of strace (default: `PARE_STRACE`, else strace on PATH). */
  readonly strace?: string;
  /** Path of bwrap (default: as `pare run` finds it). */
  readonly bwrap?: string;
  /** Host directory for the unpacked tree (default the system temp dir). */
  readonly tmpDir?: string;
}

/** What a probe run needs besides the commands. */
export interface ProbeContext extends ProbeOptions {
  /** The image's Env (`KEY=VALUE`). */
  readonly env: readonly string[];
  /** Working directory inside the image. */
  readonly cwd: string;
}

/** Runs probe commands over a tree and returns, per command, the image paths it touched (unresolved, sorted). */
export interface Prober {
  trace(tree: Tree, commands: readonly (readonly string[])[], context: ProbeContext): Promise<string[][]>;
}

/** Most bytes of a failing command's stderr quoted in the error. */
const STDERR_TAIL = 2000;

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/usr/sbin'])) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Finds strace: `given`, else PARE_STRACE, else strace on PATH. Throws SLICE_PROBE_UNAVAILABLE. */
export function findStrace(given?: string): string {
  const strace = given ?? process.env.PARE_STRACE ?? findOnPath('strace');
  if (!strace)
    throw new SliceError(
      'SLICE_PROBE_UNAVAILABLE',
      'cannot run slice probe: strace is not installed; install it (Debian/Ubuntu: apt-get install strace) or set PARE_STRACE to its path',
    );
  return strace;
}

/**
 * strace's arguments for a probe, up to the traced command: follow forks, file and process calls, to `log`, with
 * the host pid of each child a process in the sandbox's pid namespace clones (strace ≥ 5.9; parseStraceLog needs it
 * to follow threads and forks that do not exec).
 */
export function straceArgs(log: string): string[] {
  return ['-f', '-qq', '-y', '--pidns-translation', '-e', 'trace=file,process', '-o', log, '--'];
}

/**
 * Returns the default prober: materialises the tree once into a temp dir, runs each command under strace + bwrap,
 * removes the temp dir. Throws SLICE_PROBE_UNAVAILABLE when strace is missing (and the RunError of the sandbox
 * checks when bwrap or user namespaces are), SLICE_PROBE_FAILED when a command exits non-zero or times out.
 */
export function straceProber(defaults: ProbeOptions = {}): Prober {
  return {
    async trace(tree, commands, context) {
      const o = { ...defaults, ...context };
      const strace = findStrace(o.strace);
      const bwrap = o.bwrap ?? checkSandboxSupport();
      const work = await mkdtemp(join(o.tmpDir ?? tmpdir(), 'pare-probe-'));
      try {
        const rootfs = join(work, 'root');
        await materializeTree(tree, rootfs);
        const topLevel = await listTopLevel(rootfs);
        const out: string[][] = [];
        for (let i = 0; i < commands.length; i++) {
          const argv = commands[i]!;
          if (argv.length === 0)
            throw new SliceError(
              'SLICE_OPTIONS_INVALID',
              `cannot run slice probe #${i + 1}: the command is empty`,
            );
          const log = join(work, `trace-${i}.log`);
          await runTraced(strace, bwrap, rootfs, topLevel, argv, log, o);
          out.push(parseStraceLog(await readFile(log, 'utf8'), { cwd: o.cwd }));
        }
        return out;
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
  };
}

async function runTraced(
  strace: string,
  bwrap: string,
  rootfs: string,
  topLevel: Awaited<ReturnType<typeof listTopLevel>>,
  argv: readonly string[],
  log: string,
  o: ProbeContext,
): Promise<void> {
  const env = new Map<string, string>([['PATH', DEFAULT_PATH]]);
  for (const kv of o.env) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  if (!env.has('HOME')) env.set('HOME', '/');
  const uid = o.uid ?? 65532;
  const gid = o.gid ?? 65532;
  const args = bwrapArgs(
    {
      rootfs,
      process: {
        argv,
        env: [...env].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        cwd: o.cwd,
        hostname: 'pare',
      },
      user: { uid, gid, home: env.get('HOME')!, source: 'option' },
      net: o.net ?? false,
      newSession: true,
    },
    topLevel,
  );
  const child = spawn(strace, [...straceArgs(log), bwrap, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
  });
  const seccomp = child.stdio[3] as Writable;
  seccomp.on('error', () => {});
  seccomp.end(Buffer.from(seccompProgram(hostSeccompArch())));
  (child.stdio[4] as Readable).resume();
  const stderr: Buffer[] = [];
  child.stdout!.resume();
  child.stderr!.on('data', (c: Buffer) => {
    stderr.push(c);
    if (stderr.length > 64) stderr.shift();
  });
  const timeoutMs = o.timeoutMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', (e) =>
      reject(
        new SliceError(
          'SLICE_PROBE_UNAVAILABLE',
          `cannot run slice probe: cannot start ${JSON.stringify(strace)}: ${e.message}`,
          {
            cause: e,
          },
        ),
      ),
    );
    child.on('close', (c, sig) => resolve(c ?? 128 + (sig ? 9 : 0)));
  }).finally(() => clearTimeout(timer));
  const cmd = JSON.stringify(argv.join(' '));
  if (timedOut)
    throw new SliceError(
      'SLICE_PROBE_FAILED',
      `cannot run slice probe ${cmd}: no exit after ${timeoutMs} ms`,
    );
  if (code !== 0) {
    const tail = Buffer.concat(stderr).toString('utf8').slice(-STDERR_TAIL).trim();
    throw new SliceError(
      'SLICE_PROBE_FAILED',
      `cannot run slice probe ${cmd}: it exited with status ${code} on the unsliced image; fix the probe command${tail ? `: ${tail}` : ''}`,
    );
  }
}
