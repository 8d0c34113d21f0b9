import type { Descriptor, ImageConfig, IndexManifest, Manifest, Platform } from './model.ts';

/**
 * Canonical JSON for the documents pare writes: fields in a fixed order (the order the image-spec lists them), no
 * whitespace, optional fields left out when undefined, map keys (annotations, labels, env order kept) sorted.
 * The same value always gives the same bytes, so digests are stable.
 */

function sortedRecord<T>(r: Readonly<Record<string, T>> | undefined): Record<string, T> | undefined {
  if (!r) return undefined;
  const out: Record<string, T> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k]!;
  return out;
}

function platformJson(p: Platform): Record<string, unknown> {
  return {
    architecture: p.architecture,
    os: p.os,
    'os.version': p['os.version'],
    'os.features': p['os.features'],
    variant: p.variant,
  };
}

export function descriptorJson(d: Descriptor): Record<string, unknown> {
  return {
    mediaType: d.mediaType,
    artifactType: d.artifactType,
    digest: d.digest,
    size: d.size,
    urls: d.urls,
    data: d.data,
    platform: d.platform ? platformJson(d.platform) : undefined,
    annotations: sortedRecord(d.annotations),
  };
}

export function manifestJson(m: Manifest): Record<string, unknown> {
  return {
    schemaVersion: m.schemaVersion,
    mediaType: m.mediaType,
    artifactType: m.artifactType,
    config: descriptorJson(m.config),
    layers: m.layers.map(descriptorJson),
    subject: m.subject ? descriptorJson(m.subject) : undefined,
    annotations: sortedRecord(m.annotations),
  };
}

export function indexJson(m: IndexManifest): Record<string, unknown> {
  return {
    schemaVersion: m.schemaVersion,
    mediaType: m.mediaType,
    artifactType: m.artifactType,
    manifests: m.manifests.map(descriptorJson),
    subject: m.subject ? descriptorJson(m.subject) : undefined,
    annotations: sortedRecord(m.annotations),
  };
}

export function configJson(c: ImageConfig): Record<string, unknown> {
  const rc = c.config;
  return {
    created: c.created,
    author: c.author,
    architecture: c.architecture,
    os: c.os,
    'os.version': c['os.version'],
    'os.features': c['os.features'],
    variant: c.variant,
    config: rc
      ? {
          User: rc.User,
          ExposedPorts: sortedRecord(rc.ExposedPorts),
          Env: rc.Env,
          Entrypoint: rc.Entrypoint,
          Cmd: rc.Cmd,
          Volumes: sortedRecord(rc.Volumes),
          WorkingDir: rc.WorkingDir,
          Labels: sortedRecord(rc.Labels),
          StopSignal: rc.StopSignal,
        }
      : undefined,
    rootfs: { type: c.rootfs.type, diff_ids: c.rootfs.diff_ids },
    history: c.history?.map((h) => ({
      created: h.created,
      created_by: h.created_by,
      author: h.author,
      comment: h.comment,
      empty_layer: h.empty_layer,
    })),
  };
}

/** Returns the canonical bytes of a JSON value (undefined fields dropped, no whitespace). */
export function canonicalBytes(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}
