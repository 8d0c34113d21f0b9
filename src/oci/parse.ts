import { z } from 'zod';
import type { Digest } from '../digest/index.ts';
import { isDigest } from '../digest/index.ts';
import { OciError } from '../errors.ts';
import type { ImageConfig, IndexManifest, Manifest } from './model.ts';

/**
 * Parsing of manifests, indexes and configs from raw bytes (registries, layouts, archives: all hostile). Unknown
 * fields are kept (forward compatibility, as the spec asks); the fields pare relies on are checked. Results are
 * deep-frozen.
 */

const digest = z
  .string()
  .refine(isDigest, { message: 'not a canonical sha256/sha512 digest' }) as unknown as z.ZodType<Digest>;
const platform = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
});
const descriptor = z.looseObject({
  mediaType: z.string(),
  digest,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  platform: platform.optional(),
  artifactType: z.string().optional(),
  data: z.string().optional(),
});
const manifest = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptor,
  layers: z.array(descriptor),
  subject: descriptor.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
const index = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptor),
  subject: descriptor.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});
const strList = z.array(z.string()).nullish();
const config = z.looseObject({
  created: z.string().optional(),
  author: z.string().optional(),
  architecture: z.string(),
  os: z.string(),
  variant: z.string().optional(),
  config: z
    .looseObject({
      User: z.string().optional(),
      Env: strList,
      Entrypoint: strList,
      Cmd: strList,
      WorkingDir: z.string().optional(),
      Labels: z.record(z.string(), z.string()).nullish(),
      StopSignal: z.string().optional(),
    })
    .nullish(),
  rootfs: z.looseObject({ type: z.literal('layers'), diff_ids: z.array(digest) }),
  history: z.array(z.looseObject({})).optional(),
});

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

function parseJson(
  bytes: Uint8Array,
  what: string,
  code: 'OCI_MANIFEST_INVALID' | 'OCI_CONFIG_INVALID' | 'OCI_INDEX_INVALID',
  where?: string,
): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new OciError(code, `cannot parse ${what}${where ? ` ${where}` : ''}: not valid UTF-8 JSON`, {
      cause: e,
      digest: where,
    });
  }
}

function check<T>(
  schema: z.ZodType<T>,
  v: unknown,
  what: string,
  code: 'OCI_MANIFEST_INVALID' | 'OCI_CONFIG_INVALID' | 'OCI_INDEX_INVALID',
  where?: string,
): T {
  const r = schema.safeParse(v);
  if (!r.success) {
    const first = r.error.issues[0];
    const field = first ? first.path.join('.') || '(root)' : '(root)';
    throw new OciError(
      code,
      `cannot parse ${what}${where ? ` ${where}` : ''}: field ${JSON.stringify(field)}: ${first?.message ?? 'invalid'}`,
      { digest: where },
    );
  }
  return deepFreeze(r.data);
}

/** Parses an image manifest (OCI or Docker schema 2); throws OCI_MANIFEST_INVALID naming the field. */
export function parseManifest(bytes: Uint8Array, where?: string): Manifest {
  return check(
    manifest,
    parseJson(bytes, 'manifest', 'OCI_MANIFEST_INVALID', where),
    'manifest',
    'OCI_MANIFEST_INVALID',
    where,
  ) as Manifest;
}

/** Parses an image index / manifest list; throws OCI_INDEX_INVALID. */
export function parseIndex(bytes: Uint8Array, where?: string): IndexManifest {
  return check(
    index,
    parseJson(bytes, 'index', 'OCI_INDEX_INVALID', where),
    'index',
    'OCI_INDEX_INVALID',
    where,
  ) as IndexManifest;
}

/** Parses an image config; throws OCI_CONFIG_INVALID. */
export function parseConfig(bytes: Uint8Array, where?: string): ImageConfig {
  return check(
    config,
    parseJson(bytes, 'image config', 'OCI_CONFIG_INVALID', where),
    'image config',
    'OCI_CONFIG_INVALID',
    where,
  ) as ImageConfig;
}

/** Returns the media type a manifest document declares, or guesses it from its shape (old Docker lists omit nothing, some OCI docs omit it). */
export function sniffMediaType(bytes: Uint8Array): string | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    if (typeof v.mediaType === 'string') return v.mediaType;
    if (Array.isArray(v.manifests)) return 'application/vnd.oci.image.index.v1+json';
    if (v.config && Array.isArray(v.layers)) return 'application/vnd.oci.image.manifest.v1+json';
  } catch {
    /* not JSON */
  }
  return undefined;
}
