import { RunError } from '../errors.ts';
import type { Image, ImageConfig } from '../oci/model.ts';
import { checkCommand } from './command.ts';
import { parsePublish } from './network.ts';
import { readFileInRoot } from './rootfs.ts';
import type { SandboxSpec } from './sandbox.ts';
import { parseSecret, parseVolume, resolveProcess } from './spec.ts';
import { type UnpackedRootfs, unpackImage } from './unpack.ts';
import { type ExecUser, resolveUser } from './user.ts';

/**
 * From "what to run" (an image, or an already unpacked root filesystem plus its config) and the `pare run` flags to a
 * SandboxSpec: unpack (cached), resolve the user through the image's own /etc/passwd and /etc/group, apply docker's
 * Entrypoint/Cmd/Env/WorkingDir rules, parse volumes.
 */

/** What `pare run` runs. */
export type RunSource =
  /** An OCI image; unpacked into the rootfs cache by manifest digest. */
  | { readonly kind: 'image'; readonly image: Image }
  /** A root filesystem already on disk, with the config to run it by (none: only `-- CMD` can say what to run). */
  | { readonly kind: 'rootfs'; readonly path: string; readonly config?: ImageConfig };

/** The `pare run` flags. */
export interface RunOptions {
  /** `user[:group]`; default: the image's User, else 65532:65532. */
  readonly user?: string;
  readonly entrypoint?: string;
  readonly cmd?: readonly string[];
  /** `K=V` or `K` (copied from `hostEnv`). */
  readonly env?: readonly string[];
  readonly workdir?: string;
  readonly hostname?: string;
  /** `HOST:CTR[:ro|rw]`. */
  readonly volumes?: readonly string[];
  readonly net?: boolean;
  /** `-p [IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]`: published from a private network (not with `net`). */
  readonly publish?: readonly string[];
  /** `--secret NAME=FILE`. */
  readonly secrets?: readonly string[];
  readonly newSession?: boolean;
  readonly seccomp?: boolean;
  /** /tmp size in bytes (default 64 MiB). */
  readonly tmpSize?: number;
  /** Where relative volume paths start; default process.cwd(). */
  readonly cwd?: string;
  readonly hostEnv?: Readonly<Record<string, string | undefined>>;
  /** Rootfs cache directory; default rootfsCacheDir(). */
  readonly cacheDir?: string;
}

/** A sandbox ready to start, plus what was unpacked for it. */
export interface PreparedRun {
  readonly spec: SandboxSpec;
  readonly config: ImageConfig | undefined;
  /** Set when an image was unpacked (or found in the cache). */
  readonly unpacked?: UnpackedRootfs;
}

const ARCH_ALIASES: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  aarch64: 'arm64',
  x86_64: 'amd64',
};

/** Throws RUN_ARCH_UNSUPPORTED when the image is not for linux on this host's architecture. */
export function checkPlatform(config: ImageConfig | undefined, hostArch: string = process.arch): void {
  if (!config) return;
  const want = ARCH_ALIASES[hostArch] ?? hostArch;
  const got = ARCH_ALIASES[config.architecture] ?? config.architecture;
  if (config.os !== 'linux' || got !== want) {
    throw new RunError(
      'RUN_ARCH_UNSUPPORTED',
      `cannot run image for ${config.os}/${config.architecture} on this linux/${want} host; pick the linux/${want} image of the index`,
    );
  }
}

/** Resolves the user for `rootfs` the way the sandbox will run it. */
export async function resolveRootfsUser(
  rootfs: string,
  config: ImageConfig | undefined,
  user: string | undefined,
): Promise<ExecUser> {
  const dec = new TextDecoder();
  const passwd = await readFileInRoot(rootfs, '/etc/passwd');
  const group = await readFileInRoot(rootfs, '/etc/group');
  const db = { passwd: passwd && dec.decode(passwd), group: group && dec.decode(group) };
  if (user !== undefined && user !== '') return resolveUser(user, db, 'option');
  return resolveUser(config?.config?.User, db, 'image');
}

/** Returns the sandbox spec for `source` with `options`; unpacks an image first. */
export async function prepareRun(source: RunSource, options: RunOptions = {}): Promise<PreparedRun> {
  let config: ImageConfig | undefined;
  let rootfs: string;
  let unpacked: UnpackedRootfs | undefined;
  if (source.kind === 'image') {
    config = await source.image.config();
    checkPlatform(config);
    unpacked = await unpackImage(source.image, options.cacheDir ? { cacheDir: options.cacheDir } : {});
    rootfs = unpacked.path;
  } else {
    config = source.config;
    checkPlatform(config);
    rootfs = source.path;
  }
  const user = await resolveRootfsUser(rootfs, config, options.user);
  const proc = resolveProcess(config?.config, user, {
    ...(options.cmd ? { cmd: options.cmd } : {}),
    ...(options.entrypoint !== undefined ? { entrypoint: options.entrypoint } : {}),
    ...(options.env ? { env: options.env } : {}),
    ...(options.workdir ? { workdir: options.workdir } : {}),
    ...(options.hostname ? { hostname: options.hostname } : {}),
    ...(options.hostEnv ? { hostEnv: options.hostEnv } : {}),
  });
  await checkCommand(rootfs, proc);
  const cwd = options.cwd ?? process.cwd();
  if (options.net && options.publish?.length) {
    throw new RunError(
      'RUN_PUBLISH_INVALID',
      'cannot publish ports with --net: the host network is shared already; drop --net to publish from a private network',
    );
  }
  const spec: SandboxSpec = {
    rootfs,
    process: proc,
    user,
    volumes: (options.volumes ?? []).map((v) => parseVolume(v, cwd)),
    net: options.net ?? false,
    ...(options.publish?.length ? { publish: options.publish.map(parsePublish) } : {}),
    ...(options.secrets?.length ? { secrets: parseSecrets(options.secrets, cwd) } : {}),
    newSession: options.newSession ?? true,
    seccomp: options.seccomp ?? true,
    ...(options.tmpSize ? { tmpSize: options.tmpSize } : {}),
  };
  return unpacked ? { spec, config, unpacked } : { spec, config };
}

function parseSecrets(secrets: readonly string[], cwd: string) {
  const out = secrets.map((s) => parseSecret(s, cwd));
  const names = new Set<string>();
  for (const s of out) {
    if (names.has(s.name))
      throw new RunError('RUN_SECRET_INVALID', `cannot use secret ${JSON.stringify(s.name)} twice`);
    names.add(s.name);
  }
  return out;
}
