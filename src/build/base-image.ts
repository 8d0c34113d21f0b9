import { isAbsolute, join, relative } from 'node:path';
import { BASE_PRESETS, type LoadedConfig } from '../config/index.ts';
import { type LockFile, readLock, writeLock } from '../debian/index.ts';
import { type Digest, isDigest } from '../digest/index.ts';
import { DebianError, UsageError } from '../errors.ts';
import { type ConflictResolver, merge, type Tree } from '../fstree/index.ts';
import {
  type Artifact,
  formatPlatform,
  type Image,
  type Platform,
  platformMatches,
  selectImage,
} from '../oci/index.ts';
import type { RegistryClient, TransportReference } from '../registry/index.ts';
import { DPKG_STATUS_D, readDpkgDatabase, readOsRelease } from '../sbom/index.ts';
import { formatImageReference, openArtifact, parseImageArgument } from '../transport/index.ts';
import { type DebianPlan, debianArch } from './debian.ts';

/**
 * `base: IMAGE`: an existing image under pare's layers, named in any form every command accepts (transport/open.ts:
 * `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:TAG]`, `[docker://]HOST/REPO[:TAG|@DIGEST]`, or a
 * bare path; local paths are relative to pare.yaml), parsed and opened by the same code as theirs. The reference is resolved once to the digest of its manifest (or index) and pinned in pare.lock's `base`;
 * later builds open exactly that digest (a registry by `@DIGEST`, a layout by its index.json entry, an archive by
 * checking that its tag still names it). `--locked` refuses a tag that moved, `--update` re-resolves. The opened
 * manifest's digest is compared with the pinned one before anything of it is used, and the layers are read through
 * the verifying readers of oci/registry/layout, so the base's bytes are kept exactly (same digests in the new image).
 */

/** True when `base:` names an image rather than a preset (`minimal`, `scratch`). */
export function isImageBase(base: string): boolean {
  return !BASE_PRESETS.includes(base);
}

export interface BaseImageOptions {
  /** The registry client, made only for a `docker://` base. */
  readonly client: () => RegistryClient | Promise<RegistryClient>;
  /** Refuse a missing pin or a tag that names another digest than pare.lock's (`--locked`). */
  readonly locked?: boolean;
  /** Resolve the reference afresh and re-pin (`--update`). */
  readonly update?: boolean;
}

export interface BaseImage {
  /** `base:` as written. */
  readonly reference: string;
  /** For the `org.opencontainers.image.base.name` annotation: the reference as a transport string. */
  readonly name: string;
  /** The pinned digest of the manifest or index. */
  readonly digest: Digest;
  readonly artifact: Artifact;
  readonly lockPath: string;
  /** The lock to write after every input is checked (undefined: pare.lock is already right). */
  readonly lockToWrite: LockFile | undefined;
}

/** Opens `t` at `digest` when the transport can address a digest; an archive is opened by its tag and checked. */
function atDigest(t: TransportReference, digest: Digest): TransportReference {
  if (t.transport === 'docker') return { transport: 'docker', ref: { ...t.ref, digest } };
  if (t.transport === 'oci') return { transport: 'oci', path: t.path, tag: digest };
  return t;
}

async function topDigest(a: Artifact): Promise<Digest> {
  return a.kind === 'image' ? a.image.digest() : a.index.digest();
}

/**
 * Resolves and opens the `base:` image of a config (see the module comment). Throws CONFIG_INVALID (exit 2) for a
 * malformed reference, DEBIAN_LOCK_MISMATCH (exit 1) under `--locked` when the
 * pin is missing or the tag moved.
 */
export async function openBaseImage(loaded: LoadedConfig, options: BaseImageOptions): Promise<BaseImage> {
  const cfg = loaded.config;
  const input = cfg.base;
  // Local paths are relative to pare.yaml, like files: sources.
  let t: TransportReference;
  try {
    t = await parseImageArgument(input, { dir: loaded.dir });
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    throw new UsageError('CONFIG_INVALID', `${loaded.locate(['base'])}: ${e.message}`, { cause: e });
  }
  // The name the image records (org.opencontainers.image.base.name): a path as written, relative to pare.yaml, so
  // the image does not depend on where the project was checked out.
  const written = !isAbsolute(input.replace(/^(oci|oci-archive|docker-archive):/, ''));
  const shown: TransportReference =
    t.transport !== 'docker' && written ? { ...t, path: relative(loaded.dir, t.path) || '.' } : t;
  const lockPath = join(loaded.dir, 'pare.lock');
  const existing = await readLock(lockPath);
  const pinnedByName =
    t.transport === 'docker' ? t.ref.digest : t.tag !== undefined && isDigest(t.tag) ? t.tag : undefined;
  const locked = existing?.base?.reference === input ? existing.base.digest : undefined;

  let digest: Digest;
  let artifact: Artifact;
  if (locked && !options.update) {
    if (options.locked && !pinnedByName) {
      // --locked: the tag must still name the pinned digest.
      const now = await topDigest(await openArtifact(t, options.client));
      if (now !== locked)
        throw new DebianError(
          'DEBIAN_LOCK_MISMATCH',
          `cannot build with --locked: base ${JSON.stringify(input)} now names ${now}, ${lockPath} pins ${locked}; run "pare build --update" to accept it`,
          { path: lockPath },
        );
    }
    digest = locked;
    artifact = await openArtifact(atDigest(t, locked), options.client);
  } else {
    if (options.locked)
      throw new DebianError(
        'DEBIAN_LOCK_MISMATCH',
        `cannot build with --locked: ${lockPath} does not pin base ${JSON.stringify(input)}; build once without --locked and commit pare.lock`,
        { path: lockPath },
      );
    artifact = await openArtifact(t, options.client);
    digest = await topDigest(artifact);
  }
  const got = await topDigest(artifact);
  if (got !== digest)
    throw new DebianError(
      'DEBIAN_LOCK_MISMATCH',
      `cannot open base ${JSON.stringify(input)} at ${digest} (pinned in ${lockPath}): it now holds ${got}; run "pare build --update" to re-pin it`,
      { path: lockPath },
    );
  const lock: LockFile = {
    version: existing?.version ?? 1,
    suites: existing?.suites ?? [],
    packages: existing?.packages ?? [],
    base: { reference: input, digest },
  };
  const same = existing?.base?.reference === input && existing.base.digest === digest;
  return {
    reference: input,
    name: await formatImageReference(shown),
    digest,
    artifact,
    lockPath,
    lockToWrite: same ? undefined : lock,
  };
}

/**
 * Writes the base's pin to pare.lock when it changed (after every input is checked). With the packages' `plan`, one
 * lock holds both (the packages as resolved, and the pin), written when either changed.
 */
export async function saveBaseLock(base: BaseImage, plan?: DebianPlan): Promise<void> {
  if (plan) {
    if (base.lockToWrite || plan.lockState === 'written')
      await writeLock(base.lockPath, {
        ...plan.lock,
        base: { reference: base.reference, digest: base.digest },
      });
    return;
  }
  if (base.lockToWrite) await writeLock(base.lockPath, base.lockToWrite);
}

/** Returns the base's image for `platform`: the index's entry for it, or the single image when its platform matches. */
export async function baseImageFor(base: BaseImage, platform: Platform): Promise<Image> {
  if (base.artifact.kind === 'index') return selectImage(base.artifact, platform);
  const c = await base.artifact.image.config();
  const got: Platform = {
    os: c.os,
    architecture: c.architecture,
    ...(c.variant ? { variant: c.variant } : {}),
  };
  if (!platformMatches(platform, got))
    throw new UsageError(
      'CONFIG_INVALID',
      `cannot build ${formatPlatform(platform)} on base ${JSON.stringify(base.reference)}: it is a single ${formatPlatform(got)} image; list only ${formatPlatform(got)} in platforms: or use a base index that has ${formatPlatform(platform)}`,
    );
  return base.artifact.image;
}

/**
 * Returns what pare's own layer holds of `upper`: the entries that differ from `lower` (by identity: trees share the
 * entries they did not change), with their parent directories as `upper` has them.
 */
export function changedEntries(lower: Tree, upper: Tree): Tree {
  return upper.filter((p, e) => e !== lower.get(p));
}

/**
 * Returns `lower` (an image base's tree) with the packages of request set `set` installed on top, and what was
 * skipped. The base must be a merged-/usr Debian of the config's suite (`/etc/os-release` VERSION_CODENAME =
 * debian.suite) with a dpkg database (status or status.d, read by sbom's reader); a locked package the base has at the
 * same version is skipped, at another version refused. All these refusals are exit 2 naming the base's digest. The
 * packages' own files and their status.d entries go on top (the base's directories keep their metadata); nothing is
 * sliced, as nothing of an image base is.
 */
export async function packagesOnBase(
  loaded: LoadedConfig,
  lower: Tree,
  platform: Platform,
  plan: DebianPlan,
  epoch: number,
  set: string,
  baseDigest: Digest,
): Promise<{ tree: Tree; skipped: readonly string[] }> {
  const suite = loaded.config.debian?.suite ?? 'bookworm';
  const where = `${formatPlatform(platform)} base ${baseDigest}`;
  const os = await readOsRelease(lower);
  if (os?.id !== 'debian' || !os.versionCodename)
    throw new UsageError(
      'CONFIG_INVALID',
      `${loaded.locate(['packages'])}: cannot install packages: on the ${where}: it is not a Debian image (no os-release with ID=debian and VERSION_CODENAME${os ? `; it says ID=${os.id}` : ''}); remove packages: or use a Debian base`,
    );
  if (os.versionCodename !== suite)
    throw new UsageError(
      'CONFIG_INVALID',
      `${loaded.locate(loaded.config.debian?.suite ? ['debian', 'suite'] : ['base'])}: the ${where} is Debian ${os.versionCodename}, and debian.suite is ${suite}: packages of one release on another would not match its libraries; set debian.suite: ${os.versionCodename} or use a ${suite} base`,
    );
  if (lower.get('/bin')?.kind !== 'symlink')
    throw new UsageError(
      'CONFIG_INVALID',
      `${loaded.locate(['base'])}: the ${where} is not merged-/usr (/bin is not a link to usr/bin), and pare installs packages merged-/usr; use a merged-/usr base`,
    );
  const have = await readDpkgDatabase(lower);
  if (have.length === 0)
    throw new UsageError(
      'CONFIG_INVALID',
      `${loaded.locate(['packages'])}: the ${where} has no dpkg database (/var/lib/dpkg/status or status.d), so what it has installed is unknown; remove packages: or use a base with its dpkg metadata`,
    );
  const installed = new Map(have.map((p) => [`${p.name}:${p.architecture}`, p.version]));
  const skip = new Set<string>();
  for (const d of plan.debsOf(debianArch(platform), set)) {
    const r = d.record;
    const v = installed.get(`${r.name}:${r.architecture}`);
    if (v === undefined) continue;
    if (v !== r.version)
      throw new UsageError(
        'CONFIG_INVALID',
        `${loaded.locate(['packages'])}: the ${where} has ${r.name}:${r.architecture} ${v}, and pare.lock resolves ${r.version}: installing it would replace the base's; rebuild the base with ${r.version}, or use a base that has it`,
      );
    skip.add(`${r.name}:${r.architecture}=${r.version}`);
  }
  const assembled = await plan.assembled(platform, epoch, set, skip);
  // Only what the packages own and their dpkg entries; the assembled base files (passwd, /tmp …) stay the base's.
  const mine = assembled.tree.filter(
    (p, e) => e.kind !== 'dir' && (assembled.owners.has(p) || p.startsWith(`${DPKG_STATUS_D}/`)),
  );
  const keepLowerDirs: ConflictResolver = (_p, a, b) => (a.kind === 'dir' && b.kind === 'dir' ? a : b);
  return { tree: merge([lower, mine], keepLowerDirs), skipped: [...skip].sort() };
}
