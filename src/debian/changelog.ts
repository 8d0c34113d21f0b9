import { createGunzip } from 'node:zlib';
import type { Tree } from '../fstree/index.ts';
import type { DebPackage } from './deb.ts';
import { compareVersions } from './version.ts';

/**
 * The date of a package's newest changelog entry: the trailer line of the first entry of
 * `/usr/share/doc/<package>/changelog.Debian.gz` (or `changelog.gz` for a native package), as dpkg-parsechangelog
 * reads it and as Debian's reproducible builds use it for SOURCE_DATE_EPOCH:
 *
 *     -- Maintainer Name <email@example.org>  Thu, 01 Feb 2024 12:00:00 +0000
 *
 * Binary-NMU changelogs (`changelog.Debian.<arch>.gz`) are not read: they differ per architecture, and the date must
 * be the same for every platform of one build. A package whose doc directory is a link to another package's (libgcc-s1
 * → gcc-12-base) has no changelog of its own and gives undefined, as does an unreadable or malformed one.
 */

/** Decompressed bytes read at most to find the first entry's trailer (entries are short; the file may be MiBs). */
export const MAX_CHANGELOG_HEAD = 1024 * 1024;
/** Compressed changelog size read at most. */
const MAX_CHANGELOG_GZ = 16 * 1024 * 1024;

const TRAILER = /^ -- .*<[^>]*> {2}(\w{3}, +\d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4})\s*$/m;

/** Returns the seconds since 1970 of the trailer date in `text` (the first entry's), or undefined. */
export function changelogTrailerDate(text: string): number | undefined {
  const m = TRAILER.exec(text);
  if (!m) return undefined;
  const t = Date.parse(m[1]!);
  return Number.isFinite(t) && t >= 0 ? Math.floor(t / 1000) : undefined;
}

/** Returns the date of the newest changelog entry of `pkg` (seconds since 1970), or undefined when it has none. */
export async function changelogDate(pkg: DebPackage): Promise<number | undefined> {
  const name = pkg.control.get('Package');
  if (!name) return undefined;
  for (const f of ['changelog.Debian.gz', 'changelog.gz']) {
    const e = pkg.tree.file(`/usr/share/doc/${name}/${f}`);
    if (!e || e.content.size > MAX_CHANGELOG_GZ) continue;
    const head = await gunzipHead(await e.content.bytes()).catch(() => undefined);
    if (head === undefined) continue;
    const d = changelogTrailerDate(head);
    if (d !== undefined) return d;
  }
  return undefined;
}

/** Decompresses the start of a gzip stream until the first trailer line or MAX_CHANGELOG_HEAD bytes. */
function gunzipHead(gz: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const z = createGunzip();
    const parts: Buffer[] = [];
    let size = 0;
    const done = () => {
      z.removeAllListeners('data');
      z.destroy();
      resolve(Buffer.concat(parts).toString('utf8'));
    };
    z.on('data', (c: Buffer) => {
      parts.push(c);
      size += c.length;
      if (size >= MAX_CHANGELOG_HEAD || TRAILER.test(c.toString('latin1'))) done();
    });
    z.on('end', done);
    z.on('error', reject);
    z.end(gz);
  });
}

/** Decompressed changelog bytes read at most when listing the entries newer than a version (`changelogSince`). */
export const MAX_CHANGELOG_TEXT = 16 * 1024 * 1024;

/** One entry of a Debian changelog (deb-changelog(5)): its header fields and its text up to the trailer. */
export interface ChangelogEntry {
  readonly source: string;
  readonly version: string;
  readonly distributions: string;
  /** The entry's lines after the header, up to and including its trailer. */
  readonly text: string;
}

// deb-changelog(5): "package (version) distribution(s); urgency=urgency", at column 0.
const HEADER = /^(\w[-+0-9a-z.]*) \(([^() \t]+)\)((?:\s+[-+0-9a-z.]+)+);.*$/gim;
const CVE = /\bCVE-\d{4}-\d{4,}\b/g;

/** Returns the entries of a changelog's text, newest first (text before the first header is ignored). */
export function parseChangelog(text: string): ChangelogEntry[] {
  const heads = [...text.matchAll(HEADER)];
  return heads.map((m, i) => ({
    source: m[1]!,
    version: m[2]!,
    distributions: m[3]!.trim(),
    text: text.slice(m.index + m[0].length, heads[i + 1]?.index ?? text.length).replace(/^\n+|\s+$/g, ''),
  }));
}

/** Returns the CVE ids named in `text`, unique and sorted. */
export function cveIds(text: string): string[] {
  return [...new Set(text.match(CVE) ?? [])].sort();
}

/** The entries of a package's changelog newer than a version, and whether the changelog reached that version. */
export interface ChangelogSince {
  readonly entries: readonly ChangelogEntry[];
  /** The CVE ids the entries name, unique and sorted. */
  readonly cves: readonly string[];
  /**
   * True when an entry at or below the version was found (the list is complete); false when the changelog (or the
   * first MAX_CHANGELOG_TEXT bytes of it) ends before: entries may be missing.
   */
  readonly complete: boolean;
}

/**
 * Returns the entries of `pkg`'s changelog (`/usr/share/doc/<package>/changelog.Debian.gz`, or `changelog.gz` for a
 * native package) whose version is newer than `since`, compared as Debian versions; undefined when the package has
 * no readable changelog (a doc directory that links to another package's, or a malformed gzip).
 */
export async function changelogSince(pkg: DebPackage, since: string): Promise<ChangelogSince | undefined> {
  const name = pkg.control.get('Package');
  if (!name) return undefined;
  const found = await readChangelog(pkg.tree, name);
  if (!found) return undefined;
  const all = found.entries;
  const stop = all.findIndex((x) => {
    try {
      return compareVersions(x.version, since) <= 0;
    } catch {
      return false; // an unparsable version in an old entry: keep reading
    }
  });
  const entries = stop < 0 ? all : all.slice(0, stop);
  return { entries, cves: cveIds(entries.map((x) => x.text).join('\n')), complete: stop >= 0 };
}

/**
 * Returns the entries (newest first) of package `name`'s changelog in a root filesystem tree (a .deb's or an image's):
 * `/usr/share/doc/<name>/changelog.Debian.gz`, else `changelog.gz`, with the path read; undefined when neither is there
 * and readable (a malformed gzip, over MAX_CHANGELOG_GZ, no entry). At most MAX_CHANGELOG_TEXT bytes are inflated.
 */
export async function readChangelog(
  tree: Tree,
  name: string,
): Promise<{ path: string; entries: ChangelogEntry[] } | undefined> {
  for (const f of ['changelog.Debian.gz', 'changelog.gz']) {
    const path = `/usr/share/doc/${name}/${f}`;
    const e = tree.file(path);
    if (!e || e.content.size > MAX_CHANGELOG_GZ) continue;
    const text = await gunzipBounded(await e.content.bytes(), MAX_CHANGELOG_TEXT).catch(() => undefined);
    if (text === undefined) continue;
    const entries = parseChangelog(text);
    if (entries.length > 0) return { path, entries };
  }
  return undefined;
}

/** Decompresses a gzip stream, keeping at most `max` bytes of output (the rest is not inflated). */
function gunzipBounded(gz: Uint8Array, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const z = createGunzip();
    const parts: Buffer[] = [];
    let size = 0;
    const done = () => {
      z.removeAllListeners('data');
      z.destroy();
      resolve(Buffer.concat(parts).subarray(0, max).toString('utf8'));
    };
    z.on('data', (c: Buffer) => {
      parts.push(c);
      size += c.length;
      if (size >= max) done();
    });
    z.on('end', done);
    z.on('error', reject);
    z.end(gz);
  });
}
