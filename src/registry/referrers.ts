import { type Digest, parseDigest, sha256 } from '../digest/index.ts';
import { RegistryError } from '../errors.ts';
import { type Descriptor, type IndexManifest, type Manifest, MediaType } from '../oci/index.ts';
import { repositoryScope } from './auth.ts';
import { drain, type RegistryClient, readLimited } from './client.ts';
import { nextLink } from './link.ts';
import { MAX_MANIFEST_BYTES, parseManifest } from './manifest.ts';
import { getManifest } from './pull.ts';
import { pushBlob, putManifest } from './push.ts';
import type { ImageReference } from './reference.ts';

/**
 * OCI 1.1 referrers (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers):
 * `GET /v2/<name>/referrers/<digest>[?artifactType=]`, and, for registries without the API (distribution 2.8
 * answers 404), the referrers tag schema: an index tagged `<alg>-<hex>` that clients keep up to date
 * (spec.md#referrers-tag-schema), as cosign v3 and oras do. Updating that tag is read-modify-write; two clients
 * attaching at the same moment can lose one entry, which the spec accepts for the fallback.
 */

export interface ReferrersOptions {
  /** Only referrers whose `artifactType` equals this. */
  readonly artifactType?: string;
}

export interface ReferrersResult {
  /** The referrer descriptors, as the registry (or the fallback index) lists them, filtered. */
  readonly manifests: readonly Descriptor[];
  /** `api` when the registry answered the referrers API, `tag` when the fallback tag was read. */
  readonly source: 'api' | 'tag';
}

/** A manifest that refers to a subject (`subject` set), and the blobs it needs. */
export interface ReferrerArtifact {
  readonly manifest: Uint8Array;
  /** Default: the manifest's own `mediaType`, else OCI image manifest. */
  readonly mediaType?: string;
  readonly blobs: readonly { readonly descriptor: Descriptor; readonly data: Uint8Array }[];
}

/** Index pages are bounded: a hostile registry must not lead us around a `Link` loop forever. */
const MAX_REFERRER_PAGES = 1000;

/** Returns the fallback tag of the referrers tag schema: `<alg>-<hex>` (hex cut to 64 characters). */
export function referrersTag(subject: Digest): string {
  const { algorithm, hex } = parseDigest(subject);
  return `${algorithm}-${hex.slice(0, 64)}`;
}

function filterType(ds: readonly Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType === undefined ? [...ds] : ds.filter((d) => d.artifactType === artifactType);
}

/**
 * Returns the referrers of `subject` in `ref`'s repository: from the referrers API when the registry has it,
 * else from the `<alg>-<hex>` tag index (empty when neither exists). Throws REGISTRY_* codes.
 */
export async function listReferrers(
  client: RegistryClient,
  ref: ImageReference,
  subject: Digest,
  options: ReferrersOptions = {},
): Promise<ReferrersResult> {
  const where = { host: ref.registry, repository: ref.repository };
  const q = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
  const { base } = await client.ping(ref.registry);
  let url: string | undefined = `${base}/v2/${ref.repository}/referrers/${subject}${q}`;
  const found: Descriptor[] = [];
  for (let page = 0; url; page++) {
    if (page >= MAX_REFERRER_PAGES)
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot list referrers of ${subject} in "${ref.registry}/${ref.repository}": more than ${MAX_REFERRER_PAGES} pages`,
        where,
      );
    const res = await client.request({
      method: 'GET',
      ...where,
      url,
      scopes: [repositoryScope(ref.repository, 'pull')],
      headers: { accept: MediaType.OCI_INDEX },
      expect: page === 0 ? [200, 404] : [200],
      what: `list referrers of ${subject}`,
    });
    if (res.status === 404) {
      await drain(res);
      return { manifests: await fallbackReferrers(client, ref, subject, options), source: 'tag' };
    }
    const raw = await readLimited(res, MAX_MANIFEST_BYTES, 'referrers index', where);
    const parsed = parseManifest(
      raw,
      res.headers.get('content-type') ?? MediaType.OCI_INDEX,
      `referrers index of ${subject}`,
    );
    if (parsed.kind !== 'index')
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot list referrers of ${subject} in "${ref.registry}/${ref.repository}": the answer is not an image index`,
        where,
      );
    // A registry may ignore the filter; it says so by leaving artifactType out of OCI-Filters-Applied.
    found.push(...filterType(parsed.manifest.manifests, options.artifactType));
    url = nextLink(res.headers.get('link'), url);
  }
  return { manifests: found, source: 'api' };
}

async function fallbackIndex(
  client: RegistryClient,
  ref: ImageReference,
  subject: Digest,
): Promise<{ index: IndexManifest; raw: Uint8Array } | undefined> {
  const tag = referrersTag(subject);
  const res = await client.request({
    method: 'HEAD',
    host: ref.registry,
    repository: ref.repository,
    path: `/v2/${ref.repository}/manifests/${tag}`,
    scopes: [repositoryScope(ref.repository, 'pull')],
    headers: { accept: `${MediaType.OCI_INDEX}, ${MediaType.DOCKER_LIST}` },
    expect: [200, 404],
    what: `check referrers tag ${JSON.stringify(tag)}`,
  });
  await drain(res);
  if (res.status === 404) return undefined;
  const m = await getManifest(client, { registry: ref.registry, repository: ref.repository, tag });
  if (m.parsed.kind !== 'index')
    throw new RegistryError(
      'REGISTRY_PROTOCOL',
      `cannot read referrers of ${subject}: tag ${JSON.stringify(tag)} in "${ref.registry}/${ref.repository}" is not an image index`,
      { host: ref.registry, repository: ref.repository },
    );
  return { index: m.parsed.manifest, raw: m.raw };
}

async function fallbackReferrers(
  client: RegistryClient,
  ref: ImageReference,
  subject: Digest,
  options: ReferrersOptions,
): Promise<Descriptor[]> {
  const f = await fallbackIndex(client, ref, subject);
  return f ? filterType(f.index.manifests, options.artifactType) : [];
}

/** Returns the descriptor a referrers list holds for a manifest (`artifactType` defaults to the config type). */
export function referrerDescriptor(
  manifest: Manifest | IndexManifest,
  raw: Uint8Array,
  mediaType: string,
): Descriptor {
  const artifactType =
    manifest.artifactType ?? ('config' in manifest ? manifest.config.mediaType : undefined);
  return {
    mediaType,
    digest: sha256(raw),
    size: raw.length,
    ...(artifactType ? { artifactType } : {}),
    ...(manifest.annotations && Object.keys(manifest.annotations).length
      ? { annotations: manifest.annotations }
      : {}),
  };
}

/**
 * Pushes a referrer (a manifest with `subject`) and its blobs to `ref`'s repository, by digest. When the registry
 * does not confirm it processed the subject (no `OCI-Subject` header), adds the referrer to the `<alg>-<hex>` tag
 * index (creating it), as the spec asks of clients. Returns the referrer's descriptor and which path was used.
 */
export async function attachReferrer(
  client: RegistryClient,
  ref: ImageReference,
  artifact: ReferrerArtifact,
): Promise<{ descriptor: Descriptor; mode: 'api' | 'tag' }> {
  const parsed = parseManifest(artifact.manifest, artifact.mediaType, 'referrer manifest');
  const subject = parsed.manifest.subject;
  if (!subject)
    throw new RegistryError('REGISTRY_PROTOCOL', 'cannot attach referrer: its manifest has no "subject"', {
      host: ref.registry,
      repository: ref.repository,
    });
  const mediaType = artifact.mediaType ?? parsed.mediaType;
  await Promise.all(
    artifact.blobs.map((b) =>
      pushBlob(client, ref, b.descriptor, async function* () {
        yield b.data;
      }),
    ),
  );
  const descriptor = referrerDescriptor(parsed.manifest, artifact.manifest, mediaType);
  const put = await putManifest(client, ref, descriptor.digest, artifact.manifest, mediaType);
  if (put.subject === subject.digest) return { descriptor, mode: 'api' };
  const existing = await fallbackIndex(client, ref, subject.digest);
  const doc: { schemaVersion: 2; mediaType: string; manifests: Descriptor[]; [k: string]: unknown } = existing
    ? (JSON.parse(Buffer.from(existing.raw).toString('utf8')) as typeof doc)
    : { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] };
  if (doc.manifests.some((d) => d.digest === descriptor.digest)) return { descriptor, mode: 'tag' };
  doc.manifests.push(descriptor);
  const raw = new TextEncoder().encode(JSON.stringify(doc));
  await putManifest(client, ref, referrersTag(subject.digest), raw, doc.mediaType ?? MediaType.OCI_INDEX);
  return { descriptor, mode: 'tag' };
}
