import type { Digest } from '../digest/index.ts';
import { sha256 } from '../digest/index.ts';
import { AttestError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import { BUNDLE_MEDIA_TYPES, parseBundle, verifyDsseBundle } from './bundle.ts';
import {
  BUNDLE_PREDICATE_ANNOTATION,
  COSIGN_SIGN_PREDICATE,
  legacyTag,
  SIGNATURE_ANNOTATION,
  SIMPLESIGNING_MEDIA_TYPE,
  SIMPLESIGNING_TYPE,
} from './cosign.ts';
import {
  DSSE_MEDIA_TYPE,
  decodeBase64Strict,
  MAX_ENVELOPE_SIZE,
  parseEnvelope,
  verifyEnvelope,
} from './dsse.ts';
import { parseStatement, type Statement, statementCovers } from './intoto.ts';
import type { Verifier } from './keys.ts';
import type { ArtifactStore } from './store.ts';

/**
 * Verifying what pare or cosign (v3 bundles, v2 `.sig`/`.att`) attached to an image, against a public key. For every
 * candidate: the manifest and blobs are read by digest and checked before use, the signature is checked before the
 * payload is parsed, and the signed payload must name the image's digest — so a signature copied to another image, a
 * tag moved to another image, or an edited payload are all refused. Returns what verified; throws when nothing did,
 * with one line per rejected candidate.
 */

export interface Verified {
  readonly format: 'bundle' | 'legacy';
  /** The referrer or `.sig`/`.att` manifest it came from. */
  readonly manifest: Digest;
  /** The in-toto statement (bundles and attestations); absent for legacy simple-signing signatures. */
  readonly statement?: Statement;
  /** The signed payload bytes. */
  readonly payload: Uint8Array;
}

export interface VerifyOptions {
  /** For attestations: only statements of this predicate type count. */
  readonly predicateType?: string;
}

/** Most bytes read for one signature manifest layer (bundles carry whole SBOMs). */
const MAX_LAYER = MAX_ENVELOPE_SIZE;

interface Ctx {
  readonly store: ArtifactStore;
  readonly subject: Digest;
  readonly verifier: Verifier;
  readonly rejected: string[];
  readonly found: { n: number };
}

function fail(ctx: Ctx, where: string, e: unknown): void {
  ctx.rejected.push(`${where}: ${e instanceof Error ? e.message : String(e)}`);
}

/** What a statement check says: undefined = accept, IGNORE = not this kind (a signature when attestations are asked), else a reason. */
type Want = (s: Statement) => string | typeof IGNORE | undefined;
const IGNORE = Symbol('ignore');

async function bundleCandidates(ctx: Ctx, want: Want): Promise<Verified[]> {
  const out: Verified[] = [];
  for (const d of await ctx.store.listReferrers(ctx.subject)) {
    if (
      d.artifactType !== undefined &&
      !BUNDLE_MEDIA_TYPES.includes(d.artifactType) &&
      d.artifactType !== 'application/vnd.oci.empty.v1+json'
    )
      continue;
    const where = `referrer ${d.digest}`;
    try {
      const m = await ctx.store.getManifest(d.digest);
      if (!m) throw new AttestError('ATTEST_NOT_FOUND', 'listed but not in the store');
      const manifest = JSON.parse(new TextDecoder().decode(m.raw)) as {
        subject?: Descriptor;
        layers?: Descriptor[];
        annotations?: Record<string, string>;
      };
      const layer = manifest.layers?.find((l) => BUNDLE_MEDIA_TYPES.includes(l.mediaType));
      if (!layer) continue;
      // The annotation is unsigned: it may only make us skip a bundle of the other kind, never accept one.
      const hinted = manifest.annotations?.[BUNDLE_PREDICATE_ANNOTATION];
      if (hinted && want({ _type: '', subject: [], predicateType: hinted, predicate: null }) === IGNORE)
        continue;
      ctx.found.n++;
      if (manifest.subject?.digest !== ctx.subject)
        throw new AttestError(
          'ATTEST_SUBJECT_MISMATCH',
          `its subject is ${manifest.subject?.digest ?? 'missing'}, not ${ctx.subject}`,
        );
      const bundle = parseBundle(await ctx.store.getBlob(layer, MAX_LAYER), `bundle ${layer.digest}`);
      if (!bundle.dsseEnvelope)
        throw new AttestError('ATTEST_BUNDLE_INVALID', 'the bundle holds no DSSE envelope');
      const payload = verifyDsseBundle(bundle, ctx.verifier, `bundle ${layer.digest}`);
      const statement = parseStatement(payload);
      if (checkStatement(ctx, statement, want) === IGNORE) {
        ctx.found.n--;
        continue;
      }
      out.push({ format: 'bundle', manifest: m.digest, statement, payload });
    } catch (e) {
      fail(ctx, where, e);
    }
  }
  return out;
}

function checkStatement(ctx: Ctx, s: Statement, want: Want): typeof IGNORE | undefined {
  const why = want(s);
  if (why === IGNORE) return IGNORE;
  if (!statementCovers(s, ctx.subject))
    throw new AttestError(
      'ATTEST_SUBJECT_MISMATCH',
      `the signed statement is about ${s.subject.map((x) => JSON.stringify(x.digest)).join(', ')}, not ${ctx.subject}`,
    );
  if (why) throw new AttestError('ATTEST_PAYLOAD_INVALID', why);
  return undefined;
}

async function legacyLayers(
  ctx: Ctx,
  suffix: 'sig' | 'att',
): Promise<{ manifest: Digest; layers: Descriptor[] } | undefined> {
  const m = await ctx.store.getManifest(legacyTag(ctx.subject, suffix));
  if (!m) return undefined;
  const parsed = JSON.parse(new TextDecoder().decode(m.raw)) as { layers?: Descriptor[] };
  return { manifest: m.digest, layers: parsed.layers ?? [] };
}

async function legacySignatures(ctx: Ctx): Promise<Verified[]> {
  const out: Verified[] = [];
  const img = await legacyLayers(ctx, 'sig');
  for (const l of img?.layers ?? []) {
    if (l.mediaType !== SIMPLESIGNING_MEDIA_TYPE) continue;
    ctx.found.n++;
    const where = `${legacyTag(ctx.subject, 'sig')} layer ${l.digest}`;
    try {
      const payload = await ctx.store.getBlob(l, MAX_LAYER);
      const sig = decodeBase64Strict(l.annotations?.[SIGNATURE_ANNOTATION] ?? '', 'signature annotation');
      if (!ctx.verifier.verify(payload, sig))
        throw new AttestError(
          'ATTEST_SIGNATURE_INVALID',
          `the signature does not match the public key (hint ${ctx.verifier.hint})`,
        );
      const doc = JSON.parse(new TextDecoder().decode(payload)) as {
        critical?: { image?: { 'docker-manifest-digest'?: string }; type?: string };
      };
      if (doc.critical?.type !== SIMPLESIGNING_TYPE)
        throw new AttestError(
          'ATTEST_PAYLOAD_INVALID',
          `payload type ${JSON.stringify(doc.critical?.type)} is not "${SIMPLESIGNING_TYPE}"`,
        );
      const signed = doc.critical.image?.['docker-manifest-digest'];
      if (signed !== ctx.subject)
        throw new AttestError(
          'ATTEST_SUBJECT_MISMATCH',
          `the signed payload names ${signed ?? 'no digest'}, not ${ctx.subject}`,
        );
      out.push({ format: 'legacy', manifest: img!.manifest, payload });
    } catch (e) {
      fail(ctx, where, e);
    }
  }
  return out;
}

async function legacyAttestations(ctx: Ctx, want: Want): Promise<Verified[]> {
  const out: Verified[] = [];
  const img = await legacyLayers(ctx, 'att');
  for (const l of img?.layers ?? []) {
    if (l.mediaType !== DSSE_MEDIA_TYPE) continue;
    ctx.found.n++;
    const where = `${legacyTag(ctx.subject, 'att')} layer ${l.digest}`;
    try {
      const env = parseEnvelope(await ctx.store.getBlob(l, MAX_LAYER), `envelope ${l.digest}`);
      const payload = verifyEnvelope(env, ctx.verifier, `envelope ${l.digest}`);
      const statement = parseStatement(payload);
      if (checkStatement(ctx, statement, want) === IGNORE) {
        ctx.found.n--;
        continue;
      }
      out.push({ format: 'legacy', manifest: img!.manifest, statement, payload });
    } catch (e) {
      fail(ctx, where, e);
    }
  }
  return out;
}

function done(ctx: Ctx, what: string, got: Verified[]): Verified[] {
  if (got.length > 0) return got;
  if (ctx.found.n === 0)
    throw new AttestError(
      'ATTEST_NOT_FOUND',
      `cannot verify ${ctx.subject} in ${ctx.store.name}: no ${what} found (looked at its referrers and the ${legacyTag(ctx.subject, what === 'signatures' ? 'sig' : 'att')} tag)`,
      { digest: ctx.subject },
    );
  throw new AttestError(
    'ATTEST_SIGNATURE_INVALID',
    `cannot verify ${ctx.subject} in ${ctx.store.name}: none of ${ctx.found.n} ${what} verified:\n  ${ctx.rejected.join('\n  ')}`,
    { digest: ctx.subject },
  );
}

/**
 * Returns the signatures on image `subject` that verify under `verifier`: cosign v3 bundles (sign/v1 statements) and
 * v2 simple signatures. Throws ATTEST_NOT_FOUND when there are none, ATTEST_SIGNATURE_INVALID when none verifies.
 */
export async function verifyImageSignatures(
  store: ArtifactStore,
  subject: Digest,
  verifier: Verifier,
): Promise<Verified[]> {
  const ctx: Ctx = { store, subject, verifier, rejected: [], found: { n: 0 } };
  // Bundles with other predicate types are attestations, not signatures: they neither count nor fail.
  const want: Want = (s) => (s.predicateType === COSIGN_SIGN_PREDICATE ? undefined : IGNORE);
  const bundles = await bundleCandidates(ctx, want);
  return done(ctx, 'signatures', [...bundles, ...(await legacySignatures(ctx))]);
}

/**
 * Returns the attestations on image `subject` that verify under `verifier` (bundle referrers and `.att` layers), with
 * `predicateType` when given. Throws ATTEST_NOT_FOUND or ATTEST_SIGNATURE_INVALID as verifyImageSignatures does.
 */
export async function verifyImageAttestations(
  store: ArtifactStore,
  subject: Digest,
  verifier: Verifier,
  options: VerifyOptions = {},
): Promise<Verified[]> {
  const ctx: Ctx = { store, subject, verifier, rejected: [], found: { n: 0 } };
  const want: Want = (s) => {
    if (s.predicateType === COSIGN_SIGN_PREDICATE) return IGNORE;
    if (options.predicateType && s.predicateType !== options.predicateType)
      return `predicate type ${JSON.stringify(s.predicateType)} is not ${JSON.stringify(options.predicateType)}`;
    return undefined;
  };
  const got = [...(await bundleCandidates(ctx, want)), ...(await legacyAttestations(ctx, want))];
  return done(ctx, 'attestations', got);
}

/** Returns sha256 of a payload, for reports. */
export function payloadDigest(v: Verified): Digest {
  return sha256(v.payload);
}
