import type { Descriptor } from '../oci/index.ts';
import { dsseBundle, encodeBundle } from './bundle.ts';
import {
  attestationLayer,
  bundleReferrer,
  COSIGN_SIGN_PREDICATE,
  type LegacyLayer,
  legacyImage,
  legacyTag,
  SIMPLESIGNING_MEDIA_TYPE,
  simpleSigningLayer,
  simpleSigningPayload,
} from './cosign.ts';
import { INTOTO_PAYLOAD_TYPE, signEnvelope } from './dsse.ts';
import { encodeStatement, makeStatement } from './intoto.ts';
import type { Signer } from './keys.ts';
import type { ArtifactStore } from './store.ts';

/**
 * Signing and attesting an image in a store, in the two formats cosign users meet: sigstore bundles attached as OCI
 * 1.1 referrers (cosign v3's default) and the legacy `.sig`/`.att` tags (cosign v2, `--legacy`). The signer is an
 * interface, so keyless signing can plug in later; nothing here reads keys, clocks or the environment.
 */

export type SignatureFormat = 'bundle' | 'legacy';

export interface SignOptions {
  /** Default `bundle`. */
  readonly format?: SignatureFormat;
  /** Seconds since the epoch for the referrer's `org.opencontainers.image.created` (SOURCE_DATE_EPOCH or now). */
  readonly created: number;
}

export interface SignResult {
  readonly format: SignatureFormat;
  /** Digest of the manifest written (the referrer, or the `.sig`/`.att` image). */
  readonly manifest: Descriptor;
  /** For legacy output, the tag written. */
  readonly tag?: string;
}

const MAX_LEGACY_LAYER = 64 * 1024 * 1024;

async function appendLegacy(
  store: ArtifactStore,
  tag: string,
  layer: LegacyLayer,
  keepMediaType: string,
): Promise<Descriptor> {
  // cosign appends to the existing .sig/.att image, so earlier signatures (other keys) stay valid.
  const layers: LegacyLayer[] = [];
  const existing = await store.getManifest(tag);
  if (existing) {
    const m = JSON.parse(new TextDecoder().decode(existing.raw)) as { layers?: Descriptor[] };
    for (const d of m.layers ?? []) {
      if (d.mediaType !== keepMediaType) continue;
      if (
        d.digest === layer.descriptor.digest &&
        JSON.stringify(d.annotations) === JSON.stringify(layer.descriptor.annotations)
      )
        continue;
      layers.push({ descriptor: d, data: await store.getBlob(d, MAX_LEGACY_LAYER) });
    }
  }
  layers.push(layer);
  const img = legacyImage(layers);
  const digest = await store.putManifest(img.raw, img.mediaType, img.blobs, tag);
  return { mediaType: img.mediaType, digest, size: img.raw.length };
}

/**
 * Signs the image `subject` (its manifest descriptor) in `store`. Bundle format: a DSSE envelope of the cosign sign/v1
 * statement in a sigstore bundle, attached as a referrer. Legacy: a simple-signing layer appended to `<alg>-<hex>.sig`.
 */
export async function signImage(
  store: ArtifactStore,
  subject: Descriptor,
  signer: Signer,
  options: SignOptions,
): Promise<SignResult> {
  if ((options.format ?? 'bundle') === 'legacy') {
    const payload = simpleSigningPayload(store.name, subject.digest);
    const layer = simpleSigningLayer(payload, await signer.sign(payload));
    const tag = legacyTag(subject.digest, 'sig');
    return {
      format: 'legacy',
      manifest: await appendLegacy(store, tag, layer, SIMPLESIGNING_MEDIA_TYPE),
      tag,
    };
  }
  const statement = makeStatement([{ digest: subject.digest }], COSIGN_SIGN_PREDICATE, {});
  return attachBundle(
    store,
    subject,
    signer,
    encodeStatement(statement),
    COSIGN_SIGN_PREDICATE,
    options.created,
  );
}

async function attachBundle(
  store: ArtifactStore,
  subject: Descriptor,
  signer: Signer,
  statement: Uint8Array,
  predicateType: string,
  created: number,
): Promise<SignResult> {
  const envelope = await signEnvelope(INTOTO_PAYLOAD_TYPE, statement, signer);
  const bundle = encodeBundle(dsseBundle(envelope, signer.hint));
  const r = bundleReferrer(subject, bundle, predicateType, created);
  const manifest = await store.attachReferrer(r.raw, r.mediaType, r.blobs);
  return { format: 'bundle', manifest };
}

/**
 * Attests `predicate` (of `predicateType`) about the image `subject`: an in-toto Statement v1 naming the image by
 * repository and digest, in a DSSE envelope; attached as a bundle referrer, or (legacy) appended to `<alg>-<hex>.att`.
 */
export async function attestImage(
  store: ArtifactStore,
  subject: Descriptor,
  predicateType: string,
  predicate: unknown,
  signer: Signer,
  options: SignOptions,
): Promise<SignResult> {
  const statement = encodeStatement(
    makeStatement([{ name: store.name, digest: subject.digest }], predicateType, predicate),
  );
  if ((options.format ?? 'bundle') === 'legacy') {
    const envelope = await signEnvelope(INTOTO_PAYLOAD_TYPE, statement, signer);
    const layer = attestationLayer(new TextEncoder().encode(JSON.stringify(envelope)), predicateType);
    const tag = legacyTag(subject.digest, 'att');
    return {
      format: 'legacy',
      manifest: await appendLegacy(store, tag, layer, layer.descriptor.mediaType),
      tag,
    };
  }
  return attachBundle(store, subject, signer, statement, predicateType, options.created);
}
