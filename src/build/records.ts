import { readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { ProvenanceInput } from '../attest/index.ts';
import type { LoadedConfig } from '../config/index.ts';
import { VERSION } from '../defaults.ts';
import { type Digest, sha256 } from '../digest/index.ts';
import { normalizePath, type Tree } from '../fstree/index.ts';
import { writeFileAtomic } from '../layout/index.ts';
import { type Artifact, formatPlatform, type Image, type Platform, selectImage } from '../oci/index.ts';
import type { Inventory } from '../sbom/index.ts';
import type { BuildResult } from './build.ts';
import { expandSource, filesFor } from './files.ts';
import { codeFingerprint } from './fingerprint.ts';
import { cacheKey, type LayerCache } from './layer-cache.ts';

/**
 * What a build knows about itself, written beside the image in `<layout>/pare/<tag>/`: the SBOMs (SPDX 2.3 and
 * CycloneDX 1.6), the SLSA v1 provenance statement (unsigned: `pare attest` signs and attaches it) and the slice
 * report (`pare why-kept`). The host platform's files have plain names (`sbom.spdx.json`), other platforms' carry the
 * platform (`sbom.linux-arm64.spdx.json`). All are deterministic: same build, same bytes.
 */

/** pare's version, recorded in SBOMs and provenance (src/defaults.ts reads it from package.json). */
export const PARE_VERSION = VERSION;

export interface BuildRecords {
  readonly dir: string;
  readonly files: readonly string[];
}

export interface BuildRecordsOptions {
  /**
   * Where what the records derive from each image is kept between builds. With it, a build whose layers are all known
   * (a warm build: cached packages layer, same files) never unpacks its root filesystem, and one whose image is known
   * does not render its SBOMs again.
   */
  readonly cache?: LayerCache;
}

/**
 * What the records read from an image's root filesystem: its inventory (without the build's name, digest and .deb
 * hashes), the purl distro qualifier of its os-release, and its hardlinks (path → target), which provenance needs to
 * tell the user's files apart. A pure function of the image's layers, so it is cached by their diff_ids.
 */
export interface RootfsFacts {
  readonly inventory: Pick<Inventory, 'os' | 'packages' | 'files'>;
  readonly distro: string | undefined;
  readonly hardlinks: readonly (readonly [string, string])[];
}

function suffix(platform: string, first: boolean): string {
  return first ? '' : `.${platform.replaceAll('/', '-')}`;
}

/** Bump when RootfsFacts, the cached SBOM texts or their encoding change: older entries are then never read. */
const RECORDS_CACHE_VERSION = 1;

// Maps (dpkg md5sums, os-release fields) survive the JSON round trip as tagged entry lists.
const encodeFacts = (f: RootfsFacts): string =>
  `${JSON.stringify(f, (_k, v: unknown) => (v instanceof Map ? { $map: [...v] } : v))}\n`;
const decodeFacts = (text: string): RootfsFacts =>
  JSON.parse(text, (_k, v: unknown) =>
    v && typeof v === 'object' && '$map' in v ? new Map((v as { $map: [unknown, unknown][] }).$map) : v,
  ) as RootfsFacts;

/** Returns the cache key of the root filesystem facts of `image`, or undefined when nothing is cached. */
async function factsKey(image: Image, cache: LayerCache | undefined): Promise<string | undefined> {
  const code = cache ? await codeFingerprint() : undefined;
  if (!code) return undefined;
  return cacheKey({
    records: RECORDS_CACHE_VERSION,
    pare: PARE_VERSION,
    code,
    diffIds: (await image.config()).rootfs.diff_ids,
  });
}

/**
 * Returns the root filesystem facts under `key` in the cache, else computed from `tree()` (and stored). Undefined when
 * there is no tree.
 */
async function rootfsFacts(
  key: string | undefined,
  tree: () => Promise<Tree | undefined>,
  cache: LayerCache | undefined,
): Promise<RootfsFacts | undefined> {
  const text = cache && key ? await cache.getRecord(key) : undefined;
  if (text !== undefined) {
    try {
      return decodeFacts(text);
    } catch {
      /* a damaged entry is a miss */
    }
  }
  const t = await tree();
  if (!t) return undefined;
  const { distroQualifier, inventory } = await import('../sbom/index.ts');
  const { os, packages, files } = await inventory(t, { name: '' });
  const hardlinks: [string, string][] = [];
  for (const [p, e] of t) if (e.kind === 'hardlink') hardlinks.push([p, e.target]);
  const facts: RootfsFacts = { inventory: { os, packages, files }, distro: distroQualifier(os), hardlinks };
  if (cache && key) await cache.putRecord(key, encodeFacts(facts));
  return facts;
}

/**
 * Returns the provenance input of a build (no I/O beyond hashing the app files' bytes). The app files are the first
 * platform's, or every platform's when `files:` differ by platform. With those platforms' root filesystem facts (by
 * `os/arch[/variant]`), the app files come from them and no tree is read.
 */
export async function provenanceInput(
  loaded: LoadedConfig,
  r: BuildResult,
  facts?: ReadonlyMap<string, RootfsFacts>,
): Promise<ProvenanceInput> {
  const name = loaded.config.name ?? 'image';
  // The image's own packages: a variant's lock entries are not the main image's dependencies, nor the reverse.
  const debs = (r.debian?.lockedOf(r.packageSet) ?? []).map((p) => ({
    name: p.name,
    version: p.version,
    architecture: p.architecture,
    sha256: p.sha256.replace(/^sha256:/, ''),
    distro: undefined,
  }));
  const releases = (r.debian?.lock.suites ?? []).map((s) => ({
    uri: `dists/${s.suite}/InRelease`,
    sha256: s.inRelease.replace(/^sha256:/, ''),
    name: s.codename ?? s.suite,
  }));
  const appFiles = facts ? appFilesOf(loaded, facts, r) : await appFilesFromTree(loaded, r);
  return {
    subjects: [{ name, digest: r.digest }],
    config: { path: relative(loaded.dir, loaded.path) || 'pare.yaml', digest: sha256(loaded.bytes) },
    platforms: r.platforms.map(formatPlatform),
    debs,
    releases,
    appFiles,
    ...(r.debian
      ? {
          lockfile: {
            path: 'pare.lock',
            digest: sha256(new TextEncoder().encode(JSON.stringify(r.debian.lock))),
          },
        }
      : {}),
    pareVersion: PARE_VERSION,
    sourceDateEpoch: r.epoch,
  };
}

/** Writes the build's records beside the image; returns the directory and the files written. */
export async function writeBuildRecords(
  loaded: LoadedConfig,
  r: BuildResult,
  options: BuildRecordsOptions = {},
): Promise<BuildRecords> {
  if (!r.layoutDir) throw new Error('writeBuildRecords needs a written build');
  const dir = join(r.layoutDir, 'pare', r.tag);
  // Records are a function of the image: when this directory already holds them for this digest, keep them.
  const stamp = join(dir, 'build.json');
  try {
    const prev = JSON.parse(await readFile(stamp, 'utf8')) as { digest?: string; files?: string[] };
    if (
      prev.digest === r.digest &&
      Array.isArray(prev.files) &&
      (
        await Promise.all(
          prev.files.map((f) =>
            stat(join(dir, f)).then(
              () => true,
              () => false,
            ),
          ),
        )
      ).every(Boolean)
    ) {
      return { dir, files: prev.files.map((f) => join(dir, f)) };
    }
  } catch {
    /* no records yet */
  }
  // The SBOM module (and the CycloneDX library) loads only when an SBOM is rendered: a warm build whose image is
  // known writes the cached texts.
  // slsa.ts, not the attest barrel: the barrel loads the registry client and key handling too (~40 ms).
  const { provenanceStatement } = await import('../attest/slsa.ts');
  const files: string[] = [];
  const put = async (name: string, text: string) => {
    await writeFileAtomic(join(dir, name), text);
    files.push(join(dir, name));
  };
  const debSha256 = new Map(
    (r.debian?.lock.packages ?? []).map((p) => [
      `${p.name}:${p.architecture}`,
      p.sha256.replace(/^sha256:/, ''),
    ]),
  );
  const name = loaded.config.name ?? 'image';
  const cache = options.cache;
  const artifact: Artifact = r.artifact;
  let first = true;
  // Provenance reads the facts only for the user's files, of the platforms it lists them for.
  const appFacts = new Map<string, RootfsFacts>();
  const forApp = new Set(loaded.config.files.length > 0 ? appPlatforms(loaded, r) : []);
  let distro: string | undefined;
  for (const platform of r.platforms) {
    const key = formatPlatform(platform);
    const image = await selectImage(artifact, platform);
    const digest: Digest = await image.digest();
    const fk = await factsKey(image, cache);
    // The SBOMs are a function of the facts, the image's digest and name, the epoch and the .debs' digests.
    const sk =
      fk &&
      cacheKey({
        records: RECORDS_CACHE_VERSION,
        sboms: fk,
        name,
        digest,
        epoch: r.epoch,
        debs: [...debSha256],
      });
    let sboms = sk && cache ? decodeSboms(await cache.getRecord(sk)) : undefined;
    let facts: RootfsFacts | undefined;
    if (!sboms) {
      facts = await rootfsFacts(fk, () => r.tree(key), cache);
      if (!facts) continue;
      const { os, packages, files: invFiles } = facts.inventory;
      const inv: Inventory = {
        name,
        digest,
        os,
        packages: packages.map((p) => ({ ...p, debSha256: debSha256.get(p.key) })),
        files: invFiles,
      };
      const { cycloneDxJson, spdxJson } = await import('../sbom/index.ts');
      sboms = {
        spdx: spdxJson(inv, { created: r.epoch, toolVersion: PARE_VERSION }),
        cdx: cycloneDxJson(inv, { created: r.epoch, toolVersion: PARE_VERSION }),
        distro: facts.distro,
      };
      if (sk && cache) await cache.putRecord(sk, `${JSON.stringify(sboms)}\n`);
    }
    if (platform === r.platforms[0]) distro = sboms.distro;
    if (forApp.has(platform)) {
      const f = facts ?? (await rootfsFacts(fk, () => r.tree(key), cache));
      if (f) appFacts.set(key, f);
    }
    const s = suffix(key, first);
    await put(`sbom${s}.spdx.json`, sboms.spdx);
    await put(`sbom${s}.cdx.json`, sboms.cdx);
    const slice = r.slices.get(key);
    if (slice) await put(`slice-report${s}.json`, `${JSON.stringify(slice, null, 2)}\n`);
    first = false;
  }
  const input = await provenanceInput(loaded, r, forApp.size > 0 ? appFacts : undefined);
  const statement = provenanceStatement({ ...input, debs: input.debs.map((d) => ({ ...d, distro })) });
  await put('provenance.json', `${JSON.stringify(statement, null, 2)}\n`);
  await writeFileAtomic(
    stamp,
    `${JSON.stringify({ digest: r.digest, files: files.map((f) => f.slice(dir.length + 1)) }, null, 2)}\n`,
  );
  return { dir, files };
}

/** The SBOM texts of an image, and the purl distro qualifier its provenance uses. */
interface Sboms {
  readonly spdx: string;
  readonly cdx: string;
  readonly distro: string | undefined;
}

function decodeSboms(text: string | undefined): Sboms | undefined {
  try {
    const v = text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
    return typeof v?.spdx === 'string' &&
      typeof v.cdx === 'string' &&
      (v.distro === undefined || typeof v.distro === 'string')
      ? { spdx: v.spdx, cdx: v.cdx, distro: v.distro }
      : undefined;
  } catch {
    return undefined;
  }
}

type AppFile = ProvenanceInput['appFiles'][number];

/** True when some `files:` entry differs by platform (`platforms:` or a placeholder in `src:`). */
function filesPerPlatform(loaded: LoadedConfig): boolean {
  return loaded.config.files.some(
    (f) => f.platforms !== undefined || /\{(arch|os|variant)\}/.test(f.src ?? ''),
  );
}

/** The platforms whose app files the provenance lists: every one when files differ by platform, else the first. */
function appPlatforms(loaded: LoadedConfig, r: BuildResult): readonly Platform[] {
  return filesPerPlatform(loaded) ? r.platforms : r.platforms.slice(0, 1);
}

/** Where each path of the app tree of `platform` came from: the entry's src (expanded), or pare.yaml. */
function appSources(loaded: LoadedConfig, platform: Platform, paths: readonly string[]): Map<string, string> {
  const sources = new Map<string, string>();
  for (const i of filesFor(loaded, platform)) {
    const f = loaded.config.files[i]!;
    const dest = normalizePath(f.dest);
    const src =
      f.src === undefined ? undefined : expandSource(f.src, platform, loaded.locate(['files', i, 'src']));
    sources.set(dest, src ?? 'pare.yaml');
    if (src)
      for (const p of paths)
        if (p.startsWith(`${dest}/`)) sources.set(p, join(src, p.slice(dest.length + 1)));
  }
  return sources;
}

function underDests(loaded: LoadedConfig, platform: Platform): (p: string) => boolean {
  const dests = filesFor(loaded, platform).map((i) => normalizePath(loaded.config.files[i]!.dest));
  return (p) => dests.some((d) => p === d || p.startsWith(`${d}/`));
}

/** Adds `files` to `out`, skipping one already listed with the same path, source and digest (another platform's). */
function addAppFiles(out: AppFile[], files: readonly AppFile[]): void {
  const seen = new Set(out.map((f) => `${f.path}\0${f.source}\0${f.sha256}`));
  for (const f of files) if (!seen.has(`${f.path}\0${f.source}\0${f.sha256}`)) out.push(f);
}

/**
 * The regular files of each app platform's root filesystem (appPlatforms) at or below a `files:` destination (the
 * user's files and whatever the packages put there), in tree order, with their source and sha256.
 */
async function appFilesFromTree(loaded: LoadedConfig, r: BuildResult): Promise<AppFile[]> {
  if (loaded.config.files.length === 0) return [];
  const out: AppFile[] = [];
  for (const platform of appPlatforms(loaded, r)) {
    const tree = await r.tree(formatPlatform(platform));
    if (!tree) continue;
    const under = underDests(loaded, platform);
    // filter() turns a hardlink whose target it drops into a regular file: appFilesOf mirrors that.
    const appTree = tree.filter((p) => under(p));
    const sources = appSources(loaded, platform, appTree.paths());
    const files: AppFile[] = [];
    for (const [p, e] of appTree) {
      if (e.kind !== 'file') continue;
      files.push({
        path: p,
        source: sources.get(p) ?? 'pare.yaml',
        sha256: sha256(await e.content.bytes()).slice(7),
      });
    }
    addAppFiles(out, files);
  }
  return out;
}

/** Like appFilesFromTree, from the root filesystem facts of each app platform (the inventory lists every file in tree order). */
function appFilesOf(
  loaded: LoadedConfig,
  facts: ReadonlyMap<string, RootfsFacts>,
  r: BuildResult,
): AppFile[] {
  if (loaded.config.files.length === 0) return [];
  const out: AppFile[] = [];
  for (const platform of appPlatforms(loaded, r)) {
    const f = facts.get(formatPlatform(platform));
    if (!f) continue;
    const under = underDests(loaded, platform);
    const links = new Map(f.hardlinks);
    const files = f.inventory.files.filter((x) => {
      if (!under(x.path)) return false;
      const target = links.get(x.path);
      return target === undefined || !under(target);
    });
    const sources = appSources(
      loaded,
      platform,
      files.map((x) => x.path),
    );
    addAppFiles(
      out,
      files.map((x) => ({ path: x.path, source: sources.get(x.path) ?? 'pare.yaml', sha256: x.sha256 })),
    );
  }
  return out;
}
