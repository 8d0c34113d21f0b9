import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  keySigner,
  keyVerifier,
  loadPrivateKey,
  loadPublicKey,
  writeKeyFiles,
} from '../../src/attest/keys.ts';
import { attestImage, signImage } from '../../src/attest/sign.ts';
import { provenanceStatement } from '../../src/attest/slsa.ts';
import { type ArtifactStore, registryStore } from '../../src/attest/store.ts';
import { verifyImageAttestations, verifyImageSignatures } from '../../src/attest/verify.ts';
import { sha256 } from '../../src/digest/index.ts';
import type { Descriptor } from '../../src/oci/index.ts';
import { getManifest, putManifest, RegistryClient } from '../../src/registry/index.ts';
import { peersOrSkip, runPeer } from '../helpers/peers.ts';
import { type RegistryServer, startRegistry } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

// pare's signatures and attestations against the real cosign v3 and v2 on a loopback distribution registry, both
// ways, plus the attacks verification must refuse.
const p = peersOrSkip('cosign', 'cosign2', 'registry', 'crane');
const SLSA1 = 'https://slsa.dev/provenance/v1';

describe.skipIf(p.skip)('signing interop with cosign on a loopback registry', () => {
  let reg: RegistryServer;
  let dir: string;
  let client: RegistryClient;
  let store: ArtifactStore;
  const env = { ...process.env, COSIGN_PASSWORD: 'pare-pw' };
  const cosign = (args: string[]) => runPeer(p.paths.cosign!, args, { cwd: dir, env });
  const cosign2 = (args: string[]) => runPeer(p.paths.cosign2!, args, { cwd: dir, env });
  let pareKey: Awaited<ReturnType<typeof loadPrivateKey>>;

  /** Pushes a one-file image as REPO:tag with crane and returns its manifest descriptor. */
  async function pushImage(tag: string, text: string): Promise<Descriptor> {
    const root = join(dir, `img-${tag}`);
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'hello'), text);
    execFileSync('tar', ['-C', root, '-cf', `${root}.tar`, 'etc']);
    runPeer(p.paths.crane!, ['append', '--insecure', '-f', `${root}.tar`, '-t', `${reg.host}/app:${tag}`]);
    const m = await getManifest(client, { registry: reg.host, repository: 'app', tag });
    return { mediaType: m.mediaType, digest: m.digest, size: m.raw.length };
  }
  const ref = (d: Descriptor) => `${reg.host}/app@${d.digest}`;
  const verifyFlags = ['--insecure-ignore-tlog=true', '--allow-insecure-registry'];

  beforeAll(async () => {
    reg = await startRegistry();
    dir = tempDir('pare-cosign-');
    client = new RegistryClient({ retries: 0 });
    store = registryStore(client, { registry: reg.host, repository: 'app' });
    await writeKeyFiles('pare-pw', { prefix: join(dir, 'pare') });
    pareKey = await loadPrivateKey(readFileSync(join(dir, 'pare.key'), 'utf8'), { password: 'pare-pw' });
    cosign(['generate-key-pair', '--output-key-prefix', 'cosign']);
    cosign(['signing-config', 'create', '--out', 'sc.json']);
    writeFileSync(
      join(dir, 'pred.json'),
      JSON.stringify({
        buildDefinition: { buildType: 'urn:x', externalParameters: {} },
        runDetails: { builder: { id: 'urn:y' } },
      }),
    );
  });
  afterAll(async () => {
    await client?.close();
    await reg?.stop();
  });

  const provenance = (d: Descriptor) =>
    provenanceStatement({
      subjects: [{ name: `${reg.host}/app`, digest: d.digest }],
      config: { path: 'pare.yaml', digest: sha256('pare.yaml') },
      platforms: ['linux/amd64'],
      debs: [
        {
          name: 'libc6',
          version: '2.36-9',
          architecture: 'amd64',
          sha256: 'a'.repeat(64),
          distro: 'debian-12',
        },
      ],
      releases: [],
      appFiles: [],
      pareVersion: '0.1.0',
      sourceDateEpoch: 1700000000,
    }).predicate;

  describe('when pare signs and attests in the default (bundle) format', () => {
    it('cosign v3 verify and verify-attestation --type slsaprovenance1 accept it, and so does pare', async () => {
      const img = await pushImage('bundle', 'bundle');
      await signImage(store, img, keySigner(pareKey), { created: 1700000000 });
      await attestImage(store, img, SLSA1, provenance(img), keySigner(pareKey), { created: 1700000000 });
      cosign(['verify', '--key', 'pare.pub', ...verifyFlags, ref(img)]);
      const out = cosign([
        'verify-attestation',
        '--key',
        'pare.pub',
        '--type',
        'slsaprovenance1',
        ...verifyFlags,
        ref(img),
      ]);
      const env1 = JSON.parse(out.trim().split('\n')[0]!);
      const statement = JSON.parse(Buffer.from(env1.payload, 'base64').toString());
      expect(statement.predicate.buildDefinition.buildType).toBe('urn:pare:build-type:image:v1');
      const v = keyVerifier(pareKey.publicKey);
      expect((await verifyImageSignatures(store, img.digest, v)).map((x) => x.format)).toEqual(['bundle']);
      expect((await verifyImageAttestations(store, img.digest, v, { predicateType: SLSA1 })).length).toBe(1);
    });
  });

  describe('when pare signs with --legacy', () => {
    it('cosign2 verify and verify-attestation accept the .sig and .att tags', async () => {
      const img = await pushImage('legacy', 'legacy');
      await signImage(store, img, keySigner(pareKey), { created: 0, format: 'legacy' });
      await attestImage(store, img, SLSA1, provenance(img), keySigner(pareKey), {
        created: 0,
        format: 'legacy',
      });
      cosign2(['verify', '--key', 'pare.pub', ...verifyFlags, ref(img)]);
      cosign2([
        'verify-attestation',
        '--key',
        'pare.pub',
        '--type',
        'slsaprovenance1',
        ...verifyFlags,
        ref(img),
      ]);
      const v = keyVerifier(pareKey.publicKey);
      expect((await verifyImageSignatures(store, img.digest, v)).map((x) => x.format)).toEqual(['legacy']);
    });
  });

  describe('when real cosign signed', () => {
    it('pare verifies cosign v3 bundles and cosign v2 tags, and rejects them under another key', async () => {
      const v3 = await pushImage('by-cosign3', 'v3');
      cosign([
        'sign',
        '--key',
        'cosign.key',
        '--signing-config',
        'sc.json',
        '--allow-insecure-registry',
        '-y',
        ref(v3),
      ]);
      cosign([
        'attest',
        '--key',
        'cosign.key',
        '--signing-config',
        'sc.json',
        '--allow-insecure-registry',
        '-y',
        '--type',
        'slsaprovenance1',
        '--predicate',
        'pred.json',
        ref(v3),
      ]);
      const v2 = await pushImage('by-cosign2', 'v2');
      cosign2([
        'sign',
        '--key',
        'cosign.key',
        '--tlog-upload=false',
        '--allow-insecure-registry',
        '-y',
        ref(v2),
      ]);
      cosign2([
        'attest',
        '--key',
        'cosign.key',
        '--tlog-upload=false',
        '--allow-insecure-registry',
        '-y',
        '--type',
        'slsaprovenance1',
        '--predicate',
        'pred.json',
        ref(v2),
      ]);
      const cv = keyVerifier(loadPublicKey(readFileSync(join(dir, 'cosign.pub'), 'utf8')));
      expect((await verifyImageSignatures(store, v3.digest, cv)).map((x) => x.format)).toEqual(['bundle']);
      expect(
        (await verifyImageAttestations(store, v3.digest, cv, { predicateType: SLSA1 }))[0]!.statement
          ?.predicateType,
      ).toBe(SLSA1);
      expect((await verifyImageSignatures(store, v2.digest, cv)).map((x) => x.format)).toEqual(['legacy']);
      expect((await verifyImageAttestations(store, v2.digest, cv, { predicateType: SLSA1 })).length).toBe(1);
      const other = keyVerifier(pareKey.publicKey);
      await expect(verifyImageSignatures(store, v3.digest, other)).rejects.toThrow(
        expect.objectContaining({
          code: 'ATTEST_SIGNATURE_INVALID',
          message: expect.stringContaining('does not match the public key'),
        }),
      );
      await expect(verifyImageSignatures(store, v2.digest, other)).rejects.toThrow(
        expect.objectContaining({ code: 'ATTEST_SIGNATURE_INVALID' }),
      );
    });
  });

  describe('when signatures are tampered with or moved', () => {
    it('rejects a moved tag, a copied signature, an edited payload and a wrong digest', async () => {
      const a = await pushImage('a', 'image a');
      const b = await pushImage('b', 'image b');
      const v = keyVerifier(pareKey.publicKey);
      await signImage(store, a, keySigner(pareKey), { created: 0 });
      await signImage(store, a, keySigner(pareKey), { created: 0, format: 'legacy' });
      // moved tag: "a" now points at image b, which nobody signed
      runPeer(p.paths.crane!, ['tag', '--insecure', `${reg.host}/app@${b.digest}`, 'a']);
      const moved = await getManifest(client, { registry: reg.host, repository: 'app', tag: 'a' });
      await expect(verifyImageSignatures(store, moved.digest, v)).rejects.toThrow(
        expect.objectContaining({ code: 'ATTEST_NOT_FOUND', message: expect.stringContaining(b.digest) }),
      );
      // copied signature: a's .sig image put under b's .sig tag
      const sigA = await getManifest(client, {
        registry: reg.host,
        repository: 'app',
        tag: `sha256-${a.digest.slice(7)}.sig`,
      });
      await putManifest(
        client,
        { registry: reg.host, repository: 'app' },
        `sha256-${b.digest.slice(7)}.sig`,
        sigA.raw,
        sigA.mediaType,
      );
      await expect(verifyImageSignatures(store, b.digest, v)).rejects.toThrow(
        expect.objectContaining({
          code: 'ATTEST_SIGNATURE_INVALID',
          message: expect.stringContaining(`names ${a.digest}, not ${b.digest}`),
        }),
      );
      // copied bundle: a's bundle attached to b as a new referrer
      const refs = await store.listReferrers(a.digest);
      const ra = await store.getManifest(refs[0]!.digest);
      const m = JSON.parse(Buffer.from(ra!.raw).toString());
      m.subject = { mediaType: b.mediaType, digest: b.digest, size: b.size };
      await store.attachReferrer(Buffer.from(JSON.stringify(m)), ra!.mediaType, []);
      await expect(verifyImageSignatures(store, b.digest, v)).rejects.toThrow(
        expect.objectContaining({
          message: expect.stringMatching(/the signed statement is about .* not sha256:/),
        }),
      );
      // edited payload: b's own .sig with a payload naming b but the signature made over a's payload
      const layerA = JSON.parse(Buffer.from(sigA.raw).toString()).layers[0];
      const forged = Buffer.from(
        JSON.stringify({
          critical: {
            identity: { 'docker-reference': store.name },
            image: { 'docker-manifest-digest': b.digest },
            type: 'cosign container image signature',
          },
          optional: null,
        }),
      );
      const forgedDesc = { ...layerA, digest: sha256(forged), size: forged.length };
      await store.putManifest(
        Buffer.from(
          JSON.stringify({ ...JSON.parse(Buffer.from(sigA.raw).toString()), layers: [forgedDesc] }),
        ),
        sigA.mediaType,
        [{ descriptor: forgedDesc, data: forged }],
        `sha256-${b.digest.slice(7)}.sig`,
      );
      await expect(verifyImageSignatures(store, b.digest, v)).rejects.toThrow(
        expect.objectContaining({
          code: 'ATTEST_SIGNATURE_INVALID',
          message: expect.stringContaining('does not match the public key'),
        }),
      );
      // and cosign agrees about the forged one
      expect(() => cosign2(['verify', '--key', 'pare.pub', ...verifyFlags, ref(b)])).toThrow();
      // a digest that is not the image's: nothing is signed for it
      await expect(verifyImageSignatures(store, sha256('no such image'), v)).rejects.toThrow(
        expect.objectContaining({ code: 'ATTEST_NOT_FOUND' }),
      );
      // the untouched image a still verifies in both formats
      expect((await verifyImageSignatures(store, a.digest, v)).map((x) => x.format).sort()).toEqual([
        'bundle',
        'legacy',
      ]);
    });
  });
});
