import { DebianError } from '../errors.ts';

/**
 * Debian version numbers: `[epoch:]upstream_version[-debian_revision]`, ordered exactly as Debian Policy §5.6.12
 * (Debian Policy §5.6.12, "Version") and dpkg's `verrevcmp` (lib/dpkg/version.c)
 * order them: the epoch numerically, then upstream and revision by alternating runs of non-digits (compared
 * character by character where `~` sorts before everything, even the end of the string, letters before non-letters)
 * and digits (compared numerically). Pure; no I/O.
 */

/** A parsed version. `revision` is `''` when the version has no hyphen (which compares equal to `'0'`). */
export interface Version {
  readonly epoch: number;
  readonly upstream: string;
  readonly revision: string;
}

/** dpkg stores the epoch in an `int`, so it rejects epochs above INT_MAX; we do the same. */
const MAX_EPOCH = 2147483647;

const UPSTREAM_CHARS = /^[A-Za-z0-9.+~:-]*$/;
const REVISION_CHARS = /^[A-Za-z0-9.+~]*$/;

/**
 * Returns the parts of `text`, parsed as dpkg's `parseversion` does: leading and trailing blanks are ignored, the
 * epoch runs to the first `:` and the revision starts after the last `-`. Throws DEBIAN_VERSION_INVALID for what dpkg
 * calls an error (empty parts, embedded blanks, a bad epoch). Like dpkg, accepts what it only warns about (an upstream
 * that does not start with a digit, odd characters) unless `strict` is set, so real archives parse the same way.
 */
export function parseVersion(text: string, options: { strict?: boolean } = {}): Version {
  const bad = (why: string) =>
    new DebianError('DEBIAN_VERSION_INVALID', `cannot parse version ${JSON.stringify(text)}: ${why}`);
  const s = text.trim();
  if (s === '') throw bad('version string is empty');
  if (/\s/.test(s)) throw bad('version string has embedded spaces');
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const e = s.slice(0, colon);
    if (e === '') throw bad('epoch in version is empty');
    if (!/^[0-9]+$/.test(e)) throw bad('epoch in version is not number');
    epoch = Number(e);
    if (!(epoch <= MAX_EPOCH)) throw bad('epoch in version is too big');
    rest = s.slice(colon + 1);
    if (rest === '') throw bad('nothing after colon in version number');
  }
  let upstream = rest;
  let revision = '';
  const hyphen = rest.lastIndexOf('-');
  if (hyphen >= 0) {
    upstream = rest.slice(0, hyphen);
    revision = rest.slice(hyphen + 1);
    if (revision === '') throw bad('revision number is empty');
  }
  if (upstream === '') throw bad('version number is empty');
  if (options.strict) {
    if (!/^[0-9]/.test(upstream)) throw bad('version number does not start with digit');
    if (!UPSTREAM_CHARS.test(upstream)) throw bad('invalid character in version number');
    if (!REVISION_CHARS.test(revision)) throw bad('invalid character in revision number');
  }
  return { epoch, upstream, revision };
}

/** Returns the canonical text of a version (epoch only when non-zero, revision only when non-empty). */
export function formatVersion(v: Version): string {
  return `${v.epoch > 0 ? `${v.epoch}:` : ''}${v.upstream}${v.revision !== '' ? `-${v.revision}` : ''}`;
}

/** dpkg's `order()`: digits 0 (they end a non-digit run), `~` below the end of the string, letters below the rest. */
function order(c: number): number {
  if (c >= 48 && c <= 57) return 0;
  if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return c;
  if (c === 126) return -1;
  if (c) return c + 256;
  return 0;
}

const isDigit = (c: number) => c >= 48 && c <= 57;

/** Compares two upstream or revision strings as dpkg's `verrevcmp` does; returns <0, 0 or >0. */
export function compareFragments(a: string, b: string): number {
  let i = 0;
  let j = 0;
  // charCodeAt past the end is NaN; `|| 0` turns it into the C string's NUL.
  const at = (s: string, k: number) => s.charCodeAt(k) || 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(at(a, i))) || (j < b.length && !isDigit(at(b, j)))) {
      const ac = order(at(a, i));
      const bc = order(at(b, j));
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (at(a, i) === 48) i++;
    while (at(b, j) === 48) j++;
    while (isDigit(at(a, i)) && isDigit(at(b, j))) {
      if (!firstDiff) firstDiff = at(a, i) - at(b, j);
      i++;
      j++;
    }
    if (isDigit(at(a, i))) return 1;
    if (isDigit(at(b, j))) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/** Compares two versions (parsed or text); returns -1, 0 or 1. Throws DEBIAN_VERSION_INVALID for unparsable text. */
export function compareVersions(a: Version | string, b: Version | string): -1 | 0 | 1 {
  const x = typeof a === 'string' ? parseVersion(a) : a;
  const y = typeof b === 'string' ? parseVersion(b) : b;
  let c = x.epoch - y.epoch;
  if (c === 0) c = compareFragments(x.upstream, y.upstream);
  if (c === 0) c = compareFragments(x.revision, y.revision);
  return c < 0 ? -1 : c > 0 ? 1 : 0;
}

/** The relation operators of Policy §7.1, plus the deprecated `<` and `>` (which dpkg reads as `<=` and `>=`). */
export type VersionOp = '<<' | '<=' | '=' | '>=' | '>>';

/** Returns the operator for its text; `<` and `>` mean `<=` and `>=` (Policy §7.1, still accepted by dpkg). */
export function parseVersionOp(text: string): VersionOp | undefined {
  switch (text) {
    case '<<':
    case '<=':
    case '=':
    case '>=':
    case '>>':
      return text;
    case '<':
      return '<=';
    case '>':
      return '>=';
    default:
      return undefined;
  }
}

/** True when version `v` satisfies `op ref` (e.g. `satisfiesVersion('1.2', '>=', '1.0')`). */
export function satisfiesVersion(v: Version | string, op: VersionOp, ref: Version | string): boolean {
  const c = compareVersions(v, ref);
  switch (op) {
    case '<<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '=':
      return c === 0;
    case '>=':
      return c >= 0;
    case '>>':
      return c > 0;
  }
}
