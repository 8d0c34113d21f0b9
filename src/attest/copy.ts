import type { Digest } from '../digest/index.ts';
import { AttestError } from '../errors.ts';
import { type Descriptor, isIndexType } from '../oci/index.ts';
import { referrersTag } from '../registry/index.ts';
import type { ArtifactStore, BlobToPut } from './store.ts';

/**
 * Signatures travel with the image: `copyReferrers` copies what refers to an image — cosign v3 sigstore bundles,
 * attestations, SBOMs, anything attached as an OCI 1.1 referrer (found through the referrers API or the
 * `sha256-<hex>` tag index, and attached the same way at the destination) — and the cosign v2 tags
 * `sha256-<hex>.sig|.att|.sbom`, from one store to another (registry or layout, either way). Referrers of referrers
 * (a signature on an SBOM) come along too, to a bounded depth. Every manifest and blob is verified by the source
 * store before it is written.
 */

/** A referrer blob is held in memory while it is copied; signatures and attestations are small, SBOMs rarely huge. */
export const MAX_REFERRER_BLOB_BYTES = 256 * 1024 * 1024;

/** Referrers of referrers are followed this deep (an image → its SBOM → the SBOM's signature is depth 2). */
const MAX_REFERRER_DEPTH = 4;

/** The cosign v2 tag suffixes: signature, attestation, SBOM. */
const LEGACY_SUFFIXES = ['sig', 'att', 'sbom'] as const;

export interface CopiedReferrer {
  /** The image (or referrer) this one refers to. */
  readonly subject: Digest;
  /** The referrer manifest, as listed at the destination. */
  readonly descriptor: Descriptor;
  /** `referrer` for an OCI 1.1 referrer, or the cosign v2 tag it was copied under. */
  readonly via: 'referrer' | { readonly tag: string };
}

interface ManifestBlobs {
  readonly config?: Descriptor;
  readonly layers?: readonly Descriptor[];
  readonly blobs?: readonly Descriptor[];
}

async function blobsOf(
  from: ArtifactStore,
  raw: Uint8Array,
  mediaType: string,
  what: string,
): Promise<BlobToPut[]> {
  if (isIndexType(mediaType))
    throw new AttestError(
      'ATTEST_PAYLOAD_INVALID',
      `cannot copy ${what} from ${from.name}: it is an image index, and only manifest referrers are copied; use --no-referrers to copy the image alone`,
    );
  let m: ManifestBlobs;
  try {
    m = JSON.parse(new TextDecoder().decode(raw)) as ManifestBlobs;
  } catch (cause) {
    throw new AttestError(
      'ATTEST_PAYLOAD_INVALID',
      `cannot copy ${what} from ${from.name}: its manifest is not JSON`,
      {
        cause,
      },
    );
  }
  const descriptors = [...(m.config ? [m.config] : []), ...(m.layers ?? []), ...(m.blobs ?? [])];
  const out: BlobToPut[] = [];
  const seen = new Set<string>();
  for (const d of descriptors) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    out.push({ descriptor: d, data: await from.getBlob(d, MAX_REFERRER_BLOB_BYTES) });
  }
  return out;
}

/**
 * Copies the referrers and cosign v2 tags of every digest in `subjects` from `from` to `to` and returns what was
 * copied. Throws ATTEST_NOT_FOUND when a listed referrer is missing from the source, and the stores' errors.
 */
export async function copyReferrers(
  from: ArtifactStore,
  to: ArtifactStore,
  subjects: readonly Digest[],
): Promise<CopiedReferrer[]> {
  const copied: CopiedReferrer[] = [];
  const done = new Set<string>();
  const visit = async (subject: Digest, depth: number): Promise<void> => {
    if (done.has(subject) || depth > MAX_REFERRER_DEPTH) return;
    done.add(subject);
    for (const listed of await from.listReferrers(subject)) {
      const m = await from.getManifest(listed.digest);
      if (!m)
        throw new AttestError(
          'ATTEST_NOT_FOUND',
          `cannot copy referrer ${listed.digest} of ${subject}: ${from.name} lists it but does not have it`,
          { digest: listed.digest },
        );
      const blobs = await blobsOf(from, m.raw, m.mediaType, `referrer ${listed.digest} of ${subject}`);
      const descriptor = await to.attachReferrer(m.raw, m.mediaType, blobs);
      copied.push({ subject, descriptor, via: 'referrer' });
      await visit(listed.digest, depth + 1);
    }
    for (const suffix of LEGACY_SUFFIXES) {
      const tag = `${referrersTag(subject)}.${suffix}`;
      const m = await from.getManifest(tag);
      if (!m) continue;
      const blobs = await blobsOf(from, m.raw, m.mediaType, `${tag}`);
      const digest = await to.putManifest(m.raw, m.mediaType, blobs, tag);
      copied.push({
        subject,
        descriptor: { mediaType: m.mediaType, digest, size: m.raw.length },
        via: { tag },
      });
    }
  };
  for (const s of subjects) await visit(s, 1);
  return copied;
}
