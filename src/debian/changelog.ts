import { createGunzip } from 'node:zlib';
import type { DebPackage } from './deb.ts';

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
