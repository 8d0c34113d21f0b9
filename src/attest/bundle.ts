import { createHash } from 'node:crypto';
import { AttestError } from '../errors.ts';
import { decodeBase64Strict, type Envelope, parseEnvelope, verifyEnvelope } from './dsse.ts';
import type { Signer, Verifier } from './keys.ts';

/**
 * Sigstore bundles (https://github.com/sigstore/protobuf-specs, `sigstore_bundle.proto`), in the protobuf-JSON form
 * cosign v3 writes: v0.3 media type, `verificationMaterial.publicKey.hint` for key-based signing, and either a
 * `dsseEnvelope` (cosign sign and attest) or a `messageSignature` (cosign sign-blob). pare signs offline, so there are
 * no transparency-log entries or timestamps; verifying such a bundle needs the public key (the trust decision is the
 * caller's, as with `cosign verify --key … --insecure-ignore-tlog`).
 */

export const BUNDLE_V03_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
/** Bundle media types pare reads (v0.1 and v0.2 used a `+json;version=` parameter). */
export const BUNDLE_MEDIA_TYPES: readonly string[] = [
  BUNDLE_V03_MEDIA_TYPE,
  'application/vnd.dev.sigstore.bundle+json;version=0.1',
  'application/vnd.dev.sigstore.bundle+json;version=0.2',
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
];

export interface MessageSignature {
  readonly messageDigest: { readonly algorithm: 'SHA2_256'; readonly digest: string };
  readonly signature: string;
}

export interface Bundle {
  readonly mediaType: string;
  readonly verificationMaterial: {
    readonly publicKey?: { readonly hint: string };
    readonly [k: string]: unknown;
  };
  readonly dsseEnvelope?: Envelope;
  readonly messageSignature?: MessageSignature;
}

/** Returns a v0.3 bundle around a DSSE envelope, with a key hint. Field order as cosign's protojson output. */
export function dsseBundle(envelope: Envelope, hint: string): Bundle {
  return {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint } },
    dsseEnvelope: {
      payload: envelope.payload,
      payloadType: envelope.payloadType,
      // protojson omits empty strings, so cosign writes no keyid.
      signatures: envelope.signatures.map((s) => (s.keyid ? { keyid: s.keyid, sig: s.sig } : { sig: s.sig })),
    } as Envelope,
  };
}

/** Returns a v0.3 bundle with a signature over `message` (what `cosign sign-blob --bundle` writes). */
export async function messageBundle(message: Uint8Array, signer: Signer): Promise<Bundle> {
  const sig = await signer.sign(message);
  return {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: signer.hint } },
    messageSignature: {
      messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(message).digest('base64') },
      signature: Buffer.from(sig).toString('base64'),
    },
  };
}

/** Returns the UTF-8 JSON bytes of a bundle. */
export function encodeBundle(b: Bundle): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(b));
}

/** Returns the bundle in `bytes` after checking media type and content; throws ATTEST_BUNDLE_INVALID. */
export function parseBundle(bytes: Uint8Array, what = 'sigstore bundle'): Bundle {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new AttestError('ATTEST_BUNDLE_INVALID', `cannot read ${what}: not JSON`, { cause });
  }
  const b = v as Partial<Bundle>;
  if (typeof b?.mediaType !== 'string' || !BUNDLE_MEDIA_TYPES.includes(b.mediaType))
    throw new AttestError(
      'ATTEST_BUNDLE_INVALID',
      `cannot read ${what}: media type ${JSON.stringify(b?.mediaType)} is not a sigstore bundle`,
    );
  if (typeof b.verificationMaterial !== 'object' || b.verificationMaterial === null)
    throw new AttestError('ATTEST_BUNDLE_INVALID', `cannot read ${what}: no verificationMaterial`);
  if ((b.dsseEnvelope === undefined) === (b.messageSignature === undefined))
    throw new AttestError(
      'ATTEST_BUNDLE_INVALID',
      `cannot read ${what}: want exactly one of dsseEnvelope and messageSignature`,
    );
  if (b.dsseEnvelope)
    return { ...(b as Bundle), dsseEnvelope: parseEnvelope(b.dsseEnvelope, `${what} envelope`) };
  const m = b.messageSignature as Partial<MessageSignature>;
  if (m?.messageDigest?.algorithm !== 'SHA2_256' || typeof m.signature !== 'string')
    throw new AttestError('ATTEST_BUNDLE_INVALID', `cannot read ${what}: messageSignature is not SHA2_256`);
  return b as Bundle;
}

/** Returns the DSSE payload of a bundle after verifying its signature; throws ATTEST_SIGNATURE_INVALID. */
export function verifyDsseBundle(b: Bundle, verifier: Verifier, what = 'sigstore bundle'): Uint8Array {
  if (!b.dsseEnvelope)
    throw new AttestError('ATTEST_BUNDLE_INVALID', `cannot verify ${what}: it holds no DSSE envelope`);
  return verifyEnvelope(b.dsseEnvelope, verifier, what);
}

/**
 * Checks a messageSignature bundle against `message`: the recorded digest must be the message's, and the signature
 * must verify. Throws ATTEST_SUBJECT_MISMATCH or ATTEST_SIGNATURE_INVALID.
 */
export function verifyMessageBundle(
  b: Bundle,
  message: Uint8Array,
  verifier: Verifier,
  what = 'sigstore bundle',
): void {
  const m = b.messageSignature;
  if (!m)
    throw new AttestError('ATTEST_BUNDLE_INVALID', `cannot verify ${what}: it holds no messageSignature`);
  const want = decodeBase64Strict(m.messageDigest.digest, `${what} digest`);
  const got = createHash('sha256').update(message).digest();
  if (!got.equals(want))
    throw new AttestError(
      'ATTEST_SUBJECT_MISMATCH',
      `cannot verify ${what}: it signs sha256:${Buffer.from(want).toString('hex')}, the file is sha256:${got.toString('hex')}`,
    );
  if (!verifier.verify(message, decodeBase64Strict(m.signature, `${what} signature`)))
    throw new AttestError(
      'ATTEST_SIGNATURE_INVALID',
      `cannot verify ${what}: the signature does not match the public key (hint ${verifier.hint})`,
    );
}
