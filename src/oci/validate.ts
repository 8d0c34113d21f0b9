import { Hasher } from '../digest/index.ts';
import { OciError } from '../errors.ts';
import type { Artifact, Image, ImageIndex } from './model.ts';
import { isImageManifestType, isIndexType } from './model.ts';

/**
 * Validation collects, it does not throw: every problem found in an image or index comes back as an Issue (after
 * go-containerregistry's `validate`). `assertValidImage` wraps it for tests.
 */
export interface Issue {
  readonly code: string;
  readonly message: string;
  readonly digest?: string;
}

/** Returns the issues of an image: every layer's digest, size and diffID re-hashed, config and manifest consistent. */
export async function validateImage(image: Image): Promise<Issue[]> {
  const issues: Issue[] = [];
  const m = await image.manifest();
  const c = await image.config();
  if (c.rootfs.diff_ids.length !== m.layers.length) {
    issues.push({
      code: 'LAYER_COUNT',
      message: `manifest has ${m.layers.length} layers, config has ${c.rootfs.diff_ids.length} diff_ids`,
    });
  }
  const layers = await image.layers();
  for (const [i, l] of layers.entries()) {
    const d = m.layers[i]!;
    const h = new Hasher();
    for await (const chunk of l.compressed()) h.update(chunk);
    if (h.digest() !== d.digest)
      issues.push({
        code: 'LAYER_DIGEST',
        message: `layer ${i} hashes to ${h.digest()}, manifest says ${d.digest}`,
        digest: d.digest,
      });
    if (h.size !== d.size)
      issues.push({
        code: 'LAYER_SIZE',
        message: `layer ${i} has ${h.size} bytes, manifest says ${d.size}`,
        digest: d.digest,
      });
    const u = new Hasher();
    for await (const chunk of l.uncompressed()) u.update(chunk);
    if (u.digest() !== c.rootfs.diff_ids[i]) {
      issues.push({
        code: 'LAYER_DIFF_ID',
        message: `layer ${i} uncompressed hashes to ${u.digest()}, config says ${c.rootfs.diff_ids[i]}`,
        digest: d.digest,
      });
    }
  }
  if (!isImageManifestType(m.mediaType ?? 'application/vnd.oci.image.manifest.v1+json')) {
    issues.push({
      code: 'MEDIA_TYPE',
      message: `manifest media type ${JSON.stringify(m.mediaType)} is not an image manifest`,
    });
  }
  return issues;
}

/** Returns the issues of an index and of every image in it. */
export async function validateIndex(index: ImageIndex): Promise<Issue[]> {
  const issues: Issue[] = [];
  for (const d of (await index.manifest()).manifests) {
    if (isImageManifestType(d.mediaType)) {
      const img = await index.image(d.digest);
      if ((await img.digest()) !== d.digest)
        issues.push({
          code: 'MANIFEST_DIGEST',
          message: `child ${d.digest} hashes differently`,
          digest: d.digest,
        });
      issues.push(...(await validateImage(img)));
    } else if (isIndexType(d.mediaType))
      issues.push(...(await validateIndex(await index.imageIndex(d.digest))));
  }
  return issues;
}

/** Throws one OCI_VALIDATION error listing every issue, if there are any. */
export async function assertValidImage(image: Image): Promise<void> {
  const issues = await validateImage(image);
  if (issues.length > 0)
    throw new OciError(
      'OCI_VALIDATION',
      `image is not valid:\n${issues.map((i) => `- ${i.code}: ${i.message}`).join('\n')}`,
    );
}

/**
 * Reads an image the way every command must before it shows or keeps anything derived from it: config (digest and
 * size), the diff_id count, then every layer to its end through its checked stream (stored digest and size, diff_id,
 * read limits; see layer-stream.ts). Throws the first problem (DIGEST_MISMATCH, SIZE_MISMATCH, OCI_LAYER_INVALID,
 * OCI_LIMIT, OCI_MANIFEST_INVALID, …), naming the layer and where it was read from.
 */
export async function verifyImage(image: Image): Promise<void> {
  await image.config();
  for (const l of await image.layers()) {
    for await (const _ of l.uncompressed()) {
      /* read to the end: the checks run as the bytes pass */
    }
  }
}

/** verifyImage for an image, or for every image of an index (nested indexes included). */
export async function verifyArtifact(a: Artifact): Promise<void> {
  if (a.kind === 'image') return verifyImage(a.image);
  for (const d of (await a.index.manifest()).manifests) {
    if (isImageManifestType(d.mediaType)) await verifyImage(await a.index.image(d.digest));
    else if (isIndexType(d.mediaType))
      await verifyArtifact({ kind: 'index', index: await a.index.imageIndex(d.digest) });
  }
}
