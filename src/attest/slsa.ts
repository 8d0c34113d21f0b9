import { PackageURL } from 'packageurl-js';
import type { Digest } from '../digest/index.ts';
import { digestSet, makeStatement, type ResourceDescriptor, type Statement } from './intoto.ts';

/**
 * SLSA Provenance v1 (https://slsa.dev/spec/v1.0/provenance) for a pare build, inside an in-toto Statement v1.
 *
 * The build fills in a plain `ProvenanceInput`; this module only shapes it. Output is deterministic: lists are
 * sorted, times come from SOURCE_DATE_EPOCH (or are left out), and nothing reads the clock or the environment.
 */

export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/**
 * pare's buildType. A URN, so it names pare's build recipe without pointing at anybody's host; the schema of
 * externalParameters/internalParameters below is what it stands for (documented in src/attest/README.md).
 */
export const PARE_BUILD_TYPE = 'urn:pare:build-type:image:v1';
/** Default builder.id when the caller names none: a local, unattested pare run. */
export const PARE_LOCAL_BUILDER = 'urn:pare:builder:local';

/** One Debian package that went into the image, as the lockfile pins it. */
export interface DebDependency {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  /** sha256 of the .deb file. */
  readonly sha256: string;
  /** Where it was fetched (mirror URL); recorded as an annotation, never needed to verify. */
  readonly url?: string;
  /** Debian distro for the purl qualifier (e.g. "debian-12"). */
  readonly distro?: string;
}

/** One signed archive index (InRelease) the packages were resolved against. */
export interface ReleaseDependency {
  /** Where it came from, e.g. `<mirror>/dists/bookworm/InRelease`. */
  readonly uri: string;
  readonly sha256: string;
  /** Suite or codename, e.g. "bookworm-security". */
  readonly name?: string;
}

/** One file the user's pare.yaml copied into the image. */
export interface AppFileDependency {
  /** Path inside the image. */
  readonly path: string;
  /** Path of the source, relative to pare.yaml's directory. */
  readonly source: string;
  readonly sha256: string;
}

/** Everything a pare build knows about itself; the build module fills this in. */
export interface ProvenanceInput {
  /** The images built: `name` is the repository (no tag), as cosign names attestation subjects. */
  readonly subjects: readonly { readonly name: string; readonly digest: Digest }[];
  /** Digest of the pare.yaml bytes, and its path relative to the build context. */
  readonly config: { readonly path: string; readonly digest: Digest };
  /** Target platforms, `os/arch[/variant]`. */
  readonly platforms: readonly string[];
  readonly debs: readonly DebDependency[];
  readonly releases: readonly ReleaseDependency[];
  readonly appFiles: readonly AppFileDependency[];
  /** Digest of the lockfile, when the build used one. */
  readonly lockfile?: { readonly path: string; readonly digest: Digest };
  /** builder.id; default PARE_LOCAL_BUILDER. */
  readonly builderId?: string;
  /** pare's version, recorded in builder.version. */
  readonly pareVersion: string;
  /** SOURCE_DATE_EPOCH in seconds; when given it becomes startedOn and finishedOn. */
  readonly sourceDateEpoch?: number;
  /** A unique id for this invocation (CI run URL or id); omitted when absent so builds stay reproducible. */
  readonly invocationId?: string;
}

/**
 * Returns the `pkg:deb/debian/NAME@VERSION?arch=ARCH[&distro=…][&upstream=…]` purl of a Debian package, as syft
 * writes it and grype reads it:
 * - the version is the full Debian version, epoch included (`attr@1:2.4.47-2`, the purl deb type's own example):
 *   the deb type defines no `epoch` qualifier (that one is rpm's), and grype reads `epoch=` only for rpm;
 * - `upstream` is the source package when the `Source:` field names one (`upstream=glibc`), with its version when
 *   the field gives one (`upstream=gcc-12@12.2.0-14`); grype matches Debian's advisories, filed against source
 *   packages, through it.
 */
export function debPurl(
  name: string,
  version: string,
  architecture: string,
  distro?: string,
  upstream?: string,
): string {
  const q: Record<string, string> = { arch: architecture };
  if (distro) q.distro = distro;
  if (upstream) q.upstream = upstream;
  return new PackageURL('deb', 'debian', name, version, q, undefined).toString();
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sha(hex: string): Record<string, string> {
  return { sha256: hex.replace(/^sha256:/, '') };
}

/** Returns the SLSA v1 predicate for `input` (buildDefinition + runDetails). */
export function provenancePredicate(input: ProvenanceInput): Record<string, unknown> {
  const deps: ResourceDescriptor[] = [];
  for (const d of [...input.debs].sort((a, b) => cmp(a.name, b.name) || cmp(a.architecture, b.architecture)))
    deps.push({
      uri: debPurl(d.name, d.version, d.architecture, d.distro),
      digest: sha(d.sha256),
      name: d.name,
      ...(d.url ? { annotations: { downloadLocation: d.url } } : {}),
    });
  for (const r of [...input.releases].sort((a, b) => cmp(a.uri, b.uri)))
    deps.push({ uri: r.uri, digest: sha(r.sha256), ...(r.name ? { name: r.name } : {}) });
  for (const f of [...input.appFiles].sort((a, b) => cmp(a.path, b.path)))
    deps.push({ uri: `file:${f.source}`, digest: sha(f.sha256), name: f.path });

  const externalParameters: Record<string, unknown> = {
    config: { path: input.config.path, digest: digestSet(input.config.digest) },
    platforms: [...input.platforms].sort(),
  };
  const internalParameters: Record<string, unknown> = {};
  if (input.lockfile)
    internalParameters.lockfile = { path: input.lockfile.path, digest: digestSet(input.lockfile.digest) };
  if (input.sourceDateEpoch !== undefined) internalParameters.sourceDateEpoch = input.sourceDateEpoch;

  const metadata: Record<string, string> = {};
  if (input.invocationId) metadata.invocationId = input.invocationId;
  if (input.sourceDateEpoch !== undefined) {
    const t = new Date(input.sourceDateEpoch * 1000).toISOString().replace('.000Z', 'Z');
    metadata.startedOn = t;
    metadata.finishedOn = t;
  }
  return {
    buildDefinition: {
      buildType: PARE_BUILD_TYPE,
      externalParameters,
      ...(Object.keys(internalParameters).length ? { internalParameters } : {}),
      resolvedDependencies: deps,
    },
    runDetails: {
      builder: { id: input.builderId ?? PARE_LOCAL_BUILDER, version: { pare: input.pareVersion } },
      ...(Object.keys(metadata).length ? { metadata } : {}),
    },
  };
}

/** Returns the in-toto Statement v1 carrying the SLSA v1 provenance of a pare build. */
export function provenanceStatement(input: ProvenanceInput): Statement<Record<string, unknown>> {
  return makeStatement(input.subjects, SLSA_PROVENANCE_V1, provenancePredicate(input));
}
