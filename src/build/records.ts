import { readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { ProvenanceInput } from '../attest/index.ts';
import type { LoadedConfig } from '../config/index.ts';
import { type Digest, sha256 } from '../digest/index.ts';
import { normalizePath, type Tree } from '../fstree/index.ts';
import { writeFileAtomic } from '../layout/index.ts';
import { type Artifact, formatPlatform, selectImage } from '../oci/index.ts';
import type { BuildResult } from './build.ts';

/**
 * What a build knows about itself, written beside the image in `<layout>/pare/<tag>/`: the SBOMs (SPDX 2.3 and
 * CycloneDX 1.6), the SLSA v1 provenance statement (unsigned: `pare attest` signs and attaches it) and the slice
 * report (`pare why-kept`). The host platform's files have plain names (`sbom.spdx.json`), other platforms' carry the
 * platform (`sbom.linux-arm64.spdx.json`). All are deterministic: same build, same bytes.
 */

export const PARE_VERSION = '0.1.0';

export interface BuildRecords {
  readonly dir: string;
  readonly files: readonly string[];
}

function suffix(platform: string, first: boolean): string {
  return first ? '' : `.${platform.replaceAll('/', '-')}`;
}

/** Returns the provenance input of a build (no I/O beyond hashing the app files' bytes). */
export async function provenanceInput(loaded: LoadedConfig, r: BuildResult): Promise<ProvenanceInput> {
  const appTree = await appTreeOf(loaded, r);
  const name = loaded.config.name ?? 'image';
  const debs = (r.debian?.lock.packages ?? []).map((p) => ({
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
  const appFiles: ProvenanceInput['appFiles'][number][] = [];
  if (appTree) {
    const sources = new Map<string, string>();
    for (const f of loaded.config.files) {
      const dest = normalizePath(f.dest);
      sources.set(dest, f.src ?? 'pare.yaml');
      if (f.src)
        for (const p of appTree.paths())
          if (p.startsWith(`${dest}/`)) sources.set(p, join(f.src, p.slice(dest.length + 1)));
    }
    for (const [p, e] of appTree) {
      if (e.kind !== 'file') continue;
      appFiles.push({
        path: p,
        source: sources.get(p) ?? 'pare.yaml',
        sha256: sha256(await e.content.bytes()).slice(7),
      });
    }
  }
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
export async function writeBuildRecords(loaded: LoadedConfig, r: BuildResult): Promise<BuildRecords> {
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
  // The SBOM and attestation modules (and the CycloneDX library) load only when records are written: a warm build
  // whose records are current never pays for them.
  const [{ cycloneDxJson, distroQualifier, inventory, readOsRelease, spdxJson }, { provenanceStatement }] =
    await Promise.all([import('../sbom/index.ts'), import('../attest/index.ts')]);
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
  const artifact: Artifact = r.artifact;
  let first = true;
  for (const platform of r.platforms) {
    const key = formatPlatform(platform);
    const tree = await r.tree(key);
    if (!tree) continue;
    const image = await selectImage(artifact, platform);
    const digest: Digest = await image.digest();
    const inv = await inventory(tree, { name: loaded.config.name ?? 'image', digest, debSha256 });
    const s = suffix(key, first);
    await put(`sbom${s}.spdx.json`, spdxJson(inv, { created: r.epoch, toolVersion: PARE_VERSION }));
    await put(`sbom${s}.cdx.json`, cycloneDxJson(inv, { created: r.epoch, toolVersion: PARE_VERSION }));
    const slice = r.slices.get(key);
    if (slice) await put(`slice-report${s}.json`, `${JSON.stringify(slice, null, 2)}\n`);
    first = false;
  }
  const input = await provenanceInput(loaded, r);
  const firstTree = r.platforms[0] ? await r.tree(formatPlatform(r.platforms[0])) : undefined;
  const distro = firstTree ? distroQualifier(await readOsRelease(firstTree)) : undefined;
  const statement = provenanceStatement({ ...input, debs: input.debs.map((d) => ({ ...d, distro })) });
  await put('provenance.json', `${JSON.stringify(statement, null, 2)}\n`);
  await writeFileAtomic(
    stamp,
    `${JSON.stringify({ digest: r.digest, files: files.map((f) => f.slice(dir.length + 1)) }, null, 2)}\n`,
  );
  return { dir, files };
}

/** The `files:` tree of a build (owners resolved against the first platform's users), for provenance. */
async function appTreeOf(loaded: LoadedConfig, r: BuildResult): Promise<Tree | undefined> {
  if (loaded.config.files.length === 0) return undefined;
  const first = r.platforms[0] ? await r.tree(formatPlatform(r.platforms[0])) : undefined;
  if (!first) return undefined;
  const dests = loaded.config.files.map((f) => normalizePath(f.dest));
  return first.filter((p) => dests.some((d) => p === d || p.startsWith(`${d}/`)));
}
