import { DebianError } from '../errors.ts';
import { type Entry, type Tree, TreeBuilder } from '../fstree/index.ts';

/**
 * Merged /usr as current Debian has it (Debian wiki: UsrMerge; debootstrap's `setup_merged_usr`): the
 * top-level `/bin`, `/sbin`, `/lib` and the architecture's extra library directories are symlinks into `/usr`.
 * Packages still ship files under the old paths, and dpkg unpacks them through those symlinks. We do the same without
 * a filesystem: every entry under an aliased directory moves to its `/usr` path (link text is kept byte for byte, as
 * dpkg writing through the symlink would keep it), and the moves are recorded so dpkg metadata and file ownership
 * lookups can map shipped paths to canonical ones.
 */

/** Top-level directories that are symlinks into /usr on every architecture. */
const COMMON = ['bin', 'sbin', 'lib'];
/** debootstrap's per-architecture extra library directories (setup_merged_usr). */
const EXTRA_BY_ARCH: Record<string, readonly string[]> = {
  amd64: ['lib32', 'lib64', 'libx32'],
  i386: ['lib64', 'libx32'],
  mips: ['lib32', 'lib64'],
  mipsel: ['lib32', 'lib64'],
  mips64el: ['lib32', 'lib64', 'libo32'],
  powerpc: ['lib64'],
  ppc64: ['lib32', 'lib64'],
  ppc64el: ['lib64'],
  s390x: ['lib32'],
  sparc64: ['lib32', 'lib64'],
  x32: ['lib32', 'lib64', 'libx32'],
};
/** Every directory any architecture aliases; a package may ship into one its own architecture does not link. */
const ALL_ALIASED = new Set([...COMMON, 'lib32', 'lib64', 'libx32', 'libo32']);

/** Returns the top-level directories that are `usr/…` symlinks on `arch` (e.g. amd64: bin sbin lib lib32 lib64 libx32). */
export function usrMergedDirs(arch: string): readonly string[] {
  return [...COMMON, ...(EXTRA_BY_ARCH[arch] ?? [])];
}

/** Returns the canonical (/usr) path of `path`: `/bin/sh` → `/usr/bin/sh`; other paths unchanged. */
export function canonicalUsrPath(path: string): string {
  const slash = path.indexOf('/', 1);
  const top = slash < 0 ? path.slice(1) : path.slice(1, slash);
  return ALL_ALIASED.has(top) ? `/usr${path}` : path;
}

/** A path a package shipped under an aliased directory, and where it now lives. */
export interface UsrAlias {
  readonly shipped: string;
  readonly canonical: string;
}

/**
 * Returns the package tree with everything under the aliased top-level directories moved below /usr, and the list of
 * moved paths. Two entries that land on one path must be equal (kind, mode, owner, and link target or bytes); a
 * compatibility symlink that would point at its own canonical path (`/bin/foo -> /usr/bin/foo`) is dropped, as it
 * would become a loop; two directories merge (the /usr one's metadata wins). Anything else throws
 * DEBIAN_ASSEMBLE_CONFLICT naming the package and both shipped paths.
 */
export async function mergeUsr(tree: Tree, pkg: string): Promise<{ tree: Tree; aliases: UsrAlias[] }> {
  const aliases: UsrAlias[] = [];
  const plain: [string, Entry][] = [];
  const moved: [string, string, Entry][] = [];
  const links: [string, string, Entry & { kind: 'hardlink' }][] = [];
  for (const [p, e] of tree) {
    if (p === '/') continue;
    const c = canonicalUsrPath(p);
    if (c !== p && e.kind !== 'dir') aliases.push({ shipped: p, canonical: c });
    if (e.kind === 'hardlink') links.push([p, c, e]);
    else if (c === p) plain.push([p, e]);
    else moved.push([p, c, e]);
  }
  if (aliases.length === 0 && moved.length === 0) return { tree, aliases };
  const b = new TreeBuilder();
  b.put('/', tree.get('/')!);
  const origin = new Map<string, string>();
  for (const [p, e] of plain) {
    b.put(p, e);
    origin.set(p, p);
  }
  const place = async (shipped: string, c: string, e: Entry) => {
    const old = b.get(c);
    if (old === undefined) {
      b.put(c, e);
      origin.set(c, shipped);
      return;
    }
    if (old.kind === 'dir' && e.kind === 'dir') return;
    const first = origin.get(c) ?? c;
    if (e.kind === 'symlink' && linkPointsAt(shipped, e.target, c)) return;
    if (old.kind === 'symlink' && linkPointsAt(first, old.target, c)) {
      b.put(c, e);
      origin.set(c, shipped);
      return;
    }
    if (await sameEntry(old, e)) return;
    throw new DebianError(
      'DEBIAN_ASSEMBLE_CONFLICT',
      `cannot merge /usr for package ${JSON.stringify(pkg)}: it ships both ${JSON.stringify(first)} (${old.kind}) and ${JSON.stringify(shipped)} (${e.kind}), which are one path ${JSON.stringify(c)} on a merged-/usr system`,
      { package: pkg, path: c },
    );
  };
  for (const [p, c, e] of moved) await place(p, c, e);
  // Hardlinks last: their targets (files) must already be in place, under their canonical names.
  for (const [p, c, e] of links) await place(p, c, { ...e, target: canonicalUsrPath(e.target) });
  return { tree: b.build(), aliases };
}

/** True when a symlink at `at` with link text `target` names `canonical` once both are put in /usr form. */
function linkPointsAt(at: string, target: string, canonical: string): boolean {
  const abs = target.startsWith('/') ? target : `${at.slice(0, at.lastIndexOf('/'))}/${target}`;
  const parts: string[] = [];
  for (const c of abs.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  return canonicalUsrPath(`/${parts.join('/')}`) === canonical;
}

/** True when two non-directory entries are interchangeable (same metadata and link text or bytes). */
export async function sameEntry(a: Entry, b: Entry): Promise<boolean> {
  if (a.kind !== b.kind || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return false;
  if (a.kind === 'symlink' && b.kind === 'symlink') return a.target === b.target;
  if (a.kind === 'hardlink' && b.kind === 'hardlink') return a.target === b.target;
  if (a.kind === 'file' && b.kind === 'file') {
    if (a.content === b.content) return true;
    if (a.content.size !== b.content.size) return false;
    return Buffer.from(await a.content.bytes()).equals(await b.content.bytes());
  }
  if ((a.kind === 'char' || a.kind === 'block') && (b.kind === 'char' || b.kind === 'block'))
    return a.major === b.major && a.minor === b.minor;
  return a.kind === 'dir' || a.kind === 'fifo';
}
