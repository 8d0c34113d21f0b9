import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Digest, Hasher, parseDigest, verifyStream } from '../digest/index.ts';
import { HttpError, isPareError, RegistryError } from '../errors.ts';
import type { BodySink } from '../http/index.ts';
import type { BlobWriter, OciLayout } from '../layout/index.ts';
import {
  type Artifact,
  compressionOf,
  type Descriptor,
  type Image,
  type ImageIndex,
  imageFromParts,
  indexFromParts,
  type Layer,
  layerFromOpener,
  type Platform,
  selectImage,
  uncompressedLayer,
} from '../oci/index.ts';
import { repositoryScope } from './auth.ts';
import { drain, errorCode, type RegistryClient, type RegistryResponse, readLimited } from './client.ts';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, type ParsedManifest, parseManifest } from './manifest.ts';
import { formatReference, type ImageReference, manifestReference, withDigest } from './reference.ts';

/**
 * Pulling: manifests with an Accept for OCI and docker schema 2 manifests and lists, checked against the digest
 * asked for (or the registry's `Docker-Content-Digest`); blobs streamed, hashed on the way and resumed with `Range`
 * after a cut connection. `pull` returns a lazy remote `Artifact` (oci/model.ts): nothing is downloaded until a sink
 * reads it, and a sink sees a blob's last chunk only after it verified, so it can refuse to commit a bad one.
 */

/** Image configs are JSON; 16 MiB is far above any real one and bounds memory for a hostile registry. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** Where a remote blob lives, so a push to the same registry can mount it instead of copying. */
export interface BlobSource {
  readonly host: string;
  readonly repository: string;
}
const layerSources = new WeakMap<Layer, BlobSource>();

/** Returns the registry repository a layer was pulled from, if it came from one. */
export function blobSourceOf(layer: Layer): BlobSource | undefined {
  return layerSources.get(layer);
}

/** A manifest as fetched and verified. */
export interface FetchedManifest {
  readonly raw: Uint8Array;
  readonly digest: Digest;
  readonly mediaType: string;
  readonly parsed: ParsedManifest;
}

function digestOf(raw: Uint8Array, algorithm: 'sha256' | 'sha512'): Digest {
  return new Hasher(algorithm).update(raw).digest();
}

/**
 * Returns the manifest `ref` names (by digest when pinned, else by tag), verified: a pinned digest must match the
 * bytes, and so must the registry's `Docker-Content-Digest` when it sends one. Throws REGISTRY_NOT_FOUND,
 * REGISTRY_DIGEST, REGISTRY_PROTOCOL, REGISTRY_UNSUPPORTED.
 */
export async function getManifest(client: RegistryClient, ref: ImageReference): Promise<FetchedManifest> {
  const reference = manifestReference(ref);
  const what = `manifest ${JSON.stringify(reference)}`;
  const where = { host: ref.registry, repository: ref.repository };
  const res = await client.request({
    method: 'GET',
    host: ref.registry,
    repository: ref.repository,
    path: `/v2/${ref.repository}/manifests/${reference}`,
    scopes: [repositoryScope(ref.repository, 'pull')],
    headers: { accept: MANIFEST_ACCEPT.join(', ') },
    expect: [200],
    what: `get ${what}`,
  });
  const raw = await readLimited(res, MAX_MANIFEST_BYTES, what, where);
  const mismatch = (want: string, got: string) =>
    new RegistryError(
      'REGISTRY_DIGEST',
      `cannot use ${what} from "${ref.registry}/${ref.repository}": content hashes to ${got}, want ${want}; the registry or a proxy changed it`,
      { ...where, status: res.status },
    );
  let digest: Digest;
  if (ref.digest) {
    digest = digestOf(raw, parseDigest(ref.digest).algorithm);
    if (digest !== ref.digest) throw mismatch(ref.digest, digest);
  } else {
    digest = digestOf(raw, 'sha256');
    const header = res.headers.get('docker-content-digest');
    if (header?.startsWith('sha256:') && header !== digest) throw mismatch(header, digest);
  }
  const parsed = parseManifest(
    raw,
    res.headers.get('content-type') ?? undefined,
    `${what} in "${ref.registry}/${ref.repository}"`,
  );
  return { raw, digest, mediaType: parsed.mediaType, parsed };
}

/**
 * Returns the descriptor (media type, digest, size) of the manifest `ref` names with a HEAD request, or undefined
 * when it does not exist. Falls back to GET when the registry omits `Docker-Content-Digest`.
 */
export async function headManifest(
  client: RegistryClient,
  ref: ImageReference,
): Promise<Descriptor | undefined> {
  const reference = manifestReference(ref);
  const res = await client.request({
    method: 'HEAD',
    host: ref.registry,
    repository: ref.repository,
    path: `/v2/${ref.repository}/manifests/${reference}`,
    scopes: [repositoryScope(ref.repository, 'pull')],
    headers: { accept: MANIFEST_ACCEPT.join(', ') },
    expect: [200, 404],
    what: `check manifest ${JSON.stringify(reference)}`,
  });
  await drain(res);
  if (res.status === 404) return undefined;
  const header = res.headers.get('docker-content-digest');
  const size = Number(res.headers.get('content-length'));
  const mediaType = res.headers.get('content-type')?.split(';')[0]?.trim();
  if (
    header &&
    (ref.digest === undefined || header === ref.digest) &&
    Number.isSafeInteger(size) &&
    mediaType
  ) {
    try {
      parseDigest(header);
      return { mediaType, digest: header as Digest, size };
    } catch {
      /* fall through to GET */
    }
  }
  const m = await getManifest(client, ref);
  return { mediaType: m.mediaType, digest: m.digest, size: m.raw.length };
}

/** Returns the digest of the manifest `ref` names (as `crane digest` does; for an index, the index's digest). */
export async function resolveDigest(client: RegistryClient, ref: ImageReference): Promise<Digest> {
  const d = await headManifest(client, ref);
  if (!d)
    throw new RegistryError(
      'REGISTRY_NOT_FOUND',
      `cannot find manifest ${JSON.stringify(manifestReference(ref))} in "${ref.registry}/${ref.repository}": HTTP 404`,
      { host: ref.registry, repository: ref.repository, status: 404 },
    );
  return d.digest;
}

/** True for failures of the connection in the middle of a body, which a Range request can resume. */
function isCut(e: unknown): boolean {
  // A pare error is a verdict (a wrong digest, a refused layer), except the HTTP reader's, which reports the wire.
  if (isPareError(e) && !(e instanceof HttpError)) return false;
  const code = errorCode(e) ?? '';
  return (
    /ECONNRESET|EPIPE|UND_ERR_SOCKET|UND_ERR_BODY_TIMEOUT|ETIMEDOUT|ERR_STREAM_PREMATURE_CLOSE|UND_ERR_ABORTED|HTTP_CONNECTION_CUT|HTTP_STALLED/.test(
      code,
    ) ||
    (e instanceof Error && /terminated|premature|aborted|other side closed/i.test(e.message))
  );
}

/**
 * Yields the bytes of blob `desc` from `ref`'s repository, resuming with `Range: bytes=N-` after a cut connection
 * (up to the client's retry count without progress), and throws DIGEST_MISMATCH / SIZE_MISMATCH after the last
 * chunk when the content is not what `desc` promises. Reports progress. Does no I/O until iterated.
 */
export async function* fetchBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
): AsyncGenerator<Uint8Array> {
  yield* verifyStream(
    rawBlobStream(client, ref, desc),
    desc.digest,
    desc.size,
    `blob from "${ref.registry}/${ref.repository}"`,
  );
}

/** Sends the GET of blob `desc` for the bytes from `offset` on; returns the response and how many leading bytes to drop. */
async function requestBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  offset: number,
  wire: boolean,
): Promise<{ res: RegistryResponse; skip: number }> {
  const res = await client.request({
    method: 'GET',
    host: ref.registry,
    repository: ref.repository,
    path: `/v2/${ref.repository}/blobs/${desc.digest}`,
    scopes: [repositoryScope(ref.repository, 'pull')],
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    expect: offset > 0 ? [200, 206] : [200],
    what: `get blob ${desc.digest}`,
    wire,
  });
  if (offset === 0) return { res, skip: 0 };
  if (res.status !== 206) return { res, skip: offset }; // the registry ignored Range: drop what we already have
  const start = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1];
  if (Number(start) !== offset) {
    await drain(res);
    throw new RegistryError(
      'REGISTRY_PROTOCOL',
      `cannot resume blob ${desc.digest} from "${ref.registry}/${ref.repository}": asked for bytes from ${offset}, got Content-Range ${JSON.stringify(res.headers.get('content-range'))}`,
      { host: ref.registry, repository: ref.repository, status: 206 },
    );
  }
  return { res, skip: 0 };
}

/**
 * Counts attempts that made no progress after a cut connection; throws REGISTRY_NETWORK when there were more than the
 * client's retry count in a row, or rethrows `e` when it is not a cut.
 */
function stallCounter(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
) {
  const max = client.policy.retries;
  let stalls = 0;
  return (e: unknown, before: number, offset: number): void => {
    if (!isCut(e)) throw e;
    stalls = offset > before ? 1 : stalls + 1;
    if (stalls > max) {
      throw new RegistryError(
        'REGISTRY_NETWORK',
        `cannot get blob ${desc.digest} from "${ref.registry}/${ref.repository}": connection cut at byte ${offset} of ${desc.size} (gave up after ${stalls} attempts without progress)`,
        { host: ref.registry, repository: ref.repository, cause: e },
      );
    }
  };
}

/** The fields every progress report of blob `desc` shares. */
function progressOf(ref: ImageReference, desc: Pick<Descriptor, 'digest'>) {
  return { direction: 'pull', host: ref.registry, repository: ref.repository, digest: desc.digest } as const;
}

async function* rawBlobStream(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
): AsyncGenerator<Uint8Array> {
  const base = progressOf(ref, desc);
  const stalled = stallCounter(client, ref, desc);
  let offset = 0;
  client.progress({ ...base, state: 'start', bytes: 0, total: desc.size });
  for (;;) {
    // wire.ts: blobs are big, and it copes with servers that close the connection after the body.
    const got = await requestBlob(client, ref, desc, offset, true);
    const res = got.res;
    let skip = got.skip;
    const before = offset;
    try {
      if (!res.body) break;
      for await (const chunk of res.body) {
        let c = chunk;
        if (skip > 0) {
          if (c.length <= skip) {
            skip -= c.length;
            continue;
          }
          c = c.subarray(skip);
          skip = 0;
        }
        offset += c.length;
        client.progress({ ...base, state: 'data', bytes: offset, total: desc.size });
        yield c;
      }
      break;
    } catch (e) {
      // Everything promised has arrived; whether it is right is for the digest check to say.
      if (!isCut(e) || offset < desc.size) stalled(e, before, offset);
      else break;
    }
  }
  client.progress({ ...base, state: 'done', bytes: offset, total: desc.size });
}

/**
 * Downloads blob `desc` into `w` (which hashes and writes each chunk), through the pooled-buffer reader (wire.ts):
 * the chunk goes back to the reader when its write finished. Resumes cut connections with `Range` like
 * `rawBlobStream`. Does not commit.
 */
async function pumpBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  w: BlobWriter,
): Promise<void> {
  const base = progressOf(ref, desc);
  const report = client.options.onProgress !== undefined;
  const stalled = stallCounter(client, ref, desc);
  client.progress({ ...base, state: 'start', bytes: 0, total: desc.size });
  for (;;) {
    const got = await requestBlob(client, ref, desc, w.offset, true);
    let skip = got.skip;
    const before = w.offset;
    const sink: BodySink = (chunk, release) => {
      let c = chunk;
      if (skip > 0) {
        if (c.length <= skip) {
          skip -= c.length;
          release();
          return;
        }
        c = c.subarray(skip);
        skip = 0;
      }
      w.write(c, release);
      if (report) client.progress({ ...base, state: 'data', bytes: w.offset, total: desc.size });
    };
    try {
      if (got.res.pump) await got.res.pump(sink);
      else if (got.res.body) for await (const c of got.res.body) sink(c, () => {});
      break;
    } catch (e) {
      if (!isCut(e) || w.offset < desc.size) stalled(e, before, w.offset);
      else break;
    }
  }
  client.progress({ ...base, state: 'done', bytes: w.offset, total: desc.size });
}

/** Returns a whole blob in memory, verified; for configs and other small JSON (bounded by `max`). */
export async function fetchBlobBytes(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  max: number,
): Promise<Uint8Array> {
  if (desc.size > max)
    throw new RegistryError(
      'REGISTRY_PROTOCOL',
      `cannot read blob ${desc.digest} from "${ref.registry}/${ref.repository}": ${desc.size} bytes is over the ${max}-byte limit`,
      { host: ref.registry, repository: ref.repository },
    );
  const chunks: Uint8Array[] = [];
  for await (const c of fetchBlob(client, ref, desc)) chunks.push(c);
  return Buffer.concat(chunks);
}

/**
 * Downloads blob `desc` to `path`: written to a temp file beside it and renamed only after the digest verified, so a
 * wrong or short body never appears at `path`.
 */
export async function downloadBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  path: string,
): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.partial`);
  try {
    await pipeline(fetchBlob(client, ref, desc), createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** How to fetch a pulled layer's blob again, for sinks that verify it themselves (`storeRemoteLayer`). */
interface RemoteBlob {
  readonly client: RegistryClient;
  readonly ref: ImageReference;
  readonly desc: Descriptor;
}
const remoteBlobs = new WeakMap<Layer, RemoteBlob>();

function remoteLayer(
  client: RegistryClient,
  ref: ImageReference,
  d: Descriptor,
  diffId: Digest | undefined,
): Layer {
  const layer = layerFromOpener({
    open: () => fetchBlob(client, ref, d),
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType,
    what: `layer ${d.digest} of ${formatReference(ref)}`,
    ...(diffId ? { diffId } : {}),
    // A sink stores or forwards these bytes without reading them otherwise: check them on the way (diff_id, limits).
    checkStored: true,
  });
  layerSources.set(layer, { host: ref.registry, repository: ref.repository });
  remoteBlobs.set(layer, { client, ref, desc: d });
  return layer;
}

/**
 * Stores the blob of `layer` in `layout` when the layer came from a registry and returns true; returns false for any
 * other layer (write it the usual way). A blob the layout has is not fetched. The body is read into pooled buffers
 * (wire.ts) and handed to the layout's `BlobWriter`, which hashes each chunk once and writes it in place, and renames
 * the file into place only when digest and size match, so a wrong body is refused with DIGEST_MISMATCH /
 * SIZE_MISMATCH naming the registry and never stored. Cut connections resume with `Range`.
 */
export async function storeRemoteLayer(layout: OciLayout, layer: Layer): Promise<boolean> {
  const r = remoteBlobs.get(layer);
  if (!r) return false;
  if (await layout.hasBlob(r.desc.digest)) return true;
  const diffId = await layer.diffId();
  const w = await layout.blobWriter({
    digest: r.desc.digest,
    size: r.desc.size,
    what: `blob from "${r.ref.registry}/${r.ref.repository}"`,
  });
  try {
    await pumpBlob(r.client, r.ref, r.desc, w);
  } catch (e) {
    await w.abort();
    throw e;
  }
  // The digest says the bytes are the registry's; only decompressing them says the config's diff_id is true and the
  // layer is no bomb. Read back from the temp file (hot in the page cache) before the blob gets its name.
  await w.commit({
    check: async (written) => {
      for await (const _ of uncompressedLayer(written(), {
        compression: compressionOf(r.desc.mediaType),
        digest: r.desc.digest,
        diffId,
        what: `layer ${r.desc.digest} of ${formatReference(r.ref)}`,
      })) {
        /* the checks run as the bytes pass */
      }
    },
  });
  return true;
}

/** Returns a lazy remote image over an already fetched manifest. */
export function remoteImage(client: RegistryClient, ref: ImageReference, m: FetchedManifest): Image {
  const pinned = withDigest(ref, m.digest);
  return imageFromParts({
    rawManifest: async () => m.raw,
    rawConfig: (d) => fetchBlobBytes(client, pinned, d, MAX_CONFIG_BYTES),
    layer: async (d, _i, diffId) => remoteLayer(client, pinned, d, diffId),
    where: formatReference(pinned),
  });
}

/** Returns a lazy remote index over an already fetched index manifest; children are fetched by digest when asked. */
export function remoteIndex(client: RegistryClient, ref: ImageReference, m: FetchedManifest): ImageIndex {
  /** Fetches child `d` and checks it is the kind the index says it is. */
  const child = async (d: Descriptor, kind: 'image' | 'index') => {
    const cm = await getManifest(client, withDigest({ ...ref, tag: undefined }, d.digest));
    if (cm.raw.length !== d.size)
      throw new RegistryError(
        'REGISTRY_DIGEST',
        `cannot use manifest ${d.digest} from "${ref.registry}/${ref.repository}": it has ${cm.raw.length} bytes, the index says ${d.size}`,
        { host: ref.registry, repository: ref.repository },
      );
    if (cm.parsed.kind !== kind)
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot open ${d.digest} as an ${kind}: it is an ${cm.parsed.kind}`,
        { host: ref.registry, repository: ref.repository },
      );
    return cm;
  };
  return indexFromParts({
    rawManifest: async () => m.raw,
    image: async (d) => remoteImage(client, ref, await child(d, 'image')),
    index: async (d) => remoteIndex(client, ref, await child(d, 'index')),
    where: formatReference(withDigest(ref, m.digest)),
  });
}

/**
 * Returns the artifact `ref` names as a lazy remote Image or ImageIndex (oci/model.ts). Only the top manifest is
 * fetched now. Throws like `getManifest`.
 */
export async function pull(client: RegistryClient, ref: ImageReference): Promise<Artifact> {
  const m = await getManifest(client, ref);
  return m.parsed.kind === 'index'
    ? { kind: 'index', index: remoteIndex(client, ref, m) }
    : { kind: 'image', image: remoteImage(client, ref, m) };
}

/** Returns the single image for `platform` (default: this host's) that `ref` names, choosing from an index. */
export async function pullImage(
  client: RegistryClient,
  ref: ImageReference,
  options: { readonly platform?: Platform } = {},
): Promise<Image> {
  return selectImage(await pull(client, ref), options.platform);
}
