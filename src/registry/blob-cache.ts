import { createReadStream } from 'node:fs';
import { type Digest, sha256 } from '../digest/index.ts';
import { canonicalBytes, type Descriptor, MediaType, manifestJson } from '../oci/index.ts';
import { repositoryScope } from './auth.ts';
import { drain, type RegistryClient } from './client.ts';
import { fetchBlob } from './pull.ts';
import { pushBlob, putManifest } from './push.ts';
import { formatReference, type ImageReference } from './reference.ts';

/**
 * A registry repository as the cache CI runners share (`pare build --cache REF`): the .debs of a lock live there as
 * blobs under their own sha256 (the digest pare.lock pins), held by one artifact manifest per lock, tagged
 * `pare-debs-<sha256 of the sorted digests>` so the registry's garbage collection keeps them. A build asks it for a
 * .deb before the mirror; what it gives is verified against the lock's digest and size exactly as the mirror's bytes
 * are (src/debian/cache.ts), so whoever can push to the repository can make a build slower, never different.
 *
 * Built layers are not shared: nothing a build can check says a layer is what the .debs would give, so taking one
 * from a shared repository would trust everyone who can push there. Each runner slices and compresses itself (the
 * layer cache on its disk still applies).
 */

/** The artifact type of the manifests that hold the cache's blobs. */
export const CACHE_ARTIFACT_TYPE = 'application/vnd.pare.cache.debs.v1';
/** The media type the manifests give each .deb. */
export const DEB_MEDIA_TYPE = 'application/vnd.debian.binary-package';

const EMPTY = new TextEncoder().encode('{}');

/** A verified file on this machine, offered to the shared cache. */
export interface SharedBlob {
  readonly digest: Digest;
  readonly size: number;
  readonly path: string;
  /** The file's name for people reading the manifest (`org.opencontainers.image.title`). */
  readonly title: string;
}

export interface RegistryBlobCacheOptions {
  /** Told when the cache could not be used for a blob (refused bytes, an unreachable registry). */
  readonly onRefused?: (digest: Digest, error: Error) => void;
}

export class RegistryBlobCache {
  readonly name: string;
  readonly onRefused: ((digest: Digest, error: Error) => void) | undefined;
  readonly #client: RegistryClient;
  readonly #ref: ImageReference;
  /** Set by the first failure that is not a plain miss: the registry is then not asked again in this run. */
  #broken: Error | undefined;

  constructor(client: RegistryClient, ref: ImageReference, options: RegistryBlobCacheOptions = {}) {
    this.#client = client;
    this.#ref = ref;
    this.name = `registry cache ${formatReference({ ...ref, tag: undefined, digest: undefined })}`;
    this.onRefused = options.onRefused;
  }

  /** Yields blob `digest` from the repository, or returns undefined when it is not there (or the registry failed). */
  async open(digest: Digest, size: number): Promise<AsyncIterable<Uint8Array> | undefined> {
    if (this.#broken) return undefined;
    try {
      const res = await this.#client.request({
        method: 'HEAD',
        host: this.#ref.registry,
        repository: this.#ref.repository,
        path: `/v2/${this.#ref.repository}/blobs/${digest}`,
        scopes: [repositoryScope(this.#ref.repository, 'pull')],
        expect: [200, 404],
        what: `check cached blob ${digest}`,
      });
      await drain(res);
      if (res.status === 404) return undefined;
    } catch (e) {
      // Auth, TLS or connection trouble: one message, then the mirror alone for the rest of the build.
      this.#broken = e as Error;
      throw e;
    }
    return fetchBlob(this.#client, this.#ref, { digest, size });
  }

  /**
   * Uploads every blob the repository lacks, then the manifest that holds them all (idempotent: two runners sharing a
   * lock write the same blobs and the same manifest bytes). Returns the manifest's tag and how many blobs were sent.
   */
  async publish(blobs: readonly SharedBlob[]): Promise<{ tag: string; uploaded: number }> {
    const byDigest = new Map<Digest, SharedBlob>();
    for (const b of blobs) byDigest.set(b.digest, b);
    const sorted = [...byDigest.values()].sort((a, b) =>
      a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0,
    );
    let uploaded = 0;
    for (const b of sorted) {
      const r = await pushBlob(this.#client, this.#ref, b, () =>
        createReadStream(b.path, { highWaterMark: 1 << 20 }),
      );
      if (r === 'uploaded') uploaded++;
    }
    const empty: Descriptor = { mediaType: MediaType.OCI_EMPTY, digest: sha256(EMPTY), size: EMPTY.length };
    await pushBlob(this.#client, this.#ref, empty, async function* () {
      yield EMPTY;
    });
    const raw = canonicalBytes(
      manifestJson({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        artifactType: CACHE_ARTIFACT_TYPE,
        config: empty,
        layers: sorted.map((b) => ({
          mediaType: DEB_MEDIA_TYPE,
          digest: b.digest,
          size: b.size,
          annotations: { 'org.opencontainers.image.title': b.title },
        })),
      }),
    );
    const tag = `pare-debs-${sha256(sorted.map((b) => b.digest).join('\n')).slice(7)}`;
    await putManifest(this.#client, this.#ref, tag, raw, MediaType.OCI_MANIFEST);
    return { tag, uploaded };
  }
}
