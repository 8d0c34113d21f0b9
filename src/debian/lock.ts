import { randomBytes } from 'node:crypto';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import type { Digest } from '../digest/index.ts';
import { DebianError } from '../errors.ts';
import {
  type ArchiveOptions,
  type DebFile,
  fetchPool,
  formatSnapshot,
  resolveDownloadOptions,
  type SuiteState,
} from './archive.ts';
import { parseControl } from './control.ts';
import { type DebianSource, resolveSuites } from './mirror.ts';
import type { PackageRecord } from './packages.ts';

/**
 * `pare.lock`: the archive state a build saw and every package it used, so the next build fetches exactly the same
 * bytes. JSON with a fixed key order, suites sorted by name and packages by (name, architecture, version): the same
 * inputs give the same file byte for byte, and a change shows as a small diff. URLs are not recorded (the same lock
 * works against any mirror of the same archive); each package is identified by its pool path, Size and SHA256.
 */

export const LOCK_VERSION = 1;

/** One suite as it was locked: the identity of its signed Release. */
export interface LockedSuite {
  readonly suite: string;
  readonly codename: string | undefined;
  /** Release `Date`, ISO 8601 UTC. */
  readonly date: string | undefined;
  /** sha256 of the InRelease (or Release) bytes. */
  readonly inRelease: Digest;
}

/** One package as it was locked. */
export interface LockedPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  /** Pool path, e.g. "pool/main/n/netbase/netbase_6.4_all.deb". */
  readonly filename: string;
  readonly sha256: Digest;
  readonly size: number;
  /** Suite the package came from, e.g. "bookworm-security". */
  readonly suite: string;
}

/** The image a `base:` reference named when it was locked (build/base-image.ts). */
export interface LockedBase {
  /** `base:` as written in pare.yaml. */
  readonly reference: string;
  /** The manifest (or index) digest the reference resolved to. */
  readonly digest: Digest;
}

export interface LockFile {
  readonly version: typeof LOCK_VERSION;
  readonly suites: readonly LockedSuite[];
  readonly packages: readonly LockedPackage[];
  /** Only for a `base:` image; absent otherwise, so package-only locks stay byte-identical. */
  readonly base?: LockedBase;
}

/** One difference between two locks, for `--locked` failures and `pare lock --update` output. */
export interface LockChange {
  readonly kind: 'added' | 'removed' | 'changed';
  /** "package libc6:amd64" or "suite bookworm-security". */
  readonly subject: string;
  readonly from: string | undefined;
  readonly to: string | undefined;
}

const digestSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/) as unknown as z.ZodType<Digest>;
const lockSchema = z
  .object({
    version: z.literal(LOCK_VERSION),
    suites: z.array(
      z
        .object({
          suite: z.string().min(1),
          codename: z.string().optional(),
          date: z.string().optional(),
          inRelease: digestSchema,
        })
        .strict(),
    ),
    packages: z.array(
      z
        .object({
          name: z.string().min(1),
          version: z.string().min(1),
          architecture: z.string().min(1),
          filename: z.string().min(1),
          sha256: digestSchema,
          size: z.number().int().positive(),
          suite: z.string().min(1),
        })
        .strict(),
    ),
    base: z
      .object({ reference: z.string().min(1), digest: digestSchema })
      .strict()
      .optional(),
  })
  .strict();

/** Returns the lock for a resolved package set and the suites it came from (sorted; no I/O). */
export function createLock(suites: readonly SuiteState[], packages: readonly PackageRecord[]): LockFile {
  return normalizeLock({
    version: LOCK_VERSION,
    suites: suites.map((s) => ({
      suite: s.suite,
      codename: s.release.codename,
      date: s.release.date?.toISOString(),
      inRelease: s.inRelease,
    })),
    // note: normalizeLock keeps only the locked fields of each record, in the file's order
    packages,
  });
}

function normalizeLock(lock: LockFile): LockFile {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    version: LOCK_VERSION,
    suites: [...lock.suites]
      .map((s) => ({ suite: s.suite, codename: s.codename, date: s.date, inRelease: s.inRelease }))
      .sort((a, b) => cmp(a.suite, b.suite)),
    packages: [...lock.packages]
      .map((p) => ({
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        filename: p.filename,
        sha256: p.sha256,
        size: p.size,
        suite: p.suite,
      }))
      .sort(
        (a, b) => cmp(a.name, b.name) || cmp(a.architecture, b.architecture) || cmp(a.version, b.version),
      ),
    ...(lock.base ? { base: { reference: lock.base.reference, digest: lock.base.digest } } : {}),
  };
}

/** Returns the canonical text of a lock (2-space JSON, fixed key order, trailing newline). */
export function formatLock(lock: LockFile): string {
  return `${JSON.stringify(normalizeLock(lock), null, 2)}\n`;
}

/** Returns the lock in `text`; throws DEBIAN_LOCK_INVALID naming `file` and the first bad field. */
export function parseLock(text: string, file = 'pare.lock'): LockFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new DebianError('DEBIAN_LOCK_INVALID', `cannot read lockfile ${file}: ${(e as Error).message}`, {
      cause: e,
      path: file,
    });
  }
  const r = lockSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new DebianError(
      'DEBIAN_LOCK_INVALID',
      `cannot read lockfile ${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}; regenerate it with "pare lock --update"`,
      { path: file },
    );
  }
  for (const p of r.data.packages) {
    const unsafe = p.filename.startsWith('/') || p.filename.split('/').some((s) => s === '..' || s === '');
    if (unsafe) {
      throw new DebianError(
        'DEBIAN_LOCK_INVALID',
        `cannot read lockfile ${file}: package ${p.name} has unsafe filename ${JSON.stringify(p.filename)}`,
        { path: file, package: p.name },
      );
    }
  }
  return normalizeLock(r.data as LockFile);
}

/** Returns the lock at `path`, or undefined when there is none. Throws DEBIAN_LOCK_INVALID. */
export async function readLock(path: string): Promise<LockFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DebianError('DEBIAN_LOCK_INVALID', `cannot read lockfile ${path}: ${(e as Error).message}`, {
      cause: e,
      path,
    });
  }
  return parseLock(text, path);
}

/** Writes the lock to `path` atomically (temp file + rename). */
export async function writeLock(path: string, lock: LockFile): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, formatLock(lock));
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Returns what changed from `before` to `after`: suites whose InRelease differs, and packages added, removed or at
 * another version/hash. Sorted by subject. Empty when the locks are equal.
 */
export function diffLocks(before: LockFile, after: LockFile): LockChange[] {
  const out: LockChange[] = [];
  const suiteDesc = (s: LockedSuite) => `${s.inRelease} (${s.date ?? 'no date'})`;
  const pkgDesc = (p: LockedPackage) => `${p.version} ${p.sha256} from ${p.suite}`;
  diffMaps(
    new Map(before.suites.map((s) => [`suite ${s.suite}`, suiteDesc(s)])),
    new Map(after.suites.map((s) => [`suite ${s.suite}`, suiteDesc(s)])),
    out,
  );
  diffMaps(
    new Map(before.packages.map((p) => [`package ${p.name}:${p.architecture}`, pkgDesc(p)])),
    new Map(after.packages.map((p) => [`package ${p.name}:${p.architecture}`, pkgDesc(p)])),
    out,
  );
  return out.sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
}

function diffMaps(a: Map<string, string>, b: Map<string, string>, out: LockChange[]): void {
  for (const [k, v] of a) {
    const w = b.get(k);
    if (w === undefined) out.push({ kind: 'removed', subject: k, from: v, to: undefined });
    else if (w !== v) out.push({ kind: 'changed', subject: k, from: v, to: w });
  }
  for (const [k, w] of b) if (!a.has(k)) out.push({ kind: 'added', subject: k, from: undefined, to: w });
}

/**
 * Throws DEBIAN_LOCK_MISMATCH listing the changes when the packages of `fresh` differ from `locked` (`--locked`).
 * Suites are compared only through the packages: a new InRelease that changes no package keeps the lock valid.
 */
export function assertLockSatisfied(locked: LockFile, fresh: LockFile, file = 'pare.lock'): void {
  const changes = diffLocks({ ...locked, suites: [] }, { ...fresh, suites: [] });
  if (changes.length === 0) return;
  const shown = changes
    .slice(0, 20)
    .map((c) => `  ${c.kind} ${c.subject}${c.from ? ` ${c.from}` : ''}${c.to ? ` -> ${c.to}` : ''}`)
    .join('\n');
  const more = changes.length > 20 ? `\n  … and ${changes.length - 20} more` : '';
  throw new DebianError(
    'DEBIAN_LOCK_MISMATCH',
    `cannot build with --locked: the resolved packages differ from ${file} (${changes.length} change${changes.length === 1 ? '' : 's'}):\n${shown}${more}\nrun "pare lock --update" to accept them`,
    { path: file },
  );
}

/**
 * Returns the .debs of a lock from the cache, downloading missing ones from the mirror the options resolve to (no
 * index is read: the lock's pool path, Size and SHA256 are the truth, as a lock is). Each file is checked against
 * the lock before it is returned. A file the mirror no longer has gives DEBIAN_LOCK_STALE, which says which snapshot
 * to point `debian.snapshot` at. The returned records carry only the lock's fields (the .deb reader takes the full
 * stanza from each package's own control file).
 */
export async function fetchLockedPackages(
  lock: LockFile,
  source: DebianSource,
  options: ArchiveOptions = {},
): Promise<DebFile[]> {
  const suites = await resolveSuites(source, options);
  const items = lock.packages.map((p) => {
    const suite = suites.find((s) => s.name === p.suite);
    if (!suite) {
      throw new DebianError(
        'DEBIAN_LOCK_MISMATCH',
        `cannot fetch locked package ${p.name} ${p.version}: its suite ${p.suite} is not configured (debian.suite ${source.suite}, security ${source.security ?? true}, updates ${source.updates ?? true}); run "pare lock --update"`,
        { package: p.name },
      );
    }
    return { record: lockedRecord(p), url: `${suite.baseUrl}${p.filename}` };
  });
  try {
    return await fetchPool(resolveDownloadOptions(options), items);
  } catch (e) {
    if (!(e instanceof DebianError && e.code === 'DEBIAN_NOT_FOUND')) throw e;
    const missing = items.find((i) => i.url === e.url);
    const dates = lock.suites.map((s) => s.date).filter((d): d is string => d !== undefined);
    const latest = dates.sort().at(-1);
    const hint = latest
      ? `set debian.snapshot: ${formatSnapshot(new Date(latest))} (and debian.snapshotMirror or PARE_DEBIAN_SNAPSHOT_MIRROR) to build from the archive as it was when the lock was made`
      : 'point debian.snapshot at the date the lock was made';
    throw new DebianError(
      'DEBIAN_LOCK_STALE',
      `cannot fetch locked package ${missing?.record.name ?? '?'} ${missing?.record.version ?? ''}: the mirror no longer has ${missing?.record.filename ?? e.url}; ${hint}, or run "pare lock --update" to move to current versions`,
      { cause: e, package: missing?.record.name, url: e.url },
    );
  }
}

/** Returns a PackageRecord for a locked package; its paragraph holds only the lock's fields. */
export function lockedRecord(p: LockedPackage): PackageRecord {
  const paragraph = parseControl(
    `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: ${p.architecture}\nFilename: ${p.filename}\nSize: ${p.size}\nSHA256: ${p.sha256.slice(7)}\n`,
  )[0]!;
  return {
    name: p.name,
    version: p.version,
    architecture: p.architecture,
    filename: p.filename,
    size: p.size,
    sha256: p.sha256,
    provides: undefined,
    suite: p.suite,
    component: p.filename.split('/')[1] ?? 'main',
    paragraph,
  };
}
