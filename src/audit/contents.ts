/**
 * What an image holds, for the report's `image` section (HTML treemap, `pare diff`): its layers with what each
 * contributes to the final root, and the root's regular-file bytes by Debian package and by directory.
 */
import { treeRootFs } from '../elf/index.ts';
import { comparePaths, type Tree } from '../fstree/index.ts';
import type { Image } from '../oci/index.ts';
import { DpkgIndex } from './dpkg.ts';

/** One layer of the image, and the paths of the final root it last wrote. */
export interface ImageLayer {
  readonly digest: string;
  readonly diffId: string;
  readonly mediaType: string;
  /** Stored (compressed) size. */
  readonly size: number;
  /** Entries of the final root this layer wrote last. */
  readonly entries: number;
  /** Regular-file bytes of those entries. */
  readonly bytes: number;
}

/** Regular files and their bytes under one name (a package or a directory). */
export interface SizeGroup {
  readonly name: string;
  /** Package version (by-package groups of a dpkg root); null otherwise. */
  readonly version: string | null;
  readonly files: number;
  readonly bytes: number;
}

export interface ImageSummary {
  /** Manifest digest. */
  readonly digest: string;
  /** Config digest (the image ID). */
  readonly config: string;
  readonly layers: readonly ImageLayer[];
  /** Regular files of the root and their bytes (hardlinks counted once). */
  readonly files: number;
  readonly bytes: number;
  /** Bytes by owning package, largest first; files no package owns are under `(no package)`. */
  readonly packages: readonly SizeGroup[];
  /** Bytes by directory, two levels deep (`/usr/lib`, `/etc`), largest first; top-level files under `/`. */
  readonly directories: readonly SizeGroup[];
}

export const NO_PACKAGE = '(no package)';

/** Largest first, then by name: the order is total, so the report's bytes do not depend on insertion order. */
function sorted(groups: Map<string, { version: string | null; files: number; bytes: number }>): SizeGroup[] {
  return [...groups]
    .map(([name, g]) => ({ name, ...g }))
    .sort((a, b) => b.bytes - a.bytes || comparePaths(a.name, b.name));
}

/** The directory a file is grouped under: its first two path components (`/usr/lib/x/y` → `/usr/lib`). */
export function sizeDirectory(path: string): string {
  const parts = path.split('/').filter(Boolean);
  if (parts.length <= 1) return '/';
  return `/${parts.slice(0, Math.min(2, parts.length - 1)).join('/')}`;
}

/**
 * Summarises an image and its root filesystem (as imageToTree built it, `origins` filled). Package owners come from
 * the root's dpkg database (info/*.list or status.d), looked up in one pass.
 */
export async function summarizeImage(
  image: Image,
  tree: Tree,
  origins: ReadonlyMap<string, string>,
): Promise<ImageSummary> {
  const files: { path: string; size: number }[] = [];
  const perLayer = new Map<string, { entries: number; bytes: number }>();
  for (const p of tree.paths()) {
    const e = tree.get(p)!;
    const size = e.kind === 'file' ? e.content.size : 0;
    if (e.kind === 'file') files.push({ path: p, size });
    const o = origins.get(p);
    if (o === undefined) continue;
    const l = perLayer.get(o) ?? { entries: 0, bytes: 0 };
    l.entries++;
    l.bytes += size;
    perLayer.set(o, l);
  }
  const layers: ImageLayer[] = [];
  for (const l of await image.layers()) {
    const digest = await l.digest();
    const own = perLayer.get(digest) ?? { entries: 0, bytes: 0 };
    layers.push({
      digest,
      diffId: await l.diffId(),
      mediaType: await l.mediaType(),
      size: await l.size(),
      ...own,
    });
  }
  const owners = await new DpkgIndex(treeRootFs(tree)).ownersOf(files.map((f) => f.path));
  const byPackage = new Map<string, { version: string | null; files: number; bytes: number }>();
  const byDir = new Map<string, { version: string | null; files: number; bytes: number }>();
  for (const f of files) {
    const o = owners.get(f.path);
    const name = o?.package ?? NO_PACKAGE;
    const g = byPackage.get(name) ?? { version: o?.version ?? null, files: 0, bytes: 0 };
    g.files++;
    g.bytes += f.size;
    byPackage.set(name, g);
    const dir = sizeDirectory(f.path);
    const d = byDir.get(dir) ?? { version: null, files: 0, bytes: 0 };
    d.files++;
    d.bytes += f.size;
    byDir.set(dir, d);
  }
  return {
    digest: await image.digest(),
    config: await image.configDigest(),
    layers,
    files: files.length,
    bytes: files.reduce((n, f) => n + f.size, 0),
    packages: sorted(byPackage),
    directories: sorted(byDir),
  };
}
