import { basename, resolve } from 'node:path';
import type { LoadedConfig } from '../config/index.ts';
import type { Digest } from '../digest/index.ts';
import { UsageError } from '../errors.ts';
import { conflictReplace, merge, type Tree } from '../fstree/index.ts';
import { OciLayout, writeArchive } from '../layout/index.ts';
import {
  type Artifact,
  buildImage,
  buildIndex,
  type Descriptor,
  formatPlatform,
  type Image,
  type Layer,
  layerFromTree,
  type Platform,
  parsePlatform,
  type RunConfig,
} from '../oci/index.ts';
import { type SliceResult, sliceTree } from '../slice/index.ts';
import { idsFromTree, minimalBase } from './base.ts';
import { type DebianBuildOptions, type DebianPlan, planDebian } from './debian.ts';
import { checkSymlinkLoops, filesTree, ownerResolver } from './files.ts';
import { type BuildRecords, writeBuildRecords } from './records.ts';

/**
 * `pare build`: pare.yaml → sources → trees → layers → image (or index) → store. Every input is checked before
 * anything is written: a bad config, a missing source or a symlink loop fails the build with the output untouched.
 * Same config + same inputs + same epoch → same digest on any machine, TZ or umask.
 */

export interface BuildOptions {
  /** Overrides output.layout (relative to the current directory). */
  readonly output?: string;
  /** Overrides output.tag. */
  readonly tag?: string;
  /** Overrides output.tar. */
  readonly tar?: string;
  /** SOURCE_DATE_EPOCH; default: the environment variable, then `epoch:` in pare.yaml, then 0. */
  readonly epoch?: number;
  /** Compute the image but write nothing. */
  readonly dryRun?: boolean;
  /**
   * Builds the per-platform root filesystem from the `packages:` section. Provided by the Debian integration;
   * without it, a config with packages is refused.
   */
  readonly packagesRoot?: (platform: Platform, epoch: number) => Promise<Tree>;
  /** Lock and download options for `packages:` builds (`--locked`, `--update`, progress). */
  readonly debian?: DebianBuildOptions;
}

export interface BuildResult {
  readonly artifact: Artifact;
  readonly digest: Digest;
  readonly descriptor: Descriptor;
  readonly platforms: readonly Platform[];
  /** The root filesystem of each platform's image (what the image unpacks to). */
  readonly trees: ReadonlyMap<string, Tree>;
  readonly layoutDir: string | undefined;
  readonly tag: string;
  readonly tarFile: string | undefined;
  readonly epoch: number;
  /** The Debian resolution, lock and .debs, for `packages:` builds. */
  readonly debian: DebianPlan | undefined;
  /** The slice of each platform (by `os/arch[/variant]`), when the build sliced. */
  readonly slices: ReadonlyMap<string, SliceResult>;
  /** The tree of the `files:` section (the app layer). */
  readonly appTree: Tree | undefined;
  /** SBOMs, provenance and slice reports written beside the image (undefined for a dry run). */
  readonly records: BuildRecords | undefined;
}

/** Returns the epoch to build at: SOURCE_DATE_EPOCH, then the config's, then 0. Throws on a malformed variable. */
export function resolveEpoch(configEpoch: number | undefined, explicit?: number): number {
  if (explicit !== undefined) return explicit;
  const env = process.env.SOURCE_DATE_EPOCH;
  if (env !== undefined && env !== '') {
    if (!/^\d+$/.test(env))
      throw new UsageError(
        'USAGE',
        `cannot use SOURCE_DATE_EPOCH=${JSON.stringify(env)}: want whole seconds since 1970`,
      );
    return Number(env);
  }
  return configEpoch ?? 0;
}

function toList(v: string | readonly string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? [v] : [...v];
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Returns the image's run config from the `image:` section, with hardened defaults (user 65532). */
export function runConfig(
  loaded: LoadedConfig,
  resolveUser: (u: string | number) => { uid: number; gid: number },
): RunConfig {
  const img = loaded.config.image;
  const env = Object.entries(img.env ?? {}).map(([k, v]) => `${k}=${String(v)}`);
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(DEFAULT_PATH);
  const user = img.user === undefined ? { uid: 65532, gid: 65532 } : resolveUser(img.user);
  const ports = img.ports?.map((p) => (typeof p === 'number' || !p.includes('/') ? `${p}/tcp` : p));
  return {
    User: `${user.uid}:${user.gid}`,
    ExposedPorts: ports?.length ? Object.fromEntries(ports.map((p) => [p, {}])) : undefined,
    Env: env,
    Entrypoint: toList(img.entrypoint),
    Cmd: toList(img.cmd),
    Volumes: img.volumes?.length ? Object.fromEntries(img.volumes.map((v) => [v, {}])) : undefined,
    WorkingDir: img.workdir,
    Labels: img.labels && Object.keys(img.labels).length ? img.labels : undefined,
    StopSignal: img.stopSignal,
  };
}

/** Runs the build described by a loaded pare.yaml. */
export async function build(loaded: LoadedConfig, options: BuildOptions = {}): Promise<BuildResult> {
  const cfg = loaded.config;
  const epoch = resolveEpoch(cfg.epoch, options.epoch);
  const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
  const platforms = cfg.platforms.map(parsePlatform);
  const name = cfg.name ?? basename(loaded.dir);
  const tag = options.tag ?? cfg.output.tag ?? 'latest';

  let debian: DebianPlan | undefined;
  let packagesRoot = options.packagesRoot;
  if (cfg.packages?.length && !packagesRoot) {
    debian = await planDebian(loaded, platforms, {
      ...options.debian,
      dryRun: options.dryRun || options.debian?.dryRun,
    });
    packagesRoot = debian.rootfs;
  }

  const images: { image: Image; platform: Platform }[] = [];
  const trees = new Map<string, Tree>();
  const slices = new Map<string, SliceResult>();
  let appLayer: Layer | undefined;
  let appTree: Tree | undefined;
  const sliceMode = typeof cfg.slice === 'object' ? cfg.slice.mode : (cfg.slice ?? 'auto');
  const sliceCfg: Partial<Exclude<typeof cfg.slice, string | undefined>> =
    typeof cfg.slice === 'object' ? cfg.slice : {};
  for (const platform of platforms) {
    const key = formatPlatform(platform);
    const assembled = cfg.packages?.length && debian ? await debian.assembled(platform, epoch) : undefined;
    let base = assembled
      ? assembled.tree
      : cfg.packages?.length
        ? await packagesRoot!(platform, epoch)
        : cfg.base === 'minimal'
          ? minimalBase(epoch)
          : undefined;
    const ids = await idsFromTree(base ?? minimalBase(epoch));
    const resolveOwner = ownerResolver(ids.users, ids.groups);
    appTree ??= await filesTree(loaded, epoch, resolveOwner);
    const rc = runConfig(loaded, (u) => resolveOwner(u, loaded.locate(['image', 'user'])));
    // App files lie over the base, as a later layer would: a file given in pare.yaml replaces the base's.
    let rootfs = base ? merge([base, appTree], conflictReplace) : appTree;
    checkSymlinkLoops(rootfs, `${loaded.path} for ${key}`);
    // Slicing keeps what the image runs: packages builds only (a files-only image is all the user's own).
    if (base && cfg.packages?.length && sliceMode === 'auto') {
      const app = appTree;
      const r = await sliceTree(rootfs, {
        entrypoint: rc.Entrypoint,
        cmd: rc.Cmd,
        env: rc.Env,
        workingDir: rc.WorkingDir,
        executables: sliceCfg.executables,
        // Every file the user listed stays, whether or not something reaches it.
        keep: [
          ...(sliceCfg.keep ?? []),
          ...app.paths().filter((p) => p !== '/' && app.get(p)?.kind !== 'dir'),
        ],
        shell: cfg.shell,
        locales: sliceCfg.locales,
        probe: sliceCfg.probe,
        owners: assembled?.owners,
      });
      slices.set(key, r);
      rootfs = r.tree;
      // The base layer is what the slice kept of the packages; the user's files stay a layer of their own.
      base = r.tree.filter(
        (p, e) => e.kind === 'dir' || app.get(p) === undefined || app.get(p)?.kind === 'dir',
      );
    }
    trees.set(key, rootfs);
    const compression = cfg.output.compression ?? 'gzip';
    const layers: Layer[] = [];
    const history = [];
    if (base) {
      layers.push(layerFromTree(base, { compression, epoch }));
      history.push({
        created,
        created_by: cfg.packages?.length
          ? `pare build: packages ${cfg.packages.join(' ')}${slices.has(key) ? ' (sliced)' : ''}`
          : 'pare build: base (minimal)',
      });
    }
    if (appTree.size > 1) {
      appLayer ??= layerFromTree(appTree, { compression, epoch });
      layers.push(appLayer);
      history.push({ created, created_by: 'pare build: files' });
    }
    const annotations: Record<string, string> = {
      'org.opencontainers.image.created': created,
      'org.opencontainers.image.title': name,
      ...(cfg.image.annotations ?? {}),
    };
    images.push({
      image: buildImage({ layers, platform, config: rc, created, history, annotations }),
      platform,
    });
  }
  const artifact: Artifact =
    images.length === 1
      ? { kind: 'image', image: images[0]!.image }
      : {
          kind: 'index',
          index: buildIndex(
            images.map((i) => ({ image: i.image, platform: i.platform })),
            { 'org.opencontainers.image.created': created, 'org.opencontainers.image.title': name },
          ),
        };
  // Computing the digest packs and compresses every layer: every input is read (and checked) before the store is touched.
  const a = artifact.kind === 'image' ? artifact.image : artifact.index;
  const digest = await a.digest();
  const descriptor: Descriptor = { mediaType: await a.mediaType(), digest, size: await a.size() };

  const layoutDir =
    options.output !== undefined
      ? resolve(options.output)
      : cfg.output.layout !== undefined
        ? resolve(loaded.dir, cfg.output.layout)
        : resolve('out');
  const tarOpt =
    options.tar ?? (cfg.output.tar !== undefined ? resolve(loaded.dir, cfg.output.tar) : undefined);
  if (!options.dryRun) {
    const layout = await OciLayout.create(layoutDir);
    await layout.writeArtifact(artifact, { tag });
    if (tarOpt) await writeArchive(tarOpt, artifact, { tag, repoTag: `${name}:${tag}`, epoch });
  }
  const result: BuildResult = {
    artifact,
    digest,
    descriptor,
    platforms,
    trees,
    layoutDir: options.dryRun ? undefined : layoutDir,
    tag,
    tarFile: options.dryRun ? undefined : tarOpt,
    epoch,
    debian,
    slices,
    appTree,
    records: undefined,
  };
  if (options.dryRun) return result;
  return { ...result, records: await writeBuildRecords(loaded, result, appTree) };
}
