import { UsageError } from '../errors.ts';

/**
 * Limits on what reading one layer may cost, so a hostile layer (a decompression bomb, a tar of ten million empty
 * files, a 64 KiB path) is refused before it exhausts memory or disk. The defaults are far above any real image: the
 * biggest layers of public images are a few GiB uncompressed at ratios below 20, with fewer than 200 000 entries and
 * paths under 300 bytes. Each can be changed with an environment variable (named in the refusal), e.g. to raise one
 * for an unusual image or to lower them all in tests.
 */
export interface ReadLimits {
  /** Uncompressed bytes of one layer (PARE_MAX_LAYER_BYTES, default 64 GiB). */
  readonly layerBytes: number;
  /** Uncompressed / compressed bytes of one layer (PARE_MAX_RATIO, default 200)... */
  readonly ratio: number;
  /** ...checked once this many uncompressed bytes were produced (PARE_RATIO_AFTER, default 64 MiB). */
  readonly ratioAfter: number;
  /** Members of one layer's tar (PARE_MAX_ENTRIES, default 2 000 000). */
  readonly entries: number;
  /** Bytes of one member path or link target (PARE_MAX_PATH_LENGTH, default 4096, Linux's PATH_MAX). */
  readonly pathLength: number;
  /** log2 of the largest zstd window (PARE_MAX_ZSTD_WINDOW_LOG, default 27 = 128 MiB, zstd's own default). */
  readonly zstdWindowLog: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = Object.freeze({
  layerBytes: 64 * 2 ** 30,
  ratio: 200,
  ratioAfter: 64 * 2 ** 20,
  entries: 2_000_000,
  pathLength: 4096,
  zstdWindowLog: 27,
});

/** The environment variable that sets each limit. */
export const LIMIT_ENV: Readonly<Record<keyof ReadLimits, string>> = Object.freeze({
  layerBytes: 'PARE_MAX_LAYER_BYTES',
  ratio: 'PARE_MAX_RATIO',
  ratioAfter: 'PARE_RATIO_AFTER',
  entries: 'PARE_MAX_ENTRIES',
  pathLength: 'PARE_MAX_PATH_LENGTH',
  zstdWindowLog: 'PARE_MAX_ZSTD_WINDOW_LOG',
});

/** Returns the limits: the defaults, each replaced by its environment variable when set. Throws USAGE on a bad value. */
export function readLimits(env: Readonly<Record<string, string | undefined>> = process.env): ReadLimits {
  const out: Record<string, number> = { ...DEFAULT_READ_LIMITS };
  for (const [k, name] of Object.entries(LIMIT_ENV)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const n = Number(v);
    if (
      !/^[0-9]+$/.test(v) ||
      !Number.isSafeInteger(n) ||
      n < 1 ||
      (k === 'zstdWindowLog' && (n < 10 || n > 31))
    )
      throw new UsageError(
        'USAGE',
        `cannot use ${name}=${JSON.stringify(v)}: want a positive integer${k === 'zstdWindowLog' ? ' from 10 to 31' : ''}`,
      );
    out[k] = n;
  }
  return out as unknown as ReadLimits;
}
