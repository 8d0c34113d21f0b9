import { AttestError } from '../errors.ts';
import type { Signer, Verifier } from './keys.ts';

/**
 * DSSE, the Dead Simple Signing Envelope (https://github.com/secure-systems-lab/dsse/blob/master/protocol.md):
 * a signature covers PAE(payloadType, payload), never the raw payload, so a payload cannot be replayed under
 * another type. The JSON envelope (envelope.md) carries the payload in standard base64.
 */

/** The payload type of in-toto statements. */
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
/** Media type cosign v2 gives a DSSE envelope stored as an `.att` layer. */
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
/** An envelope larger than this is not an attestation pare made or will read (SBOMs of big images stay well under). */
export const MAX_ENVELOPE_SIZE = 64 * 1024 * 1024;

export interface EnvelopeSignature {
  readonly keyid?: string;
  readonly sig: string;
}

/** A DSSE envelope as JSON has it: payload and sig are standard base64. */
export interface Envelope {
  readonly payloadType: string;
  readonly payload: string;
  readonly signatures: readonly EnvelopeSignature[];
}

const enc = new TextEncoder();

/** Returns the DSSE v1 pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body`. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const t = enc.encode(payloadType);
  const head = enc.encode(`DSSEv1 ${t.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

/** Returns an envelope over `payload` signed by `signer`; keyid is empty as cosign writes it. */
export async function signEnvelope(
  payloadType: string,
  payload: Uint8Array,
  signer: Signer,
): Promise<Envelope> {
  const sig = await signer.sign(pae(payloadType, payload));
  return {
    payloadType,
    payload: Buffer.from(payload).toString('base64'),
    signatures: [{ keyid: '', sig: Buffer.from(sig).toString('base64') }],
  };
}

/** Returns `s` decoded from canonical padded standard base64; throws ATTEST_ENVELOPE_INVALID otherwise. */
export function decodeBase64Strict(s: unknown, what: string): Uint8Array {
  if (typeof s !== 'string')
    throw new AttestError('ATTEST_ENVELOPE_INVALID', `cannot read ${what}: not a base64 string`);
  // DSSE producers differ on padding and alphabet (Go uses StdEncoding); accept both alphabets, require the bytes to
  // re-encode to the same text so one signature never has two encodings.
  const norm = s.replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(norm))
    throw new AttestError('ATTEST_ENVELOPE_INVALID', `cannot read ${what}: not base64`);
  const bytes = Buffer.from(norm, 'base64');
  const again = bytes.toString('base64');
  if (again !== norm && again.replace(/=+$/, '') !== norm)
    throw new AttestError('ATTEST_ENVELOPE_INVALID', `cannot read ${what}: non-canonical base64`);
  return new Uint8Array(bytes);
}

/** Returns the envelope in `json` (bytes or parsed) after checking its shape; throws ATTEST_ENVELOPE_INVALID. */
export function parseEnvelope(json: Uint8Array | unknown, what = 'DSSE envelope'): Envelope {
  let v: unknown = json;
  if (json instanceof Uint8Array) {
    if (json.length > MAX_ENVELOPE_SIZE)
      throw new AttestError(
        'ATTEST_ENVELOPE_INVALID',
        `cannot read ${what}: ${json.length} bytes is over the limit`,
      );
    try {
      v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
    } catch (cause) {
      throw new AttestError('ATTEST_ENVELOPE_INVALID', `cannot read ${what}: not JSON`, { cause });
    }
  }
  const e = v as { payloadType?: unknown; payload?: unknown; signatures?: unknown };
  if (typeof e?.payloadType !== 'string' || typeof e.payload !== 'string' || !Array.isArray(e.signatures))
    throw new AttestError(
      'ATTEST_ENVELOPE_INVALID',
      `cannot read ${what}: want payloadType, payload and signatures fields`,
    );
  const signatures: EnvelopeSignature[] = [];
  for (const s of e.signatures as { keyid?: unknown; sig?: unknown }[]) {
    if (typeof s?.sig !== 'string')
      throw new AttestError('ATTEST_ENVELOPE_INVALID', `cannot read ${what}: a signature has no "sig"`);
    signatures.push(typeof s.keyid === 'string' ? { keyid: s.keyid, sig: s.sig } : { sig: s.sig });
  }
  return { payloadType: e.payloadType, payload: e.payload, signatures };
}

/**
 * Returns the payload bytes of `envelope` when at least one of its signatures verifies under `verifier` (checked
 * before the payload is decoded for use). Throws ATTEST_SIGNATURE_INVALID when none does.
 */
export function verifyEnvelope(envelope: Envelope, verifier: Verifier, what = 'DSSE envelope'): Uint8Array {
  const payload = decodeBase64Strict(envelope.payload, `${what} payload`);
  const message = pae(envelope.payloadType, payload);
  for (const s of envelope.signatures) {
    let sig: Uint8Array;
    try {
      sig = decodeBase64Strict(s.sig, `${what} signature`);
    } catch {
      continue;
    }
    if (verifier.verify(message, sig)) return payload;
  }
  throw new AttestError(
    'ATTEST_SIGNATURE_INVALID',
    `cannot verify ${what}: ${envelope.signatures.length === 1 ? 'the signature does' : `none of ${envelope.signatures.length} signatures does`} not match the public key (hint ${verifier.hint})`,
  );
}
