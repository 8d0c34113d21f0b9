import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';

/**
 * Shared benchmark helpers. Every benchmark compares pare with a peer tool in the same run, on the same input, and
 * prints ratios; nothing here asserts on time. Peak RSS and CPU time (user + system, all threads) come from GNU time
 * (`/usr/bin/time -f '%U %S %M'`). CPU time is printed beside wall time because it holds when other work shares the
 * machine, where wall time does not.
 */

export interface Measure {
  readonly name: string;
  readonly seconds: number;
  readonly rssMiB: number | undefined;
  /** User + system CPU seconds of the best run (all threads and children GNU time saw). */
  readonly cpuSeconds?: number | undefined;
}

const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/** Runs a command `runs` times (after one warm-up when `warm`) and returns the best wall time and its peak RSS. */
export function measure(
  name: string,
  cmd: string,
  args: readonly string[],
  options: {
    runs?: number;
    warm?: boolean;
    env?: NodeJS.ProcessEnv;
    shell?: boolean;
    before?: () => void;
  } = {},
): Measure {
  const runs = options.runs ?? 3;
  let best: Measure | undefined;
  if (options.warm) {
    options.before?.();
    spawnSync(cmd, args, { stdio: 'ignore', env: options.env, shell: options.shell });
  }
  for (let i = 0; i < runs; i++) {
    options.before?.();
    const t0 = process.hrtime.bigint();
    const r = GNU_TIME
      ? spawnSync(GNU_TIME, ['-f', '%U %S %M', cmd, ...args], {
          env: options.env,
          encoding: 'utf8',
          maxBuffer: 1 << 26,
        })
      : spawnSync(cmd, args, {
          env: options.env,
          encoding: 'utf8',
          shell: options.shell,
          maxBuffer: 1 << 26,
        });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0)
      throw new Error(`${name}: ${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    const [user, sys, kib] = GNU_TIME
      ? (r.stderr.trim().split('\n').pop() ?? '').trim().split(/\s+/).map(Number)
      : [Number.NaN, Number.NaN, Number.NaN];
    const cpu = (user ?? Number.NaN) + (sys ?? Number.NaN);
    const m = {
      name,
      seconds,
      rssMiB: Number.isFinite(kib) ? kib! / 1024 : undefined,
      cpuSeconds: Number.isFinite(cpu) ? cpu : undefined,
    };
    if (!best || m.seconds < best.seconds) best = m;
  }
  return best!;
}

/** Prints a table of measures with each one's ratio to `base` (pare). */
export function report(
  title: string,
  base: Measure,
  others: readonly Measure[],
  goals: readonly string[] = [],
): void {
  const rows = [base, ...others].map((m) => [
    m.name,
    `${m.seconds.toFixed(2)} s`,
    m.cpuSeconds === undefined ? '-' : `${m.cpuSeconds.toFixed(2)} s CPU`,
    m.rssMiB === undefined ? '-' : `${m.rssMiB.toFixed(0)} MiB`,
    m === base ? '1.00×' : `${(base.seconds / m.seconds).toFixed(2)}× (pare/peer)`,
  ]);
  const w = [0, 1, 2, 3, 4].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(`\n## ${title}\n`);
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(w[i]!)).join('  ')}\n`);
  for (const g of goals) process.stdout.write(`goal: ${g}\n`);
  const load = loadavg()[0]!;
  if (load > availableParallelism())
    process.stdout.write(
      `measured under load: load average ${load.toFixed(1)} on ${availableParallelism()} cores; wall times are unreliable, CPU times hold\n`,
    );
}

export function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** pare's bin. */
export const PARE_BIN = resolve(import.meta.dirname, '../bin/pare.js');

/**
 * The node options of the bin's shebang (`#!/usr/bin/env -S node --flag …`): a user's `pare` runs with them, so the
 * benches run pare as `node <these flags> bin/pare.js` on this Node.
 */
export const PARE_NODE_FLAGS: readonly string[] =
  /^#!\/usr\/bin\/env -S node((?: --?[\w-]+(?:=\S+)?)*)\s*$/m
    .exec(readFileSync(PARE_BIN, 'utf8').split('\n')[0]!)?.[1]
    ?.trim()
    .split(/\s+/)
    .filter(Boolean) ?? [];

/** The arguments that run pare as its bin runs: `[...PARE_NODE_FLAGS, PARE_BIN, ...args]` (with process.execPath). */
export function pareArgs(...args: string[]): string[] {
  return [...PARE_NODE_FLAGS, PARE_BIN, ...args];
}

/** One row of `npm run bench`'s closing summary: what was measured against its goal. */
export interface SummaryRow {
  readonly work: string;
  readonly measured: string;
  readonly goal: string;
  readonly met: boolean;
}

/**
 * Adds a row to the summary `npm run bench` prints at the end (bench/run.ts names the file in PARE_BENCH_SUMMARY;
 * a bench run alone prints only its own report).
 */
export function summarize(row: SummaryRow): void {
  const file = process.env.PARE_BENCH_SUMMARY;
  if (file) appendFileSync(file, `${JSON.stringify(row)}\n`);
}

/** `a / b` of two CPU times, for a summary ("-" when either is unknown). */
export function cpuRatio(a: Measure, b: Measure): string {
  return a.cpuSeconds && b.cpuSeconds
    ? `${(a.cpuSeconds / b.cpuSeconds).toFixed(2)}× CPU (${a.cpuSeconds.toFixed(2)} s vs ${b.cpuSeconds.toFixed(2)} s)`
    : '- CPU';
}
