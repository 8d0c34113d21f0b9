import type { Command } from 'commander';
import { UsageError } from '../errors.ts';
import type { BlobProgress, RegistryClient } from '../registry/index.ts';
import { formatBytes } from './format.ts';

/**
 * The flags every command that may reach a registry shares (--ca-file, --insecure-registry, --retries, --timeout,
 * --quiet), the client made from them, and the blob progress display. The registry module is loaded only when a
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

/**
 * Returns a progress sink drawing one line per blob on stderr: on a terminal a live line for the blobs in flight
 * (redrawn at most every 100 ms), elsewhere one line when each blob finishes.
 */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): (e: BlobProgress) => void {
  const live = new Map<string, BlobProgress>();
  let last = 0;
  const tty = stream.isTTY === true;
  const short = (d: string) => d.slice(7, 19);
  return (e) => {
    const verb = e.direction === 'push' ? 'pushed' : 'pulled';
    if (e.state === 'exists' || e.state === 'mounted' || e.state === 'done') {
      live.delete(e.digest);
      const what = e.state === 'exists' ? 'already there' : e.state === 'mounted' ? 'mounted' : verb;
      const line = `${short(e.digest)}: ${what}${e.total !== undefined ? ` (${formatBytes(e.total)})` : ''}`;
      stream.write(tty ? `\r\x1b[K${line}\n` : `${line}\n`);
      return;
    }
    live.set(e.digest, e);
    const now = Date.now();
    if (!tty || now - last < 100) return;
    last = now;
    const parts = [...live.values()].map(
      (p) => `${short(p.digest)} ${formatBytes(p.bytes)}${p.total ? `/${formatBytes(p.total)}` : ''}`,
    );
    stream.write(`\r\x1b[K${parts.join('  ').slice(0, (stream.columns ?? 100) - 1)}`);
  };
}

/** Returns a client configured from the shared flags (defaults when a command has none of them). */
export async function clientFromFlags(flags: Partial<RegistryFlags> = {}): Promise<RegistryClient> {
  const { RegistryClient } = await import('../registry/index.ts');
  return new RegistryClient({
    caFile: flags.caFile ?? [],
    insecureHosts: [
      ...(flags.insecureRegistry ?? []),
      ...(process.env.PARE_INSECURE_REGISTRIES ?? '').split(',').filter(Boolean),
    ],
    retries: wholeNumber('--retries', flags.retries, 4, 0),
    timeoutMs: wholeNumber('--timeout', flags.timeout, 60, 1) * 1000,
    userAgent: 'pare',
    ...(flags.quiet ? {} : { onProgress: progressPrinter() }),
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
