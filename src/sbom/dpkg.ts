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
  /** The stem of its files: `name` or `name:arch` under `info/` (classic), the file name under `status.d/`. */
  readonly key: string;
  /** The status paragraph as written, without the blank line after it (what a trimmed database keeps byte for byte). */
  readonly stanza: string;
  /** The `.list` lines that name paths, as written and in file order (directories included); [] without a list. */
  readonly list: readonly string[];
  /** The `.md5sums` lines, as written and in file order. */
  readonly md5sumLines: readonly string[];
}

export interface ReadDpkgOptions {
  /**
   * Which classic-status packages: `installed` (default; only their files are on disk, what a scanner reports) or
   * `all` (every paragraph, e.g. config-files ones whose conffiles stay, for rewriting the database).
   */
  readonly states?: 'installed' | 'all';
}

/** Returns `name:arch`, the key dpkg uses for a package instance. */
export function packageKey(p: { name: string; architecture: string }): string {
  return `${p.name}:${p.architecture}`;
}

async function readText(tree: Tree, path: string): Promise<string | undefined> {
  if (!tree.file(path)) return undefined;
  return new TextDecoder().decode(await tree.readFile(path));
}

/** The paragraphs of `text` as written, split where parseControl splits them (lines that are blank after trimming). */
function rawParagraphs(text: string): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  for (const line of text.split('\n')) {
    if (line.replace(/\r$/, '').trim() === '') {
      if (cur.length > 0) out.push(cur.join('\n'));
      cur = [];
    } else cur.push(line);
  }
  if (cur.length > 0) out.push(cur.join('\n'));
  return out;
}

/** Each paragraph parsed, with its text as written. */
function parseStatus(text: string, path: string): { p: Paragraph; raw: string }[] {
  try {
    const parsed = parseControl(text, { source: path });
    const raw = rawParagraphs(text);
    if (raw.length !== parsed.length)
      throw new Error(`${raw.length} paragraphs as text, ${parsed.length} parsed`);
    return parsed.map((p, i) => ({ p, raw: raw[i]! }));
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

interface Found {
  readonly key: string;
  /** Paths it owns: its `.list`, else its md5sums. */
  readonly files: readonly string[];
  readonly list: readonly string[];
  readonly md5sumLines: readonly string[];
  readonly md5sums: Map<string, string>;
}

function fromStanza({ p, raw }: { p: Paragraph; raw: string }, statusPath: string, f: Found): DpkgPackage {
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
    files: [...new Set(f.files)].sort(),
    md5sums: f.md5sums,
    key: f.key,
    stanza: raw,
    list: f.list,
    md5sumLines: f.md5sumLines,
  };
}

const lines = (text: string | undefined) =>
  text === undefined ? [] : text.split('\n').filter((l) => l !== '');

/**
 * Returns every installed package recorded in the image's dpkg database (both layouts; with `states: 'all'` every
 * classic-status paragraph), sorted by name then architecture. Returns [] when the image has no dpkg database. Throws
 * SBOM_DPKG_INVALID (with the path) for a status or md5sums file that does not parse. The one reader of the database:
 * src/slim trims it from what this returns.
 */
export async function readDpkgDatabase(tree: Tree, options: ReadDpkgOptions = {}): Promise<DpkgPackage[]> {
  const out: DpkgPackage[] = [];
  const statusD = tree.get(DPKG_STATUS_D);
  if (statusD?.kind === 'dir') {
    for (const path of tree.children(DPKG_STATUS_D)) {
      if (path.endsWith('.md5sums') || !tree.file(path)) continue;
      const text = (await readText(tree, path))!;
      const md5Text = await readText(tree, `${path}.md5sums`);
      const md5 =
        md5Text === undefined ? new Map<string, string>() : parseMd5sums(md5Text, `${path}.md5sums`);
      const found = {
        key: path.slice(DPKG_STATUS_D.length + 1),
        files: [...md5.keys()],
        list: [],
        md5sumLines: lines(md5Text),
        md5sums: md5,
      };
      for (const stanza of parseStatus(text, path)) out.push(fromStanza(stanza, path, found));
    }
  }
  const status = await readText(tree, DPKG_STATUS);
  if (status !== undefined) {
    for (const stanza of parseStatus(status, DPKG_STATUS)) {
      // Status: want flag status (dpkg(1)); only "installed" packages have their files on disk.
      if (options.states !== 'all' && stanza.p.get('Status')?.trim().split(/\s+/)[2] !== 'installed')
        continue;
      const name = stanza.p.get('Package') ?? '';
      const arch = stanza.p.get('Architecture') ?? 'all';
      let found: Found = { key: name, files: [], list: [], md5sumLines: [], md5sums: new Map() };
      for (const key of [`${name}:${arch}`, name]) {
        const base = `${DPKG_INFO}/${key}`;
        const list = await readText(tree, `${base}.list`);
        const sums = await readText(tree, `${base}.md5sums`);
        if (list === undefined && sums === undefined) continue;
        const md5sums =
          sums === undefined ? new Map<string, string>() : parseMd5sums(sums, `${base}.md5sums`);
        const listed = lines(list).filter((l) => l.startsWith('/'));
        found = {
          key,
          files: list === undefined ? [...md5sums.keys()] : listed,
          list: listed,
          md5sumLines: lines(sums),
          md5sums,
        };
        break;
      }
      out.push(fromStanza(stanza, DPKG_STATUS, found));
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
