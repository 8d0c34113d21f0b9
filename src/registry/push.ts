import { type FileHandle, open } from 'node:fs/promises';
import { type Digest, sha256 } from '../digest/index.ts';
import { DigestError, isRegistryError, RegistryError } from '../errors.ts';
import { layoutBlobFile } from '../layout/index.ts';
import {
  type Artifact,
  type Descriptor,
  type Image,
  type ImageIndex,
  isImageManifestType,
  isIndexType,
  MediaType,
} from '../oci/index.ts';
import { repositoryScope } from './auth.ts';
import {
  drain,
  type RegistryClient,
  type RegistryRequest,
  type RegistryResponse,
  resolveLocation,
} from './client.ts';
import { Limiter } from './limit.ts';
import { type BlobSource, blobSourceOf } from './pull.ts';
import { formatReference, type ImageReference, manifestReference } from './reference.ts';

/**
 * Pushing (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#push): `HEAD` to skip blobs the
 * registry has, cross-repository mount (`POST ?mount=&from=`) for blobs pulled from the same registry, monolithic
 * upload (`POST` + `PUT ?digest=`) below the chunk threshold and chunked upload (`PATCH` with `Content-Range`)
 * above it; then manifests and indexes with their own media type, children before parents, then tags.
 * Blob transfers run with bounded concurrency. Blobs are not hashed on the way out: the registry must check
 * `?digest=` before it commits an upload (distribution-spec, "Pushing blobs") and answers a wrong body with
 * 400 DIGEST_INVALID (REGISTRY_DIGEST here). Layers of a local layout are read straight from their files
 * (`layoutBlobFile`), not through the layout's own hashing reader: that second hash was a quarter of a push's CPU and
 * guards nothing the registry does not. Other sources check their bytes as they stream them (remote `fetchBlob`).
 * The byte count is checked here, so a short or long source never finishes an upload.
 *
 * Read buffers are reused. A layout file is read into a ring of READ_RING buffers per upload instead of a fresh
 * 1 MiB Buffer per read: fresh buffers are external memory that drove V8 into full GCs and page faults (push of
 * 200 MiB: pare CPU 0.80 → 0.64 s, measured against crane on the same registry). That is safe because undici's
 * request writer (client.ts, no injected `fetch`) asks for the next body chunk only when `socket.write` returned true
 * or after `drain`, i.e. when less than the socket's high-water mark (64 KiB) is still queued: with chunks of 1 MiB,
 * every chunk but the last one handed over is then out of the socket's hands (it writes each chunk corked, so a 1 MiB
 * chunk in fact always waits for `drain`), and the ring only overwrites the chunk handed over three pulls earlier.
 * A transport that keeps chunks longer (an injected `fetch`) gets fresh buffers. The registry's digest check of every
 * upload is what proves it: test/registry/push-buffers.test.ts pushes through a slow reader, which leaves writes
 * queued (a buffer changed while queued fails it).
 */

/** How a blob got to the registry. */
export type BlobPushResult = 'exists' | 'mounted' | 'uploaded';

export interface PushOptions {
  /** More tags to point at the pushed manifest, in the same repository. */
  readonly tags?: readonly string[];
}

/** Whole-upload attempts for failures the registry may recover from (the upload session is restarted). */
const UPLOAD_ATTEMPTS = 3;

interface PushContext {
  readonly client: RegistryClient;
  readonly lanes: Lanes;
  /** One upload per digest per push, however many images share it. */
  readonly blobs: Map<Digest, Promise<BlobPushResult>>;
}

function newContext(client: RegistryClient): PushContext {
  const n = client.concurrency;
  return {
    client,
    lanes: { small: new Limiter(n), prepare: new Limiter(n), transfer: new Limiter(n) },
    blobs: new Map(),
  };
}

function retryable(e: unknown): boolean {
  if (!isRegistryError(e)) return false;
  if (e.code === 'REGISTRY_NETWORK' || e.code === 'REGISTRY_TIMEOUT') return true;
  return e.code === 'REGISTRY_HTTP' && e.status !== undefined && (e.status >= 500 || e.status === 429);
}

/** Returns where a push request on `ref`'s repository goes (`/v2/<repository>/<path>`) and the pull+push scope it needs. */
function inRepository(
  ref: ImageReference,
  path: string,
): Pick<RegistryRequest, 'host' | 'repository' | 'path' | 'scopes'> {
  return {
    host: ref.registry,
    repository: ref.repository,
    path: `/v2/${ref.repository}/${path}`,
    scopes: [repositoryScope(ref.repository, 'pull', 'push')],
  };
}

/** Returns true when the registry already has blob `digest` in `ref`'s repository. */
export async function blobExists(
  client: RegistryClient,
  ref: ImageReference,
  digest: Digest,
): Promise<boolean> {
  const res = await client.request({
    method: 'HEAD',
    ...inRepository(ref, `blobs/${digest}`),
    expect: [200, 404],
    what: `check blob ${digest}`,
  });
  await drain(res);
  return res.status === 200;
}

/**
 * Uploads one blob unless the repository has it; mounts it from `mountFrom` (same registry) when given. `open` must
 * yield the blob's bytes afresh on each call. Throws REGISTRY_* or DIGEST_MISMATCH when `open` yields other bytes.
 */
export function pushBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  open: () => AsyncIterable<Uint8Array>,
  options: { readonly mountFrom?: BlobSource } = {},
): Promise<BlobPushResult> {
  return uploadBlob(client, ref, desc, open, options.mountFrom, undefined);
}

/**
 * The turns blobs of one push wait for. A blob bigger than SMALL_BLOB takes a `prepare` turn for the round trips before
 * its body (HEAD, then POST) and holds it until it has a `transfer` turn, which covers the body: so the next blobs
 * are checked and their uploads started while earlier bodies are still being sent, and a body starts the moment
 * another one ends, while at most 2n upload sessions are open. Smaller blobs (configs, small layers) cost round trips,
 * not bandwidth: they go in `small` turns, beside the big ones (a config that held a transfer turn delayed a 25 MiB
 * layer by 0.12 s). Each limiter allows the client's `concurrency`. Measured on the loopback registry, transfer only
 * (the HEAD and POST of each blob took 10-60 ms under load): a 40-layer, 80 MiB image 1.15 → 1.08 s median of 10
 * (crane 0.97 s); the 8-layer, 200 MiB bench image 1.26 → 1.25 s (the registry's throughput bounds it).
 */
interface Lanes {
  readonly small: Limiter;
  readonly prepare: Limiter;
  readonly transfer: Limiter;
}

/** Blobs smaller than this go in `small` turns (see Lanes). */
const SMALL_BLOB = 1 << 20;

/** An upload session the registry opened (`POST` answered 202). */
interface UploadSession {
  readonly location: string;
  /** `OCI-Chunk-Min-Length`, or 0. */
  readonly minChunk: number;
}

async function uploadBlob(
  client: RegistryClient,
  ref: ImageReference,
  desc: Pick<Descriptor, 'digest' | 'size'>,
  open: () => AsyncIterable<Uint8Array>,
  mountFrom: BlobSource | undefined,
  lanes: Lanes | undefined,
): Promise<BlobPushResult> {
  const host = ref.registry;
  const repository = ref.repository;
  const base = { direction: 'push', host, repository, digest: desc.digest } as const;
  const pushScope = repositoryScope(repository, 'pull', 'push');
  const sizeError = (n: number) =>
    new DigestError(
      'SIZE_MISMATCH',
      `cannot push blob ${desc.digest}: its source gave ${n > desc.size ? 'more than' : 'only'} ${n} bytes, want ${desc.size}`,
      {
        expected: String(desc.size),
        actual: String(n),
      },
    );
  const from =
    mountFrom && mountFrom.host === host && mountFrom.repository !== repository
      ? mountFrom.repository
      : undefined;

  /** `POST`: mounts the blob (201) or opens an upload session (202). */
  const start = async (): Promise<'mounted' | UploadSession> => {
    const q = from ? `?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}` : '';
    const res = await client.request({
      method: 'POST',
      host,
      repository,
      path: `/v2/${repository}/blobs/uploads/${q}`,
      scopes: from ? [pushScope, repositoryScope(from, 'pull')] : [pushScope],
      headers: { 'content-length': '0' },
      expect: from ? [201, 202] : [202],
      what: from ? `mount blob ${desc.digest} from "${from}"` : `start upload of blob ${desc.digest}`,
    });
    await drain(res);
    if (res.status === 201) {
      client.progress({ ...base, state: 'mounted', bytes: desc.size, total: desc.size });
      return 'mounted';
    }
    const { base: origin } = await client.ping(host);
    return {
      location: resolveLocation(res, `${origin}/v2/${repository}/blobs/uploads/`, host, repository),
      minChunk: Number(res.headers.get('oci-chunk-min-length') ?? 0) || 0,
    };
  };

  /** Sends a request of the upload session and drains it. Not retried alone: `upload` restarts the whole upload. */
  const inSession = async (
    req: Pick<RegistryRequest, 'method' | 'url' | 'headers' | 'body' | 'expect' | 'what'>,
  ): Promise<RegistryResponse> => {
    const res = await client.request({ ...req, host, repository, scopes: [pushScope], retry: false });
    await drain(res);
    return res;
  };

  /** Sends the body into `session` and commits it with `?digest=`. */
  const send = async (session: UploadSession): Promise<void> => {
    let location = session.location;
    client.progress({ ...base, state: 'start', bytes: 0, total: desc.size });
    let sent = 0;
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const c of open()) {
        sent += c.length;
        if (sent > desc.size) throw sizeError(sent);
        client.progress({ ...base, state: 'data', bytes: sent, total: desc.size });
        yield c;
      }
      if (sent !== desc.size) throw sizeError(sent);
    }
    const withDigest = (loc: string) => {
      const u = new URL(loc);
      u.searchParams.set('digest', desc.digest);
      return u.href;
    };
    if (desc.size < client.chunkedThreshold) {
      await inSession({
        method: 'PUT',
        url: withDigest(location),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: () => counted(),
        expect: [201],
        what: `upload blob ${desc.digest}`,
      });
    } else {
      const chunkSize = Math.max(client.chunkSize, session.minChunk);
      let offset = 0;
      for await (const chunk of rechunk(counted(), chunkSize)) {
        const patch = await inSession({
          method: 'PATCH',
          url: location,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(chunk.length),
            'content-range': `${offset}-${offset + chunk.length - 1}`,
          },
          body: () => chunk,
          expect: [202],
          what: `upload chunk ${offset}-${offset + chunk.length - 1} of blob ${desc.digest}`,
        });
        location = resolveLocation(patch, location, host, repository);
        offset += chunk.length;
      }
      await inSession({
        method: 'PUT',
        url: withDigest(location),
        headers: { 'content-length': '0' },
        expect: [201],
        what: `finish upload of blob ${desc.digest}`,
      });
    }
    client.progress({ ...base, state: 'done', bytes: desc.size, total: desc.size });
  };

  /**
   * Attempts `first`..UPLOAD_ATTEMPTS of the whole upload; the first one uses `session` when given, every later one
   * opens a new session (a failed body leaves the old one in an unknown state).
   */
  const upload = async (session: UploadSession | undefined, first: number): Promise<BlobPushResult> => {
    let prepared = session;
    for (let attempt = first; ; attempt++) {
      try {
        const s = prepared ?? (await start());
        prepared = undefined;
        if (s === 'mounted') return 'mounted';
        await send(s);
        return 'uploaded';
      } catch (e) {
        if (attempt >= UPLOAD_ATTEMPTS || !retryable(e)) throw e;
      }
    }
  };

  const exists = async (): Promise<boolean> => {
    if (!(await blobExists(client, ref, desc.digest))) return false;
    client.progress({ ...base, state: 'exists', bytes: desc.size, total: desc.size });
    return true;
  };
  if (!lanes) return (await exists()) ? 'exists' : upload(undefined, 1);

  if (desc.size < SMALL_BLOB)
    return lanes.small.run(async () => ((await exists()) ? 'exists' : upload(undefined, 1)));
  const release = await lanes.prepare.acquire();
  let turn: BlobPushResult | { readonly session?: UploadSession; readonly attempt: number; release(): void };
  try {
    turn = await (async () => {
      if (await exists()) return 'exists';
      let session: UploadSession | undefined;
      try {
        const s = await start();
        if (s === 'mounted') return 'mounted';
        session = s;
      } catch (e) {
        if (!retryable(e)) throw e;
      }
      const releaseTransfer = await lanes.transfer.acquire();
      return session
        ? { session, attempt: 1, release: releaseTransfer }
        : { attempt: 2, release: releaseTransfer };
    })();
  } finally {
    release();
  }
  if (typeof turn === 'string') return turn;
  try {
    return await upload(turn.session, turn.attempt);
  } finally {
    turn.release();
  }
}

/** Bytes per read of a layout blob file: few reads, and the upload socket takes them whole. */
const FILE_READ_BYTES = 1 << 20;
/** Read buffers per upload when they are reused: the one being read into, the one the socket may still hold, one spare. */
const READ_RING = 3;

/**
 * Yields the bytes of a layout blob file; when it is missing, yields `fallback()` (which names the layout). With
 * `reuse`, the yielded chunks are READ_RING buffers in turn: a chunk's bytes change when the consumer asks for the
 * READ_RING-th chunk after it, so the consumer must be done with it by then (see the module comment).
 */
async function* readBlobFile(
  path: string,
  fallback: () => AsyncIterable<Uint8Array>,
  reuse: boolean,
): AsyncGenerator<Uint8Array> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    yield* fallback();
    return;
  }
  const ring: Buffer[] = [];
  try {
    for (let i = 0; ; i++) {
      let buf = reuse ? ring[i % READ_RING] : undefined;
      if (!buf) {
        // allocUnsafeSlow: a buffer of its own, not a slice of Node's shared pool.
        buf = reuse ? Buffer.allocUnsafeSlow(FILE_READ_BYTES) : Buffer.allocUnsafe(FILE_READ_BYTES);
        if (reuse) ring.push(buf);
      }
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/**
 * Yields the bytes of `source` regrouped into chunks of exactly `size` (the last may be shorter), all in one buffer:
 * a chunk is overwritten when the next one is asked for, so the consumer must be done with it by then (the PATCH
 * loop is: it asks after the registry answered the PATCH). A fresh 16 MiB buffer per chunk cost full GCs.
 */
async function* rechunk(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  const buf = Buffer.allocUnsafeSlow(size);
  let fill = 0;
  for await (const c of source) {
    let off = 0;
    while (off < c.length) {
      const n = Math.min(size - fill, c.length - off);
      buf.set(c.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === size) {
        yield buf;
        fill = 0;
      }
    }
  }
  if (fill > 0) yield buf.subarray(0, fill);
}

/**
 * Puts manifest bytes under `reference` (a tag or the digest) with their media type and returns the response
 * headers that matter: the registry's digest and `OCI-Subject` (set when it processed a `subject`).
 */
export async function putManifest(
  client: RegistryClient,
  ref: ImageReference,
  reference: string,
  raw: Uint8Array,
  mediaType: string,
): Promise<{ digest: Digest; subject: string | undefined }> {
  const digest = sha256(raw);
  const res = await client.request({
    method: 'PUT',
    ...inRepository(ref, `manifests/${reference}`),
    headers: { 'content-type': mediaType },
    body: () => raw,
    expect: [201],
    what: `put manifest ${JSON.stringify(reference)}`,
  });
  await drain(res);
  const got = res.headers.get('docker-content-digest');
  if (got?.startsWith('sha256:') && got !== digest)
    throw new RegistryError(
      'REGISTRY_DIGEST',
      `cannot put manifest ${JSON.stringify(reference)} in "${ref.registry}/${ref.repository}": registry stored it as ${got}, want ${digest}`,
      { host: ref.registry, repository: ref.repository, status: res.status },
    );
  return { digest, subject: res.headers.get('oci-subject') ?? undefined };
}

async function pushImageBlobs(ctx: PushContext, ref: ImageReference, image: Image): Promise<void> {
  const m = await image.manifest();
  const layers = await image.layers();
  const jobs: Promise<BlobPushResult>[] = [];
  const once = (d: Digest, fn: () => Promise<BlobPushResult>) => {
    let p = ctx.blobs.get(d);
    if (!p) {
      p = fn();
      ctx.blobs.set(d, p);
    }
    jobs.push(p);
  };
  once(m.config.digest, async () => {
    const raw = await image.rawConfig();
    const read = async function* () {
      yield raw;
    };
    return uploadBlob(ctx.client, ref, m.config, read, undefined, ctx.lanes);
  });
  // Only undici's own writer is known to be done with a chunk two pulls later (see the module comment).
  const reuse = ctx.client.options.fetch === undefined;
  m.layers.forEach((d, i) => {
    // Foreign layers (with `urls`) are fetched by the runtime from elsewhere and never pushed (image-spec descriptor.md).
    if (d.urls?.length && d.mediaType === MediaType.DOCKER_LAYER_FOREIGN) return;
    const layer = layers[i]!;
    const source = blobSourceOf(layer);
    const file = layoutBlobFile(layer);
    const read = file
      ? () => readBlobFile(file.path, () => layer.compressed(), reuse)
      : () => layer.compressed();
    once(d.digest, () => uploadBlob(ctx.client, ref, d, read, source, ctx.lanes));
  });
  await Promise.all(jobs);
}

async function pushImageTree(
  ctx: PushContext,
  ref: ImageReference,
  image: Image,
  reference: string,
): Promise<Descriptor> {
  await pushImageBlobs(ctx, ref, image);
  return putOwnManifest(ctx, ref, image, reference);
}

/** Puts the manifest of `top` (whose blobs and children are pushed) under `reference`; returns its descriptor. */
async function putOwnManifest(
  ctx: PushContext,
  ref: ImageReference,
  top: Image | ImageIndex,
  reference: string,
): Promise<Descriptor> {
  const raw = await top.rawManifest();
  const mediaType = await top.mediaType();
  const { digest } = await putManifest(ctx.client, ref, reference, raw, mediaType);
  return { mediaType, digest, size: raw.length };
}

async function pushIndexTree(
  ctx: PushContext,
  ref: ImageReference,
  index: ImageIndex,
  reference: string,
): Promise<Descriptor> {
  const m = await index.manifest();
  await Promise.all(
    m.manifests.map(async (d) => {
      if (isIndexType(d.mediaType))
        return pushIndexTree(ctx, ref, await index.imageIndex(d.digest), d.digest);
      if (isImageManifestType(d.mediaType))
        return pushImageTree(ctx, ref, await index.image(d.digest), d.digest);
      throw new RegistryError(
        'REGISTRY_UNSUPPORTED',
        `cannot push index to "${ref.registry}/${ref.repository}": child ${d.digest} has media type ${JSON.stringify(d.mediaType)}, which is neither an image nor an index`,
        { host: ref.registry, repository: ref.repository },
      );
    }),
  );
  return putOwnManifest(ctx, ref, index, reference);
}

/**
 * Pushes an image or index (all children, all blobs) to `ref` and returns the descriptor of the top manifest. The
 * manifest goes under `ref`'s tag (or `latest`), or under its digest when `ref` is pinned (which must then match),
 * then under every extra tag. Throws REGISTRY_* codes; DIGEST_MISMATCH when a source blob is not what it claims.
 */
export async function pushArtifact(
  client: RegistryClient,
  ref: ImageReference,
  artifact: Artifact,
  options: PushOptions = {},
): Promise<Descriptor> {
  const ctx = newContext(client);
  const top = artifact.kind === 'image' ? artifact.image : artifact.index;
  const digest = await top.digest();
  if (ref.digest && ref.digest !== digest)
    throw new RegistryError(
      'REGISTRY_DIGEST',
      `cannot push to ${formatReference(ref)}: the artifact's digest is ${digest}`,
      { host: ref.registry, repository: ref.repository },
    );
  const reference = ref.tag ?? (ref.digest ? digest : manifestReference(ref));
  const desc =
    artifact.kind === 'image'
      ? await pushImageTree(ctx, ref, artifact.image, reference)
      : await pushIndexTree(ctx, ref, artifact.index, reference);
  const raw = await top.rawManifest();
  for (const t of options.tags ?? [])
    if (t !== reference) await putManifest(client, ref, t, raw, desc.mediaType);
  return desc;
}

/** Pushes one image; see `pushArtifact`. */
export function pushImage(
  client: RegistryClient,
  ref: ImageReference,
  image: Image,
  options: PushOptions = {},
): Promise<Descriptor> {
  return pushArtifact(client, ref, { kind: 'image', image }, options);
}

/** Pushes an index and every image in it; see `pushArtifact`. */
export function pushIndex(
  client: RegistryClient,
  ref: ImageReference,
  index: ImageIndex,
  options: PushOptions = {},
): Promise<Descriptor> {
  return pushArtifact(client, ref, { kind: 'index', index }, options);
}
