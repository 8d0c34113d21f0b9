import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** The sandbox probe: a C program that reports what it can see and do inside a container (see its header). */
export const PROBE_SOURCE = join(import.meta.dirname, '../fixtures/run/probe.c');

/**
 * Compiles the probe with `gcc` into `out` and returns `out`: static (runs in an image without libc) unless
 * `dynamic`, which then needs an ld.so in the image.
 */
export function compileProbe(gcc: string, out: string, options: { dynamic?: boolean } = {}): string {
  execFileSync(gcc, [...(options.dynamic ? [] : ['-static']), '-O2', '-o', out, PROBE_SOURCE]);
  return out;
}
