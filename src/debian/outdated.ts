import type { Digest } from '../digest/index.ts';
import { type ArchiveOptions, type DebianArchive, openArchive, type SuiteState } from './archive.ts';
import { changelogSince } from './changelog.ts';
import { readDebFile } from './deb.ts';
import type { DebianSource } from './mirror.ts';
import { detachRecord, type PackageRecord } from './packages.ts';
import { compareVersions } from './version.ts';

/**
 * `pare outdated`: a lock against the archive as it is now. The suite, `-updates` and `-security` are always read
 * (even when pare.yaml turns them off for building: a lock made without security updates is what this is for) and
 * never through a snapshot. Every index and .deb comes through the secure-apt chain of `openArchive` (InRelease
 * signature → index hashes → .deb Size + SHA256), so the CVE ids shown come from verified bytes.
 */

/** One locked package with a newer version in the archive. */
export interface OutdatedPackage {
  readonly name: string;
  readonly architecture: string;
  /** The locked version and the suite it was locked from. */
  readonly locked: string;
  /** Absent for an image (its dpkg metadata does not say which suite a package came from). */
  readonly lockedSuite?: string;
  /** The newest version in any suite (on a tie, the security suite's). */
  readonly candidate: string;
  readonly suite: string;
  /** True when the security suite has a version newer than the locked one. */
  readonly security: boolean;
  /** CVE ids named by the candidate's changelog entries newer than the locked version; [] when none. */
  readonly cves: readonly string[];
  /** Versions of those changelog entries, newest first. */
  readonly changes: readonly string[];
  /**
   * 'complete': the changelog reached the locked version; 'partial': it ended first (entries may be missing);
   * 'missing': the candidate .deb has no changelog of its own (its doc directory links to another package's).
   */
  readonly changelog: 'complete' | 'partial' | 'missing';
}

/** What is compared: a lock's packages, or the packages an image's dpkg metadata lists. */
export interface InstalledPackages {
  readonly packages: readonly {
    readonly name: string;
    readonly version: string;
    readonly architecture: string;
    readonly suite?: string;
  }[];
}

export interface OutdatedReport {
  /** The suites read, in archive order, with the identity of their verified InRelease. */
  readonly suites: readonly {
    readonly suite: string;
    readonly kind: SuiteState['kind'];
    readonly date: string | undefined;
    readonly inRelease: Digest;
  }[];
  /** Sorted by name, then architecture. */
  readonly packages: readonly OutdatedPackage[];
  /** True when some package has a security update (`pare outdated` then exits 1). */
  readonly securityPending: boolean;
}

/** The source outdated reads: the live archive with every suite, whatever pare.yaml builds from. */
export function outdatedSource(source: DebianSource): DebianSource {
  const { snapshot: _s, snapshotMirror: _m, ...live } = source;
  return { ...live, security: true, updates: true };
}

/**
 * Returns the locked packages that have a newer version in the archive now, with the CVE ids the candidate's
 * changelog names since the locked version. Candidate .debs are fetched (into the cache, verified against the signed
 * index) and read one at a time. Throws the DebianError of `openArchive`, `packages()` and `fetchDebs`.
 */
export async function findOutdated(
  lock: InstalledPackages,
  source: DebianSource,
  options: ArchiveOptions = {},
): Promise<OutdatedReport> {
  const archs = [...new Set(lock.packages.map((p) => p.architecture).filter((a) => a !== 'all'))].sort();
  const archive = await openArchive(outdatedSource(source), {
    ...options,
    ...(archs.length > 0 ? { architectures: archs } : {}),
  });
  const kind = new Map(archive.suites.map((s) => [s.suite, s.kind]));
  const byKey = await lockedNames(archive, lock);

  const found: { pkg: OutdatedPackage; record: PackageRecord }[] = [];
  for (const p of lock.packages) {
    const newer = (byKey.get(`${p.name}\0${p.architecture}`) ?? []).filter(
      (r) => compareVersions(r.version, p.version) > 0,
    );
    if (newer.length === 0) continue;
    const isSec = (r: PackageRecord) => kind.get(r.suite) === 'security';
    const best = newer.reduce((a, b) => {
      const c = compareVersions(b.version, a.version);
      return c > 0 || (c === 0 && isSec(b) && !isSec(a)) ? b : a;
    });
    found.push({
      record: best,
      pkg: {
        name: p.name,
        architecture: p.architecture,
        locked: p.version,
        ...(p.suite !== undefined ? { lockedSuite: p.suite } : {}),
        candidate: best.version,
        suite: best.suite,
        security: newer.some(isSec),
        cves: [],
        changes: [],
        changelog: 'missing',
      },
    });
  }

  // One changelog per (package, candidate, locked version): every architecture's .deb carries the same one.
  const read = new Map<string, Pick<OutdatedPackage, 'cves' | 'changes' | 'changelog'>>();
  const packages: OutdatedPackage[] = [];
  for (const { pkg, record } of found) {
    const k = `${pkg.name}\0${pkg.candidate}\0${pkg.locked}`;
    let info = read.get(k);
    if (!info) {
      const [deb] = await archive.fetchDebs([record]);
      const contents = await readDebFile(deb!.path, {
        expect: { name: record.name, version: record.version, architecture: record.architecture },
      });
      const since = await changelogSince(contents, pkg.locked);
      info = since
        ? {
            cves: since.cves,
            changes: since.entries.map((e) => e.version),
            changelog: since.complete ? 'complete' : 'partial',
          }
        : { cves: [], changes: [], changelog: 'missing' };
      read.set(k, info);
    }
    packages.push({ ...pkg, ...info });
  }
  packages.sort((a, b) => cmp(a.name, b.name) || cmp(a.architecture, b.architecture));
  return {
    suites: archive.suites.map((s) => ({
      suite: s.suite,
      kind: s.kind,
      date: s.release.date?.toISOString(),
      inRelease: s.inRelease,
    })),
    packages,
    securityPending: packages.some((p) => p.security),
  };
}

/**
 * Returns the index records of the locked (name, architecture) pairs, detached: a function of its own so the whole
 * index is garbage before any .deb is read.
 */
async function lockedNames(
  archive: DebianArchive,
  lock: InstalledPackages,
): Promise<Map<string, PackageRecord[]>> {
  const byKey = new Map<string, PackageRecord[]>();
  const locked = new Set(lock.packages.map((p) => `${p.name}\0${p.architecture}`));
  for (const r of await archive.packages()) {
    const k = `${r.name}\0${r.architecture}`;
    if (!locked.has(k)) continue;
    const list = byKey.get(k);
    if (list) list.push(detachRecord(r));
    else byKey.set(k, [detachRecord(r)]);
  }
  return byKey;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
