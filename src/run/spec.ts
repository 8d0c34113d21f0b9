import { isAbsolute, resolve as resolveHost } from 'node:path';
import { DEFAULT_PATH } from '../defaults.ts';
import { RunError } from '../errors.ts';
import { normalizePath } from '../fstree/index.ts';
import type { RunConfig } from '../oci/model.ts';
import type { Secret } from './sandbox.ts';
import type { ExecUser } from './user.ts';

/**
 * What to run and how, from the image's config plus the caller's overrides, with docker's semantics
 * (https://docs.docker.com/reference/dockerfile/#understand-how-cmd-and-entrypoint-interact):
 *   - argv = Entrypoint ++ Cmd; `-- CMD…` replaces Cmd; `--entrypoint X` replaces Entrypoint with [X] and clears the
 *     image's Cmd (an empty `--entrypoint ''` clears the Entrypoint);
 *   - Env = image Env, PATH defaulted, HOSTNAME and HOME set, then `-e` (later wins);
 *   - WorkingDir = `--workdir`, else the image's, else `/`.
 * Pure: no I/O.
 */

export { DEFAULT_PATH };
export const DEFAULT_HOSTNAME = 'pare';

/** A host path bound into the sandbox. */
export interface Volume {
  /** Absolute host path. */
  readonly host: string;
  /** Canonical absolute path inside the sandbox. */
  readonly container: string;
  readonly readOnly: boolean;
}

/** Caller overrides (the `pare run` flags). */
export interface ProcessOverrides {
  /** Replaces the image's Cmd when non-empty. */
  readonly cmd?: readonly string[];
  /** Replaces the image's Entrypoint (and clears its Cmd); '' clears the Entrypoint. */
  readonly entrypoint?: string;
  /** `K=V` (set) or `K` (copy from `hostEnv` when set there), applied after the image's Env. */
  readonly env?: readonly string[];
  readonly workdir?: string;
  readonly hostname?: string;
  /** The host environment `-e K` copies from; default none. */
  readonly hostEnv?: Readonly<Record<string, string | undefined>>;
}

/** The process the sandbox starts. */
export interface ProcessSpec {
  readonly argv: readonly string[];
  /** Sorted by name for a deterministic argv. */
  readonly env: readonly (readonly [string, string])[];
  readonly cwd: string;
  readonly hostname: string;
}

const ENV_NAME = /^[^=\0]+$/;

/** Returns `[name, value]` for `K=V`; throws RUN_ENV_INVALID for an empty name or NUL. */
export function parseEnvVar(s: string, origin: string): [string, string] {
  const i = s.indexOf('=');
  const name = i < 0 ? s : s.slice(0, i);
  if (!ENV_NAME.test(name) || s.includes('\0')) {
    throw new RunError(
      'RUN_ENV_INVALID',
      `cannot use environment variable ${JSON.stringify(s)} from ${origin}: want NAME=VALUE`,
    );
  }
  return [name, i < 0 ? '' : s.slice(i + 1)];
}

/**
 * Returns the process for `config` with `overrides` and the resolved `user` applied. Throws RUN_NO_COMMAND,
 * RUN_ENV_INVALID, RUN_WORKDIR_INVALID.
 */
export function resolveProcess(
  config: RunConfig | undefined,
  user: ExecUser,
  overrides: ProcessOverrides = {},
): ProcessSpec {
  const c = config ?? {};
  const entrypoint =
    overrides.entrypoint !== undefined
      ? overrides.entrypoint === ''
        ? []
        : [overrides.entrypoint]
      : (c.Entrypoint ?? []);
  const cmd =
    overrides.cmd && overrides.cmd.length > 0
      ? overrides.cmd
      : overrides.entrypoint !== undefined
        ? []
        : (c.Cmd ?? []);
  const argv = [...entrypoint, ...cmd];
  if (argv.length === 0) {
    throw new RunError(
      'RUN_NO_COMMAND',
      'cannot run image: it has no Entrypoint or Cmd; give one after "--" (pare run IMAGE -- CMD…)',
    );
  }
  const hostname = overrides.hostname ?? DEFAULT_HOSTNAME;
  const env = new Map<string, string>();
  for (const e of c.Env ?? []) {
    const [k, v] = parseEnvVar(e, 'the image config');
    env.set(k, v);
  }
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  env.set('HOSTNAME', hostname);
  if (!env.has('HOME')) env.set('HOME', user.home);
  for (const e of overrides.env ?? []) {
    if (!e.includes('=')) {
      const v = overrides.hostEnv?.[e];
      if (v !== undefined) env.set(parseEnvVar(e, '-e')[0], v);
      continue;
    }
    const [k, v] = parseEnvVar(e, '-e');
    env.set(k, v);
  }
  const wd = overrides.workdir ?? (c.WorkingDir || '/');
  if (!wd.startsWith('/')) {
    throw new RunError(
      'RUN_WORKDIR_INVALID',
      `cannot use working directory ${JSON.stringify(wd)}: it must be absolute`,
    );
  }
  return {
    argv,
    env: [...env].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    cwd: normalizePath(wd),
    hostname,
  };
}

/**
 * Parses `-v HOST:CTR[:ro|rw]`. A relative HOST is taken from `cwd`; CTR must be absolute and cannot be `/`, `/proc`
 * or `/dev` (the sandbox owns those). Throws RUN_VOLUME_INVALID.
 */
export function parseVolume(s: string, cwd: string): Volume {
  const bad = (why: string) =>
    new RunError('RUN_VOLUME_INVALID', `cannot use volume ${JSON.stringify(s)}: ${why}`);
  const parts = s.split(':');
  if (parts.length < 2 || parts.length > 3) throw bad('want HOST:CONTAINER[:ro]');
  const [host, ctr, mode] = parts as [string, string, string | undefined];
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw')
    throw bad(`unknown option ${JSON.stringify(mode)} (want ro or rw)`);
  if (host === '') throw bad('the host path is empty');
  if (!isAbsolute(host) && !host.startsWith('.'))
    throw bad('named volumes are not supported; give a host path (./dir or /dir)');
  if (!ctr.startsWith('/')) throw bad('the container path must be absolute');
  let container: string;
  try {
    container = normalizePath(ctr);
  } catch {
    throw bad('the container path must not contain ".."');
  }
  if (
    container === '/' ||
    container === '/proc' ||
    container.startsWith('/proc/') ||
    container === '/dev' ||
    container.startsWith('/dev/')
  ) {
    throw bad(`${container} is managed by the sandbox`);
  }
  return { host: resolveHost(cwd, host), container, readOnly: mode === 'ro' };
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
/** Largest /tmp the sandbox accepts (a tmpfs is memory): 64 GiB. */
export const MAX_TMP_SIZE = 64 * 1024 ** 3;

/** Parses a size such as `1048576`, `64m`, `64MiB`, `1g` into bytes; throws RUN_SIZE_INVALID. */
export function parseSize(s: string): number {
  const m = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(s.trim());
  const n = m ? Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]! : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 4096 || n > MAX_TMP_SIZE) {
    throw new RunError('RUN_SIZE_INVALID', `cannot use size ${JSON.stringify(s)}: want 4k..64g, e.g. 64m`);
  }
  return n;
}

/** podman's secret names: 1 to 253 characters, no "/", "=" or NUL (a file name below /run/secrets). */
const SECRET_NAME = /^[A-Za-z0-9_.-]{1,253}$/;

/**
 * Parses `--secret NAME=FILE`: the file's content appears at /run/secrets/NAME. A relative FILE is taken from `cwd`.
 * Throws RUN_SECRET_INVALID.
 */
export function parseSecret(s: string, cwd: string): Secret {
  const i = s.indexOf('=');
  const name = i < 0 ? s : s.slice(0, i);
  const file = i < 0 ? '' : s.slice(i + 1);
  if (!SECRET_NAME.test(name) || name === '.' || name === '..') {
    throw new RunError(
      'RUN_SECRET_INVALID',
      `cannot use secret ${JSON.stringify(s)}: the name ${JSON.stringify(name)} must be 1 to 253 letters, digits, ".", "_" or "-"; want NAME=FILE`,
    );
  }
  if (file === '') {
    throw new RunError(
      'RUN_SECRET_INVALID',
      `cannot use secret ${JSON.stringify(s)}: give the file, NAME=FILE`,
    );
  }
  return { name, host: resolveHost(cwd, file) };
}
