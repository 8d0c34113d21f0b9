import type { Command } from 'commander';
import { UsageError } from '../errors.ts';
import type { RegistryClient } from '../registry/index.ts';

/**
 * The flags every command that may reach a registry shares (--ca-file, --insecure-registry, --retries, --timeout,
 * --quiet), and the client made from them (blob progress on stderr as progress.ts says). The registry module is loaded only when a
 * client is made: a command given a local image (or `pare audit DIR`) never loads it.
 */

export interface RegistryFlags {
  readonly caFile: string[];
  readonly insecureRegistry: string[];
  readonly retries?: string;
  readonly timeout?: string;
  readonly quiet?: boolean;
}

/** commander's accumulator for repeatable options. */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** Adds --ca-file, --insecure-registry, --retries, --timeout and --quiet to a command. */
export function withRegistryFlags(cmd: Command): Command {
  return cmd
    .option('--ca-file <file>', 'trust this PEM CA certificate too (repeatable)', collect, [])
    .option(
      '--insecure-registry <host[:port]>',
      'allow plain HTTP and unverified TLS for this registry (repeatable; loopback is always allowed HTTP)',
      collect,
      [],
    )
    .option('--retries <n>', 'retries for network errors, 429 and 5xx', '4')
    .option('--timeout <seconds>', 'connect/response timeout and longest pause in a transfer', '60')
    .option('-q, --quiet', 'no progress on stderr', false);
}

/** Returns the decimal flag value (at least `min`), or `fallback` when absent; anything else is a USAGE error. */
function wholeNumber(name: string, v: string | undefined, fallback: number, min: number): number {
  if (v === undefined) return fallback;
  const n = /^[0-9]+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(
      'USAGE',
      `cannot use ${name} ${JSON.stringify(v)}: want a whole number${min > 0 ? ` from ${min}` : ''}`,
    );
  return n;
}

/** Returns a client configured from the shared flags (defaults when a command has none of them). */
export async function clientFromFlags(flags: Partial<RegistryFlags> = {}): Promise<RegistryClient> {
  const { RegistryClient } = await import('../registry/index.ts');
  const { progress, progressMode } = await import('./progress.ts');
  const mode = progressMode(flags.quiet);
  return new RegistryClient({
    caFile: flags.caFile ?? [],
    insecureHosts: [
      ...(flags.insecureRegistry ?? []),
      ...(process.env.PARE_INSECURE_REGISTRIES ?? '').split(',').filter(Boolean),
    ],
    retries: wholeNumber('--retries', flags.retries, 4, 0),
    timeoutMs: wholeNumber('--timeout', flags.timeout, 60, 1) * 1000,
    userAgent: 'pare',
    ...(mode === 'none' ? {} : { onProgress: progress(mode).blob }),
  });
}

/** A registry client made on first use (local references never make one), closed once. */
export interface LazyClient {
  get(): Promise<RegistryClient>;
  close(): Promise<void>;
}

/** Returns a LazyClient configured from the shared flags. */
export function lazyClient(flags: Partial<RegistryFlags> = {}): LazyClient {
  let client: Promise<RegistryClient> | undefined;
  return {
    get: () => {
      client ??= clientFromFlags(flags);
      return client;
    },
    close: async () => {
      const c = client;
      client = undefined;
      await (await c)?.close();
    },
  };
}
