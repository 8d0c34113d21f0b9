import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBlob, type ImageReference, RegistryClient } from '../../src/registry/index.ts';

/**
 * A registry that speaks HTTP/1.0: one response per connection, bodies delimited by the connection's close (no
 * Content-Length), FIN right after the last byte. With a reader slower than the network, undici 7 paused its parser
 * and then threw an uncatchable `assert(!this.paused)` from the socket's 'end' handler (nodejs/undici#5360), which
 * killed the process (and this test's worker) on the first manifest. Blob bodies go through wire.ts, which reads
 * close-delimited bodies itself.
 */

const HEAD = 'HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n';
/**
 * Manifest sizes that make head + body a whole number of 64 KiB socket reads: the last read then fills undici's body
 * buffer, the parser pauses on it, and the FIN arrives while it is paused (the crash, every time on undici 7.30).
 */
const sizes = [1, 2, 3, 5, 8, 13].map((k) => k * 65536 - HEAD.length);
let n = 0;
const blob = Buffer.alloc(40 * 65536 - HEAD.length, 0x62);
const blobDigest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as const;

let server: Server;
let host: string;
beforeAll(async () => {
  server = createServer((sock: Socket) => {
    let head = '';
    sock.on('error', () => {});
    sock.on('data', function onData(d) {
      if (d[0] === 0x16) return sock.destroy(); // a TLS probe: not spoken here
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      sock.off('data', onData);
      const path = /^\S+ (\S+)/.exec(head)?.[1] ?? '';
      const body =
        path === '/v2/'
          ? Buffer.from('{}')
          : path.includes('/blobs/')
            ? blob
            : Buffer.alloc(sizes[n++ % sizes.length]!, 0x61);
      sock.end(Buffer.concat([Buffer.from(HEAD), body]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  host = `127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => server?.close());

const slowly = () => new Promise((r) => setTimeout(r, 1));

describe('a registry that closes the connection after each response', () => {
  it('reads manifests through undici with a slow reader, and the process survives', async () => {
    const c = new RegistryClient({ env: {}, retries: 0, credentials: async () => undefined });
    try {
      for (let i = 0; i < sizes.length * 2; i++) {
        const want = sizes[n % sizes.length];
        const res = await c.request({
          method: 'GET',
          host,
          repository: 'app',
          path: `/v2/app/manifests/${i}`,
          scopes: [],
          expect: [200],
          what: 'get manifest',
        });
        let got = 0;
        for await (const chunk of res.body ?? []) {
          got += chunk.length;
          await slowly();
        }
        expect(got).toBe(want);
      }
    } finally {
      await c.close();
    }
  });

  it('reads a blob, verified, with a slow reader', async () => {
    const c = new RegistryClient({ env: {}, retries: 0, credentials: async () => undefined });
    try {
      const ref: ImageReference = { registry: host, repository: 'app', tag: '1' };
      let got = 0;
      for await (const chunk of fetchBlob(c, ref, { digest: blobDigest, size: blob.length })) {
        got += chunk.length;
        await slowly();
      }
      expect(got).toBe(blob.length);
    } finally {
      await c.close();
    }
  });
});
