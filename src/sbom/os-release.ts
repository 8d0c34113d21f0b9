import type { Tree } from '../fstree/index.ts';

/**
 * os-release(5): `KEY=value` lines with shell-style quoting, read from `/etc/os-release`, else
 * `/usr/lib/os-release` (symlinks resolved inside the tree).
 */

export interface OsRelease {
  readonly id: string;
  readonly versionId: string | undefined;
  readonly versionCodename: string | undefined;
  readonly prettyName: string | undefined;
  readonly name: string | undefined;
  readonly homeUrl: string | undefined;
  /** Every field as read. */
  readonly fields: ReadonlyMap<string, string>;
}

/** Returns the fields of os-release text; unknown escapes and malformed lines are skipped as systemd does. */
export function parseOsRelease(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (
      (v.startsWith('"') && v.endsWith('"') && v.length >= 2) ||
      (v.startsWith("'") && v.endsWith("'") && v.length >= 2)
    ) {
      const q = v[0];
      v = v.slice(1, -1);
      if (q === '"') v = v.replace(/\\([\\"$`])/g, '$1');
    }
    out.set(m[1]!, v);
  }
  return out;
}

/** Returns the image's os-release, or undefined when it has none. */
export async function readOsRelease(tree: Tree): Promise<OsRelease | undefined> {
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    if (!tree.file(path)) continue;
    const f = parseOsRelease(new TextDecoder().decode(await tree.readFile(path)));
    return {
      id: f.get('ID') ?? 'linux',
      versionId: f.get('VERSION_ID'),
      versionCodename: f.get('VERSION_CODENAME'),
      prettyName: f.get('PRETTY_NAME'),
      name: f.get('NAME'),
      homeUrl: f.get('HOME_URL'),
      fields: f,
    };
  }
  return undefined;
}

/** Returns the purl `distro` qualifier: `<ID>-<VERSION_ID>` (e.g. debian-12), else `<ID>-<VERSION_CODENAME>`. */
export function distroQualifier(os: OsRelease | undefined): string | undefined {
  if (!os) return undefined;
  const v = os.versionId ?? os.versionCodename;
  return v ? `${os.id}-${v}` : os.id;
}
