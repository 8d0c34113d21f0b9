import { basename, resolve } from 'node:path';
import { NONROOT_ID } from '../accounts/index.ts';
import type { LoadedConfig } from '../config/index.ts';
import { DEFAULT_PATH, sourceDateEpoch } from '../defaults.ts';
import type { Digest } from '../digest/index.ts';
import { SliceError, UsageError } from '../errors.ts';
import { applyLayer, conflictReplace, merge, Tree } from '../fstree/index.ts';
import { OciLayout, writeArchive } from '../layout/index.ts';
import {
  type Artifact,
  buildImage,
  buildIndex,
  type Descriptor,
  formatPlatform,
  type Image,
  imageToTree,
  type Layer,
  layerFromTree,
  type Platform,
  parsePlatform,
  type RunConfig,
} from '../oci/index.ts';
import { RegistryClient } from '../registry/index.ts';
import { type SliceReport, sliceReport, sliceTree } from '../slice/index.ts';
import { collectEntries } from '../tar/index.ts';
import { withAccounts } from './accounts.ts';
import { idsFromTree, minimalBase } from './base.ts';
import {
  type BaseImage,
  baseImageFor,
  changedEntries,
  isImageBase,
  openBaseImage,
  packagesOnBase,
  saveBaseLock,
} from './base-image.ts';
import { assertRunnable, CHECK_VERSION } from './check.ts';
import { type DebianBuildOptions, type DebianPlan, debianArch, planDebian, saveLock } from './debian.ts';
import {
  assertDestsKeepLinks,
  checkSymlinkLoops,
  filesTree,
  filesVariant,
  outputPath,
  ownerResolver,
} from './files.ts';
import { codeFingerprint } from './fingerprint.ts';
import { type CachedBase, cacheKey, LayerCache } from './layer-cache.ts';
import { type BuildRecords, PARE_VERSION, writeBuildRecords } from './records.ts';

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
  /**
   * SOURCE_DATE_EPOCH; default: the environment variable, then `epoch:` in pare.yaml, then for `packages:` the newest
   * changelog date of the locked packages, else 0.
   */
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
  /** Layer cache directory (default: the pare cache), or false to build every layer afresh. */
  readonly layerCache?: string | false;
  /** Lets `files:` sources leave the directory of pare.yaml (`--allow-outside-context`). Default false. */
  readonly allowOutsideContext?: boolean;
  /** The registry client for a `docker://` base (made on first use; default: one with pare's defaults, closed after). */
  readonly registry?: () => RegistryClient | Promise<RegistryClient>;
  /** Called when a long step starts and ends (the CLI shows it on stderr); downloads report through `debian`. */
  readonly onStep?: (e: BuildStep) => void;
}

/** A long step of a build starting or ending; `detail` says what it did (counts, sizes) on `done`. */
export interface BuildStep {
  readonly step: 'base' | 'resolve' | 'unpack' | 'slice' | 'compress' | 'write';
  readonly state: 'start' | 'done';
  /** `os/arch[/variant]` for the per-platform steps. */
  readonly platform?: string;
  /** What the step did, on `done`: text, and byte counts for the reader to format. */
  readonly detail?: readonly (string | { readonly bytes: number })[];
}

/** Runs `work` as step `step`, reporting its start and its end (with the detail `done` gives) to `on`. */
async function timed<T>(
  on: BuildOptions['onStep'],
  step: BuildStep['step'],
  platform: string | undefined,
  work: () => Promise<T>,
  done?: (r: T) => BuildStep['detail'],
): Promise<T> {
  on?.({ step, state: 'start', ...(platform ? { platform } : {}) });
  const r = await work();
  const detail = done?.(r);
  on?.({ step, state: 'done', ...(platform ? { platform } : {}), ...(detail ? { detail } : {}) });
  return r;
}

/** A byte count in a step's detail (the CLI formats it). */
const bytes = (n: number) => ({ bytes: n });

export interface BuildResult {
  readonly artifact: Artifact;
  readonly digest: Digest;
  readonly descriptor: Descriptor;
  readonly platforms: readonly Platform[];
  /** The root filesystem of each platform's image (what the image unpacks to), by `os/arch[/variant]`; lazy. */
  tree(platform: string): Promise<Tree | undefined>;
  readonly layoutDir: string | undefined;
  readonly tag: string;
  readonly tarFile: string | undefined;
  readonly epoch: number;
  /** The Debian resolution, lock and .debs, for `packages:` builds. */
  readonly debian: DebianPlan | undefined;
  /** This image's request set in `debian` ('' the main image's, else a variant's with packages of its own). */
  readonly packageSet: string;
  /** The variants built with the main image (`variants:`), each tagged `TAG-NAME`; empty for a variant. */
  readonly variants: readonly BuildResult[];
  /** The pinned `base:` image, when base names one. */
  readonly baseImage: BaseImage | undefined;
  /** The slice report of each platform (by `os/arch[/variant]`), when the build sliced. */
  readonly slices: ReadonlyMap<string, SliceReport>;
  /** Platforms whose packages layer came from the layer cache. */
  readonly cached: readonly string[];
  /** SBOMs, provenance and slice reports written beside the image (undefined for a dry run). */
  readonly records: BuildRecords | undefined;
}

/**
 * Returns the epoch to build at: `explicit`, then SOURCE_DATE_EPOCH, then the config's, then `fallback` (0 unless
 * given; undefined asks the caller to derive one). Throws on a malformed variable.
 */
export function resolveEpoch(configEpoch: number | undefined, explicit?: number): number;
export function resolveEpoch(
  configEpoch: number | undefined,
  explicit: number | undefined,
  fallback: undefined,
): number | undefined;
export function resolveEpoch(
  configEpoch: number | undefined,
  explicit?: number,
  ...rest: [fallback?: undefined]
): number | undefined {
  if (explicit !== undefined) return explicit;
  const env = sourceDateEpoch();
  if (env !== undefined) return env;
  return configEpoch ?? (rest.length > 0 ? undefined : 0);
}

/**
 * The default epoch of a `packages:` build: the newest changelog date of the locked packages (the date Debian's own
 * reproducible builds use), so images say when their newest package was made instead of 1970, and the same lock
 * gives the same date on any machine. Remembered by the .deb digests, so a warm build reads no .deb for it.
 * Files-only builds stay at 0: the only dates they have are file mtimes, which a git checkout sets to the checkout
 * time (so two clones would give two digests).
 */
async function packagesEpoch(debian: DebianPlan, cache: LayerCache | undefined): Promise<number> {
  const key =
    cache &&
    `source-date-${cacheKey({
      v: 1,
      debs: debian
        .lockedOf()
        .map((p) => p.sha256)
        .sort(),
    })}`;
  const hit = key ? await cache!.getRecord(key) : undefined;
  if (hit !== undefined && /^\d+\n$/.test(hit)) return Number(hit);
  const date = (await debian.sourceDate()) ?? 0;
  if (key) await cache!.putRecord(key, `${date}\n`);
  return date;
}

function toList(v: string | readonly string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' ? [v] : [...v];
}

/** Returns the image's run config from the `image:` section, with hardened defaults (user 65532). */
export function runConfig(
  loaded: LoadedConfig,
  resolveUser: (u: string | number) => { uid: number; gid: number },
): RunConfig {
  const img = loaded.config.image;
  const env = Object.entries(img.env ?? {}).map(([k, v]) => `${k}=${String(v)}`);
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(`PATH=${DEFAULT_PATH}`);
  const user = img.user === undefined ? { uid: NONROOT_ID, gid: NONROOT_ID } : resolveUser(img.user);
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

/**
 * Returns the run config of an image built on `base`: the base's config, overridden field by field by `image:`
 * (env by variable name, labels, ports and volumes by key). As in a Dockerfile, an `entrypoint:` without `cmd:`
 * drops the base's Cmd. Nothing of pare's hardened defaults is added: the base's user and PATH stay.
 */
export function inheritedRunConfig(
  base: RunConfig | undefined,
  loaded: LoadedConfig,
  resolveUser: (u: string | number) => { uid: number; gid: number },
): RunConfig {
  const img = loaded.config.image;
  const env = new Map<string, string>();
  for (const e of base?.Env ?? []) {
    const i = e.indexOf('=');
    env.set(i < 0 ? e : e.slice(0, i), e);
  }
  for (const [k, v] of Object.entries(img.env ?? {})) env.set(k, `${k}=${String(v)}`);
  const user = img.user === undefined ? undefined : resolveUser(img.user);
  const ports = img.ports?.map((p) => (typeof p === 'number' || !p.includes('/') ? `${p}/tcp` : p));
  const exposed = { ...(base?.ExposedPorts ?? {}), ...Object.fromEntries((ports ?? []).map((p) => [p, {}])) };
  const volumes = {
    ...(base?.Volumes ?? {}),
    ...Object.fromEntries((img.volumes ?? []).map((v) => [v, {}])),
  };
  const labels = { ...(base?.Labels ?? {}), ...(img.labels ?? {}) };
  const some = (o: object) => Object.keys(o).length > 0;
  return {
    User: user ? `${user.uid}:${user.gid}` : base?.User,
    ExposedPorts: some(exposed) ? exposed : undefined,
    Env: env.size ? [...env.values()] : undefined,
    Entrypoint: img.entrypoint !== undefined ? toList(img.entrypoint) : base?.Entrypoint,
    Cmd: img.cmd !== undefined ? toList(img.cmd) : img.entrypoint !== undefined ? undefined : base?.Cmd,
    Volumes: some(volumes) ? volumes : undefined,
    WorkingDir: img.workdir ?? base?.WorkingDir,
    Labels: some(labels) ? labels : undefined,
    StopSignal: img.stopSignal ?? base?.StopSignal,
  };
}

/**
 * Returns `e` located in pare.yaml when it is a slicing error about one of the `slice.keep`/`slice.drop` globs (the
 * slicer does not know the file), else `e` itself.
 */
function atGlob(
  e: unknown,
  loaded: LoadedConfig,
  slice: { keep?: readonly string[]; drop?: readonly string[] },
): unknown {
  if (!(e instanceof SliceError) || e.path === undefined) return e;
  for (const field of ['drop', 'keep'] as const) {
    const i = slice[field]?.indexOf(e.path) ?? -1;
    if (i >= 0)
      return new UsageError('CONFIG_INVALID', `${loaded.locate(['slice', field, i])}: ${e.message}`, {
        cause: e,
      });
  }
  return e;
}

/** The Debian architecture whose merged-/usr links a files-only image gets (the OCI name when Debian has none). */
function usrArch(p: Platform): string {
  try {
    return debianArch(p);
  } catch {
    return p.architecture;
  }
}

/** Runs the build described by a loaded pare.yaml. */
export async function build(loaded: LoadedConfig, options: BuildOptions = {}): Promise<BuildResult> {
  let own: RegistryClient | undefined;
  try {
    return await buildWith(loaded, {
      ...options,
      registry: options.registry ?? (() => (own ??= new RegistryClient({ userAgent: 'pare' }))),
    });
  } finally {
    await own?.close();
  }
}

/**
 * The config of variant `name`: the main image's, plus the variant's packages and files, its shell: and its image:
 * overrides (field by field; env, labels and annotations by key). `locate` points a variant's own nodes at the
 * variant's section of pare.yaml.
 */
export function variantConfig(loaded: LoadedConfig, name: string): LoadedConfig {
  const cfg = loaded.config;
  const v = cfg.variants?.[name];
  if (!v) throw new Error(`no variant ${name}`);
  const n = cfg.files.length;
  const vi = v.image ?? {};
  const byKey = <T>(a: Record<string, T> | undefined, b: Record<string, T> | undefined) =>
    a || b ? { ...a, ...b } : undefined;
  const image = {
    ...cfg.image,
    ...vi,
    env: byKey(cfg.image.env, vi.env),
    labels: byKey(cfg.image.labels, vi.labels),
    annotations: byKey(cfg.image.annotations, vi.annotations),
  };
  const config = {
    ...cfg,
    packages: cfg.packages && [...new Set([...cfg.packages, ...(v.packages ?? [])])],
    files: [...cfg.files, ...(v.files ?? [])],
    shell: v.shell ?? cfg.shell,
    image,
    variants: undefined,
  };
  const locate = (keys: readonly (string | number)[]) => {
    if (keys[0] === 'files' && typeof keys[1] === 'number' && keys[1] >= n)
      return loaded.locate(['variants', name, 'files', keys[1] - n, ...keys.slice(2)]);
    if (keys[0] === 'image' && (keys.length === 1 ? v.image : (vi as Record<string, unknown>)[keys[1]!]))
      return loaded.locate(['variants', name, ...keys]);
    if (keys[0] === 'shell' && v.shell !== undefined) return loaded.locate(['variants', name, 'shell']);
    if (keys[0] === 'packages' && v.packages) return loaded.locate(['variants', name, 'packages']);
    return loaded.locate(keys);
  };
  return { ...loaded, config, locate };
}

/** One image of a build: the main image (set '') or a variant, before anything is written. */
interface Built {
  readonly artifact: Artifact;
  readonly digest: Digest;
  readonly descriptor: Descriptor;
  readonly trees: Map<string, () => Promise<Tree>>;
  readonly slices: Map<string, SliceReport>;
  readonly cached: string[];
}

/**
 * Where a build writes: the layout directory, tag and archive (options, then pare.yaml's output:, then ./out and
 * latest). An output.layout or output.tar leaving the project is exit 2 unless allowOutsideContext.
 */
export async function outputTarget(
  loaded: LoadedConfig,
  options: Pick<BuildOptions, 'output' | 'tag' | 'tar' | 'allowOutsideContext'> = {},
): Promise<{ readonly layoutDir: string; readonly tag: string; readonly tar: string | undefined }> {
  const out = loaded.config.output;
  return {
    layoutDir:
      options.output !== undefined
        ? resolve(options.output)
        : out.layout !== undefined
          ? await outputPath(loaded, 'layout', options.allowOutsideContext)
          : resolve('out'),
    tag: options.tag ?? out.tag ?? 'latest',
    tar:
      options.tar ??
      (out.tar !== undefined ? await outputPath(loaded, 'tar', options.allowOutsideContext) : undefined),
  };
}

async function buildWith(loaded: LoadedConfig, options: BuildOptions): Promise<BuildResult> {
  const cfg = loaded.config;
  const givenEpoch = resolveEpoch(cfg.epoch, options.epoch, undefined);
  const platforms = cfg.platforms.map(parsePlatform);
  const name = cfg.name ?? basename(loaded.dir);
  // Where the image goes, checked first (an output.layout/tar leaving the project is exit 2).
  const { layoutDir, tag, tar: tarOpt } = await outputTarget(loaded, options);
  const variantNames = Object.keys(cfg.variants ?? {}).sort();
  for (const v of variantNames) {
    const at = loaded.locate(['variants', v]);
    if (`${tag}-${v}`.length > 128)
      throw new UsageError(
        'CONFIG_INVALID',
        `${at}: the variant's tag ${tag}-${v} is longer than 128 characters; shorten the tag or the variant name`,
      );
    if (cfg.variants![v]!.packages?.length && !cfg.packages?.length)
      throw new UsageError(
        'CONFIG_INVALID',
        `${loaded.locate(['variants', v, 'packages'])}: a variant's packages: add to the main image's, and it has none (a files-only or image-based build); put packages: at the top level or remove them here`,
      );
  }

  // An image base is opened (and pinned) first: packages: next to it is refused before any archive is read.
  const onStep = options.onStep;
  const baseImage = isImageBase(cfg.base)
    ? await timed(
        onStep,
        'base',
        undefined,
        () =>
          openBaseImage(loaded, {
            client: options.registry!,
            locked: options.debian?.locked,
            update: options.debian?.update,
          }),
        (b) => [`${b.name}@${b.digest}`],
      )
    : undefined;
  let debian: DebianPlan | undefined;
  let packagesRoot = options.packagesRoot;
  if (cfg.packages?.length && !packagesRoot) {
    debian = await timed(
      onStep,
      'resolve',
      undefined,
      () =>
        planDebian(loaded, platforms, {
          ...options.debian,
          dryRun: options.dryRun || options.debian?.dryRun,
          deferLockWrite: true,
        }),
      (d) => [
        `${d.lock.packages.length} packages, `,
        bytes(d.lock.packages.reduce((n, p) => n + p.size, 0)),
        ' of .debs',
      ],
    );
    packagesRoot = debian.rootfs;
  }
  const layerCache = options.layerCache === false ? undefined : new LayerCache(options.layerCache);
  const epoch = givenEpoch ?? (debian ? await packagesEpoch(debian, layerCache) : 0);
  const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
  const sliceMode = typeof cfg.slice === 'object' ? cfg.slice.mode : (cfg.slice ?? 'auto');
  const sliceCfg: Partial<Exclude<typeof cfg.slice, string | undefined>> =
    typeof cfg.slice === 'object' ? cfg.slice : {};
  const compression = cfg.output.compression ?? 'gzip';
  if (sliceCfg.base && !(isImageBase(cfg.base) && sliceMode === 'auto'))
    throw new UsageError(
      'CONFIG_INVALID',
      `${loaded.locate(['slice', 'base'])}: slice.base re-slices an image base: it needs base: oci:…|oci-archive:…|docker://… and slice mode auto; remove it`,
    );
  if (sliceCfg.drop?.length && !((cfg.packages?.length || sliceCfg.base) && sliceMode === 'auto'))
    throw new UsageError(
      'CONFIG_INVALID',
      `${loaded.locate(['slice', 'drop'])}: slice.drop needs a sliced build (packages:, or slice.base on an image base; a files-only image or slice mode none is not sliced); remove it`,
    );
  // Platforms whose files come from the same entries and host paths share one layer (packed once), in every image.
  const appLayers = new Map<string, Layer>();
  const mainLoaded = loaded;
  const mainConfig = cfg;

  /**
   * Builds the image of `loaded` (the main config or a variant's, variantConfig) for every platform. A variant
   * (`set` its name) is assembled from its request set's packages; its own packages are kept whole (each file a root
   * of the slice, with its closure), and the main image's entrypoint and cmd stay roots when it overrides them.
   */
  async function buildOne(loaded: LoadedConfig, variant?: string): Promise<Built> {
    const cfg = loaded.config;
    const spec = variant === undefined ? undefined : mainConfig.variants?.[variant];
    // A variant with packages of its own has a request set (debian.ts requestSets); one without shares the main's.
    const set = spec?.packages?.length ? variant! : '';
    const own = spec?.packages?.length ? new Set(spec.packages) : undefined;
    if (own && !debian)
      throw new UsageError(
        'CONFIG_INVALID',
        `${loaded.locate(['packages'])}: a variant's packages need pare's Debian integration (BuildOptions.packagesRoot builds the main image only)`,
      );
    // The main image's program stays a root of a variant that runs something else.
    const mainRc = runConfig(mainLoaded, () => ({ uid: 0, gid: 0 }));
    const keepPrograms =
      spec?.image?.entrypoint !== undefined || spec?.image?.cmd !== undefined
        ? [mainRc.Entrypoint?.[0] ?? mainRc.Cmd?.[0]].filter((x): x is string => x !== undefined)
        : [];
    const images: { image: Image; platform: Platform; layerCount: number }[] = [];
    const trees = new Map<string, () => Promise<Tree>>();
    const slices = new Map<string, SliceReport>();
    const cached: string[] = [];
    for (const platform of platforms) {
      const filesOptions = { allowOutsideContext: options.allowOutsideContext, platform };
      // Only the user's files are roots: their directories are kept bare as the parents of kept paths, never as subtrees.
      // The app tree's paths do not depend on owners; a lenient resolver gives them before the base's users are known.
      const keepFiles = [...(await filesTree(loaded, epoch, () => ({ uid: 0, gid: 0 }), filesOptions))]
        .filter(([, e]) => e.kind !== 'dir')
        .map(([p]) => p);
      const key = formatPlatform(platform);
      let base: Tree | undefined;
      let baseLayer: Layer | undefined;
      let ids: Awaited<ReturnType<typeof idsFromTree>>;
      let cacheKeyFor: string | undefined;
      let hit: CachedBase | undefined;
      let slicedApp: Tree | undefined;
      let fromBase:
        | { image: Image; layers: readonly Layer[]; config: RunConfig | undefined; resliced: boolean }
        | undefined;
      const code = cfg.packages?.length && debian && layerCache ? await codeFingerprint() : undefined;
      if (cfg.packages?.length && debian && layerCache && code) {
        const arch = debianArch(platform);
        cacheKeyFor = cacheKey({
          pare: PARE_VERSION,
          code,
          platform: key,
          epoch,
          compression,
          debs: debian
            .lockedOf(set)
            .filter((p) => p.architecture === arch || p.architecture === 'all')
            .map((p) => p.sha256),
          slice:
            sliceMode === 'auto'
              ? { ...sliceCfg, shell: cfg.shell, image: cfg.image, files: keepFiles }
              : 'none',
          ...(cfg.accounts ? { accounts: cfg.accounts } : {}),
          ...(spec ? { variant: { whole: [...(own ?? [])], programs: keepPrograms } } : {}),
        });
        hit = await layerCache.get(cacheKeyFor);
      }
      if (baseImage) {
        // An image base: its layers are kept as they are; accounts: changes become a layer of pare's own.
        const image = await baseImageFor(baseImage, platform);
        const lower = await imageToTree(image);
        assertDestsKeepLinks(loaded, platform, lower);
        // packages: on a Debian base: what the base's dpkg database lacks is installed on top (base-image.ts).
        const upper =
          cfg.packages?.length && debian
            ? (await packagesOnBase(loaded, lower, platform, debian, epoch, set, await image.digest())).tree
            : lower;
        base = (await withAccounts(upper, loaded, epoch)) ?? upper;
        ids = await idsFromTree(base);
        const baseConfig = (await image.config()).config;
        if (sliceCfg.base && sliceMode === 'auto') {
          // slice: { base: true }: the whole tree is sliced and becomes one layer of pare's; the base's layers (and
          // their digests, history and base annotations) are not kept. Its run config still is.
          const resolve = ownerResolver(ids.users, ids.groups);
          slicedApp = await filesTree(loaded, epoch, resolve, filesOptions);
          const rcForSlice = inheritedRunConfig(baseConfig, loaded, (u) =>
            resolve(u, loaded.locate(['image', 'user'])),
          );
          const merged = merge([base, slicedApp], conflictReplace);
          checkSymlinkLoops(merged, `${loaded.path} for ${key}`);
          onStep?.({ step: 'slice', state: 'start', platform: key });
          const r = await sliceTree(merged, {
            entrypoint: rcForSlice.Entrypoint,
            cmd: rcForSlice.Cmd,
            env: rcForSlice.Env,
            workingDir: rcForSlice.WorkingDir,
            executables: [...(sliceCfg.executables ?? []), ...keepPrograms],
            keep: sliceCfg.keep,
            drop: sliceCfg.drop,
            files: keepFiles,
            shell: cfg.shell,
            locales: sliceCfg.locales,
            probe: sliceCfg.probe,
          }).catch((e: unknown) => {
            throw atGlob(e, loaded, sliceCfg);
          });
          onStep?.({ step: 'slice', state: 'done', platform: key });
          slices.set(key, sliceReport(r));
          const app = new Set(keepFiles);
          base = r.tree.filter((p, e) => e.kind === 'dir' || !app.has(p));
          baseLayer = layerFromTree(base, { compression, epoch });
          fromBase = { image, layers: [], config: baseConfig, resliced: true };
        } else {
          const own = changedEntries(lower, base);
          if (own.size > 1) baseLayer = layerFromTree(own, { compression, epoch });
          fromBase = { image, layers: await image.layers(), config: baseConfig, resliced: false };
        }
      } else if (hit) {
        // The cached layer's tree was checked when it was made (the key covers the files' paths); its links again.
        assertDestsKeepLinks(loaded, platform, minimalBase(epoch, usrArch(platform)));
        cached.push(key);
        baseLayer = hit.layer;
        ids = {
          users: new Map(hit.users.map(([n, u, g]) => [n, { uid: u, gid: g }])),
          groups: new Map(hit.groups),
        };
        if (hit.slice) slices.set(key, hit.slice);
      } else {
        const plan = debian;
        const assembled =
          cfg.packages?.length && plan
            ? await timed(
                onStep,
                'unpack',
                key,
                () => plan.assembled(platform, epoch, set),
                (a) => [`${a.tree.size} entries`],
              )
            : undefined;
        base = assembled
          ? assembled.tree
          : cfg.packages?.length
            ? await packagesRoot!(platform, epoch)
            : cfg.base === 'minimal'
              ? minimalBase(epoch, usrArch(platform))
              : undefined;
        base = await withAccounts(base, loaded, epoch);
        // A dest through a linked directory (/bin/x with /bin → usr/bin) would replace the link: refused.
        assertDestsKeepLinks(loaded, platform, base);
        ids = await idsFromTree(base ?? minimalBase(epoch));
        // shell: true promises /bin/sh; a packages build without a package that ships it would silently have none.
        if (cfg.shell && base && cfg.packages?.length && base.get('/usr/bin/sh') === undefined)
          throw new UsageError(
            'CONFIG_INVALID',
            `${loaded.locate(['shell'])}: shell: true, but no package of ${key} ships /bin/sh; add dash to packages:`,
          );
        if (base && cfg.packages?.length && sliceMode === 'auto') {
          const resolve = ownerResolver(ids.users, ids.groups);
          slicedApp = await filesTree(loaded, epoch, resolve, filesOptions);
          const rcForSlice = runConfig(loaded, (u) => resolve(u, loaded.locate(['image', 'user'])));
          const merged = merge([base, slicedApp], conflictReplace);
          checkSymlinkLoops(merged, `${loaded.path} for ${key}`);
          // A variant's own packages are kept whole: every file they ship is a root, with its closure.
          const whole =
            own && assembled
              ? [...assembled.owners]
                  .filter(([p, pkgs]) => pkgs.some((n) => own.has(n)) && merged.get(p) !== undefined)
                  .map(([p]) => p)
              : [];
          onStep?.({ step: 'slice', state: 'start', platform: key });
          // Slicing keeps what the image runs; every file the user listed stays, whether or not something reaches it.
          const r = await sliceTree(merged, {
            entrypoint: rcForSlice.Entrypoint,
            cmd: rcForSlice.Cmd,
            env: rcForSlice.Env,
            workingDir: rcForSlice.WorkingDir,
            executables: [...(sliceCfg.executables ?? []), ...keepPrograms],
            keep: sliceCfg.keep,
            drop: sliceCfg.drop,
            files: [...new Set([...keepFiles, ...whole])].sort(),
            shell: cfg.shell,
            locales: sliceCfg.locales,
            probe: sliceCfg.probe,
            owners: assembled?.owners,
          }).catch((e: unknown) => {
            throw atGlob(e, loaded, sliceCfg);
          });
          onStep?.({
            step: 'slice',
            state: 'done',
            platform: key,
            detail: [
              `kept ${r.after.files} of ${r.before.files} files, `,
              bytes(r.after.bytes),
              ' of ',
              bytes(r.before.bytes),
            ],
          });
          slices.set(key, sliceReport(r));
          // The base layer is what the slice kept of the packages; the user's files stay a layer of their own.
          const app = new Set(keepFiles);
          base = r.tree.filter((p, e) => e.kind === 'dir' || !app.has(p));
        }
        if (base) {
          baseLayer = layerFromTree(base, { compression, epoch });
          if (layerCache && cacheKeyFor) {
            await layerCache.put(cacheKeyFor, {
              layer: baseLayer,
              users: [...ids.users].map(([n, v]) => [n, v.uid, v.gid] as const),
              groups: [...ids.groups],
              slice: slices.get(key),
            });
          }
        }
      }
      const resolveOwner = ownerResolver(ids.users, ids.groups);
      // The same ids give the same tree: reuse the one the slice was computed with.
      const appTree = slicedApp ?? (await filesTree(loaded, epoch, resolveOwner, filesOptions));
      const userOf = (u: string | number) => resolveOwner(u, loaded.locate(['image', 'user']));
      const rc = fromBase ? inheritedRunConfig(fromBase.config, loaded, userOf) : runConfig(loaded, userOf);
      const baseTree = base;
      const cachedLayer = hit?.layer;
      // What the image unpacks to: built only when asked (records, tests), from the tree or from the cached layer.
      let rootfs: Promise<Tree> | undefined;
      trees.set(key, () => {
        rootfs ??= (async () => {
          const lower =
            baseTree ??
            (cachedLayer
              ? applyLayer(Tree.empty(), await collectEntries(cachedLayer.uncompressed()))
              : undefined);
          return lower ? merge([lower, appTree], conflictReplace) : appTree;
        })();
        return rootfs;
      });
      if (!cachedLayer) checkSymlinkLoops(await trees.get(key)!(), `${loaded.path} for ${key}`);
      const layers: Layer[] = [...(fromBase?.layers ?? [])];
      const history = [
        ...((fromBase && !fromBase.resliced && (await fromBase.image.config()).history) || []),
      ];
      if (baseLayer) {
        layers.push(baseLayer);
        history.push({
          created,
          created_by: fromBase?.resliced
            ? `pare build: base ${baseImage?.name} re-sliced${cfg.packages?.length ? ` with packages ${cfg.packages.join(' ')}` : ''}`
            : cfg.packages?.length
              ? `pare build: packages ${cfg.packages.join(' ')}${slices.has(key) ? ' (sliced)' : ''}`
              : cfg.base === 'minimal'
                ? 'pare build: base (minimal)'
                : 'pare build: accounts',
        });
      }
      if (appTree.size > 1) {
        // Platforms (and images) whose files come from the same entries and host paths share one layer.
        const files = `${filesVariant(loaded, platform)}\0${JSON.stringify(cfg.files)}`;
        let appLayer = appLayers.get(files);
        if (!appLayer) {
          appLayer = layerFromTree(appTree, { compression, epoch });
          appLayers.set(files, appLayer);
        }
        layers.push(appLayer);
        history.push({ created, created_by: 'pare build: files' });
      }
      // The tree the image unpacks to must run: ELF machines, loaders, libraries and the entrypoint (check.ts). A pass
      // is remembered by the layers' diff_ids and the command, so a warm build does not unpack its cached layer again.
      const checkKey =
        layerCache &&
        `check-${cacheKey({
          check: CHECK_VERSION,
          pare: PARE_VERSION,
          platform: key,
          layers: await Promise.all(layers.map((l) => l.diffId())),
          command: [rc.Entrypoint, rc.Cmd, rc.Env, rc.WorkingDir],
        })}`;
      if (!(checkKey && (await layerCache!.getRecord(checkKey)) === 'runnable\n')) {
        await assertRunnable(await trees.get(key)!(), platform, rc, loaded.path);
        if (checkKey) await layerCache!.putRecord(checkKey, 'runnable\n');
      }
      const annotations: Record<string, string> = {
        'org.opencontainers.image.created': created,
        'org.opencontainers.image.title': name,
        ...(fromBase && baseImage && !fromBase.resliced
          ? {
              'org.opencontainers.image.base.digest': await fromBase.image.digest(),
              'org.opencontainers.image.base.name': baseImage.name,
            }
          : {}),
        ...(cfg.image.annotations ?? {}),
      };
      images.push({
        image: buildImage({ layers, platform, config: rc, created, history, annotations }),
        platform,
        layerCount: layers.length,
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
    const digest = await timed(
      onStep,
      'compress',
      undefined,
      () => a.digest(),
      () => [`${images.reduce((n, i) => n + i.layerCount, 0)} layers (${compression})`],
    );
    const descriptor: Descriptor = { mediaType: await a.mediaType(), digest, size: await a.size() };
    return { artifact, digest, descriptor, trees, slices, cached };
  }
  const main = await buildOne(loaded);
  const variants: { name: string; loaded: LoadedConfig; built: Built }[] = [];
  for (const v of variantNames) {
    const vl = variantConfig(loaded, v);
    variants.push({ name: v, loaded: vl, built: await buildOne(vl, v) });
  }

  if (!options.dryRun) {
    if (debian && !baseImage) await saveLock(debian);
    if (baseImage) await saveBaseLock(baseImage, debian);
    await timed(
      onStep,
      'write',
      undefined,
      async () => {
        const layout = await OciLayout.create(layoutDir);
        await layout.writeArtifact(main.artifact, { tag });
        for (const v of variants) await layout.writeArtifact(v.built.artifact, { tag: `${tag}-${v.name}` });
        if (tarOpt) await writeArchive(tarOpt, main.artifact, { tag, repoTag: `${name}:${tag}`, epoch });
      },
      () => [
        [`oci:${layoutDir}:${tag}`, ...variants.map((v) => `oci:${layoutDir}:${tag}-${v.name}`), tarOpt]
          .filter(Boolean)
          .join(' and '),
      ],
    );
  }
  const resultOf = (
    b: Built,
    t: string,
    set: string,
    variantResults: readonly BuildResult[],
  ): BuildResult => ({
    artifact: b.artifact,
    digest: b.digest,
    descriptor: b.descriptor,
    platforms,
    tree: async (k) => b.trees.get(k)?.(),
    layoutDir: options.dryRun ? undefined : layoutDir,
    tag: t,
    tarFile: options.dryRun || set !== '' || t !== tag ? undefined : tarOpt,
    epoch,
    debian,
    packageSet: set,
    baseImage,
    slices: b.slices,
    cached: b.cached,
    records: undefined,
    variants: variantResults,
  });
  const variantResults = variants.map((v) =>
    resultOf(v.built, `${tag}-${v.name}`, cfg.variants?.[v.name]?.packages?.length ? v.name : '', []),
  );
  const result = resultOf(main, tag, '', variantResults);
  if (options.dryRun) return result;
  // Each image has its own records (SBOMs, provenance, slice report) in <layout>/pare/<its tag>/.
  const withRecords: BuildResult[] = [];
  for (const [i, v] of variants.entries())
    withRecords.push({
      ...variantResults[i]!,
      records: await writeBuildRecords(v.loaded, variantResults[i]!, { cache: layerCache }),
    });
  return {
    ...result,
    variants: withRecords,
    records: await writeBuildRecords(loaded, result, { cache: layerCache }),
  };
}
