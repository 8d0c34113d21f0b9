import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, type RegistryRequest } from '../../src/registry/index.ts';
import { pareAsync as pare } from '../helpers/cli.ts';
import { type ConnectProxy, startConnectProxy } from '../helpers/connect-proxy.ts';
import { createFakeArchive, type FakeArchive } from '../helpers/fake-debian-archive.ts';
import { makeCertificate } from '../helpers/registry-server.ts';
import { tempDir } from '../helpers/tmp.ts';

/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY for registries and the Debian mirror, through the one HTTP layer, against a
 * CONNECT proxy written in the test (test/helpers/connect-proxy.ts). Both engines are covered: undici (manifests,
 * pings) and the wire reader (blob GETs, every mirror download).
 */

const BLOB = Buffer.from('blob through the tunnel');
const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    digest: `sha256:${'0'.repeat(64)}`,
    size: 2,
  },
  layers: [],
});
const MANIFEST_DIGEST = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;

/** A registry without auth: /v2/ answers 200, a manifest GET and a blob GET answer fixed bodies. */
function registry(req: IncomingMessage, res: ServerResponse) {
  if (req.url === '/v2/') res.writeHead(200).end('{}');
  else if (req.url?.includes('/manifests/'))
    res
      .writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': MANIFEST_DIGEST,
        'content-length': String(Buffer.byteLength(MANIFEST)),
      })
      .end(req.method === 'HEAD' ? undefined : MANIFEST);
  else res.writeHead(200, { 'content-length': String(BLOB.length) }).end(BLOB);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const get = (host: string, path: string, wire: boolean): RegistryRequest => ({
  method: 'GET',
  host,
  repository: 'app',
  path,
  scopes: ['repository:app:pull'],
  expect: [200],
  what: 'get',
  wire,
});

async function text(res: { body: AsyncIterable<Uint8Array> | null }): Promise<string> {
  return Buffer.concat(await Array.fromAsync(res.body ?? [])).toString();
}

describe('a registry behind a CONNECT proxy', () => {
  const dir = tempDir();
  let proxy: ConnectProxy;
  let plain: Server;
  let tls: Server;
  let plainHost: string;
  let tlsHost: string;
  let caFile: string;
  beforeAll(async () => {
    proxy = await startConnectProxy();
    const cert = makeCertificate(dir, 'registry');
    caFile = cert.cert;
    plain = createServer(registry);
    tls = createHttpsServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, registry);
    plainHost = await listen(plain);
    tlsHost = await listen(tls);
  });
  afterAll(async () => {
    plain?.close();
    tls?.close();
    await proxy?.close();
  });

  async function fetchBoth(host: string, env: Record<string, string>, extra = {}) {
    const c = new RegistryClient({ env, retries: 0, credentials: async () => undefined, ...extra });
    try {
      const manifest = await text(await c.request(get(host, '/v2/app/manifests/1', false)));
      const blob = await text(await c.request(get(host, '/v2/app/blobs/sha256:abc', true)));
      return { manifest, blob };
    } finally {
      await c.close();
    }
  }

  it('tunnels plain HTTP through HTTP_PROXY, for undici and the wire reader', async () => {
    proxy.tunnels.length = 0;
    const got = await fetchBoth(plainHost, { HTTP_PROXY: proxy.url });
    expect(got).toEqual({ manifest: MANIFEST, blob: BLOB.toString() });
    // the ping (TLS probe, then plain HTTP), the manifest, the blob: nothing went around the proxy
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(3);
    expect(new Set(proxy.tunnels.map((t) => t.authority))).toEqual(new Set([plainHost]));
  });

  it('tunnels TLS through HTTPS_PROXY, verifying the registry, with the proxy credentials', async () => {
    proxy.tunnels.length = 0;
    const got = await fetchBoth(tlsHost, { https_proxy: `http://me:pw@${proxy.url.slice(7)}` }, { caFile });
    expect(got).toEqual({ manifest: MANIFEST, blob: BLOB.toString() });
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(3);
    for (const t of proxy.tunnels) {
      expect(t).toEqual({
        authority: tlsHost,
        authorization: `Basic ${Buffer.from('me:pw').toString('base64')}`,
      });
    }
  });

  it('still refuses a certificate it cannot verify through the tunnel', async () => {
    const c = new RegistryClient({
      env: { HTTPS_PROXY: proxy.url },
      retries: 0,
      credentials: async () => undefined,
    });
    try {
      // Not loopback as far as trust goes: the registry's CA is not given, so the full set cannot verify it either.
      await expect(c.request(get(tlsHost, '/v2/app/manifests/1', false))).rejects.toMatchObject({
        code: 'REGISTRY_TLS',
      });
    } finally {
      await c.close();
    }
  });

  it('is used by the CLI from the environment (pare digest docker://…)', async () => {
    proxy.tunnels.length = 0;
    const r = await pare(['digest', `docker://${plainHost}/app:1`], {
      env: { HTTP_PROXY: proxy.url, NO_PROXY: '', http_proxy: '', no_proxy: '' },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(MANIFEST_DIGEST);
    expect(proxy.tunnels.length).toBeGreaterThanOrEqual(2);
    expect(new Set(proxy.tunnels.map((t) => t.authority))).toEqual(new Set([plainHost]));
  });

  it('goes around the proxy for hosts in NO_PROXY', async () => {
    proxy.tunnels.length = 0;
    const got = await fetchBoth(plainHost, { HTTP_PROXY: proxy.url, NO_PROXY: 'example.test,127.0.0.1' });
    expect(got.blob).toBe(BLOB.toString());
    expect(proxy.tunnels).toEqual([]);
  });

  it('fails with the proxy named and its answer when it refuses the tunnel', async () => {
    proxy.refuse('403 Forbidden');
    try {
      for (const wire of [false, true]) {
        const c = new RegistryClient({
          env: { HTTP_PROXY: proxy.url },
          retries: 0,
          credentials: async () => undefined,
        });
        try {
          await expect(c.request(get(plainHost, '/v2/app/blobs/sha256:abc', wire))).rejects.toMatchObject({
            code: 'REGISTRY_NETWORK',
            message: expect.stringMatching(/proxy.*403|403.*proxy/i),
          });
        } finally {
          await c.close();
        }
      }
    } finally {
      proxy.refuse(undefined);
    }
  });
});

describe('the Debian mirror behind a CONNECT proxy', () => {
  const dir = tempDir();
  let proxy: ConnectProxy;
  let archive: FakeArchive;
  beforeAll(async () => {
    proxy = await startConnectProxy();
    archive = await createFakeArchive({
      suites: [
        {
          name: 'bookworm',
          packages: [
            { name: 'app', version: '1', fields: { Depends: 'lib' } },
            { name: 'lib', version: '1' },
          ],
        },
      ],
    });
  });
  afterAll(async () => {
    await archive?.close();
    await proxy?.close();
  });

  function project(name: string): string {
    const p = join(dir, name);
    const { mkdirSync, writeFileSync } = process.getBuiltinModule('node:fs');
    mkdirSync(p, { recursive: true });
    writeFileSync(
      join(p, 'pare.yaml'),
      `name: ${name}\ndebian:\n  suite: bookworm\n  updates: false\n  security: false\n  mirror: ${archive.url}\n  keyring: ${archive.keyringAsc}\npackages: [app]\nslice: none\n`,
    );
    return p;
  }

  it('pare build fetches Release, index and .debs through HTTP_PROXY', async () => {
    proxy.tunnels.length = 0;
    archive.requests.length = 0;
    const p = project('via-proxy');
    const env = { XDG_CACHE_HOME: join(dir, 'cache1'), HTTP_PROXY: proxy.url, NO_PROXY: '' };
    const r = await pare(['build', p, '-o', join(dir, 'out1')], { env });
    expect(r.stderr).toContain('pare.lock: 2 packages');
    expect(r.code).toBe(0);
    const mirror = new URL(archive.url).host;
    // InRelease, Packages.gz, two .debs: one tunnel each, all to the mirror
    expect(proxy.tunnels.length).toBe(archive.requests.length);
    expect(archive.requests.length).toBeGreaterThanOrEqual(4);
    expect(new Set(proxy.tunnels.map((t) => t.authority))).toEqual(new Set([mirror]));
  });

  it('goes around it when NO_PROXY names the mirror', async () => {
    proxy.tunnels.length = 0;
    const p = project('no-proxy');
    const env = { XDG_CACHE_HOME: join(dir, 'cache2'), HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' };
    const r = await pare(['lock', p], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(proxy.tunnels).toEqual([]);
  });

  it('fails with exit 1 naming the proxy when it refuses', async () => {
    proxy.refuse('407 Proxy Authentication Required');
    try {
      const p = project('refused');
      const env = { XDG_CACHE_HOME: join(dir, 'cache3'), HTTP_PROXY: proxy.url, NO_PROXY: '' };
      const r = await pare(['lock', p], { env });
      expect(r.stderr).toMatch(/proxy "127\.0\.0\.1:\d+" answered "HTTP\/1\.1 407/);
      expect(r.stderr).not.toContain('internal error');
      expect(r.code).toBe(1);
    } finally {
      proxy.refuse(undefined);
    }
  });
});
