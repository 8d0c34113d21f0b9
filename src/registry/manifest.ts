import { isPareError, RegistryError } from '../errors.ts';
import {
  type Descriptor,
  type IndexManifest,
  isImageManifestType,
  isIndexType,
  type Manifest,
  MediaType,
  parseManifest as parseImageManifest,
  parseIndex,
  sniffMediaType,
} from '../oci/index.ts';

/**
 * Classifying and checking manifest bytes that come from a registry (hostile input): JSON, `schemaVersion` 2, a known
 * manifest media type, descriptors as oci/parse checks them. The raw bytes stay the truth; they are what gets
 * hashed and stored.
 */

/** distribution refuses manifests above 4 MiB; so do we, before parsing. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** The manifest types pull accepts (docker schema 1 is not accepted). */
export const MANIFEST_ACCEPT: readonly string[] = [
  MediaType.OCI_INDEX,
  MediaType.OCI_MANIFEST,
  MediaType.DOCKER_LIST,
  MediaType.DOCKER_MANIFEST,
];

export type ParsedManifest =
  | { readonly kind: 'image'; readonly mediaType: string; readonly manifest: Manifest }
  | { readonly kind: 'index'; readonly mediaType: string; readonly manifest: IndexManifest };

/**
 * Returns the parsed manifest or index; `contentType` is the response's Content-Type, used when the document has no
 * `mediaType`. Throws REGISTRY_PROTOCOL (bad JSON or shape, cause: the OciError) or REGISTRY_UNSUPPORTED (schema 1,
 * unknown type).
 */
export function parseManifest(
  raw: Uint8Array,
  contentType: string | undefined,
  what: string,
): ParsedManifest {
  let schema: unknown;
  try {
    schema = (JSON.parse(Buffer.from(raw).toString('utf8')) as { schemaVersion?: unknown }).schemaVersion;
  } catch (e) {
    throw new RegistryError('REGISTRY_PROTOCOL', `cannot parse ${what}: not JSON`, { cause: e });
  }
  if (schema === 1)
    throw new RegistryError(
      'REGISTRY_UNSUPPORTED',
      `cannot use ${what}: docker schema 1 manifests are not supported`,
    );
  const ct = contentType?.split(';')[0]?.trim();
  const declared = sniffMediaType(raw);
  const mediaType =
    declared && (isIndexType(declared) || isImageManifestType(declared))
      ? declared
      : isIndexType(ct) || isImageManifestType(ct)
        ? ct
        : declared;
  try {
    if (isIndexType(mediaType))
      return { kind: 'index', mediaType: mediaType!, manifest: parseIndex(raw, what) };
    if (isImageManifestType(mediaType))
      return { kind: 'image', mediaType: mediaType!, manifest: parseImageManifest(raw, what) };
  } catch (e) {
    if (isPareError(e)) throw new RegistryError('REGISTRY_PROTOCOL', e.message, { cause: e });
    throw e;
  }
  throw new RegistryError(
    'REGISTRY_UNSUPPORTED',
    `cannot use ${what}: media type ${JSON.stringify(mediaType ?? ct ?? '')} is not an OCI or docker schema 2 manifest or index`,
  );
}

/** Returns the descriptors a referrers index lists for a manifest: artifactType falls back to the config type. */
export function referrerDescriptor(
  parsed: ParsedManifest,
  digest: Descriptor['digest'],
  size: number,
): Descriptor {
  const m = parsed.manifest;
  const artifactType =
    m.artifactType ?? (parsed.kind === 'image' ? (parsed.manifest as Manifest).config.mediaType : undefined);
  return {
    mediaType: parsed.mediaType,
    digest,
    size,
    ...(artifactType ? { artifactType } : {}),
    ...(m.annotations && Object.keys(m.annotations).length ? { annotations: m.annotations } : {}),
  };
}
