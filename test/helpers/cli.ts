import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

/** The project's pinned Node (node_modules/.bin/node) and the real `pare` entry, run the way `npx pare` runs it. */
export const NODE = resolve('node_modules/.bin/node');
export const PARE = resolve('bin/pare.js');

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `pare ARGS` to completion. `umask` runs it through `sh -c 'umask …; exec …'`. */
export function pare(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; umask?: string } = {},
): CliResult {
  const env = { ...process.env, NO_COLOR: '1', ...options.env };
  const r = options.umask
    ? spawnSync('sh', ['-c', `umask ${options.umask}; exec "$0" "$@"`, NODE, PARE, ...args], {
        cwd: options.cwd,
        env,
        encoding: 'utf8',
      })
    : spawnSync(NODE, [PARE, ...args], { cwd: options.cwd, env, encoding: 'utf8' });
  return { code: r.status ?? 128 + 9, stdout: r.stdout, stderr: r.stderr };
}

/** Starts `pare ARGS` in the background (for kill tests). */
export function pareSpawn(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawn(NODE, [PARE, ...args], {
    cwd: options.cwd,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Runs `pare ARGS` without blocking the event loop — required when the test process itself serves what pare fetches
 * (a fake archive or registry on 127.0.0.1): `pare()` would deadlock there.
 */
export function pareAsync(
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; umask?: string } = {},
): Promise<CliResult> {
  const env = { ...process.env, NO_COLOR: '1', ...options.env };
  const child = options.umask
    ? spawn('sh', ['-c', `umask ${options.umask}; exec "$0" "$@"`, NODE, PARE, ...args], {
        cwd: options.cwd,
        env,
      })
    : spawn(NODE, [PARE, ...args], { cwd: options.cwd, env });
  return collectChild(child);
}

/** Collects a child's stdout and stderr and its exit code (128 + 9 when a signal ended it). */
export function collectChild(child: ChildProcessWithoutNullStreams): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout, stderr }));
  });
}
