import type { RootFs } from '../elf/index.ts';

/** The Debian package that installed a file. */
export interface PackageOwner {
  readonly package: string;
  readonly architecture: string | undefined;
  readonly version: string | undefined;
}

/** Largest dpkg metadata file read (a status file of a full desktop is ~5 MiB; .list files are far smaller). */
const MAX_METADATA_BYTES = 64 * 1024 * 1024;

async function readText(fs: RootFs, path: string): Promise<string | undefined> {
  const src = await fs.open(path);
  if (!src) return undefined;
  const b = await src.read(0, Math.min(src.size, MAX_METADATA_BYTES));
  return Buffer.from(b).toString('utf8');
}

function paragraphs(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const m = new Map<string, string>();
    let last = '';
    for (const line of para.split('\n')) {
      if (/^\s/.test(line)) continue; // continuation lines: only single-line fields are used here
      const i = line.indexOf(':');
      if (i <= 0) continue;
      last = line.slice(0, i).toLowerCase();
      m.set(last, line.slice(i + 1).trim());
    }
    if (m.has('package')) out.push(m);
  }
  return out;
}

/** Returns the installed packages of `/var/lib/dpkg/status`, by `package:arch` and by bare name (the first listed). */
async function installedPackages(fs: RootFs): Promise<Map<string, PackageOwner>> {
  const status = new Map<string, PackageOwner>();
  const statusText = await readText(fs, '/var/lib/dpkg/status');
  for (const p of statusText ? paragraphs(statusText) : []) {
    if (p.get('status') && !/\binstalled$/.test(p.get('status')!)) continue;
    const owner = {
      package: p.get('package')!,
      architecture: p.get('architecture'),
      version: p.get('version'),
    };
    status.set(`${owner.package}:${owner.architecture}`, owner);
    if (!status.has(owner.package)) status.set(owner.package, owner);
  }
  return status;
}

/**
 * Returns the owner of the files in `/var/lib/dpkg/info/<id>.list` (`id` is `pkg` or `pkg:arch`) from the installed
 * packages; a package that status does not list still owns its files, without a version.
 */
function listOwner(status: ReadonlyMap<string, PackageOwner>, id: string): PackageOwner {
  const [pkg, arch] = id.split(':') as [string, string | undefined];
  return (
    status.get(arch ? `${pkg}:${arch}` : pkg) ??
    status.get(pkg) ?? { package: pkg, architecture: arch, version: undefined }
  );
}

/** Returns the owner that `/var/lib/dpkg/status.d/<name>` describes (distroless); `name` stands in when it is unreadable. */
async function statusDOwner(fs: RootFs, name: string): Promise<PackageOwner> {
  const text = await readText(fs, `/var/lib/dpkg/status.d/${name}`);
  const p = text ? paragraphs(text)[0] : undefined;
  return {
    package: p?.get('package') ?? name,
    architecture: p?.get('architecture'),
    version: p?.get('version'),
  };
}

/**
 * Finds which Debian package owns a file, from the root's dpkg database: `/var/lib/dpkg/info/<pkg>[:arch].list`
 * with `/var/lib/dpkg/status` (a normal Debian root), or `/var/lib/dpkg/status.d/<pkg>` with
 * `status.d/<pkg>.md5sums` (distroless-style images). The lists name paths as packaged (`/lib/x86_64-linux-gnu/…`)
 * while a merged-/usr root reaches them through symlinks, so a lookup compares canonical paths inside the root.
 * Metadata is read on first use; paths are indexed by base name and resolved only when a lookup needs them.
 */
export class DpkgIndex {
  readonly #fs: RootFs;
  #byBase: Promise<Map<string, { path: string; owner: PackageOwner }[]>> | undefined;

  constructor(fs: RootFs) {
    this.#fs = fs;
  }

  /** True when the root has any dpkg metadata. */
  async present(): Promise<boolean> {
    return (await this.#index()).size > 0;
  }

  #index(): Promise<Map<string, { path: string; owner: PackageOwner }[]>> {
    this.#byBase ??= (async () => {
      const fs = this.#fs;
      const byBase = new Map<string, { path: string; owner: PackageOwner }[]>();
      const add = (path: string, owner: PackageOwner) => {
        const p = path.startsWith('/') ? path : `/${path}`;
        const base = p.slice(p.lastIndexOf('/') + 1);
        const list = byBase.get(base);
        if (list) list.push({ path: p, owner });
        else byBase.set(base, [{ path: p, owner }]);
      };
      const status = await installedPackages(fs);
      for (const e of await fs.list('/var/lib/dpkg/info')) {
        if (!e.name.endsWith('.list')) continue;
        const owner = listOwner(status, e.name.slice(0, -5));
        const text = await readText(fs, `/var/lib/dpkg/info/${e.name}`);
        for (const line of text?.split('\n') ?? [])
          if (line.startsWith('/') && line !== '/.') add(line, owner);
      }
      for (const e of await fs.list('/var/lib/dpkg/status.d')) {
        if (e.name.endsWith('.md5sums') || e.name.startsWith('.')) continue;
        const owner = await statusDOwner(fs, e.name);
        const sums = await readText(fs, `/var/lib/dpkg/status.d/${e.name}.md5sums`);
        for (const line of sums?.split('\n') ?? []) {
          const m = /^[0-9a-f]{32}\s+(.+)$/.exec(line);
          if (m) add(m[1]!, owner);
        }
      }
      return byBase;
    })();
    return this.#byBase;
  }

  /**
   * Returns the owners of many files at once (canonical paths inside the root; absent from the map = no owner).
   * Same answers as `ownerOf`, but the package lists are scanned once and only lines whose base name is wanted are
   * kept, so the root's whole file list (10^5 paths on a desktop) is never held in memory.
   */
  async ownersOf(realPaths: Iterable<string>): Promise<Map<string, PackageOwner>> {
    const fs = this.#fs;
    const wanted = new Set<string>();
    for (const p of realPaths) wanted.add(p.slice(p.lastIndexOf('/') + 1));
    const out = new Map<string, PackageOwner>();
    if (wanted.size === 0) return out;
    // Candidates per base name, in ownerOf's order (info/*.list sorted, then status.d), with their package id.
    const byBase = new Map<string, { path: string; id: string }[]>();
    const ids: { id: string; list: boolean }[] = [];
    const scan = (text: string | undefined, id: string, md5: boolean) => {
      if (!text) return;
      let start = 0;
      while (start < text.length) {
        let end = text.indexOf('\n', start);
        if (end < 0) end = text.length;
        const slash = text.lastIndexOf('/', end - 1);
        // md5sums lines may name a top-level file without any slash; they are few (distroless), so all are parsed.
        if (md5 || (slash >= start && wanted.has(text.slice(slash + 1, end)))) {
          let line = text.slice(start, end);
          let ok = line.startsWith('/') && line !== '/.';
          if (md5) {
            const m = /^[0-9a-f]{32}\s+(.+)$/.exec(line);
            ok = m !== null;
            if (m) line = m[1]!;
          }
          if (ok) {
            const path = line.startsWith('/') ? line : `/${line}`;
            const base = path.slice(path.lastIndexOf('/') + 1);
            const list = byBase.get(base);
            if (list) list.push({ path, id });
            else byBase.set(base, [{ path, id }]);
          }
        }
        start = end + 1;
      }
    };
    for (const e of await fs.list('/var/lib/dpkg/info')) {
      if (!e.name.endsWith('.list')) continue;
      const id = e.name.slice(0, -5);
      ids.push({ id, list: true });
      scan(await readText(fs, `/var/lib/dpkg/info/${e.name}`), id, false);
    }
    for (const e of await fs.list('/var/lib/dpkg/status.d')) {
      if (e.name.endsWith('.md5sums') || e.name.startsWith('.')) continue;
      ids.push({ id: `status.d/${e.name}`, list: false });
      scan(await readText(fs, `/var/lib/dpkg/status.d/${e.name}.md5sums`), `status.d/${e.name}`, true);
    }
    const matched = new Map<string, { path: string; id: string }>();
    for (const p of realPaths) {
      if (matched.has(p)) continue;
      const candidates = byBase.get(p.slice(p.lastIndexOf('/') + 1));
      if (!candidates) continue;
      let hit = candidates.find((c) => c.path === p);
      for (const c of hit ? [] : candidates) {
        try {
          if ((await fs.stat(c.path))?.path === p) {
            hit = c;
            break;
          }
        } catch {
          /* a looping path in a package list owns nothing */
        }
      }
      if (hit) matched.set(p, hit);
    }
    if (matched.size === 0) return out;
    // Owner records only for the packages that own something wanted.
    const needed = new Set([...matched.values()].map((m) => m.id));
    const owners = new Map<string, PackageOwner>();
    if (ids.some((i) => i.list && needed.has(i.id))) {
      const status = await installedPackages(fs);
      for (const { id, list } of ids) {
        if (list && needed.has(id)) owners.set(id, listOwner(status, id));
      }
    }
    for (const { id, list } of ids) {
      if (!list && needed.has(id)) owners.set(id, await statusDOwner(fs, id.slice('status.d/'.length)));
    }
    for (const [p, m] of matched) out.set(p, owners.get(m.id)!);
    return out;
  }

  /**
   * Returns the package owning the file at canonical path `realPath` (also when the package lists it under another
   * name, e.g. `/lib/…` for `/usr/lib/…`), or undefined.
   */
  async ownerOf(realPath: string): Promise<PackageOwner | undefined> {
    const base = realPath.slice(realPath.lastIndexOf('/') + 1);
    const candidates = (await this.#index()).get(base);
    if (!candidates) return undefined;
    for (const c of candidates) {
      if (c.path === realPath) return c.owner;
    }
    for (const c of candidates) {
      try {
        if ((await this.#fs.stat(c.path))?.path === realPath) return c.owner;
      } catch {
        /* a looping path in a package list owns nothing */
      }
    }
    return undefined;
  }
}

/**
 * The installed packages of a root: `/var/lib/dpkg/status` (packages whose status is installed) and
 * `/var/lib/dpkg/status.d/*` (distroless-style), one entry per package and architecture, sorted by name then
 * architecture.
 */
export async function installedPackageList(fs: RootFs): Promise<PackageOwner[]> {
  const out = new Map<string, PackageOwner>();
  for (const [k, p] of await installedPackages(fs)) if (k.includes(':')) out.set(k, p);
  for (const e of await fs.list('/var/lib/dpkg/status.d')) {
    if (e.name.endsWith('.md5sums') || e.name.startsWith('.')) continue;
    const p = await statusDOwner(fs, e.name);
    out.set(`${p.package}:${p.architecture}`, p);
  }
  return [...out.values()].sort((a, b) =>
    a.package < b.package
      ? -1
      : a.package > b.package
        ? 1
        : (a.architecture ?? '') < (b.architecture ?? '')
          ? -1
          : (a.architecture ?? '') > (b.architecture ?? '')
            ? 1
            : 0,
  );
}
