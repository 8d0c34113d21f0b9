import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DebianError } from '../errors.ts';
import { iterateControl } from './control.ts';

/**
 * Where the Debian archive lives: the `debian:` options of pare.yaml, then `PARE_DEBIAN_MIRROR`, then the host's apt
 * sources (sources.list(5): the one-line `deb [opts] uri suite comp…` format in `sources.list` / `*.list`, and the
 * deb822 `*.sources` format). No host name is ever built in: a machine without a configured mirror gets
 * DEBIAN_NO_MIRROR telling the user what to set.
 *
 * Pure parsing (`parseOneLineSources`, `parseDeb822Sources`) is separate from reading `/etc/apt` (`readAptSources`),
 * whose directory is a parameter so tests can point it at a temp dir.
 */

/** The `debian:` section of pare.yaml: what to build from. */
export interface DebianSource {
  /** Codename or suite, e.g. "bookworm". */
  readonly suite: string;
  /** Archive components; default ["main"]. */
  readonly components?: readonly string[];
  /** Also use `<suite>-security` from the security mirror; default true. */
  readonly security?: boolean;
  /** Also use `<suite>-updates` from the main mirror; default true. */
  readonly updates?: boolean;
  /** Base URL of the archive (the directory holding `dists/` and `pool/`). */
  readonly mirror?: string;
  /** Base URL of the security archive. */
  readonly securityMirror?: string;
  /** Path of an OpenPGP keyring (binary .gpg/.pgp or armored .asc) or a directory of them. */
  readonly keyring?: string;
  /** Snapshot timestamp `YYYYMMDDTHHMMSSZ`: read the archive as it was then, from the snapshot mirror. */
  readonly snapshot?: string;
  /** Base URL of a snapshot service (it serves `<base>/archive/debian/<timestamp>/`). */
  readonly snapshotMirror?: string;
}

/** One entry of the host's apt sources (one `deb` line, or one deb822 stanza). */
export interface AptSourceEntry {
  readonly types: readonly string[];
  readonly uris: readonly string[];
  readonly suites: readonly string[];
  readonly components: readonly string[];
  /** `Signed-By`: key file paths or fingerprints, or an inline armored key block. */
  readonly signedBy: string | undefined;
  readonly enabled: boolean;
  /** File and line it came from, for messages. */
  readonly origin: string;
}

/** The suites pare reads, with where each one is fetched from. */
export interface ArchiveSuite {
  /** Suite name as it appears under `dists/`, e.g. "bookworm-security". */
  readonly name: string;
  readonly kind: 'release' | 'updates' | 'security';
  /** Base URL with a trailing slash (holds `dists/` and `pool/`). */
  readonly baseUrl: string;
  /** Keyring to verify this suite with: a path, an inline armored block, or undefined for the system default. */
  readonly keyring: string | undefined;
  /** How the base URL was chosen, for messages: "pare.yaml", "PARE_DEBIAN_MIRROR", "/etc/apt/…:3", "snapshot". */
  readonly origin: string;
}

/** Environment and host lookups that `resolveSuites` uses; each can be replaced in tests. */
export interface MirrorOptions {
  /** Environment to read PARE_DEBIAN_* from; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** apt's configuration directory; default "/etc/apt". */
  readonly aptDir?: string;
}

/** Matches a snapshot timestamp as the snapshot service spells it. */
const SNAPSHOT_RE = /^\d{8}T\d{6}Z$/;

/**
 * Returns the entries of a one-line sources.list text (sources.list(5) "ONE-LINE-STYLE FORMAT"): `deb [ key=value … ]
 * uri suite [component…]`. Comment lines and `deb-src` entries are kept with their type; unknown options are ignored.
 * Throws DEBIAN_SOURCES_INVALID for a line that is neither.
 */
export function parseOneLineSources(text: string, origin: string): AptSourceEntry[] {
  const out: AptSourceEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const where = `${origin}:${i + 1}`;
    let rest = line;
    const type = rest.split(/\s+/, 1)[0]!;
    rest = rest.slice(type.length).trim();
    let signedBy: string | undefined;
    let enabled = true;
    if (rest.startsWith('[')) {
      const close = rest.indexOf(']');
      if (close < 0) throw sourcesError(where, 'option list "[" is not closed');
      for (const opt of rest.slice(1, close).trim().split(/\s+/)) {
        const eq = opt.indexOf('=');
        if (eq <= 0) continue;
        const key = opt.slice(0, eq).toLowerCase();
        const value = opt.slice(eq + 1);
        if (key === 'signed-by') signedBy = value.split(',').join(' ');
        if (key === 'enabled') enabled = value !== 'no';
      }
      rest = rest.slice(close + 1).trim();
    }
    const [uri, suite, ...components] = rest.split(/\s+/);
    if (type !== 'deb' && type !== 'deb-src')
      throw sourcesError(where, `unknown type ${JSON.stringify(type)}`);
    if (!uri || !suite) throw sourcesError(where, 'want "deb [options] uri suite [component…]"');
    out.push({ types: [type], uris: [uri], suites: [suite], components, signedBy, enabled, origin: where });
  }
  return out;
}

/** Returns the entries of a deb822 `.sources` text (sources.list(5) "DEB822-STYLE FORMAT"). */
export function parseDeb822Sources(text: string, origin: string): AptSourceEntry[] {
  const out: AptSourceEntry[] = [];
  try {
    for (const p of iterateControl(text, { source: origin, comments: true })) {
      const words = (f: string) => (p.get(f) ?? '').split(/\s+/).filter((w) => w !== '');
      const where = `${origin}:${p.line}`;
      const entry: AptSourceEntry = {
        types: words('Types'),
        uris: words('URIs'),
        suites: words('Suites'),
        components: words('Components'),
        signedBy: p.get('Signed-By'),
        enabled: (p.get('Enabled') ?? 'yes').toLowerCase() !== 'no',
        origin: where,
      };
      if (entry.types.length === 0 || entry.uris.length === 0 || entry.suites.length === 0) {
        throw sourcesError(where, 'a stanza needs Types, URIs and Suites');
      }
      out.push(entry);
    }
  } catch (e) {
    if (e instanceof DebianError) throw e;
    throw sourcesError(origin, (e as Error).message, e);
  }
  return out;
}

/**
 * Returns every entry of the host's apt sources, in apt's order: `sources.list`, then `sources.list.d/*` sorted by
 * name (`*.list` one-line, `*.sources` deb822; other names are ignored as apt does). A missing file or directory is
 * not an error.
 */
export async function readAptSources(aptDir = '/etc/apt'): Promise<AptSourceEntry[]> {
  const out: AptSourceEntry[] = [];
  const main = join(aptDir, 'sources.list');
  const text = await readIfExists(main);
  if (text !== undefined) out.push(...parseOneLineSources(text, main));
  let names: string[] = [];
  try {
    names = (await readdir(join(aptDir, 'sources.list.d'))).sort();
  } catch {
    /* no sources.list.d */
  }
  for (const name of names) {
    const file = join(aptDir, 'sources.list.d', name);
    if (name.endsWith('.list')) {
      const t = await readIfExists(file);
      if (t !== undefined) out.push(...parseOneLineSources(t, file));
    } else if (name.endsWith('.sources')) {
      const t = await readIfExists(file);
      if (t !== undefined) out.push(...parseDeb822Sources(t, file));
    }
  }
  return out;
}

/**
 * Returns the suites to read for `source` — `<suite>`, then `<suite>-updates` and `<suite>-security` unless turned
 * off — each with its base URL and keyring. Mirror order: `source.mirror` → env PARE_DEBIAN_MIRROR → the apt entry
 * that lists the suite. The security mirror: `source.securityMirror` → env PARE_DEBIAN_SECURITY_MIRROR → the apt entry
 * whose suite ends in `-security`. With `snapshot`, both come from the snapshot mirror (`source.snapshotMirror` or
 * env PARE_DEBIAN_SNAPSHOT_MIRROR) as `<base>/archive/debian/<ts>/` and `<base>/archive/debian-security/<ts>/`.
 * Throws DEBIAN_NO_MIRROR (saying what to set) and DEBIAN_SOURCES_INVALID.
 */
export async function resolveSuites(
  source: DebianSource,
  options: MirrorOptions = {},
): Promise<ArchiveSuite[]> {
  const env = options.env ?? process.env;
  const suite = source.suite;
  if (!/^[a-z0-9][a-z0-9.+-]*$/.test(suite)) {
    throw new DebianError(
      'DEBIAN_SOURCES_INVALID',
      `cannot use debian suite ${JSON.stringify(suite)}: not a suite name`,
    );
  }
  const wantSecurity = source.security ?? true;
  const wantUpdates = source.updates ?? true;
  const out: ArchiveSuite[] = [];

  if (source.snapshot !== undefined) {
    if (!SNAPSHOT_RE.test(source.snapshot)) {
      throw new DebianError(
        'DEBIAN_SOURCES_INVALID',
        `cannot use debian.snapshot ${JSON.stringify(source.snapshot)}: want a timestamp like 20250101T000000Z`,
      );
    }
    const base = source.snapshotMirror ?? env.PARE_DEBIAN_SNAPSHOT_MIRROR;
    if (!base) {
      throw new DebianError(
        'DEBIAN_NO_MIRROR',
        `cannot use debian.snapshot ${source.snapshot}: no snapshot mirror configured; set debian.snapshotMirror in pare.yaml or PARE_DEBIAN_SNAPSHOT_MIRROR to the base URL of a snapshot service`,
      );
    }
    const root = withSlash(checkUrl(base, 'snapshot mirror'));
    const main = `${root}archive/debian/${source.snapshot}/`;
    out.push({ name: suite, kind: 'release', baseUrl: main, keyring: source.keyring, origin: 'snapshot' });
    if (wantUpdates)
      out.push({
        name: `${suite}-updates`,
        kind: 'updates',
        baseUrl: main,
        keyring: source.keyring,
        origin: 'snapshot',
      });
    if (wantSecurity) {
      out.push({
        name: `${suite}-security`,
        kind: 'security',
        baseUrl: `${root}archive/debian-security/${source.snapshot}/`,
        keyring: source.keyring,
        origin: 'snapshot',
      });
    }
    return out;
  }

  let apt: AptSourceEntry[] | undefined;
  const aptEntries = async () => {
    apt ??= (await readAptSources(options.aptDir)).filter((e) => e.enabled && e.types.includes('deb'));
    return apt;
  };

  let main: { url: string; keyring: string | undefined; origin: string } | undefined;
  if (source.mirror)
    main = { url: source.mirror, keyring: source.keyring, origin: 'pare.yaml debian.mirror' };
  else if (env.PARE_DEBIAN_MIRROR)
    main = { url: env.PARE_DEBIAN_MIRROR, keyring: source.keyring, origin: 'PARE_DEBIAN_MIRROR' };
  else {
    const entries = await aptEntries();
    const e =
      entries.find((x) => x.suites.includes(suite)) ??
      entries.find((x) => x.suites.includes(`${suite}-updates`)) ??
      // another release of the same archive (e.g. the host runs trixie, pare.yaml asks for bookworm): the same
      // mirror serves every suite, so take the first non-security entry signed by the Debian archive keyring.
      entries.find(
        (x) =>
          x.suites.some((s) => !s.endsWith('-security') && /^[a-z]+(-updates|-backports)?$/.test(s)) &&
          (x.signedBy === undefined || /debian-archive-keyring/.test(x.signedBy)),
      );
    if (e) main = { url: e.uris[0]!, keyring: source.keyring ?? e.signedBy, origin: e.origin };
  }
  if (!main) {
    throw new DebianError(
      'DEBIAN_NO_MIRROR',
      `cannot find a debian mirror for suite ${JSON.stringify(suite)}: set debian.mirror in pare.yaml, or PARE_DEBIAN_MIRROR, or add a "deb" entry to ${options.aptDir ?? '/etc/apt'}/sources.list(.d)`,
    );
  }
  const mainUrl = withSlash(checkUrl(main.url, main.origin));
  out.push({ name: suite, kind: 'release', baseUrl: mainUrl, keyring: main.keyring, origin: main.origin });
  if (wantUpdates) {
    out.push({
      name: `${suite}-updates`,
      kind: 'updates',
      baseUrl: mainUrl,
      keyring: main.keyring,
      origin: main.origin,
    });
  }
  if (wantSecurity) {
    let sec: { url: string; keyring: string | undefined; origin: string } | undefined;
    if (source.securityMirror)
      sec = {
        url: source.securityMirror,
        keyring: source.keyring,
        origin: 'pare.yaml debian.securityMirror',
      };
    else if (env.PARE_DEBIAN_SECURITY_MIRROR)
      sec = {
        url: env.PARE_DEBIAN_SECURITY_MIRROR,
        keyring: source.keyring,
        origin: 'PARE_DEBIAN_SECURITY_MIRROR',
      };
    else {
      const entries = await aptEntries();
      const e =
        entries.find((x) => x.suites.includes(`${suite}-security`)) ??
        entries.find((x) => x.suites.some((s) => s.endsWith('-security')));
      if (e) sec = { url: e.uris[0]!, keyring: source.keyring ?? e.signedBy, origin: e.origin };
    }
    if (!sec) {
      throw new DebianError(
        'DEBIAN_NO_MIRROR',
        `cannot find a debian security mirror for suite ${JSON.stringify(`${suite}-security`)}: set debian.securityMirror in pare.yaml or PARE_DEBIAN_SECURITY_MIRROR, add a "-security" entry to the apt sources, or set debian.security: false`,
      );
    }
    out.push({
      name: `${suite}-security`,
      kind: 'security',
      baseUrl: withSlash(checkUrl(sec.url, sec.origin)),
      keyring: sec.keyring,
      origin: sec.origin,
    });
  }
  return out;
}

function checkUrl(url: string, origin: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new DebianError(
      'DEBIAN_SOURCES_INVALID',
      `cannot use debian mirror ${JSON.stringify(url)} from ${origin}: not a URL`,
      {
        cause: e,
      },
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new DebianError(
      'DEBIAN_SOURCES_INVALID',
      `cannot use debian mirror ${JSON.stringify(url)} from ${origin}: only http and https are supported (signatures protect http)`,
    );
  }
  return u.href;
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

function sourcesError(where: string, why: string, cause?: unknown): DebianError {
  return new DebianError('DEBIAN_SOURCES_INVALID', `cannot read apt sources at ${where}: ${why}`, { cause });
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw sourcesError(path, (e as Error).message, e);
  }
}
