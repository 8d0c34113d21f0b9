import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { OciLayout, writeLocal } from '../layout/index.ts';
import {
  type Artifact,
  type Descriptor,
  type Image,
  type ImageIndex,
  isImageManifestType,
  isIndexType,
  type Platform,
  selectImage,
} from '../oci/index.ts';
import type { RegistryClient } from './client.ts';
import { runBounded } from './limit.ts';
import { storeRemoteLayer } from './pull.ts';
import { pushArtifact } from './push.ts';
import type { TransportReference } from './reference.ts';

/**
 * The sink of copying between transports, as `skopeo copy` does (the copy itself and the one source opener are
 * transport/open.ts): any destination (`docker://`, `oci:`, `oci-archive:`, `docker-archive:`). Sources are lazy (oci/model.ts); sinks pull from them, and every sink
 * verifies each blob before committing it (registry: the registry checks `?digest=`, and we hash on the way out;
 * layout: temp file + rename after the digest check). A local source is read and checked whole first; a registry
 * source's layers are checked as they pass (digest and size, and decompressed: diff_id and read limits; see
 * `checkedStoredLayer` and `storeRemoteLayer`), so a lying layer is never committed. Between two repositories of one
 * registry, blobs are mounted: no byte passes through pare, so their diff_ids are not checked.
 * Into an OCI layout, the layers of a registry source are downloaded `client.concurrency` at a time first (the
 * layout writes one blob at a time), then the layout writer finds them there and adds config, manifests and tag.
 */

export interface CopyOptions {
  /** Copy the whole index (every platform). Without it an index is narrowed to one image, as skopeo does. */
  readonly all?: boolean;
  /** The image to take from an index when `all` is not set (default: this host's platform). */
  readonly platform?: Platform;
  /** More tags for a registry destination. */
  readonly tags?: readonly string[];
}

/** Writes an artifact to a transport reference and returns the descriptor of what was written. */
export async function writeSink(
  client: RegistryClient,
  dst: TransportReference,
  artifact: Artifact,
  options: Pick<CopyOptions, 'tags' | 'platform'> = {},
): Promise<Descriptor> {
  if (dst.transport === 'docker')
    return pushArtifact(client, dst.ref, artifact, options.tags ? { tags: options.tags } : {});
  if (dst.transport === 'docker-archive' && artifact.kind === 'index') {
    // A docker-archive holds single images; narrow here so the error names the platform, not the archive format.
    const image = await selectImage(artifact, options.platform);
    return writeLocal(dst, { kind: 'image', image });
  }
  if (dst.transport !== 'oci')
    return writeLocal(dst, artifact, options.platform ? { platform: options.platform } : {});
  // A registry layer is checked whole (diff_id, limits) only as it is stored: when one is refused, a layout this copy
  // created is removed again, so a refused image leaves nothing behind.
  const fresh = !existsSync(dst.path);
  try {
    await prefetchLayers(client, await OciLayout.create(dst.path), artifact);
    return await writeLocal(dst, artifact, options.platform ? { platform: options.platform } : {});
  } catch (e) {
    if (fresh) await rm(dst.path, { recursive: true, force: true });
    throw e;
  }
}

async function imagesOf(index: ImageIndex): Promise<Image[]> {
  const out: Image[] = [];
  for (const d of (await index.manifest()).manifests) {
    if (isImageManifestType(d.mediaType)) out.push(await index.image(d.digest));
    else if (isIndexType(d.mediaType)) out.push(...(await imagesOf(await index.imageIndex(d.digest))));
  }
  return out;
}

/** Downloads the registry layers of `artifact` into `layout`, `client.concurrency` at a time; others are left. */
async function prefetchLayers(client: RegistryClient, layout: OciLayout, artifact: Artifact): Promise<void> {
  const images = artifact.kind === 'image' ? [artifact.image] : await imagesOf(artifact.index);
  const jobs = new Map<string, () => Promise<unknown>>();
  for (const image of images) {
    const [m, layers] = await Promise.all([image.manifest(), image.layers()]);
    layers.forEach((l, i) => {
      const d = m.layers[i]!;
      // Foreign layers (`urls`) stay with the layout writer, which decides what to do with them.
      if (!d.urls?.length && !jobs.has(d.digest)) jobs.set(d.digest, () => storeRemoteLayer(layout, l));
    });
  }
  await runBounded([...jobs.values()], client.concurrency);
}
