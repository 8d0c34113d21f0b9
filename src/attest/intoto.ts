import { type Digest, parseDigest } from '../digest/index.ts';
import { AttestError } from '../errors.ts';

/**
 * in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md): a typed predicate
 * about subjects named by digest. pare writes v1; it reads v1 and v0.1 (what cosign `attest` still writes).
 */

export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';

/** Predicate types `--type` names map to, as cosign maps them (cosign `pkg/cosign/attestation`). */
export const PREDICATE_TYPES: Readonly<Record<string, string>> = {
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  openvex: 'https://openvex.dev/ns',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  custom: 'https://cosign.sigstore.dev/attestation/v1',
};

/** Returns the predicate type URI for a cosign `--type` name, or the argument itself when it is already a URI. */
export function predicateTypeFor(type: string): string {
  const t = PREDICATE_TYPES[type];
  if (t) return t;
  if (/^[a-z][a-z0-9+.-]*:/i.test(type)) return type;
  throw new AttestError(
    'ATTEST_PAYLOAD_INVALID',
    `cannot attest with type ${JSON.stringify(type)}: want one of ${Object.keys(PREDICATE_TYPES).join(', ')} or a URI`,
  );
}

export interface ResourceDescriptor {
  readonly name?: string;
  readonly uri?: string;
  readonly digest?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, unknown>>;
}

export interface Statement<P = unknown> {
  readonly _type: string;
  readonly subject: readonly ResourceDescriptor[];
  readonly predicateType: string;
  readonly predicate: P;
}

/** Returns `{sha256: hex}` for a digest (in-toto DigestSet). */
export function digestSet(d: Digest): Record<string, string> {
  const p = parseDigest(d);
  return { [p.algorithm]: p.hex };
}

/** Returns a Statement v1 with the given subjects (sorted by name then digest, for stable output). */
export function makeStatement<P>(
  subjects: readonly { name?: string; digest: Digest }[],
  predicateType: string,
  predicate: P,
): Statement<P> {
  const subject = [...subjects]
    .sort((a, b) => cmp(a.name ?? '', b.name ?? '') || cmp(a.digest, b.digest))
    .map((s) =>
      s.name === undefined ? { digest: digestSet(s.digest) } : { name: s.name, digest: digestSet(s.digest) },
    );
  return { _type: STATEMENT_V1, subject, predicateType, predicate };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Returns the UTF-8 JSON bytes of a statement (the DSSE payload). */
export function encodeStatement(s: Statement): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(s));
}

/** Returns the statement in a DSSE payload after checking `_type`, subjects and predicateType; throws ATTEST_PAYLOAD_INVALID. */
export function parseStatement(payload: Uint8Array, what = 'in-toto statement'): Statement {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch (cause) {
    throw new AttestError('ATTEST_PAYLOAD_INVALID', `cannot read ${what}: not JSON`, { cause });
  }
  const s = v as Partial<Statement>;
  if (s?._type !== STATEMENT_V1 && s?._type !== STATEMENT_V01)
    throw new AttestError(
      'ATTEST_PAYLOAD_INVALID',
      `cannot read ${what}: _type ${JSON.stringify(s?._type)} is not an in-toto statement`,
    );
  if (!Array.isArray(s.subject) || typeof s.predicateType !== 'string')
    throw new AttestError('ATTEST_PAYLOAD_INVALID', `cannot read ${what}: want subject[] and predicateType`);
  return s as Statement;
}

/** True when one of the statement's subjects has digest `d`. */
export function statementCovers(s: Statement, d: Digest): boolean {
  const { algorithm, hex } = parseDigest(d);
  return s.subject.some((x) => x?.digest?.[algorithm] === hex);
}
