import { randomBytes } from 'node:crypto';
import { Response } from 'undici';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../digest/index.ts';
import { buildImage, layerFromBytes, MediaType } from '../oci/index.ts';
import { type FetchLike, RegistryClient } from './client.ts';
import { pushImage } from './push.ts';
import { parseReference } from './reference.ts';

/**
 * How a push schedules its requests, against an in-memory registry that takes a body a little at a time: at most
 * `concurrency` big bodies at once, at most `concurrency` blobs checked or started ahead of them, small blobs beside
 * them, every blob stored with its digest.
 */

const HOST = '127.0.0.1:5000';

interface Stats {
  bodies: number;
  peakBodies: number;
  sessions: number;
  peakSessions: number;
  readonly stored: Map<string, Uint8Array>;
  readonly order: string[];
}

/** A registry in memory: HEAD 404 until stored, POST opens a session, PUT ?digest= reads the body and checks it. */
function fakeRegistry(): { fetch: FetchLike; stats: Stats } {
  const stats: Stats = {
    bodies: 0,
    peakBodies: 0,
    sessions: 0,
    peakSessions: 0,
    stored: new Map(),
    order: [],
  };
  let next = 0;
  // Big bodies are held until a small blob has been stored (or, when none comes, for at most 5 s), so what is sent
  // beside a big transfer is seen whatever the event loop's interleaving; the bound only ends a failing test.
  let smallStored = (): void => {};
  const small = new Promise<void>((r) => {
    smallStored = r;
  });
  const fetch: FetchLike = async (url, init) => {
    const u = new URL(url);
    const method = init.method ?? 'GET';
    if (u.pathname === '/v2/') return new Response(null, { status: 200 });
    const blob = /^\/v2\/app\/blobs\/(sha256:[0-9a-f]{64})$/.exec(u.pathname);
    if (method === 'HEAD' && blob)
      return new Response(null, { status: stats.stored.has(blob[1]!) ? 200 : 404 });
    if (method === 'POST' && u.pathname === '/v2/app/blobs/uploads/') {
      stats.peakSessions = Math.max(stats.peakSessions, ++stats.sessions);
      return new Response(null, { status: 202, headers: { location: `/v2/app/blobs/uploads/s${next++}` } });
    }
    if (method === 'PUT' && u.pathname.startsWith('/v2/app/blobs/uploads/')) {
      const digest = u.searchParams.get('digest')!;
      const chunks: Uint8Array[] = [];
      const big = Number((init.headers as Record<string, string>)['content-length']) >= 1 << 20;
      if (big) {
        stats.peakBodies = Math.max(stats.peakBodies, ++stats.bodies);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([small, new Promise((r) => (timer = setTimeout(r, 5000)))]);
        clearTimeout(timer);
      }
      for await (const c of init.body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
      if (big) stats.bodies--;
      stats.sessions--;
      const body = Buffer.concat(chunks);
      if (sha256(body) !== digest)
        return new Response('{"errors":[{"code":"DIGEST_INVALID"}]}', { status: 400 });
      stats.stored.set(digest, body);
      stats.order.push(digest);
      if (!big) smallStored();
      return new Response(null, { status: 201 });
    }
    if (method === 'PUT' && u.pathname.startsWith('/v2/app/manifests/'))
      return new Response(null, { status: 201 });
    return new Response(null, { status: 404 });
  };
  return { fetch, stats };
}

/** Pushes an image of `count` random layers of `size` bytes with `concurrency`; returns its manifest and the stats. */
async function pushRandomImage(count: number, size: number, concurrency: number) {
  const layers = Array.from({ length: count }, () => {
    const bytes = randomBytes(size);
    return layerFromBytes(bytes, MediaType.OCI_LAYER, sha256(bytes));
  });
  const image = buildImage({
    layers,
    platform: { os: 'linux', architecture: 'amd64' },
    created: '2024-01-01T00:00:00Z',
  });
  const { fetch, stats } = fakeRegistry();
  const client = new RegistryClient({ fetch, credentials: async () => undefined, concurrency });
  await pushImage(client, parseReference(`${HOST}/app:1`), image);
  return { m: await image.manifest(), stats };
}

describe('pushImage scheduling', () => {
  it('sends at most `concurrency` big bodies at once, opens few sessions ahead, and stores every blob', async () => {
    const { m, stats } = await pushRandomImage(8, (1 << 20) + 100_000, 2);
    for (const d of [m.config, ...m.layers]) expect(sha256(stats.stored.get(d.digest)!)).toBe(d.digest);
    expect(stats.peakBodies).toBe(2);
    // Two sessions sending, two opened and waiting for a transfer turn; the small config may add one.
    expect(stats.peakSessions).toBeLessThanOrEqual(5);
    expect(stats.sessions).toBe(0);
  });

  it('sends a small blob without waiting for a transfer turn', async () => {
    const { m, stats } = await pushRandomImage(4, (1 << 20) + 1, 1);
    // One transfer turn, held by the registry until a small blob arrives: the config is stored before any layer.
    expect(stats.order[0]).toBe(m.config.digest);
    expect(stats.peakBodies).toBe(1);
  });
});
