import { readFileSync } from 'node:fs';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, type RegistryRequest } from '../../src/registry/index.ts';
import { makeCertificate } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * Redirects through the real transport (no injected fetch): a registry on 127.0.0.1 that wants Basic credentials
 * redirects blob GETs to a "storage" server on another host (127.0.0.2), as distribution does to S3. Both engines are
 * covered: undici (`wire: false`) and the pooled-buffer reader (`wire: true`).
 */

const USER = 'alice';
const PASS = 's3cret';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;

interface Seen {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
}

/** Starts a server on `host` that records requests and answers with `answer`. */
async function start(
  host: string,
  answer: (req: IncomingMessage, res: ServerResponse) => void,
  tls?: { cert: string; key: string },
): Promise<{ origin: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    answer(req, res);
  };
  const server = tls
    ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler)
    : createServer(handler);
  await new Promise<void>((r) => server.listen(0, host, r));
  const { port } = server.address() as AddressInfo;
  return { origin: `${tls ? 'https' : 'http'}://${host}:${port}`, seen, server };
}

/** A registry wanting Basic auth on /v2/, sending blob GETs wherever `location(path)` says. */
function registry(location: (path: string) => string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers.authorization !== BASIC) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
      return;
    }
    if (req.url === '/v2/') {
      res.writeHead(200).end('{}');
      return;
    }
    res.writeHead(307, { location: location(req.url ?? '') }).end();
  };
}

const BLOB = Buffer.from('the blob bytes');
const storage = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-length': String(BLOB.length) }).end(BLOB);
};

function blobGet(host: string, wire: boolean): RegistryRequest {
  return {
    method: 'GET',
    host,
    repository: 'app',
    path: '/v2/app/blobs/sha256:abc',
    scopes: ['repository:app:pull'],
    expect: [200],
    what: 'get blob',
    wire,
  };
}

async function body(res: { body: AsyncIterable<Uint8Array> | null }): Promise<Buffer> {
  return Buffer.concat(await Array.fromAsync(res.body ?? []));
}

const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

function client(extra: ConstructorParameters<typeof RegistryClient>[0] = {}) {
  return new RegistryClient({
    credentials: async () => ({ username: USER, password: PASS }),
    retries: 1,
    sleep: async () => {},
    env: {},
    ...extra,
  });
}

describe.each([
  ['undici', false],
  ['wire', true],
])('redirects through %s', (_, wire) => {
  describe('when the registry sends a blob GET to another host', () => {
    it('sends the credentials to the registry only, and reads the blob from the other host', async () => {
      const store = await start('127.0.0.2', storage);
      const reg = await start(
        '127.0.0.1',
        registry((p) => `${store.origin}${p}?sig=1`),
      );
      servers.push(store.server, reg.server);
      const c = client();
      const host = new URL(reg.origin).host;
      try {
        const res = await c.request(blobGet(host, wire));
        expect((await body(res)).toString()).toBe(BLOB.toString());
      } finally {
        await c.close();
      }
      // The registry did get the credentials (so the check below is not vacuous) …
      expect(reg.seen.find((s) => s.path.includes('/blobs/'))?.headers.authorization).toBe(BASIC);
      // … and the storage host never did.
      expect(store.seen.map((s) => s.path)).toEqual(['/v2/app/blobs/sha256:abc?sig=1']);
      expect(store.seen[0]!.headers.authorization).toBeUndefined();
      expect(store.seen[0]!.headers.cookie).toBeUndefined();
    });

    it('keeps the credentials on a redirect within the same origin', async () => {
      let reg: Awaited<ReturnType<typeof start>> | undefined;
      reg = await start('127.0.0.1', (req, res) => {
        if (req.url?.startsWith('/moved/')) {
          if (req.headers.authorization !== BASIC) res.writeHead(401).end();
          else storage(req, res);
          return;
        }
        registry((p) => `${reg!.origin}/moved${p}`)(req, res);
      });
      servers.push(reg.server);
      const c = client();
      try {
        const res = await c.request(blobGet(new URL(reg.origin).host, wire));
        expect((await body(res)).toString()).toBe(BLOB.toString());
      } finally {
        await c.close();
      }
      expect(reg.seen.at(-1)?.headers.authorization).toBe(BASIC);
    });
  });

  describe('when an HTTPS registry redirects to plain HTTP', () => {
    const dir = tempDir();
    let tls: { cert: string; key: string };
    beforeAll(() => {
      tls = makeCertificate(dir, 'registry');
    });

    it('refuses with REGISTRY_PROTOCOL and sends nothing to the HTTP host', async () => {
      const plain = await start('127.0.0.1', storage);
      const reg = await start(
        '127.0.0.1',
        registry((p) => `${plain.origin}${p}`),
        tls,
      );
      servers.push(plain.server, reg.server);
      const c = client({ caFile: tls.cert });
      try {
        await expect(c.request(blobGet(new URL(reg.origin).host, wire))).rejects.toMatchObject({
          code: 'REGISTRY_PROTOCOL',
          message: expect.stringMatching(/HTTPS is never redirected to plain HTTP/),
        });
      } finally {
        await c.close();
      }
      expect(reg.seen.filter((s) => s.path.includes('/blobs/'))).toHaveLength(1); // refused, not retried
      expect(plain.seen).toEqual([]);
    });

    it('follows it to a host the user listed as insecure', async () => {
      const plain = await start('127.0.0.1', storage);
      const reg = await start(
        '127.0.0.1',
        registry((p) => `${plain.origin}${p}`),
        tls,
      );
      servers.push(plain.server, reg.server);
      const c = client({ caFile: tls.cert, insecureHosts: [new URL(plain.origin).host] });
      try {
        const res = await c.request(blobGet(new URL(reg.origin).host, wire));
        expect((await body(res)).toString()).toBe(BLOB.toString());
      } finally {
        await c.close();
      }
      expect(plain.seen).toHaveLength(1);
      expect(plain.seen[0]!.headers.authorization).toBeUndefined();
    });
  });

  describe('when a registry listed as insecure redirects to another HTTPS host', () => {
    const dir = tempDir();
    let regTls: { cert: string; key: string };
    let storeTls: { cert: string; key: string };
    beforeAll(() => {
      regTls = makeCertificate(dir, 'registry');
      storeTls = makeCertificate(dir, 'storage');
    });

    it("verifies the other host: being insecure is the registry's, not its redirects'", async () => {
      const store = await start('127.0.0.1', storage, storeTls);
      const reg = await start(
        '127.0.0.1',
        registry((p) => `${store.origin}${p}`),
        regTls,
      );
      servers.push(store.server, reg.server);
      const host = new URL(reg.origin).host;
      const c = client({ insecureHosts: [host] });
      try {
        await expect(c.request(blobGet(host, wire))).rejects.toMatchObject({ code: 'REGISTRY_TLS' });
      } finally {
        await c.close();
      }
      expect(store.seen).toEqual([]);
      // listed too, it is reached
      const c2 = client({ insecureHosts: [host, new URL(store.origin).host] });
      try {
        const res = await c2.request(blobGet(host, wire));
        expect((await body(res)).toString()).toBe(BLOB.toString());
      } finally {
        await c2.close();
      }
    });
  });

  describe('when redirects loop', () => {
    it('stops after 5 hops with REGISTRY_PROTOCOL, without retrying', async () => {
      let hops = 0;
      const reg = await start(
        '127.0.0.1',
        registry((p) => `${p.replace(/\?.*$/, '')}?hop=${++hops}`),
      );
      servers.push(reg.server);
      const c = client({ retries: 3 });
      try {
        await expect(c.request(blobGet(new URL(reg.origin).host, wire))).rejects.toMatchObject({
          code: 'REGISTRY_PROTOCOL',
          message: expect.stringMatching(/more than 5 redirects/),
        });
      } finally {
        await c.close();
      }
      expect(reg.seen.filter((s) => s.path.includes('/blobs/'))).toHaveLength(6);
    });
  });
});
