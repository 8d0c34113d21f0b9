import { type Digest, parseDigest, sha256 } from '../digest/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { MediaType } from '../oci/index.ts';
import { BUNDLE_V03_MEDIA_TYPE } from './bundle.ts';
import { DSSE_MEDIA_TYPE } from './dsse.ts';
import type { BlobToPut } from './store.ts';

/**
 * The OCI shapes cosign reads, byte for byte where it matters (checked against what cosign v3 and v2 write):
 *
 * - cosign v3 (default): a referrer manifest, `artifactType` = the sigstore bundle v0.3 media type, config = the OCI
 *   empty descriptor, one layer = the bundle, `subject` = the signed image, annotations
 *   `dev.sigstore.bundle.content` / `dev.sigstore.bundle.predicateType`. Signatures are DSSE envelopes of an in-toto
 *   statement with predicate type `https://sigstore.dev/cosign/sign/v1` and an empty predicate.
 * - cosign v2 (`--legacy`): an image tagged `<alg>-<hex>.sig` whose layers are simple-signing payloads
 *   (`application/vnd.dev.cosign.simplesigning.v1+json`) with the base64 signature in the
 *   `dev.cosignproject.cosign/signature` annotation; attestations under `<alg>-<hex>.att` with DSSE layers.
 */

export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';
export const SIMPLESIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const SIMPLESIGNING_TYPE = 'cosign container image signature';
export const BUNDLE_CONTENT_ANNOTATION = 'dev.sigstore.bundle.content';
export const BUNDLE_PREDICATE_ANNOTATION = 'dev.sigstore.bundle.predicateType';
export const CREATED_ANNOTATION = 'org.opencontainers.image.created';

/** The OCI empty JSON blob `{}` (image-spec "Guidance for an empty descriptor"). */
export const EMPTY_JSON = new TextEncoder().encode('{}');
export const EMPTY_DESCRIPTOR: Descriptor = {
  mediaType: MediaType.OCI_EMPTY,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
};

/** Returns the legacy signature tag `<alg>-<hex>.sig` (or `.att`) for an image digest. */
export function legacyTag(d: Digest, suffix: 'sig' | 'att'): string {
  const { algorithm, hex } = parseDigest(d);
  return `${algorithm}-${hex}.${suffix}`;
}

/** Returns cosign's simple-signing payload for `digest` in `repository`, with cosign v2's exact key order. */
export function simpleSigningPayload(repository: string, digest: Digest): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repository },
        image: { 'docker-manifest-digest': digest },
        type: SIMPLESIGNING_TYPE,
      },
      optional: null,
    }),
  );
}

function descriptorOf(data: Uint8Array, mediaType: string, annotations?: Record<string, string>): Descriptor {
  return { mediaType, digest: sha256(data), size: data.length, ...(annotations ? { annotations } : {}) };
}

/** Returns an ISO-8601 UTC time without fractions, as cosign writes `org.opencontainers.image.created`. */
export function isoSeconds(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Returns the referrer manifest (bytes) and blobs that attach a sigstore bundle to `subject`, as cosign v3 does. */
export function bundleReferrer(
  subject: Descriptor,
  bundle: Uint8Array,
  predicateType: string,
  created: number,
): { raw: Uint8Array; mediaType: string; blobs: BlobToPut[] } {
  const layer = descriptorOf(bundle, BUNDLE_V03_MEDIA_TYPE);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    artifactType: BUNDLE_V03_MEDIA_TYPE,
    config: EMPTY_DESCRIPTOR,
    layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: {
      [BUNDLE_CONTENT_ANNOTATION]: 'dsse-envelope',
      [BUNDLE_PREDICATE_ANNOTATION]: predicateType,
      [CREATED_ANNOTATION]: isoSeconds(created),
    },
  };
  return {
    raw: new TextEncoder().encode(JSON.stringify(manifest)),
    mediaType: MediaType.OCI_MANIFEST,
    blobs: [
      { descriptor: EMPTY_DESCRIPTOR, data: EMPTY_JSON },
      { descriptor: layer, data: bundle },
    ],
  };
}

/** One layer of a legacy `.sig`/`.att` image. */
export interface LegacyLayer {
  readonly descriptor: Descriptor;
  readonly data: Uint8Array;
}

/** Returns a simple-signing layer carrying `signature` (raw bytes) in the cosign annotation. */
export function simpleSigningLayer(payload: Uint8Array, signature: Uint8Array): LegacyLayer {
  return {
    descriptor: descriptorOf(payload, SIMPLESIGNING_MEDIA_TYPE, {
      [SIGNATURE_ANNOTATION]: Buffer.from(signature).toString('base64'),
    }),
    data: payload,
  };
}

/** Returns a DSSE attestation layer as cosign v2 writes it (empty signature annotation, predicateType annotation). */
export function attestationLayer(envelopeJson: Uint8Array, predicateType: string): LegacyLayer {
  return {
    descriptor: descriptorOf(envelopeJson, DSSE_MEDIA_TYPE, { [SIGNATURE_ANNOTATION]: '', predicateType }),
    data: envelopeJson,
  };
}

/**
 * Returns the manifest and blobs of a legacy signature image holding `layers` (cosign's config: empty platform, the
 * zero time, one history entry, diff_ids = layer digests).
 */
export function legacyImage(layers: readonly LegacyLayer[]): {
  raw: Uint8Array;
  mediaType: string;
  blobs: BlobToPut[];
} {
  const zero = '0001-01-01T00:00:00Z';
  const config = new TextEncoder().encode(
    JSON.stringify({
      architecture: '',
      created: zero,
      history: [{ created: zero }],
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.descriptor.digest) },
      config: {},
    }),
  );
  const configDesc = descriptorOf(config, MediaType.OCI_CONFIG);
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: configDesc,
    layers: layers.map((l) => l.descriptor),
  };
  return {
    raw: new TextEncoder().encode(JSON.stringify(manifest)),
    mediaType: MediaType.OCI_MANIFEST,
    blobs: [
      { descriptor: configDesc, data: config },
      ...layers.map((l) => ({ descriptor: l.descriptor, data: l.data })),
    ],
  };
}
