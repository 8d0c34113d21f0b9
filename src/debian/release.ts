import type * as openpgp from 'openpgp';
import type { Digest } from '../digest/index.ts';
import { DebianError } from '../errors.ts';
import { type Paragraph, parseControl } from './control.ts';
import type { Keyring } from './keyring.ts';

/**
 * The signed root of a Debian archive: `dists/<suite>/InRelease` (clearsigned) or `Release` + `Release.gpg`
 * (detached), as described in the Debian wiki's DebianRepository/Format ("Release files") and apt-secure(8).
 * Everything else in the archive is trusted only through the SHA256 list of a Release whose signature verified here.
 * No I/O: the caller fetches the bytes.
 */

/** One line of a Release file's SHA256 section. */
export interface ReleaseFile {
  /** Path relative to `dists/<suite>/`, e.g. "main/binary-amd64/Packages.xz". */
  readonly path: string;
  readonly size: number;
  readonly sha256: Digest;
}

/** A parsed Release file. Dates are absolute instants (UTC). */
export interface Release {
  readonly paragraph: Paragraph;
  readonly origin: string | undefined;
  readonly label: string | undefined;
  readonly suite: string | undefined;
  readonly codename: string | undefined;
  readonly version: string | undefined;
  readonly date: Date | undefined;
  readonly validUntil: Date | undefined;
  readonly architectures: readonly string[];
  readonly components: readonly string[];
  /** `Acquire-By-Hash: yes`: index files may be fetched as `<dir>/by-hash/SHA256/<hex>`. */
  readonly acquireByHash: boolean;
  /** The SHA256 section, by path. */
  readonly files: ReadonlyMap<string, ReleaseFile>;
}

/** What a Release must match, and the clock to check it with. */
export interface ReleaseCheck {
  /** The suite or codename that was asked for. */
  readonly suite: string;
  /** Current time; the checks are against this instant. */
  readonly now: Date;
  /** Tolerated clock difference for `Date` in the future; default 5 minutes (apt allows none, mirrors drift). */
  readonly maxClockSkewMs?: number;
}

/** Size of an InRelease / Release we accept (bookworm's is ~150 KiB; trixie's ~ 200 KiB). */
export const MAX_RELEASE_BYTES = 16 << 20;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * Returns the instant of a Release date (RFC 2822 as dak writes it: "Sat, 11 Jul 2026 10:16:37 UTC", also "+0000"
 * offsets). Parsed by hand so that no locale or TZ affects it; undefined when malformed.
 */
export function parseReleaseDate(s: string): Date | undefined {
  const m =
    /^(?:[A-Z][a-z]{2},\s+)?(\d{1,2})\s+([A-Z][a-z]{2})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s+(UTC|GMT|Z|[+-]\d{4})$/.exec(
      s.trim(),
    );
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[2]!);
  if (month < 0) return undefined;
  let ms = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  const zone = m[7]!;
  if (zone.startsWith('+') || zone.startsWith('-')) {
    const sign = zone.startsWith('-') ? -1 : 1;
    ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) * 60_000;
  }
  return Number.isNaN(ms) ? undefined : new Date(ms);
}

/** Returns the Release fields of deb822 text; throws DEBIAN_RELEASE_INVALID naming `source`. */
export function parseRelease(text: string, source: string): Release {
  let paragraphs: Paragraph[];
  try {
    paragraphs = parseControl(text, { source });
  } catch (e) {
    throw new DebianError(
      'DEBIAN_RELEASE_INVALID',
      `cannot parse release file ${source}: ${(e as Error).message}`,
      {
        cause: e,
        url: source,
      },
    );
  }
  if (paragraphs.length !== 1) {
    throw new DebianError(
      'DEBIAN_RELEASE_INVALID',
      `cannot parse release file ${source}: want one paragraph, got ${paragraphs.length}`,
      { url: source },
    );
  }
  const p = paragraphs[0]!;
  const date = (field: string) => {
    const v = p.get(field);
    if (v === undefined) return undefined;
    const d = parseReleaseDate(v);
    if (!d) {
      throw new DebianError(
        'DEBIAN_RELEASE_INVALID',
        `cannot parse release file ${source}: field ${field} ${JSON.stringify(v)} is not an RFC 2822 date`,
        { url: source },
      );
    }
    return d;
  };
  const files = new Map<string, ReleaseFile>();
  for (const line of (p.get('SHA256') ?? '').split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const m = /^([0-9a-f]{64})\s+(\d+)\s+(\S+)$/.exec(t);
    if (!m) {
      throw new DebianError(
        'DEBIAN_RELEASE_INVALID',
        `cannot parse release file ${source}: SHA256 line ${JSON.stringify(t.slice(0, 120))} is not "<hex> <size> <path>"`,
        { url: source },
      );
    }
    const path = m[3]!;
    if (path.startsWith('/') || path.split('/').includes('..')) {
      throw new DebianError(
        'DEBIAN_RELEASE_INVALID',
        `cannot parse release file ${source}: unsafe path ${path}`,
        {
          url: source,
        },
      );
    }
    files.set(path, { path, size: Number(m[2]), sha256: `sha256:${m[1]}` });
  }
  if (files.size === 0) {
    throw new DebianError(
      'DEBIAN_RELEASE_INVALID',
      `cannot parse release file ${source}: it has no SHA256 section (pare does not trust MD5 or SHA1)`,
      { url: source },
    );
  }
  const words = (f: string) => (p.get(f) ?? '').split(/\s+/).filter((w) => w !== '');
  return {
    paragraph: p,
    origin: p.get('Origin'),
    label: p.get('Label'),
    suite: p.get('Suite'),
    codename: p.get('Codename'),
    version: p.get('Version'),
    date: date('Date'),
    validUntil: date('Valid-Until'),
    architectures: words('Architectures'),
    components: words('Components'),
    acquireByHash: (p.get('Acquire-By-Hash') ?? '').toLowerCase() === 'yes',
    files,
  };
}

/**
 * Throws unless `release` is what was asked for and current: DEBIAN_SUITE_MISMATCH when neither Suite nor Codename
 * is `check.suite` (a mirror serving another release, or a replay of another suite), DEBIAN_EXPIRED when Valid-Until
 * has passed (a frozen mirror or a replayed old Release), DEBIAN_RELEASE_INVALID when Date is in the future.
 */
export function checkRelease(release: Release, check: ReleaseCheck, source: string): void {
  if (release.suite !== check.suite && release.codename !== check.suite) {
    throw new DebianError(
      'DEBIAN_SUITE_MISMATCH',
      `cannot use release file ${source}: it is for suite ${JSON.stringify(release.suite)} codename ${JSON.stringify(release.codename)}, not ${JSON.stringify(check.suite)}; check the mirror URL and debian.suite`,
      { url: source },
    );
  }
  const skew = check.maxClockSkewMs ?? 5 * 60_000;
  if (release.validUntil && release.validUntil.getTime() < check.now.getTime()) {
    throw new DebianError(
      'DEBIAN_EXPIRED',
      `cannot use release file ${source}: it expired at ${release.validUntil.toISOString()} (Valid-Until), now is ${check.now.toISOString()}; the mirror is stale or replaying old data — use an up-to-date mirror, or set debian.snapshot to read an archive as of a past date`,
      { url: source },
    );
  }
  if (release.date && release.date.getTime() > check.now.getTime() + skew) {
    throw new DebianError(
      'DEBIAN_RELEASE_INVALID',
      `cannot use release file ${source}: its Date ${release.date.toISOString()} is in the future (now ${check.now.toISOString()}); check the system clock`,
      { url: source },
    );
  }
}

/**
 * Returns the signed text of a clearsigned InRelease after checking that at least one signature verifies against
 * `keyring` and none made by a key of `keyring` fails. Text outside the signed block is refused (apt does the same:
 * an attacker could otherwise append unsigned fields). Throws DEBIAN_SIGNATURE naming `source` and the key ids.
 */
export async function verifyClearsigned(
  text: string,
  keyring: Keyring,
  source: string,
  date?: Date,
): Promise<string> {
  const pgp = await import('openpgp'); // loaded here: a warm build never verifies a signature
  const trimmed = text.replace(/^\s+/, '').replace(/\s+$/, '');
  if (
    !trimmed.startsWith('-----BEGIN PGP SIGNED MESSAGE-----') ||
    !trimmed.endsWith('-----END PGP SIGNATURE-----')
  ) {
    throw signatureError(
      source,
      'it is not a single clearsigned message (text before or after the signed block)',
    );
  }
  if (trimmed.indexOf('-----BEGIN PGP SIGNED MESSAGE-----', 1) >= 0) {
    throw signatureError(source, 'it holds more than one signed message');
  }
  let message: openpgp.CleartextMessage;
  try {
    message = await pgp.readCleartextMessage({ cleartextMessage: text });
  } catch (e) {
    throw signatureError(source, `cannot read the clearsigned message: ${(e as Error).message}`, e);
  }
  const result = await pgp.verify({
    message,
    verificationKeys: [...keyring.keys],
    date,
    expectSigned: false,
  });
  await checkSignatures(result.signatures, keyring, source);
  return message.getText();
}

/** Checks a detached signature (Release.gpg) over `data`; throws DEBIAN_SIGNATURE like verifyClearsigned. */
export async function verifyDetached(
  data: Uint8Array,
  signature: Uint8Array,
  keyring: Keyring,
  source: string,
  date?: Date,
): Promise<void> {
  const pgp = await import('openpgp'); // loaded here: a warm build never verifies a signature
  let sig: openpgp.Signature;
  try {
    const head = new TextDecoder().decode(signature.subarray(0, 64));
    sig = head.includes('-----BEGIN PGP SIGNATURE-----')
      ? await pgp.readSignature({ armoredSignature: new TextDecoder().decode(signature) })
      : await pgp.readSignature({ binarySignature: signature });
  } catch (e) {
    throw signatureError(source, `cannot read the detached signature: ${(e as Error).message}`, e);
  }
  const message = await pgp.createMessage({ binary: data });
  const result = await pgp.verify({
    message,
    signature: sig,
    verificationKeys: [...keyring.keys],
    date,
    expectSigned: false,
    format: 'binary',
  });
  await checkSignatures(result.signatures, keyring, source);
}

async function checkSignatures(
  signatures: readonly { keyID: openpgp.KeyID; verified: Promise<true> }[],
  keyring: Keyring,
  source: string,
): Promise<void> {
  let good = 0;
  const bad: string[] = [];
  const unknown: string[] = [];
  for (const s of signatures) {
    const id = s.keyID.toHex();
    const known = keyring.keys.some((k) => k.getKeys(s.keyID).length > 0);
    try {
      await s.verified;
      good++;
    } catch (e) {
      if (known) bad.push(`${id} (${(e as Error).message})`);
      else unknown.push(id);
    }
  }
  if (bad.length > 0) {
    throw signatureError(
      source,
      `bad signature by ${bad.join(', ')}: the file was modified after signing; do not use this mirror until it is fixed`,
    );
  }
  if (good === 0) {
    throw signatureError(
      source,
      signatures.length === 0
        ? 'it is not signed'
        : `no signature by a trusted key (signed by ${unknown.join(', ')}; trusted keys from ${keyring.sources.join(', ')}); install the right debian-archive-keyring or set debian.keyring`,
    );
  }
}

function signatureError(source: string, why: string, cause?: unknown): DebianError {
  return new DebianError('DEBIAN_SIGNATURE', `cannot verify ${source}: ${why}`, { cause, url: source });
}
