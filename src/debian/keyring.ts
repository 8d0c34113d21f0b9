import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type * as openpgp from 'openpgp';
import { DebianError } from '../errors.ts';

/**
 * The OpenPGP public keys an archive's Release file must be signed with. A keyring is a binary file of concatenated
 * transferable public keys (`gpg --export`, the `.gpg`/`.pgp` files of debian-archive-keyring), an ASCII-armored
 * `.asc` file, an inline armored block (apt's deb822 `Signed-By:`), or a directory of such files. Loaded with openpgp;
 * GnuPG keybox files (`.kbx`, `pubring.kbx`) are refused with a hint to export them.
 */

/** A loaded keyring: the keys and where they came from. */
export interface Keyring {
  readonly keys: readonly openpgp.PublicKey[];
  /** Files (or "inline") the keys were read from, for messages. */
  readonly sources: readonly string[];
}

/** Where to look for the system keyring when none is configured, relative to `root`. */
export const SYSTEM_KEYRINGS: readonly string[] = [
  'usr/share/keyrings/debian-archive-keyring.gpg',
  'usr/share/keyrings/debian-archive-keyring.pgp',
  // apt's own trusted directory: debian-archive-keyring drops per-release keys here on current systems.
  'etc/apt/trusted.gpg.d',
];

export interface KeyringOptions {
  /** Filesystem root the system keyring paths are taken relative to; default "/". */
  readonly root?: string;
}

const KEY_FILE_RE = /\.(gpg|pgp|asc)$/;
/** A keyring bigger than this is not a keyring (the full Debian keyring is ~60 KiB). */
const MAX_KEYRING_BYTES = 16 << 20;

/**
 * Returns the keys of `spec`: a file or directory path, an inline armored block, or (when undefined) the first system
 * keyring found in SYSTEM_KEYRINGS. Several paths may be given separated by spaces or commas (apt's `signed-by`).
 * Throws DEBIAN_NO_KEYRING when nothing usable is found, naming what was tried and what to install or set.
 */
export async function loadKeyring(spec: string | undefined, options: KeyringOptions = {}): Promise<Keyring> {
  if (spec?.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) {
    return {
      keys: await parseKeys(new TextEncoder().encode(spec), 'inline Signed-By key'),
      sources: ['inline'],
    };
  }
  const paths = spec ? spec.split(/[\s,]+/).filter((p) => p !== '') : undefined;
  if (paths?.every((p) => /^[0-9A-Fa-f]{16,40}!?$/.test(p))) {
    // apt allows fingerprints in Signed-By, meaning "these keys out of the trusted keyrings".
    const all = await loadKeyring(undefined, options);
    const want = paths.map((p) => p.replace(/!$/, '').toLowerCase());
    const keys = all.keys.filter((k) =>
      want.some(
        (w) => k.getFingerprint().endsWith(w) || k.getKeys().some((s) => s.getFingerprint().endsWith(w)),
      ),
    );
    if (keys.length === 0) {
      throw new DebianError(
        'DEBIAN_NO_KEYRING',
        `cannot load keyring: none of the Signed-By fingerprints ${paths.join(', ')} is in ${all.sources.join(', ')}`,
      );
    }
    return { keys, sources: all.sources };
  }
  if (paths) {
    const keys: openpgp.PublicKey[] = [];
    const sources: string[] = [];
    for (const p of paths) {
      const got = await loadPath(p, true);
      keys.push(...got.keys);
      sources.push(...got.sources);
    }
    return { keys, sources };
  }
  const root = options.root ?? '/';
  const tried: string[] = [];
  for (const rel of SYSTEM_KEYRINGS) {
    const p = join(root, rel);
    tried.push(p);
    const got = await loadPath(p, false);
    if (got.keys.length > 0) return got;
  }
  throw new DebianError(
    'DEBIAN_NO_KEYRING',
    `cannot find the debian archive keyring (tried ${tried.join(', ')}): install the debian-archive-keyring package or set debian.keyring in pare.yaml`,
  );
}

/** Returns the keys in armored or binary key bytes; throws DEBIAN_NO_KEYRING naming `source`. */
export async function parseKeys(bytes: Uint8Array, source: string): Promise<openpgp.PublicKey[]> {
  const pgp = await import('openpgp'); // loaded here: a warm build never verifies a signature
  const head = new TextDecoder().decode(bytes.subarray(0, 64));
  if (bytes.length >= 8 && bytes[4] === 1 && head.slice(8, 12) === 'KBXf') {
    throw new DebianError(
      'DEBIAN_NO_KEYRING',
      `cannot read keyring ${JSON.stringify(source)}: it is a GnuPG keybox; export it with "gpg --export > keyring.gpg" and use that file`,
    );
  }
  try {
    if (head.trimStart().startsWith('-----BEGIN PGP')) {
      const text = new TextDecoder().decode(bytes);
      // An .asc file may hold several armored blocks; readKeys takes one armor, so split them.
      const blocks = text.match(
        /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g,
      );
      if (!blocks) throw new Error('no PUBLIC KEY BLOCK');
      const keys: openpgp.PublicKey[] = [];
      for (const armoredKeys of blocks) {
        for (const k of await pgp.readKeys({ armoredKeys })) keys.push(k.toPublic());
      }
      return keys;
    }
    return (await pgp.readKeys({ binaryKeys: bytes })).map((k) => k.toPublic());
  } catch (e) {
    if (e instanceof DebianError) throw e;
    throw new DebianError(
      'DEBIAN_NO_KEYRING',
      `cannot read keyring ${JSON.stringify(source)}: ${(e as Error).message}; want a binary (gpg --export) or armored (gpg --export --armor) public keyring`,
      { cause: e },
    );
  }
}

async function loadPath(path: string, required: boolean): Promise<Keyring> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    if (!required) return { keys: [], sources: [] };
    throw new DebianError(
      'DEBIAN_NO_KEYRING',
      `cannot read keyring ${JSON.stringify(path)}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const files = isDir
    ? (await readdir(path))
        .filter((n) => KEY_FILE_RE.test(n))
        .sort()
        .map((n) => join(path, n))
    : [path];
  const keys: openpgp.PublicKey[] = [];
  for (const f of files) {
    const bytes = await readFile(f);
    if (bytes.length > MAX_KEYRING_BYTES) {
      throw new DebianError(
        'DEBIAN_NO_KEYRING',
        `cannot read keyring ${JSON.stringify(f)}: ${bytes.length} bytes is more than ${MAX_KEYRING_BYTES}`,
      );
    }
    keys.push(...(await parseKeys(bytes, f)));
  }
  if (keys.length === 0 && required) {
    throw new DebianError(
      'DEBIAN_NO_KEYRING',
      `cannot read keyring ${JSON.stringify(path)}: it holds no public keys`,
    );
  }
  return { keys, sources: files };
}
