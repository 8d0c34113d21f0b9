import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Digest, sha256 } from '../../src/digest/index.ts';
import { OciLayout } from '../../src/layout/index.ts';
import type { Image } from '../../src/oci/index.ts';
import {
  downloadBlob,
  parseReference,
  pull,
  pushImage,
  RegistryClient,
  resolveDigest,
} from '../../src/registry/index.ts';
import { copy } from '../../src/transport/index.ts';
import { blobGet, type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { type RegistryServer, startRegistry } from '../helpers/registry-server.ts';
import { randomImage } from './images.ts';

/**
 * The real registry behind a fault-injecting proxy: pare must finish with the right digests after cuts, 500s and
 * 429s, and must refuse — and never store — a body whose digest is wrong.
 */

const p = peersOrSkip('registry', 'crane');
const tmp = () => mkdtempSync(join(tmpdir(), 'pare-faults-'));

describe.skipIf(p.skip)('registry client under faults', () => {
  let registry: RegistryServer;
  let proxy: FaultProxy;
  let image: Image;
  let bigLayer: { digest: Digest; size: number };
  let client: RegistryClient;
  const repo = 'faults/app';
  const viaProxy = (tag = '1') => parseReference(`${proxy.host}/${repo}:${tag}`);

  beforeAll(async () => {
    registry = await startRegistry({ auth: 'none' });
    image = randomImage({ layers: 2, size: 300_000 });
    const direct = new RegistryClient({ credentials: async () => undefined });
    await pushImage(direct, parseReference(`${registry.host}/${repo}:1`), image);
    await direct.close();
    const l = (await image.manifest()).layers[0]!;
    bigLayer = { digest: l.digest, size: l.size };
  });
  afterAll(async () => {
    await registry?.stop();
  });
  beforeEach(async () => {
    proxy = await startFaultProxy(registry.host);
    client = new RegistryClient({ credentials: async () => undefined, retryBaseMs: 20 });
  });
  afterEach(async () => {
    await client.close();
    await proxy.stop();
  });

  it('resumes a blob cut mid-stream with a Range request and stores the right bytes', async () => {
    proxy.add(blobGet(bigLayer.digest), { kind: 'cut', afterBytes: 100_000 });
    const dir = join(tmp(), 'oci');
    const desc = await copy(
      client,
      { transport: 'docker', ref: viaProxy() },
      { transport: 'oci', path: dir },
    );
    expect(desc.digest).toBe(await image.digest());
    const gets = proxy.log.filter((e) => e.url.includes(bigLayer.digest));
    expect(gets[0]).toMatchObject({ fault: 'cut', range: undefined });
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]?.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(100_000);
    const layout = await OciLayout.open(dir);
    expect(sha256(readFileSync(layout.blobPath(bigLayer.digest)))).toBe(bigLayer.digest);
  });

  it('retries a 500 on the manifest and completes', async () => {
    proxy.add((r) => r.method === 'GET' && r.url.includes('/manifests/'), { kind: 'status', status: 500 });
    const a = await pull(client, viaProxy());
    expect(a.kind === 'image' && (await a.image.digest())).toBe(await image.digest());
    expect(proxy.log.filter((e) => e.url.includes('/manifests/')).map((e) => e.fault)).toEqual([
      'status',
      undefined,
    ]);
  });

  it('waits out a 429 with Retry-After during a push and completes', async () => {
    const fresh = randomImage({ layers: 1 });
    proxy.add((r) => r.method === 'HEAD' && r.url.includes('/blobs/'), {
      kind: 'status',
      status: 429,
      headers: { 'retry-after': '1' },
    });
    const desc = await pushImage(client, viaProxy('429'), fresh);
    expect(desc.digest).toBe(await fresh.digest());
    expect(proxy.log.filter((e) => e.fault === 'status')).toHaveLength(1);
    const crane = await promisify(execFile)(p.paths.crane!, [
      'digest',
      '--insecure',
      `${registry.host}/${repo}:429`,
    ]);
    expect(crane.stdout.trim()).toBe(desc.digest);
  });

  it('restarts an upload whose final PUT failed with a 500', async () => {
    const fresh = randomImage({ layers: 1 });
    proxy.add((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'), {
      kind: 'status',
      status: 500,
    });
    const desc = await pushImage(client, viaProxy('put500'), fresh);
    expect(desc.digest).toBe(await fresh.digest());
    expect(
      proxy.log.filter((e) => e.method === 'POST' && e.url.includes('/blobs/uploads/')).length,
    ).toBeGreaterThan((await fresh.manifest()).layers.length + 1);
    await promisify(execFile)(p.paths.crane!, [
      'validate',
      '--insecure',
      '--remote',
      `${registry.host}/${repo}:put500`,
    ]);
  });

  it('refuses a blob whose body does not match its digest and stores nothing of it', async () => {
    proxy.add(blobGet(bigLayer.digest), { kind: 'corrupt' }, 100);
    const dir = join(tmp(), 'oci');
    await expect(
      copy(client, { transport: 'docker', ref: viaProxy() }, { transport: 'oci', path: dir }),
    ).rejects.toThrow(
      expect.objectContaining({ code: 'DIGEST_MISMATCH', message: expect.stringContaining(bigLayer.digest) }),
    );
    // the layout the copy created is removed again
    expect(existsSync(dir)).toBe(false);
    // into a layout that already exists: whatever did land is verified content, under its own digest; no temp files
    await OciLayout.create(dir);
    proxy.add(blobGet(bigLayer.digest), { kind: 'corrupt' }, 100);
    await expect(
      copy(client, { transport: 'docker', ref: viaProxy() }, { transport: 'oci', path: dir }),
    ).rejects.toThrow(expect.objectContaining({ code: 'DIGEST_MISMATCH' }));
    const blobs = join(dir, 'blobs', 'sha256');
    expect(existsSync(join(blobs, bigLayer.digest.slice(7)))).toBe(false);
    for (const f of readdirSync(blobs)) expect(sha256(readFileSync(join(blobs, f)))).toBe(`sha256:${f}`);
    const file = join(tmp(), 'blob');
    await expect(downloadBlob(client, viaProxy(), bigLayer, file)).rejects.toThrow(
      expect.objectContaining({ code: 'DIGEST_MISMATCH' }),
    );
    expect(readdirSync(join(file, '..'))).toEqual([]);
  });

  it('refuses a manifest whose body does not match the digest the registry announced', async () => {
    proxy.add((r) => r.method === 'GET' && r.url.includes('/manifests/'), { kind: 'corrupt' });
    await expect(pull(client, viaProxy())).rejects.toThrow(
      expect.objectContaining({
        code: 'REGISTRY_DIGEST',
        message: expect.stringContaining('content hashes to'),
      }),
    );
  });

  it('gives up on a registry that keeps failing, naming host, repository and status', async () => {
    const impatient = new RegistryClient({ credentials: async () => undefined, retries: 2, retryBaseMs: 10 });
    proxy.add((r) => r.url.includes('/manifests/'), { kind: 'status', status: 503 }, 100);
    try {
      const err = await resolveDigest(impatient, viaProxy()).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'REGISTRY_HTTP', host: proxy.host, repository: repo, status: 503 });
      expect((err as Error).message).toContain(`"${proxy.host}/${repo}": HTTP 503`);
      expect((err as Error).message).toContain('gave up after 3 attempts');
    } finally {
      await impatient.close();
    }
  });
});
