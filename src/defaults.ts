/**
 * The defaults every part of pare shares, each defined once: pare's version (read from package.json, so the sources,
 * the compiled package and the single executable all report the one in the manifest), the PATH an image gets when it
 * sets none, and the epoch (SOURCE_DATE_EPOCH) bounds and parser every command uses.
 */
import manifest from '../package.json' with { type: 'json' };
import { UsageError } from './errors.ts';

/** pare's version, as package.json says. */
export const VERSION: string = manifest.version;

/** The PATH of an image whose config sets none (what Docker, podman and the Debian base images use). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The latest epoch pare accepts (2242-03-16): the largest mtime a tar header's 11 octal digits hold. */
export const EPOCH_MAX = 8 ** 11 - 1;

/** What an epoch must be, for messages. */
export const EPOCH_WANT = `want whole seconds since 1970 from 0 to ${EPOCH_MAX}`;

/** True when `v` is an epoch pare accepts: whole seconds from 0 to EPOCH_MAX. */
export function isEpoch(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= EPOCH_MAX;
}

/**
 * Returns SOURCE_DATE_EPOCH from `env` (the process's by default), or undefined when it is unset or empty. Anything
 * else that is not decimal whole seconds from 0 to EPOCH_MAX is a UsageError (exit 2): a build, signature, SBOM or
 * provenance must not silently fall back to another time.
 */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const text = env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === '') return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!isEpoch(n))
    throw new UsageError('USAGE', `cannot use SOURCE_DATE_EPOCH=${JSON.stringify(text)}: ${EPOCH_WANT}`);
  return n;
}
