import { isAbsolute, join, relative } from 'node:path';
import { BASE_PRESETS, type LoadedConfig } from '../config/index.ts';
import { type LockFile, readLock, writeLock } from '../debian/index.ts';
import { type Digest, isDigest } from '../digest/index.ts';
import { DebianError, UsageError } from '../errors.ts';
import type { Tree } from '../fstree/index.ts';
import {
  type Artifact,
  formatPlatform,
  type Image,
  type Platform,
  platformMatches,
  selectImage,
} from '../oci/index.ts';
import type { RegistryClient, TransportReference } from '../registry/index.ts';
import { formatImageReference, openArtifact, parseImageArgument } from '../transport/index.ts';

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
 * malformed reference or `packages:` next to an image base, DEBIAN_LOCK_MISMATCH (exit 1) under `--locked` when the
 * pin is missing or the tag moved.
 */
export async function openBaseImage(loaded: LoadedConfig, options: BaseImageOptions): Promise<BaseImage> {
  const cfg = loaded.config;
  const input = cfg.base;
  if (cfg.packages?.length)
    throw new UsageError(
      'CONFIG_INVALID',
      `${loaded.locate(['packages'])}: packages: cannot be installed on an image base (${JSON.stringify(input)}) yet: pare does not read the base's dpkg database; remove packages: (use base: minimal for a packages build) or build the base with them`,
    );
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

/** Writes the base's pin to pare.lock when it changed (after every input is checked). */
export async function saveBaseLock(base: BaseImage): Promise<void> {
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
