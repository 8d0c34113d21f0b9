import { type Paragraph, parseControl } from '../debian/control.ts';
import { SbomError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';

/**
 * The dpkg database inside an image, read from the tree (no disk). Two layouts exist:
 * - distroless style: one stanza per file in `/var/lib/dpkg/status.d/<pkg>`, with `/var/lib/dpkg/status.d/<pkg>.md5sums`;
 * - classic dpkg: `/var/lib/dpkg/status` with every stanza, and `/var/lib/dpkg/info/<pkg>[:<arch>].{list,md5sums}`.
 *
 * pare marks a package whose files the slicer removed in part with the status field `X-Pare-Sliced: yes`
 * (dpkg keeps unknown `X-` fields; deb-control(5) reserves them for user-defined fields). The SBOM reports it.
 */

export const DPKG_STATUS = '/var/lib/dpkg/status';
export const DPKG_STATUS_D = '/var/lib/dpkg/status.d';
export const DPKG_INFO = '/var/lib/dpkg/info';
/** The field pare writes into a package's status stanza when the slicer dropped some of its files. */
export const SLICED_FIELD = 'X-Pare-Sliced';

export interface DpkgPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  /**
   * Source package and version (defaults: the binary's own name and version, as dpkg-query shows them); `stated`
   * says what the `Source:` field gave: nothing, a name, or a name and `(version)` (dpkg writes the version only when
   * it differs from the binary's, e.g. a binNMU).
   */
  readonly source: {
    readonly name: string;
    readonly version: string;
    readonly stated: 'none' | 'name' | 'name-version';
  };
  readonly maintainer: string | undefined;
  readonly homepage: string | undefined;
  /** The synopsis (first line of Description). */
  readonly summary: string | undefined;
  /** Installed-Size in KiB as dpkg records it. */
  readonly installedSize: number | undefined;
  /** True when the stanza carries `X-Pare-Sliced: yes`. */
  readonly sliced: boolean;
  /** Where the stanza was read. */
  readonly statusPath: string;
  /** Paths the package owns (from `.list`, else from `.md5sums`), absolute, sorted. */
  readonly files: readonly string[];
  /** md5 per path from the package's md5sums file. */
  readonly md5sums: ReadonlyMap<string, string>;
}

/** Returns `name:arch`, the key dpkg uses for a package instance. */
export function packageKey(p: { name: string; architecture: string }): string {
  return `${p.name}:${p.architecture}`;
}

async function readText(tree: Tree, path: string): Promise<string | undefined> {
  if (!tree.file(path)) return undefined;
  return new TextDecoder().decode(await tree.readFile(path));
}

function parseStatus(text: string, path: string): Paragraph[] {
  try {
    return parseControl(text, { source: path });
  } catch (cause) {
    throw new SbomError(
      'SBOM_DPKG_INVALID',
      `cannot read dpkg status ${JSON.stringify(path)}: ${(cause as Error).message}`,
      {
        cause,
        path,
      },
    );
  }
}

/** Returns path → md5 from md5sums text (`<md5>  <path relative to />` per line). */
export function parseMd5sums(text: string, path: string): Map<string, string> {
  const out = new Map<string, string>();
  let n = 0;
  for (const line of text.split('\n')) {
    n++;
    if (line === '') continue;
    const m = /^([0-9a-f]{32}) [ *]?(.+)$/.exec(line);
    if (!m)
      throw new SbomError(
        'SBOM_DPKG_INVALID',
        `cannot read md5sums ${JSON.stringify(path)}:${n}: want "<md5>  <path>"`,
        {
          path,
        },
      );
    out.set(`/${m[2]!.replace(/^\.?\/+/, '')}`, m[1]!);
  }
  return out;
}

function fromStanza(
  p: Paragraph,
  statusPath: string,
  files: string[],
  md5sums: Map<string, string>,
): DpkgPackage {
  const name = p.get('Package');
  const version = p.get('Version');
  if (!name || !version)
    throw new SbomError(
      'SBOM_DPKG_INVALID',
      `cannot read dpkg status ${JSON.stringify(statusPath)}: stanza at line ${p.line} lacks Package or Version`,
      { path: statusPath },
    );
  const src = p.get('Source')?.trim();
  const sm = src ? /^(\S+)(?:\s+\(([^)]+)\))?$/.exec(src) : null;
  const size = p.get('Installed-Size');
  return {
    name,
    version,
    architecture: p.get('Architecture') ?? 'all',
    source: {
      name: sm?.[1] ?? name,
      version: sm?.[2] ?? version,
      stated: sm?.[2] !== undefined ? 'name-version' : sm ? 'name' : 'none',
    },
    maintainer: p.get('Maintainer'),
    homepage: p.get('Homepage'),
    summary: p.get('Description')?.split('\n')[0]?.trim() || undefined,
    installedSize: size && /^\d+$/.test(size) ? Number(size) : undefined,
    sliced: p.get(SLICED_FIELD)?.trim().toLowerCase() === 'yes',
    statusPath,
    files: [...new Set(files)].sort(),
    md5sums,
  };
}

/**
 * Returns every installed package recorded in the image's dpkg database (both layouts), sorted by name then
 * architecture. Returns [] when the image has no dpkg database. Throws SBOM_DPKG_INVALID (with the path) for a status or
 * md5sums file that does not parse.
 */
export async function readDpkgDatabase(tree: Tree): Promise<DpkgPackage[]> {
  const out: DpkgPackage[] = [];
  const statusD = tree.get(DPKG_STATUS_D);
  if (statusD?.kind === 'dir') {
    for (const path of tree.children(DPKG_STATUS_D)) {
      if (path.endsWith('.md5sums') || !tree.file(path)) continue;
      const text = (await readText(tree, path))!;
      const md5Text = await readText(tree, `${path}.md5sums`);
      const md5 =
        md5Text === undefined ? new Map<string, string>() : parseMd5sums(md5Text, `${path}.md5sums`);
      for (const stanza of parseStatus(text, path)) out.push(fromStanza(stanza, path, [...md5.keys()], md5));
    }
  }
  const status = await readText(tree, DPKG_STATUS);
  if (status !== undefined) {
    for (const stanza of parseStatus(status, DPKG_STATUS)) {
      // Status: want flag status (dpkg(1)); only "installed" packages have their files on disk.
      if (stanza.get('Status')?.trim().split(/\s+/)[2] !== 'installed') continue;
      const name = stanza.get('Package') ?? '';
      const arch = stanza.get('Architecture') ?? 'all';
      let files: string[] = [];
      let md5 = new Map<string, string>();
      for (const base of [`${DPKG_INFO}/${name}:${arch}`, `${DPKG_INFO}/${name}`]) {
        const list = await readText(tree, `${base}.list`);
        const sums = await readText(tree, `${base}.md5sums`);
        if (list === undefined && sums === undefined) continue;
        if (sums !== undefined) md5 = parseMd5sums(sums, `${base}.md5sums`);
        files = list === undefined ? [...md5.keys()] : list.split('\n').filter((l) => l.startsWith('/'));
        break;
      }
      out.push(fromStanza(stanza, DPKG_STATUS, files, md5));
    }
  }
  const seen = new Set<string>();
  const unique = out.filter((p) => {
    const k = packageKey(p);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return unique.sort((a, b) => cmp(a.name, b.name) || cmp(a.architecture, b.architecture));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
