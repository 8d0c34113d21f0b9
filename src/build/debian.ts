import { join, resolve } from 'node:path';
import type { LoadedConfig } from '../config/index.ts';
import {
  type ArchiveOptions,
  type Assembled,
  assembleRootfs,
  assertLockSatisfied,
  changelogDate,
  createLock,
  type DebFile,
  type DebianArchive,
  type DebianSource,
  type DebPackage,
  type DownloadProgress,
  detachRecord,
  diffLocks,
  fetchLockedPackages,
  formatLock,
  type LockedPackage,
  type LockFile,
  mapLimit,
  openArchive,
  type PackageRecord,
  PackageUniverse,
  type Resolution,
  readDebFile,
  readLock,
  resolveDependencies,
  writeLock,
} from '../debian/index.ts';
import { DebianError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';
import type { Platform } from '../oci/index.ts';

/**
 * The Debian half of `pare build`: pare.yaml's `debian:` + `packages:` → verified archive → resolution per
 * architecture → pare.lock → verified .debs → one assembled root filesystem per platform. Nothing from a package is
 * executed. With a lock that still answers the requests, no index is read at all (a warm build is local).
 */

/** Debian architecture for an OCI platform. */
export function debianArch(p: Platform): string {
  const map: Record<string, string> = {
    amd64: 'amd64',
    arm64: 'arm64',
    '386': 'i386',
    ppc64le: 'ppc64el',
    s390x: 's390x',
    riscv64: 'riscv64',
    mips64le: 'mips64el',
  };
  if (p.architecture === 'arm') return p.variant === 'v5' ? 'armel' : 'armhf';
  const a = map[p.architecture];
  if (!a)
    throw new DebianError(
      'DEBIAN_PACKAGE_NOT_FOUND',
      `cannot build platform ${p.os}/${p.architecture}: Debian has no matching architecture`,
    );
  return a;
}

export interface DebianBuildOptions {
  /** Fail when the resolution differs from pare.lock (CI). */
  readonly locked?: boolean;
  /** Re-resolve against the archive even when the lock still answers the requests. */
  readonly update?: boolean;
  /** Do not write pare.lock. */
  readonly dryRun?: boolean;
  /**
   * Leave writing pare.lock to the caller (`saveLock`): `pare build` writes it only once every input is checked, so a
   * bad pare.yaml writes nothing. The plan's lockState still says 'written' when the lock changed.
   */
  readonly deferLockWrite?: boolean;
  readonly onProgress?: (e: DownloadProgress) => void;
  readonly archive?: ArchiveOptions;
}

/**
 * The package requests of each image a config builds: '' is the main image's `packages:`, then each variant with
 * packages of its own asks for the main image's plus its own. One lock answers them all.
 */
export function requestSets(loaded: LoadedConfig): Map<string, readonly string[]> {
  const main = loaded.config.packages ?? [];
  const sets = new Map<string, readonly string[]>([['', main]]);
  for (const [name, v] of Object.entries(loaded.config.variants ?? {}).sort(([a], [b]) => (a < b ? -1 : 1)))
    if (v.packages?.length) sets.set(name, [...new Set([...main, ...v.packages])]);
  return sets;
}

export interface DebianPlan {
  readonly lock: LockFile;
  readonly lockPath: string;
  /** 'unchanged' (lock used as is), 'written' (new or changed), 'would-change' (dry run). */
  readonly lockState: 'unchanged' | 'written' | 'would-change';
  /** Resolution of the main image's packages per Debian architecture. */
  readonly resolutions: ReadonlyMap<string, Resolution>;
  /** Resolution per request set (requestSets: '' the main image, else a variant) and Debian architecture. */
  readonly sets: ReadonlyMap<string, ReadonlyMap<string, Resolution>>;
  /** Verified .deb files per Debian architecture (every set's). */
  readonly debs: ReadonlyMap<string, readonly DebFile[]>;
  /** The .debs of one request set (default the main image's) for a Debian architecture. */
  debsOf(arch: string, set?: string): readonly DebFile[];
  /** The locked packages of one request set (default the main image's), every architecture, in lock order. */
  lockedOf(set?: string): readonly LockedPackage[];
  /** Builds (and caches) the assembled root filesystem of a platform (of a request set; default the main image). */
  rootfs(platform: Platform, epoch: number, set?: string): Promise<Tree>;
  /**
   * Like rootfs, with which package owns each path (for slicing and the SBOM). `skip` leaves out packages by
   * `name:arch=version` (those an image base has already).
   */
  assembled(platform: Platform, epoch: number, set?: string, skip?: ReadonlySet<string>): Promise<Assembled>;
  /**
   * The newest changelog date (seconds) of the main image's locked packages, all architectures (changelog.ts), or
   * undefined when none has a changelog: the default SOURCE_DATE_EPOCH. Reads those .debs (kept for assembling).
   */
  sourceDate(): Promise<number | undefined>;
}

/** The DebianSource of a config (defaults filled by the schema). */
export function debianSource(loaded: LoadedConfig): DebianSource {
  const d = loaded.config.debian;
  return {
    suite: d?.suite ?? 'bookworm',
    components: d?.components ?? ['main'],
    security: d?.security ?? true,
    updates: d?.updates ?? true,
    ...(d?.mirror ? { mirror: d.mirror } : {}),
    ...(d?.securityMirror ? { securityMirror: d.securityMirror } : {}),
    ...(d?.keyring ? { keyring: resolve(loaded.dir, d.keyring) } : {}),
    ...(d?.snapshot ? { snapshot: d.snapshot } : {}),
    ...(d?.snapshotMirror ? { snapshotMirror: d.snapshotMirror } : {}),
  };
}

function universeFrom(records: readonly PackageRecord[], arch: string): PackageUniverse {
  const bySuite = new Map<string, PackageRecord[]>();
  for (const r of records) {
    if (r.architecture !== arch && r.architecture !== 'all') continue;
    const list = bySuite.get(r.suite);
    if (list) list.push(r);
    else bySuite.set(r.suite, [r]);
  }
  return new PackageUniverse(
    // Records, not paragraphs: the universe reads a paragraph only for the packages the resolver looks at.
    [...bySuite].map(([suite, rs]) => ({ suite, label: suite, paragraphs: rs })),
    { architectures: [arch] },
  );
}

function pick(records: readonly PackageRecord[], res: Resolution): PackageRecord[] {
  // Keys only for the selected packages: a key per index record would be 66k strings for a few dozen lookups.
  const key = (n: string, v: string, a: string, s: string) => `${n}\0${v}\0${a}\0${s}`;
  const want = new Set(res.packages.map((p) => key(p.name, p.version, p.architecture, p.suite)));
  const names = new Set(res.packages.map((p) => p.name));
  const byKey = new Map<string, PackageRecord>();
  for (const r of records) {
    if (!names.has(r.name)) continue;
    const k = key(r.name, r.version, r.architecture, r.suite);
    if (want.has(k)) byKey.set(k, r);
  }
  return res.packages.map((p) => {
    const r = byKey.get(key(p.name, p.version, p.architecture, p.suite));
    if (!r)
      throw new DebianError(
        'DEBIAN_PACKAGE_NOT_FOUND',
        `cannot find the index record of ${p.name} ${p.version} (${p.architecture}, ${p.suite})`,
        { package: p.name },
      );
    return r;
  });
}

/**
 * Resolves `requests` per architecture over the archive's indexes. A function of its own so that the index records
 * (≈25 MB of kept stanzas and 66k objects for bookworm/main) are garbage once it returns: the selected records come
 * back detached, and the .debs are fetched and read without the indexes in memory.
 */
async function resolveIndexes(
  archive: DebianArchive,
  archs: readonly string[],
  sets: ReadonlyMap<string, readonly string[]>,
): Promise<{ sets: Map<string, Map<string, Resolution>>; selected: PackageRecord[] }> {
  const records = await archive.packages();
  const out = new Map<string, Map<string, Resolution>>();
  const selected: PackageRecord[] = [];
  for (const [set, requests] of sets) {
    const resolutions = new Map<string, Resolution>();
    out.set(set, resolutions);
    for (const arch of archs) {
      const res = resolveDependencies(universeFrom(records, arch), requests);
      resolutions.set(arch, res);
      for (const r of pick(records, res)) {
        const same = selected.find((s) => s.name === r.name && s.architecture === r.architecture);
        if (same && same.version !== r.version)
          // One lock, one version of a package: the variant would not be the main image's bits plus its own.
          throw new DebianError(
            'DEBIAN_CONFLICT',
            `cannot lock variant ${set}: it needs ${r.name}:${r.architecture} ${r.version}, the main image ${same.version}; pin the version in packages:`,
            { package: r.name },
          );
        if (!same) selected.push(detachRecord(r));
      }
    }
  }
  return { sets: out, selected };
}

/**
 * Resolves, locks and fetches the packages of a config for the given platforms. Throws DebianError (archive,
 * signature, hash, resolution and lock codes) naming the package, URL or file at fault.
 */
export async function planDebian(
  loaded: LoadedConfig,
  platforms: readonly Platform[],
  options: DebianBuildOptions = {},
): Promise<DebianPlan> {
  const sets = requestSets(loaded);
  const requests = [...new Set([...sets.values()].flat())];
  const source = debianSource(loaded);
  const archs = [...new Set(platforms.map(debianArch))].sort();
  const lockPath = join(loaded.dir, 'pare.lock');
  const archiveOptions: ArchiveOptions = {
    ...options.archive,
    architectures: archs,
    onProgress: options.onProgress,
  };
  const existing = await readLock(lockPath);

  // 1. A lock that still answers the requests is used as it is: its .debs come from the cache (or the pool), and
  //    resolving the requests over the locked packages' own control data must give back exactly the lock.
  if (existing && !options.update) {
    const debs = await fetchLockedPackages(existing, source, archiveOptions);
    const perArch = new Map<string, DebFile[]>();
    const bySet = new Map<string, Map<string, Resolution>>([...sets.keys()].map((k) => [k, new Map()]));
    // Only the control data is read here; the files are read later, and only when the layer cache misses.
    const controls = await Promise.all(
      debs.map(
        async (d) =>
          (
            await readDebFile(d.path, {
              controlOnly: true,
              expect: { name: d.record.name, version: d.record.version, architecture: d.record.architecture },
            })
          ).control,
      ),
    );
    let current = true;
    for (const arch of archs) {
      const mine = debs
        .map((d, i) => ({ d, c: controls[i]! }))
        .filter(({ d }) => d.record.architecture === arch || d.record.architecture === 'all');
      try {
        const u = new PackageUniverse(
          [{ suite: 'locked', label: 'pare.lock', paragraphs: mine.map((x) => x.c) }],
          { architectures: [arch] },
        );
        // Every set resolved over the lock: together they must want exactly the locked packages.
        const want = new Set<string>();
        for (const [set, reqs] of sets) {
          const res = resolveDependencies(u, reqs);
          for (const p of res.packages) want.add(`${p.name}:${p.architecture}=${p.version}`);
          bySet.get(set)!.set(arch, res);
        }
        const have = new Set(
          mine.map(({ d }) => `${d.record.name}:${d.record.architecture}=${d.record.version}`),
        );
        if (want.size !== have.size || [...want].some((k) => !have.has(k))) current = false;
        perArch.set(
          arch,
          mine.map((x) => x.d),
        );
      } catch (e) {
        if (!(e instanceof DebianError)) throw e;
        current = false;
      }
    }
    if (
      current &&
      existing.packages.every((p) => archs.includes(p.architecture) || p.architecture === 'all')
    ) {
      return plan(existing, lockPath, 'unchanged', bySet, perArch);
    }
    if (options.locked) {
      throw new DebianError(
        'DEBIAN_LOCK_MISMATCH',
        `cannot build with --locked: ${lockPath} does not match packages: ${JSON.stringify(requests)} for ${archs.join(', ')}; run "pare lock --update" and commit the lock`,
        { path: lockPath },
      );
    }
  } else if (!existing && options.locked) {
    throw new DebianError(
      'DEBIAN_LOCK_MISMATCH',
      `cannot build with --locked: there is no ${lockPath}; run "pare lock" and commit it`,
      { path: lockPath },
    );
  }

  // 2. Resolve against the verified archive.
  const archive = await openArchive(source, archiveOptions);
  const { sets: bySet, selected } = await resolveIndexes(archive, archs, sets);
  const lock = createLock(archive.suites, selected);
  if (existing && options.locked) assertLockSatisfied(existing, lock, lockPath);
  const changed =
    !existing || diffLocks(existing, lock).length > 0 || formatLock(existing) !== formatLock(lock);
  if (changed && !options.dryRun && !options.deferLockWrite) await writeLock(lockPath, lock);
  const debs = await archive.fetchDebs(selected);
  const perArch = new Map<string, DebFile[]>();
  for (const arch of archs)
    perArch.set(
      arch,
      debs.filter((d) => d.record.architecture === arch || d.record.architecture === 'all'),
    );
  return plan(
    lock,
    lockPath,
    changed ? (options.dryRun ? 'would-change' : 'written') : 'unchanged',
    bySet,
    perArch,
  );
}

/** Writes the plan's pare.lock when it changed (after `planDebian` with `deferLockWrite`). */
export async function saveLock(plan: DebianPlan): Promise<void> {
  if (plan.lockState === 'written') await writeLock(plan.lockPath, plan.lock);
}

/** How many .debs are read (decompressed and parsed) at once. */
const READ_CONCURRENCY = 3;

function plan(
  lock: LockFile,
  lockPath: string,
  lockState: DebianPlan['lockState'],
  sets: Map<string, Map<string, Resolution>>,
  debs: Map<string, DebFile[]>,
  parsed = new Map<string, Promise<DebPackage>>(),
): DebianPlan {
  const roots = new Map<string, Promise<Assembled>>();
  const debsOf = (arch: string, set = '') => {
    const res = sets.get(set)?.get(arch);
    if (!res) throw new Error(`no resolution of request set ${JSON.stringify(set)} for ${arch}`);
    const want = new Set(res.packages.map((p) => `${p.name}:${p.architecture}=${p.version}`));
    return (debs.get(arch) ?? []).filter((d) =>
      want.has(`${d.record.name}:${d.record.architecture}=${d.record.version}`),
    );
  };
  const read = (d: DebFile) => {
    let p = parsed.get(d.path);
    if (!p) {
      p = readDebFile(d.path, {
        expect: { name: d.record.name, version: d.record.version, architecture: d.record.architecture },
      });
      parsed.set(d.path, p);
    }
    return p;
  };
  return {
    lock,
    lockPath,
    lockState,
    resolutions: sets.get('')!,
    sets,
    debs,
    debsOf,
    lockedOf(set = '') {
      const want = new Set<string>();
      for (const res of sets.get(set)?.values() ?? [])
        for (const p of res.packages) want.add(`${p.name}:${p.architecture}=${p.version}`);
      return lock.packages.filter((p) => want.has(`${p.name}:${p.architecture}=${p.version}`));
    },
    assembled(platform, epoch, set = '', skip) {
      const arch = debianArch(platform);
      const k = `${arch}@${epoch}@${set}@${[...(skip ?? [])].sort().join(' ')}`;
      let r = roots.get(k);
      if (!r) {
        r = (async () => {
          // A few at a time, biggest first: every .deb read at once held all their decompressor pipes and chunks in
          // flight together (peak RSS of a cold python build 307-325 → 289-296 MiB, same time).
          const list = debsOf(arch, set).filter(
            (d) => !skip?.has(`${d.record.name}:${d.record.architecture}=${d.record.version}`),
          );
          const bySize = list.map((_, i) => i).sort((a, b) => list[b]!.record.size - list[a]!.record.size);
          const got = await mapLimit(bySize, READ_CONCURRENCY, (i) => read(list[i]!));
          const pkgs: DebPackage[] = new Array(list.length);
          bySize.forEach((i, j) => {
            pkgs[i] = got[j]!;
          });
          return assembleRootfs(pkgs, { architecture: arch, epoch });
        })();
        roots.set(k, r);
      }
      return r;
    },
    async rootfs(platform, epoch, set) {
      return (await this.assembled(platform, epoch, set)).tree;
    },
    async sourceDate() {
      // The main image's packages only: adding a variant does not move the main image's date (nor its digest).
      const all = new Map<string, DebFile>();
      for (const arch of debs.keys()) for (const d of debsOf(arch)) all.set(d.path, d);
      const files = [...all.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      const dates = await mapLimit(files, READ_CONCURRENCY, async (d) => changelogDate(await read(d)));
      const known = dates.filter((x): x is number => x !== undefined);
      return known.length ? Math.max(...known) : undefined;
    },
  };
}
