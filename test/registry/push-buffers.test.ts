import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/digest/index.ts';
import { layoutBlobFile, readLocal, writeLocal } from '../../src/layout/index.ts';
import { buildImage, type Image, layerFromBytes, MediaType } from '../../src/oci/index.ts';
import {
  parseReference,
  pushImage,
  RegistryClient,
  type RegistryClientOptions,
} from '../../src/registry/index.ts';
import { peersOrSkip } from '../helpers/peers.ts';
import { type RegistryServer, startRegistry } from '../helpers/registry-server.ts';
import { tarOneFile } from './images.ts';

/**
 * Pushing a layout reuses its read buffers (push.ts: a ring per upload, refilled while the socket may still hold the
 * previous chunk). These tests push layout layers larger than the ring through a relay that reads slowly, so pare's
 * socket writes are left partly queued, and then check every blob the registry stored byte for byte: the registry
 * checks `?digest=` on every upload, and the blobs are read back and hashed here.
 */

const p = peersOrSkip('registry');

/** A TCP relay to `upstream` that reads what the client sends one chunk at a time with a pause after each. */
async function startSlowRelay(upstream: string): Promise<{ host: string; stop(): Promise<void> }> {
  const [uhost, uport] = upstream.split(':');
  const sockets = new Set<Socket>();
  const server: Server = createServer((c) => {
    const u = netConnect({ host: uhost, port: Number(uport) });
    sockets.add(c).add(u);
    u.pipe(c);
    c.on('data', (d) => {
      u.write(d);
      c.pause();
      setTimeout(() => c.resume(), 2);
    });
    c.on('end', () => u.end());
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
    c.on('close', () => sockets.delete(c));
    u.on('close', () => sockets.delete(u));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(p.skip)('push reuses read buffers without corrupting uploads', () => {
  let registry: RegistryServer;
  let relay: Awaited<ReturnType<typeof startSlowRelay>>;
  let dir: string;
  let image: Image;
  const clients: RegistryClient[] = [];
  const client = (o: RegistryClientOptions = {}) => {
    const c = new RegistryClient({ credentials: async () => undefined, ...o });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    registry = await startRegistry({ auth: 'none' });
    relay = await startSlowRelay(registry.host);
    dir = mkdtempSync(join(tmpdir(), 'pare-push-buffers-'));
    // Sizes around the 1 MiB read: several reads with a short tail, exactly one read, less than one read.
    const sizes = [12 * (1 << 20) + 4097, (1 << 20) - 1024, 5000];
    const built = buildImage({
      layers: sizes.map((n, i) => {
        const tar = tarOneFile(`blob-${i}`, randomBytes(n));
        return layerFromBytes(gzipSync(tar, { level: 1 }), MediaType.OCI_LAYER_GZIP, sha256(tar));
      }),
      platform: { os: 'linux', architecture: 'amd64' },
      created: '2024-01-01T00:00:00Z',
    });
    const ref = { transport: 'oci', path: join(dir, 'layout'), tag: 'latest' } as const;
    await writeLocal(ref, { kind: 'image', image: built });
    const a = await readLocal(ref);
    if (a.kind !== 'image') throw new Error('expected an image');
    image = a.image;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await relay?.stop();
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Reads every layer of `repo` back from the registry and checks its digest and size. */
  async function expectStored(repo: string): Promise<void> {
    const m = await image.manifest();
    for (const d of m.layers) {
      const res = await fetch(`${registry.url}/v2/${repo}/blobs/${d.digest}`);
      expect(res.status).toBe(200);
      const body = new Uint8Array(await res.arrayBuffer());
      expect(body.length).toBe(d.size);
      expect(sha256(body)).toBe(d.digest);
    }
  }

  it('reads the layers from the layout files (the path that reuses buffers)', async () => {
    const layers = await image.layers();
    expect(layers.map((l) => layoutBlobFile(l) !== undefined)).toEqual([true, true, true]);
  });

  it('pushes monolithic uploads through a slow reader intact', async () => {
    const desc = await pushImage(client(), parseReference(`${relay.host}/ring/mono:1`), image);
    expect(desc.digest).toBe(await image.digest());
    await expectStored('ring/mono');
  });

  it('pushes chunked uploads, with chunks that are not a multiple of the read size, intact', async () => {
    const c = client({ chunkedThreshold: 1 << 20, chunkSize: 1_500_000 });
    const desc = await pushImage(c, parseReference(`${relay.host}/ring/chunked:1`), image);
    expect(desc.digest).toBe(await image.digest());
    await expectStored('ring/chunked');
  });
});
