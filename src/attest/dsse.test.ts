import { describe, expect, it } from 'vitest';
import { sha256 } from '../digest/index.ts';
import { INTOTO_PAYLOAD_TYPE, pae, parseEnvelope, signEnvelope, verifyEnvelope } from './dsse.ts';
import {
  encodeStatement,
  makeStatement,
  parseStatement,
  predicateTypeFor,
  statementCovers,
} from './intoto.ts';
import { generateKeyPair, keySigner, keyVerifier } from './keys.ts';
import { PARE_BUILD_TYPE, type ProvenanceInput, provenanceStatement } from './slsa.ts';

const te = new TextEncoder();

describe('pae', () => {
  it('encodes type and body with their byte lengths (DSSE protocol.md)', () => {
    expect(new TextDecoder().decode(pae('urn:test:Hello', te.encode('hello world')))).toBe(
      'DSSEv1 14 urn:test:Hello 11 hello world',
    );
    // note: the length is in bytes, not UTF-16 units.
    expect(new TextDecoder().decode(pae('t', te.encode('é')))).toBe('DSSEv1 1 t 2 é');
  });
});

describe('verifyEnvelope', () => {
  const pair = generateKeyPair();
  const signer = keySigner(pair);
  const verifier = keyVerifier(pair.publicKey);
  const payload = encodeStatement(makeStatement([{ digest: sha256('img') }], 'urn:test:p', {}));

  describe('when the envelope is intact', () => {
    it('returns the payload', async () => {
      const env = await signEnvelope(INTOTO_PAYLOAD_TYPE, payload, signer);
      const round = parseEnvelope(te.encode(JSON.stringify(env)));
      expect(verifyEnvelope(round, verifier)).toEqual(payload);
    });
  });
  describe('when the payload was changed', () => {
    it('throws ATTEST_SIGNATURE_INVALID', async () => {
      const env = await signEnvelope(INTOTO_PAYLOAD_TYPE, payload, signer);
      const bad = { ...env, payload: Buffer.from(te.encode('{"x":1}')).toString('base64') };
      expect(() => verifyEnvelope(bad, verifier)).toThrow(
        expect.objectContaining({ code: 'ATTEST_SIGNATURE_INVALID' }),
      );
    });
  });
  describe('when the payload type was changed', () => {
    it('throws ATTEST_SIGNATURE_INVALID (PAE binds the type)', async () => {
      const env = await signEnvelope(INTOTO_PAYLOAD_TYPE, payload, signer);
      expect(() => verifyEnvelope({ ...env, payloadType: 'text/plain' }, verifier)).toThrow(
        expect.objectContaining({ code: 'ATTEST_SIGNATURE_INVALID' }),
      );
    });
  });
  describe('when another key signed', () => {
    it('throws ATTEST_SIGNATURE_INVALID naming the key hint', async () => {
      const env = await signEnvelope(INTOTO_PAYLOAD_TYPE, payload, keySigner(generateKeyPair()));
      expect(() => verifyEnvelope(env, verifier)).toThrow(
        expect.objectContaining({
          code: 'ATTEST_SIGNATURE_INVALID',
          message: expect.stringContaining(verifier.hint),
        }),
      );
    });
  });
  describe('when the payload base64 is not canonical', () => {
    it('throws ATTEST_ENVELOPE_INVALID', async () => {
      const env = await signEnvelope('t', te.encode('\0'), signer);
      expect(env.payload).toBe('AA==');
      expect(() => verifyEnvelope({ ...env, payload: 'AB==' }, verifier)).toThrow(
        expect.objectContaining({ code: 'ATTEST_ENVELOPE_INVALID' }),
      );
    });
  });
  describe('when the JSON lacks fields', () => {
    it('throws ATTEST_ENVELOPE_INVALID', () => {
      expect(() => parseEnvelope(te.encode('{"payload":"AA=="}'))).toThrow(
        expect.objectContaining({ code: 'ATTEST_ENVELOPE_INVALID' }),
      );
    });
  });
});

describe('parseStatement', () => {
  it('reads v1 and v0.1 and finds subjects by digest', () => {
    const d = sha256('x');
    for (const t of ['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1']) {
      const s = parseStatement(
        te.encode(
          JSON.stringify({
            _type: t,
            subject: [{ digest: { sha256: d.slice(7) } }],
            predicateType: 'p',
            predicate: {},
          }),
        ),
      );
      expect(statementCovers(s, d)).toBe(true);
      expect(statementCovers(s, sha256('y'))).toBe(false);
    }
    expect(() => parseStatement(te.encode('{"_type":"other"}'))).toThrow(
      expect.objectContaining({ code: 'ATTEST_PAYLOAD_INVALID' }),
    );
  });
});

describe('predicateTypeFor', () => {
  it.each([
    ['slsaprovenance1', 'https://slsa.dev/provenance/v1'],
    ['spdxjson', 'https://spdx.dev/Document'],
    ['cyclonedx', 'https://cyclonedx.org/bom'],
    ['openvex', 'https://openvex.dev/ns'],
  ])('maps %s to %s as cosign does', (t, uri) => {
    expect(predicateTypeFor(t)).toBe(uri);
  });
  it('rejects an unknown name with the list of known ones', () => {
    expect(() => predicateTypeFor('nope')).toThrow(
      expect.objectContaining({
        code: 'ATTEST_PAYLOAD_INVALID',
        message: expect.stringContaining('slsaprovenance1'),
      }),
    );
  });
});

describe('provenanceStatement', () => {
  const input: ProvenanceInput = {
    subjects: [{ name: 'registry.invalid/app', digest: sha256('image') }],
    config: { path: 'pare.yaml', digest: sha256('pare.yaml') },
    platforms: ['linux/arm64', 'linux/amd64'],
    debs: [
      {
        name: 'zlib1g',
        version: '1:1.2.13.dfsg-1',
        architecture: 'amd64',
        sha256: 'a'.repeat(64),
        distro: 'debian-12',
      },
      {
        name: 'libc6',
        version: '2.36-9+deb12u10',
        architecture: 'amd64',
        sha256: 'b'.repeat(64),
        distro: 'debian-12',
      },
    ],
    releases: [{ uri: 'mirror:/dists/bookworm/InRelease', sha256: 'c'.repeat(64), name: 'bookworm' }],
    appFiles: [{ path: '/app/server', source: 'build/server', sha256: 'd'.repeat(64) }],
    pareVersion: '0.1.0',
    sourceDateEpoch: 1700000000,
  };
  it('lists every deb (purl), InRelease and app file, sorted, with SOURCE_DATE_EPOCH times', () => {
    const s = provenanceStatement(input);
    expect(s._type).toBe('https://in-toto.io/Statement/v1');
    expect(s.predicateType).toBe('https://slsa.dev/provenance/v1');
    const p = s.predicate as {
      buildDefinition: {
        buildType: string;
        externalParameters: { platforms: string[] };
        resolvedDependencies: { uri: string; digest: { sha256: string } }[];
      };
      runDetails: { metadata: { startedOn: string } };
    };
    expect(p.buildDefinition.buildType).toBe(PARE_BUILD_TYPE);
    expect(p.buildDefinition.externalParameters.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(p.buildDefinition.resolvedDependencies.map((d) => d.uri)).toEqual([
      'pkg:deb/debian/libc6@2.36-9+deb12u10?arch=amd64&distro=debian-12',
      'pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12',
      'mirror:/dists/bookworm/InRelease',
      'file:build/server',
    ]);
    expect(p.runDetails.metadata.startedOn).toBe('2023-11-14T22:13:20Z');
  });
  it('is byte-identical for reordered input and has no time without SOURCE_DATE_EPOCH', () => {
    const a = JSON.stringify(provenanceStatement(input));
    const b = JSON.stringify(
      provenanceStatement({
        ...input,
        debs: [...input.debs].reverse(),
        platforms: [...input.platforms].reverse(),
      }),
    );
    expect(a).toBe(b);
    const { sourceDateEpoch: _, ...noTime } = input;
    expect(JSON.stringify(provenanceStatement(noTime))).not.toContain('startedOn');
  });
});
