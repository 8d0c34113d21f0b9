import type { Command } from 'commander';
import { isRegistryError, UsageError } from '../../errors.ts';
import { isLocalRef, parseLocalRef } from '../../layout/index.ts';
import { type Platform, parsePlatform } from '../../oci/index.ts';
import {
  type BlobProgress,
  copy,
  type ImageReference,
  parseReference,
  parseTransportReference,
  RegistryClient,
  type TransportReference,
} from '../../registry/index.ts';
import { formatBytes } from '../format.ts';

/**
 * `pare copy SRC DST`: any transport to any (`docker://`, `oci:`, `oci-archive:`, `docker-archive:`), like
 * `skopeo copy`; an index is narrowed to one platform unless `--all`. This file also holds the registry flags and
 * the progress display shared by push, pull, tags, digest, referrers and login, and the copy action of push and pull.
 */

export interface RegistryFlags {
  readonly caFile: string[];
  readonly insecureRegistry: string[];
  readonly retries?: string;
  readonly timeout?: string;
  readonly quiet?: boolean;
}

function collect(v: string, prev: string[]): string[] {
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

function positiveInt(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError('USAGE', `cannot use ${name} ${JSON.stringify(v)}: want a whole number`);
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

/** Returns a client configured from the shared flags. */
export function clientFromFlags(flags: RegistryFlags): RegistryClient {
  return new RegistryClient({
    caFile: flags.caFile,
    insecureHosts: [
      ...flags.insecureRegistry,
      ...(process.env.PARE_INSECURE_REGISTRIES ?? '').split(',').filter(Boolean),
    ],
    retries: positiveInt('--retries', flags.retries, 4),
    timeoutMs: positiveInt('--timeout', flags.timeout, 60) * 1000,
    userAgent: 'pare',
    ...(flags.quiet ? {} : { onProgress: progressPrinter() }),
  });
}

/** Returns the platform of `--platform`, or undefined. */
export function platformFlag(v: string | undefined): Platform | undefined {
  if (v === undefined) return undefined;
  try {
    return parsePlatform(v);
  } catch (e) {
    throw new UsageError('USAGE', (e as Error).message, { cause: e });
  }
}

/** Runs a parser and turns a bad reference into a UsageError (exit 2: nothing was done). */
function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isRegistryError(e, 'REGISTRY_REFERENCE'))
      throw new UsageError('INPUT_INVALID', e.message, { cause: e });
    throw e;
  }
}

/** Parses a registry reference argument (`docker://` optional); throws INPUT_INVALID. */
export function registryArg(s: string): ImageReference {
  return asUsage(() => parseReference(s.replace(/^docker:\/\//, '')));
}

/** Parses a transport reference; a bare existing path is a local layout or archive, as src/layout decides. */
export async function transportArg(s: string): Promise<TransportReference> {
  if (s.startsWith('docker://') || /^(oci|oci-archive|docker-archive):/.test(s))
    return parseTransportReference(s);
  if (isLocalRef(s)) {
    const local = await parseLocalRef(s).catch(() => undefined);
    if (local)
      return local.ref === undefined
        ? { transport: local.transport, path: local.path }
        : { transport: local.transport, path: local.path, tag: local.ref };
  }
  return asUsage(() => parseTransportReference(s));
}

/** The flags of the commands that copy an image (copy, pull, push) beyond the registry ones. */
export interface CopyFlags extends RegistryFlags {
  readonly all: boolean;
  readonly platform?: string;
  readonly tag?: readonly string[];
}

/**
 * Copies `src` to `dst` with a client made from `flags` (an index narrowed to `--platform` unless `all`, tagged with
 * every `--tag`), prints the written digest on stdout and closes the client. A bad `--platform` throws USAGE before
 * the client is made.
 */
export async function copyAndPrint(
  src: TransportReference,
  dst: TransportReference,
  flags: CopyFlags,
): Promise<void> {
  const platform = platformFlag(flags.platform);
  const client = clientFromFlags(flags);
  try {
    const d = await copy(client, src, dst, {
      all: flags.all,
      ...(platform ? { platform } : {}),
      ...(flags.tag?.length ? { tags: flags.tag } : {}),
    });
    process.stdout.write(`${d.digest}\n`);
  } finally {
    await client.close();
  }
}

export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('copy')
      .description('copy an image or index between registries, OCI layouts and archives (like skopeo copy)')
      .argument(
        '<src>',
        'docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE',
      )
      .argument('<dst>', 'same forms as <src>')
      .option('--all', 'copy every platform of an index', false)
      .option(
        '--platform <os/arch[/variant]>',
        'the image to take from an index without --all (default: this host)',
      )
      .option('--tag <tag>', 'also tag the copy with this (registry destinations; repeatable)', collect, []),
  ).action(async (src: string, dst: string, opts: CopyFlags) =>
    copyAndPrint(await transportArg(src), await transportArg(dst), opts),
  );
}
