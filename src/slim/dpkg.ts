import { bufferContent, type Entry, fileEntry, parentPath, type Tree, TreeBuilder } from '../fstree/index.ts';
import { DPKG_INFO, DPKG_STATUS, readDpkgDatabase } from '../sbom/dpkg.ts';
import { canonicalName, SLICED_FIELD } from '../slice/index.ts';

/**
 * The classic dpkg database of an image pare did not build (`/var/lib/dpkg/status` + `info/<pkg>[:arch].list` and
 * `.md5sums`, as dpkg, debootstrap and mmdebstrap write it): who owns each path before slicing, and the database
 * trimmed to what the slice kept, so scanners reading it see only packages and files that are there. Read by the one
 * dpkg reader, src/sbom/dpkg.ts (what the SBOM and a scanner see). (The distroless `status.d/` form is the slicer's
 * own: src/slice/packages.ts.)
 */

export const DPKG_DIR = '/var/lib/dpkg';
export { DPKG_STATUS };

const INFO = DPKG_INFO;

/** A classic-status package as src/sbom reads it, with the canonical path each of its lines names. */
export interface DpkgPackage {
  readonly name: string;
  readonly architecture: string;
  /** The stem of its info files: `name` or `name:arch` (Multi-Arch: same). */
  readonly key: string;
  /** The status paragraph as written, without the blank line after it. */
  readonly stanza: string;
  /** `.list` lines in file order with the canonical path each names (directories included). */
  readonly list: readonly { readonly line: string; readonly path: string }[];
  /** `.md5sums` lines with their canonical paths. */
  readonly md5sums: readonly { readonly line: string; readonly path: string }[];
}

/** Per package, what a slice left. */
export interface DpkgSummary {
  readonly name: string;
  readonly filesBefore: number;
  readonly filesAfter: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  /** False when no file of it is left: its stanza and info files are gone. */
  readonly kept: boolean;
}

/**
 * Returns every package of `tree`'s `/var/lib/dpkg/status` (whatever its state: a config-files package's conffiles
 * may stay), read by src/sbom's readDpkgDatabase, or undefined when there is no such file. Throws SBOM_DPKG_INVALID.
 */
export async function readDpkgStatus(tree: Tree): Promise<DpkgPackage[] | undefined> {
  if (!tree.file(DPKG_STATUS)) return undefined;
  const canonical = (line: string) => {
    const p = line.startsWith('/') ? line : `/${line}`;
    return p === '/.' ? '/' : canonicalName(tree, p);
  };
  return (await readDpkgDatabase(tree, { states: 'all' }))
    .filter((p) => p.statusPath === DPKG_STATUS)
    .map((p) => ({
      name: p.name,
      architecture: p.architecture,
      key: p.key,
      stanza: p.stanza,
      list: p.list.map((line) => ({ line, path: canonical(line) })),
      md5sums: p.md5sumLines.map((line) => ({
        line,
        path: canonical(/^[0-9a-f]{32} [ *]?(.+)$/.exec(line)![1]!),
      })),
    }));
}

/**
 * Returns canonical path → owning package names from the `.list` files, for what `assembleRootfs().owners` gives the
 * slicer: files and symlinks, not directories (a package does not own `/usr/bin` by shipping a file in it, and
 * keeping that directory must not make every package that lists it a kept one).
 */
export function dpkgOwners(tree: Tree, packages: readonly DpkgPackage[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const p of packages)
    for (const l of ownedFileLines(tree, p)) {
      const names = out.get(l.path);
      if (!names) out.set(l.path, [p.name]);
      else if (!names.includes(p.name)) names.push(p.name);
    }
  return out;
}

/**
 * The `.list` lines of `p` that name files or symlinks: not directories, and not what the package itself lists as a
 * directory (a line other lines are under: `/bin` in a merged-/usr image is a symlink to `usr/bin`, but the package
 * ships files in it, it does not ship the link).
 */
function ownedFileLines(tree: Tree, p: DpkgPackage): { line: string; path: string }[] {
  const dirs = new Set(p.list.map((l) => parentPath(l.line)));
  return p.list.filter((l) => {
    const e = tree.get(l.path);
    return e !== undefined && e.kind !== 'dir' && !dirs.has(l.line);
  });
}

function ownedFiles(tree: Tree, p: DpkgPackage): string[] {
  return [...new Set(ownedFileLines(tree, p).map((l) => l.path))];
}

const size = (t: Tree, p: string) => {
  const e = t.get(p);
  return e?.kind === 'file' ? e.content.size : 0;
};

/**
 * Returns `sliced` with the dpkg database of `original` trimmed to it: `status` holds the paragraphs of packages with a
 * file (not a directory) left, each `info/<key>.list` and `.md5sums` only the lines whose path is in `sliced`, and
 * nothing else of `/var/lib/dpkg` (maintainer scripts, triggers, alternatives, available) is left; a package that lost
 * files gets `X-Pare-Sliced: yes`. Every written
 * file keeps its original owner, mode and mtime. Also returns the per-package summary, sorted by name.
 */
export function trimDpkg(
  original: Tree,
  sliced: Tree,
  packages: readonly DpkgPackage[],
): { tree: Tree; summary: DpkgSummary[] } {
  const b = TreeBuilder.from(sliced.filter((p) => p !== DPKG_DIR && !p.startsWith(`${DPKG_DIR}/`)));
  const summary: DpkgSummary[] = [];
  const stanzas: string[] = [];
  const put = (path: string, text: string) => {
    for (const dir of [DPKG_DIR, INFO]) {
      if (b.has(dir)) continue;
      for (let q = dir, chain: string[] = []; ; q = parentPath(q)) {
        if (b.has(q)) {
          for (const c of chain.reverse()) b.put(c, original.get(c) as Entry);
          break;
        }
        chain.push(q);
      }
    }
    const old = original.get(path)!;
    b.put(
      path,
      fileEntry(bufferContent(text), { mode: old.mode, uid: old.uid, gid: old.gid, mtime: old.mtime }),
    );
  };
  for (const p of packages) {
    const before = ownedFiles(original, p);
    const after = before.filter((q) => sliced.has(q));
    const kept = after.length > 0;
    summary.push({
      name: p.key,
      filesBefore: before.length,
      filesAfter: after.length,
      bytesBefore: before.reduce((n, q) => n + size(original, q), 0),
      bytesAfter: after.reduce((n, q) => n + size(sliced, q), 0),
      kept,
    });
    if (!kept) continue;
    // A package that lost files says so, as the slicer's status.d stanzas do (src/sbom reads it).
    stanzas.push(
      after.length < before.length && !new RegExp(`^${SLICED_FIELD}:`, 'im').test(p.stanza)
        ? `${p.stanza}\n${SLICED_FIELD}: yes`
        : p.stanza,
    );
    const listPath = `${INFO}/${p.key}.list`;
    if (original.file(listPath))
      put(
        listPath,
        p.list
          .filter((l) => sliced.has(l.path))
          .map((l) => `${l.line}\n`)
          .join(''),
      );
    const md5Path = `${INFO}/${p.key}.md5sums`;
    if (original.file(md5Path))
      put(
        md5Path,
        p.md5sums
          .filter((l) => sliced.has(l.path))
          .map((l) => `${l.line}\n`)
          .join(''),
      );
  }
  put(DPKG_STATUS, stanzas.map((s) => `${s}\n\n`).join(''));
  summary.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  return { tree: b.build(), summary };
}
