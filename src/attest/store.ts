import { type Digest, isDigest, parseDigest, sha256 } from '../digest/index.ts';
import { AttestError, isPareError } from '../errors.ts';
import { OciLayout } from '../layout/index.ts';
import type { Descriptor, IndexManifest } from '../oci/index.ts';
import { MediaType } from '../oci/index.ts';
import {
  attachReferrer,
  fetchBlobBytes,
  getManifest,
  type ImageReference,
  listReferrers,
  pushBlob,
  putManifest,
  type RegistryClient,
  referrersTag,
} from '../registry/index.ts';

/**
 * Where signatures and attestations are read and written: the small set of operations signing needs, so the same
 * sign/verify code runs against a registry (through src/registry) and an OCI image layout (through src/layout), and
 * tests can pass an in-memory fake. Every read is verified against its digest before the bytes are returned.
 */

export interface StoredManifest {
  readonly raw: Uint8Array;
  readonly digest: Digest;
  readonly mediaType: string;
}

export interface BlobToPut {
  readonly descriptor: Descriptor;
  readonly data: Uint8Array;
}

export interface ArtifactStore {
  /** Where this store is, for messages and for cosign's `docker-reference` (a registry repository or `oci:<dir>`). */
  readonly name: string;
  /** Returns the manifest at a tag or digest, verified, or undefined when there is none. */
  getManifest(reference: string): Promise<StoredManifest | undefined>;
  /** Returns a blob's bytes after checking digest and size; refuses blobs over `max` bytes. */
  getBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>, max: number): Promise<Uint8Array>;
  /** Stores blobs, then the manifest (by digest, and under `tag` when given). Returns the manifest digest. */
  putManifest(raw: Uint8Array, mediaType: string, blobs: readonly BlobToPut[], tag?: string): Promise<Digest>;
  /** Returns the descriptors of manifests whose `subject` is `subject` (referrers API or `<alg>-<hex>` tag index). */
  listReferrers(subject: Digest): Promise<readonly Descriptor[]>;
  /** Stores a referrer manifest (it has `subject`) and its blobs, and makes listReferrers find it. */
  attachReferrer(raw: Uint8Array, mediaType: string, blobs: readonly BlobToPut[]): Promise<Descriptor>;
}

/** Returns a store over a registry repository (`ref.registry/ref.repository`; tag and digest are ignored). */
export function registryStore(client: RegistryClient, ref: ImageReference): ArtifactStore {
  const repo: ImageReference = { registry: ref.registry, repository: ref.repository };
  return {
    name: `${ref.registry}/${ref.repository}`,
    async getManifest(reference) {
      try {
        const m = await getManifest(
          client,
          isDigest(reference) ? { ...repo, digest: reference } : { ...repo, tag: reference },
        );
        return { raw: m.raw, digest: m.digest, mediaType: m.mediaType };
      } catch (e) {
        if (isPareError(e, 'REGISTRY_NOT_FOUND')) return undefined;
        throw e;
      }
    },
    getBlob(d, max) {
      return fetchBlobBytes(client, repo, d, max);
    },
    async putManifest(raw, mediaType, blobs, tag) {
      for (const b of blobs)
        await pushBlob(client, repo, b.descriptor, async function* () {
          yield b.data;
        });
      const digest = sha256(raw);
      await putManifest(client, repo, digest, raw, mediaType);
      if (tag) await putManifest(client, repo, tag, raw, mediaType);
      return digest;
    },
    async listReferrers(subject) {
      return (await listReferrers(client, repo, subject)).manifests;
    },
    async attachReferrer(raw, mediaType, blobs) {
      return (await attachReferrer(client, repo, { manifest: raw, mediaType, blobs })).descriptor;
    },
  };
}

/**
 * Returns a store over an OCI image layout directory. A layout has no referrers API, so referrers are kept the way
 * registries without it keep them: an image index tagged `<alg>-<hex>` of the subject (the OCI referrers tag schema).
 */
export async function layoutStore(dir: string): Promise<ArtifactStore> {
  const layout = await OciLayout.open(dir);
  const readIndexAt = async (tag: string): Promise<IndexManifest | undefined> => {
    const m = await store.getManifest(tag);
    if (!m) return undefined;
    return JSON.parse(new TextDecoder().decode(m.raw)) as IndexManifest;
  };
  const store: ArtifactStore = {
    name: `oci:${dir}`,
    async getManifest(reference) {
      let desc: Descriptor;
      try {
        desc = await layout.resolve(reference);
      } catch (e) {
        if (isPareError(e, 'LAYOUT_REF_NOT_FOUND')) return undefined;
        throw e;
      }
      const raw = await layout.readBlob(desc.digest);
      return { raw, digest: desc.digest, mediaType: desc.mediaType };
    },
    async getBlob(d, max) {
      if (d.size > max)
        throw new AttestError(
          'ATTEST_PAYLOAD_INVALID',
          `cannot read blob ${d.digest} from ${JSON.stringify(dir)}: ${d.size} bytes is over the ${max}-byte limit`,
          { digest: d.digest },
        );
      return layout.readBlob(d.digest);
    },
    async putManifest(raw, mediaType, blobs, tag) {
      for (const b of blobs) await layout.writeBytes(b.data);
      const { digest, size } = await layout.writeBytes(raw);
      if (tag) await layout.tag({ mediaType, digest, size }, tag);
      return digest;
    },
    async listReferrers(subject) {
      return (await readIndexAt(referrersTag(subject)))?.manifests ?? [];
    },
    async attachReferrer(raw, mediaType, blobs) {
      const m = JSON.parse(new TextDecoder().decode(raw)) as {
        subject?: Descriptor;
        artifactType?: string;
        config?: Descriptor;
        annotations?: Record<string, string>;
      };
      if (!m.subject)
        throw new AttestError(
          'ATTEST_PAYLOAD_INVALID',
          'cannot attach a referrer: its manifest has no "subject"',
        );
      parseDigest(m.subject.digest);
      const digest = await store.putManifest(raw, mediaType, blobs);
      const artifactType = m.artifactType ?? m.config?.mediaType;
      const descriptor: Descriptor = {
        mediaType,
        digest,
        size: raw.length,
        ...(artifactType ? { artifactType } : {}),
        ...(m.annotations && Object.keys(m.annotations).length ? { annotations: m.annotations } : {}),
      };
      const tag = referrersTag(m.subject.digest);
      const existing = (await readIndexAt(tag))?.manifests ?? [];
      if (existing.some((d) => d.digest === digest)) return descriptor;
      const index = {
        schemaVersion: 2,
        mediaType: MediaType.OCI_INDEX,
        manifests: [...existing, descriptor],
      };
      const indexRaw = new TextEncoder().encode(JSON.stringify(index));
      await store.putManifest(indexRaw, MediaType.OCI_INDEX, [], tag);
      return descriptor;
    },
  };
  return store;
}
