import { parseControl } from '../debian/index.ts';
import { SliceError } from '../errors.ts';
import { bufferContent, type Entry, fileEntry, type Tree, type TreeBuilder } from '../fstree/index.ts';
import { canonicalName } from './walk.ts';

/**
 * The dpkg database of an assembled tree, distroless style (`/var/lib/dpkg/status.d/<pkg>` + `<pkg>.md5sums`, as
 * `assembleRootfs` writes it), read for two things: which package owns each file (for the per-package summary and for
 * "configuration of kept packages"), and rewriting the metadata after slicing so scanners still see the truth.
 */

export const STATUS_D = '/var/lib/dpkg/status.d';
/** The status field that marks a package some of whose files were removed (read by src/sbom: SLICED_FIELD). */
export const SLICED_FIELD = 'X-Pare-Sliced';

export interface InstalledPackage {
  /** The status.d file name: the package name, or `name:arch` when two architectures are installed. */
  readonly key: string;
  readonly name: string;
  readonly stanzaPath: string;
  readonly stanza: string;
  readonly md5sumsPath: string | undefined;
  /** md5sums lines in file order, each with the canonical path it names. */
  readonly md5sums: readonly { readonly line: string; readonly path: string }[];
}

/** Returns the packages recorded in `tree`'s status.d, sorted by key. Throws SLICE_OPTIONS_INVALID for a bad stanza. */
export async function readInstalled(tree: Tree): Promise<InstalledPackage[]> {
  const out: InstalledPackage[] = [];
  const names = tree
    .children(STATUS_D)
    .map((p) => p.slice(STATUS_D.length + 1))
    .filter((n) => !n.endsWith('.md5sums'))
    .sort();
  for (const key of names) {
    const stanzaPath = `${STATUS_D}/${key}`;
    if (!tree.file(stanzaPath)) continue;
    const stanza = new TextDecoder().decode(await tree.readFile(stanzaPath));
    let name: string | undefined;
    try {
      name = parseControl(stanza, { source: stanzaPath })[0]?.get('Package');
    } catch (cause) {
      throw new SliceError(
        'SLICE_OPTIONS_INVALID',
        `cannot read dpkg status ${JSON.stringify(stanzaPath)}: ${(cause as Error).message}`,
        { path: stanzaPath, cause },
      );
    }
    if (!name)
      throw new SliceError(
        'SLICE_OPTIONS_INVALID',
        `cannot read dpkg status ${JSON.stringify(stanzaPath)}: no Package field`,
        { path: stanzaPath },
      );
    const md5Path = `${stanzaPath}.md5sums`;
    const md5sums: { line: string; path: string }[] = [];
    if (tree.file(md5Path)) {
      const text = new TextDecoder().decode(await tree.readFile(md5Path));
      for (const line of text.split('\n')) {
        const m = /^[0-9a-f]{32} [ *]?(.+)$/.exec(line);
        if (!m) continue;
        md5sums.push({ line, path: canonicalName(tree, `/${m[1]}`) });
      }
    }
    out.push({
      key,
      name,
      stanzaPath,
      stanza,
      md5sumsPath: tree.file(md5Path) ? md5Path : undefined,
      md5sums,
    });
  }
  return out;
}

/**
 * Returns canonical path → owning package keys. `owners` (from `assembleRootfs`, package names, symlinks included)
 * wins when given; otherwise ownership comes from the md5sums files, which list regular files only.
 */
export function ownership(
  tree: Tree,
  packages: readonly InstalledPackage[],
  owners?: ReadonlyMap<string, readonly string[]>,
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (p: string, k: string) => {
    const l = out.get(p);
    if (!l) out.set(p, [k]);
    else if (!l.includes(k)) l.push(k);
  };
  if (owners) {
    const byName = new Map<string, string[]>();
    for (const p of packages) byName.set(p.name, [...(byName.get(p.name) ?? []), p.key]);
    for (const [path, names] of owners) {
      const canon = canonicalName(tree, path);
      for (const n of names) for (const k of byName.get(n) ?? [n]) add(canon, k);
    }
  }
  for (const p of packages) for (const m of p.md5sums) add(m.path, p.key);
  return out;
}

/**
 * Rewrites the dpkg metadata into `b` for the kept paths: a package with no kept file loses its stanza and md5sums;
 * a package that lost some files gets `X-Pare-Sliced: yes` and md5sums trimmed to the kept files. Returns the keys of
 * the packages that remain.
 */
export function rewriteMetadata(
  b: TreeBuilder,
  packages: readonly InstalledPackage[],
  keptPackages: ReadonlySet<string>,
  slicedPackages: ReadonlySet<string>,
  isKept: (path: string) => boolean,
): string[] {
  const remaining: string[] = [];
  for (const p of packages) {
    if (!keptPackages.has(p.key)) {
      b.remove(p.stanzaPath);
      if (p.md5sumsPath) b.remove(p.md5sumsPath);
      continue;
    }
    remaining.push(p.key);
    if (!slicedPackages.has(p.key)) continue;
    const stanza = /\nX-Pare-Sliced:/i.test(`\n${p.stanza}`)
      ? p.stanza
      : `${p.stanza.replace(/\n*$/, '\n')}${SLICED_FIELD}: yes\n`;
    const old = b.get(p.stanzaPath)!;
    b.put(p.stanzaPath, fileEntry(bufferContent(stanza), attrs(old)));
    if (p.md5sumsPath) {
      const lines = p.md5sums.filter((m) => isKept(m.path)).map((m) => `${m.line}\n`);
      const oldMd5 = b.get(p.md5sumsPath)!;
      b.put(p.md5sumsPath, fileEntry(bufferContent(lines.join('')), attrs(oldMd5)));
    }
  }
  return remaining;
}

function attrs(e: Entry): { mode: number; uid: number; gid: number; mtime: number } {
  return { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime };
}
