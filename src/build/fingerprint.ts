import { readdir, readFile } from 'node:fs/promises';
import { findPackageJSON } from 'node:module';
import { sha256 } from '../digest/index.ts';

/**
 * The fingerprint of the code that writes the build's cache entries (packages layers, root filesystem facts, SBOM
 * texts): every shipped module of pare (`.ts` in the source tree, `.js` in the compiled package, and their `.json`
 * data), the package.json of every library they import, and the Node, zlib and zstd versions (compressed bytes depend
 * on them). A cache entry is keyed by it, so an entry written by other code, a changed slicer or another zlib, is never
 * used: the version number alone does not change between commits.
 *
 * The single executable has no module files beside it; scripts/package.ts computes the same value from the sources at
 * package time and writes it into EMBEDDED below.
 */

/** Set by scripts/package.ts in the single executable; undefined everywhere else. */
const EMBEDDED: string | undefined = undefined;

/** Hashes pare's modules under `root` (a `file:` URL of src/ or dist/) and the libraries they import. */
export async function sourceFingerprint(root: URL, ext: string): Promise<string> {
  const names = (await readdir(root, { recursive: true }))
    .filter(
      (n) =>
        (n.endsWith(ext) || n.endsWith('.json')) &&
        !/\.(test|bench)\.[jt]s$/.test(n) &&
        !n.endsWith('.d.ts') &&
        !n.split('/').includes('node_modules'),
    )
    .sort();
  const texts = await Promise.all(names.map((n) => readFile(new URL(n, root), 'utf8')));
  const libs = new Set<string>();
  // Bare package specifiers (node: builtins and relative paths do not match).
  for (const t of texts)
    for (const m of t.matchAll(/from '((?:@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*)(?:\/[^']*)?'/g))
      libs.add(m[1]!);
  const manifests = await Promise.all(
    [...libs].sort().map((l) => {
      const path = findPackageJSON(l, root);
      if (!path) throw new Error(`no package.json for ${l}`);
      return readFile(path, 'utf8');
    }),
  );
  return sha256(JSON.stringify([names, texts, manifests])).slice(7);
}

let memo: Promise<string | undefined> | undefined;

/** Returns the code fingerprint (read once per process), or undefined when it cannot be known: then nothing is cached. */
export function codeFingerprint(): Promise<string | undefined> {
  memo ??= (async () => {
    const url = import.meta.url;
    const code = EMBEDDED ?? (await sourceFingerprint(new URL('../', url), url.slice(url.lastIndexOf('.'))));
    const { node, zlib, zstd } = process.versions;
    return sha256(JSON.stringify([code, node, zlib, zstd ?? null])).slice(7);
  })().catch(() => undefined);
  return memo;
}
