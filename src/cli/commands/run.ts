import type { Command } from 'commander';
import { Option } from 'commander';
import { UsageError } from '../../errors.ts';
import {
  type HardenedPrintTarget,
  openRunSource,
  parsePublish,
  parseSecret,
  parseSize,
  parseVolume,
  prepareRun,
  printHardened,
  type RunSource,
  resolveSourceUser,
  runnableReference,
  startSandbox,
} from '../../run/index.ts';
import { openReference, platformFlag } from '../reference.ts';
import { collect, lazyClient, type RegistryFlags, withRegistryFlags } from '../registry-flags.ts';

/**
 * `pare run IMAGE [-- CMD…]`: run an image in the bubblewrap sandbox (src/run), or `--print docker|podman|kubernetes`
 * the same hardening for another runtime. Only argument handling and output live here.
 */

export interface RunCommandOptions extends Partial<RegistryFlags> {
  readonly user?: string;
  readonly entrypoint?: string;
  readonly env: string[];
  readonly volume: string[];
  readonly workdir?: string;
  readonly hostname?: string;
  readonly net?: boolean;
  readonly publish: string[];
  readonly secret: string[];
  readonly platform?: string;
  readonly print?: HardenedPrintTarget;
  readonly image?: string;
  /** Former name of --image. */
  readonly ref?: string;
  readonly seccomp: boolean;
  readonly cacheDir?: string;
  readonly tmpSize?: string;
}

/** Where the command writes; the real process streams by default. */
export interface RunCommandIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** Signals to forward to the sandboxed command (default: the process's own). */
  readonly signals?: NodeJS.EventEmitter;
  readonly isTTY?: boolean;
}

const FORWARDED: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs `pare run` and returns the exit code (the command's, for a sandbox run). Throws pare errors; a bad flag
 * (RUN_USER_INVALID, RUN_VOLUME_INVALID, …) exits 2 by the CLI's rule (exit-codes.ts).
 */
export async function runCommand(
  image: string,
  cmd: readonly string[],
  o: RunCommandOptions,
  io: RunCommandIo,
): Promise<number> {
  const platform = platformFlag(o.platform);
  const tmpSize = o.tmpSize ? parseSize(o.tmpSize) : undefined;
  const client = lazyClient({ ...o, quiet: true });
  try {
    let remote = false;
    const source = await openRunSource(image, async (ref) => {
      const opened = await openReference(ref, client, { note: (s) => io.stderr(`${s}\n`) });
      remote = opened.reference.transport === 'docker';
      return opened.image(platform);
    });
    return await runSource(image, cmd, o, io, tmpSize, source, remote);
  } finally {
    await client.close();
  }
}

/** Prints or runs an opened source; `remote` when it came from a registry (its name is pullable as it is). */
async function runSource(
  image: string,
  cmd: readonly string[],
  o: RunCommandOptions,
  io: RunCommandIo,
  tmpSize: number | undefined,
  source: RunSource,
  remote: boolean,
): Promise<number> {
  if (o.print) {
    const explicit = o.image ?? o.ref;
    if (source.kind === 'rootfs' && !explicit) {
      throw new UsageError(
        'USAGE',
        `cannot print settings for the directory ${JSON.stringify(image)}: give the pushed image's reference with --image`,
      );
    }
    const user = await resolveSourceUser(source, o.user);
    const config = source.kind === 'image' ? await source.image.config() : source.config;
    const reference = runnableReference(
      image,
      explicit,
      source.kind === 'image' ? await source.image.digest() : undefined,
      { local: !remote },
    );
    const result = printHardened(o.print, {
      reference,
      config,
      user,
      ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint } : {}),
      ...(cmd.length > 0 ? { cmd } : {}),
      env: o.env,
      ...(o.workdir ? { workdir: o.workdir } : {}),
      ...(o.hostname ? { hostname: o.hostname } : {}),
      volumes: o.volume.map((v) => parseVolume(v, process.cwd())),
      net: o.net ?? false,
      publish: o.publish.map(parsePublish),
      secrets: o.secret.map((s) => parseSecret(s, process.cwd())),
      ...(tmpSize ? { tmpSize } : {}),
    });
    for (const w of result.warnings) io.stderr(`pare: warning: ${w}\n`);
    io.stdout(result.text);
    return 0;
  }

  if (o.image !== undefined || o.ref !== undefined) {
    throw new UsageError(
      'USAGE',
      `cannot use --image without --print: it names the pushed image in the printed settings (pare run runs ${JSON.stringify(image)} itself)`,
    );
  }
  const tty = io.isTTY ?? process.stdin.isTTY === true;
  const prepared = await prepareRun(source, {
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint } : {}),
    cmd,
    env: o.env,
    ...(o.workdir ? { workdir: o.workdir } : {}),
    ...(o.hostname ? { hostname: o.hostname } : {}),
    volumes: o.volume,
    net: o.net ?? false,
    publish: o.publish,
    secrets: o.secret,
    newSession: !tty,
    seccomp: o.seccomp,
    hostEnv: process.env,
    ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
    ...(tmpSize ? { tmpSize } : {}),
  });
  const r = prepared.unpacked?.report;
  if (r && r.setidDropped.length > 0) {
    io.stderr(`pare: note: dropped setuid/setgid bits for the rootless run: ${r.setidDropped.join(', ')}\n`);
  }
  if (r && r.devicesSkipped.length > 0)
    io.stderr(`pare: note: skipped device nodes and FIFOs: ${r.devicesSkipped.join(', ')}\n`);
  if (!o.seccomp) io.stderr('pare: warning: running without the seccomp filter\n');

  const handle = await startSandbox(prepared.spec);
  const signals = io.signals ?? process;
  const forward = (sig: NodeJS.Signals) => {
    // On a terminal, Ctrl-C already reached the command (same foreground process group): do not send it twice.
    if (tty && sig === 'SIGINT' && io.signals === undefined) return;
    handle.signal(sig);
  };
  for (const s of FORWARDED) signals.on(s, forward);
  try {
    return await handle.exited;
  } finally {
    for (const s of FORWARDED) signals.off(s, forward);
  }
}

/** Registers `pare run`. */
export function register(program: Command): void {
  withRegistryFlags(
    program
      .command('run')
      .description(
        'run an image in a hardened bubblewrap sandbox (read-only root, no capabilities, seccomp, no network), or print the same hardening for docker, podman or Kubernetes',
      )
      .argument(
        '<image>',
        'oci:DIR[:tag], oci-archive:FILE[:tag], docker-archive:FILE[:tag], a layout or archive path, [docker://]HOST/REPO[:TAG], or an unpacked rootfs directory',
      )
      .argument('[command...]', 'command and arguments after "--"; replace the image Cmd')
      .option(
        '-u, --user <user[:group]>',
        'user to run as, names resolved in the image (default: the image User, else 65532:65532)',
      )
      .option('--entrypoint <path>', 'replace the image Entrypoint (and clear its Cmd); "" clears it')
      .option(
        '-e, --env <NAME=VALUE>',
        'set an environment variable (NAME alone copies it from the host); repeatable',
        collect,
        [],
      )
      .option('-v, --volume <HOST:CONTAINER[:ro]>', 'bind a host path; repeatable', collect, [])
      .option('-w, --workdir <dir>', 'working directory inside the sandbox')
      .option('--hostname <name>', 'hostname inside the sandbox (default: pare)')
      .option('--net', "share the host's network (default: only a private loopback)")
      .option(
        '-p, --publish <[IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]>',
        'publish a port from a private network connected by pasta (Debian package passt), as rootless podman does; repeatable',
        collect,
        [],
      )
      .option(
        '--secret <NAME=FILE>',
        'make FILE readable at /run/secrets/NAME (read-only, owned by the run user, never in the image, environment or cache); repeatable',
        collect,
        [],
      )
      .option('--platform <os/arch[/variant]>', 'image to pick from an index (default: this host)')
      .addOption(
        new Option('--print <runtime>', 'print hardened settings instead of running').choices([
          'docker',
          'podman',
          'kubernetes',
        ]),
      )
      .option(
        '--image <reference>',
        'with --print: the registry reference the image was pushed to (pinned to the image digest); required for a local image',
      )
      .addOption(new Option('--ref <reference>', 'former name of --image').hideHelp())
      .option('--no-seccomp', 'do not load the seccomp filter (debugging only)')
      .option('--tmp-size <size>', 'size of the in-memory /tmp, e.g. 64m or 1g (default: 64m)')
      .option('--cache-dir <dir>', 'rootfs cache (default: $XDG_CACHE_HOME/pare/rootfs)'),
  ).action(async (image: string, command: string[], opts: RunCommandOptions) => {
    const code = await runCommand(image, command, opts, {
      stdout: (s) => process.stdout.write(s),
      stderr: (s) => process.stderr.write(s),
    });
    process.exitCode = code;
  });
}
