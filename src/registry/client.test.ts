import { Response } from 'undici';
import { describe, expect, it } from 'vitest';
import { repositoryScope } from './auth.ts';
import {
  type FetchLike,
  parseRetryAfter,
  RegistryClient,
  type RegistryClientOptions,
  type RegistryResponse,
} from './client.ts';
import { staticCredentials } from './credentials.ts';

/** A scripted registry: each handler answers one request; every request is recorded. */
type Handler = (
  url: URL,
  init: { method: string; headers: Record<string, string> },
) => Response | Promise<Response>;

function fake(handler: Handler) {
  const calls: { method: string; url: string; auth: string | undefined }[] = [];
  const fetch: FetchLike = async (url, init) => {
    const headers = (init.headers ?? {}) as Record<string, string>;
    const method = init.method ?? 'GET';
    calls.push({ method, url, auth: headers.authorization });
    return handler(new URL(url), { method, headers });
  };
  return { fetch, calls };
}

function client(fetch: FetchLike, extra: RegistryClientOptions = {}) {
  const sleeps: number[] = [];
  const c = new RegistryClient({
    fetch,
    credentials: async () => undefined,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    retryBaseMs: 10,
    ...extra,
  });
  return { c, sleeps };
}

const HOST = 'registry.test';
const text = async (res: RegistryResponse) => Buffer.concat(await Array.fromAsync(res.body ?? [])).toString();
const get = (c: RegistryClient, path: string, expect = [200]) =>
  c.request({
    method: 'GET',
    host: HOST,
    repository: 'app',
    path,
    scopes: [repositoryScope('app', 'pull')],
    expect,
    what: 'get thing',
  });

describe('RegistryClient.request', () => {
  describe('when the registry uses bearer tokens', () => {
    const challenge = 'Bearer realm="https://auth.test/token",service="svc"';
    it('gets a token per scope with basic credentials, caches it and re-auths after a 401', async () => {
      let issued = 0;
      let revoke = false;
      const { fetch, calls } = fake((url, init) => {
        if (url.host === 'auth.test') {
          expect(init.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
          expect(url.searchParams.get('service')).toBe('svc');
          issued++;
          return Response.json({
            token: `t${issued}:${url.searchParams.getAll('scope').join(' ')}`,
            expires_in: 300,
          });
        }
        if (url.pathname === '/v2/')
          return new Response('', { status: 401, headers: { 'www-authenticate': challenge } });
        if (revoke && init.headers.authorization === 'Bearer t1:repository:app:pull') {
          revoke = false;
          return new Response('', {
            status: 401,
            headers: { 'www-authenticate': `${challenge},scope="repository:app:pull"` },
          });
        }
        return new Response('ok');
      });
      const { c } = client(fetch, { credentials: staticCredentials(HOST, { username: 'u', password: 'p' }) });
      await text(await get(c, '/v2/app/tags/list'));
      await text(await get(c, '/v2/app/tags/list'));
      expect(issued).toBe(1);
      revoke = true;
      await text(await get(c, '/v2/app/tags/list'));
      expect(issued).toBe(2);
      expect(calls.filter((x) => x.url.includes('/tags/list')).map((x) => x.auth)).toEqual([
        'Bearer t1:repository:app:pull',
        'Bearer t1:repository:app:pull',
        'Bearer t1:repository:app:pull',
        'Bearer t2:repository:app:pull',
      ]);
    });

    it('uses the OAuth2 refresh-token grant for an identity token', async () => {
      const { fetch } = fake(async (url, init) => {
        if (url.host === 'auth.test') {
          expect(init.method).toBe('POST');
          return Response.json({ access_token: 'at' });
        }
        if (url.pathname === '/v2/')
          return new Response('', { status: 401, headers: { 'www-authenticate': challenge } });
        expect(init.headers.authorization).toBe('Bearer at');
        return new Response('ok');
      });
      const { c } = client(fetch, { credentials: staticCredentials(HOST, { identityToken: 'refresh' }) });
      expect((await get(c, '/v2/app/tags/list')).status).toBe(200);
    });

    it('throws REGISTRY_AUTH naming the host when the token server refuses the credentials', async () => {
      const { fetch } = fake((url) => {
        if (url.host === 'auth.test') return new Response('{}', { status: 401 });
        return new Response('', { status: 401, headers: { 'www-authenticate': challenge } });
      });
      const { c } = client(fetch, {
        credentials: staticCredentials(HOST, { username: 'u', password: 'bad' }),
      });
      await expect(get(c, '/v2/app/tags/list')).rejects.toThrow(
        expect.objectContaining({
          code: 'REGISTRY_AUTH',
          host: HOST,
          message: expect.stringContaining('pare login'),
        }),
      );
    });

    it('refuses to send credentials to a plain-HTTP realm on a remote host', async () => {
      const { fetch } = fake(
        () =>
          new Response('', {
            status: 401,
            headers: { 'www-authenticate': 'Bearer realm="http://auth.test/t"' },
          }),
      );
      const { c } = client(fetch);
      await expect(get(c, '/v2/app/tags/list')).rejects.toThrow(
        expect.objectContaining({ code: 'REGISTRY_AUTH', message: expect.stringContaining('not HTTPS') }),
      );
    });
  });

  describe('when the registry uses basic auth', () => {
    it('sends the credentials on every request', async () => {
      const { fetch, calls } = fake((url, init) => {
        if (url.pathname === '/v2/')
          return new Response('', { status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } });
        return new Response(init.headers.authorization ? 'ok' : 'no', {
          status: init.headers.authorization ? 200 : 401,
        });
      });
      const { c } = client(fetch, {
        credentials: staticCredentials(HOST, { username: 'a', password: 'b:c' }),
      });
      await text(await get(c, '/v2/app/tags/list'));
      expect(calls.at(-1)!.auth).toBe(`Basic ${Buffer.from('a:b:c').toString('base64')}`);
    });
  });

  describe('when the registry is overloaded', () => {
    it('retries 429 after the Retry-After delay and 5xx with backoff, then succeeds', async () => {
      let n = 0;
      const { fetch } = fake((url) => {
        if (url.pathname === '/v2/') return new Response('');
        n++;
        if (n === 1) return new Response('', { status: 429, headers: { 'retry-after': '3' } });
        if (n === 2) return new Response('', { status: 503 });
        return new Response('ok');
      });
      const { c, sleeps } = client(fetch);
      expect(await text(await get(c, '/v2/app/x'))).toBe('ok');
      expect(sleeps[0]).toBe(3000);
      expect(sleeps).toHaveLength(2);
    });

    it('gives up with an error naming host, repository, status and attempts', async () => {
      const { fetch } = fake((url) =>
        url.pathname === '/v2/'
          ? new Response('')
          : Response.json(
              { errors: [{ code: 'UNAVAILABLE', message: 'down' }] },
              { status: 503, statusText: 'Service Unavailable' },
            ),
      );
      const { c } = client(fetch, { retries: 2 });
      const err = await get(c, '/v2/app/x').catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'REGISTRY_HTTP',
        host: HOST,
        repository: 'app',
        status: 503,
        diagnostics: [{ code: 'UNAVAILABLE', message: 'down' }],
      });
      expect((err as Error).message).toBe(
        'cannot get thing in "registry.test/app": HTTP 503 Service Unavailable: UNAVAILABLE down (gave up after 3 attempts)',
      );
    });

    it('does not repeat requests marked retry: false', async () => {
      let n = 0;
      const { fetch } = fake((url) => {
        if (url.pathname === '/v2/') return new Response('');
        n++;
        return new Response('', { status: 500 });
      });
      const { c } = client(fetch);
      await expect(
        c.request({
          method: 'PATCH',
          host: HOST,
          path: '/v2/app/blobs/uploads/x',
          scopes: [],
          expect: [202],
          retry: false,
          what: 'upload',
        }),
      ).rejects.toThrow(expect.objectContaining({ code: 'REGISTRY_HTTP', status: 500 }));
      expect(n).toBe(1);
    });
  });

  describe('when a request fails', () => {
    it.each([
      [404, 'REGISTRY_NOT_FOUND'],
      [403, 'REGISTRY_AUTH'],
      [400, 'REGISTRY_HTTP'],
    ])('maps HTTP %i to %s', async (status, code) => {
      const { fetch } = fake((url) =>
        url.pathname === '/v2/' ? new Response('') : new Response('', { status }),
      );
      const { c } = client(fetch);
      await expect(get(c, '/v2/app/x')).rejects.toThrow(expect.objectContaining({ code, status }));
    });

    it('maps a DIGEST_INVALID body to REGISTRY_DIGEST', async () => {
      const { fetch } = fake((url) =>
        url.pathname === '/v2/'
          ? new Response('')
          : Response.json({ errors: [{ code: 'DIGEST_INVALID', message: 'bad' }] }, { status: 400 }),
      );
      const { c } = client(fetch);
      await expect(get(c, '/v2/app/x')).rejects.toThrow(expect.objectContaining({ code: 'REGISTRY_DIGEST' }));
    });

    it('reports a registry that is not a registry', async () => {
      const { fetch } = fake(() => new Response('', { status: 404 }));
      const { c } = client(fetch);
      await expect(get(c, '/v2/app/x')).rejects.toThrow(
        expect.objectContaining({
          code: 'REGISTRY_PROTOCOL',
          message: expect.stringContaining('not an OCI distribution registry'),
        }),
      );
    });

    it('retries network errors and then names the cause', async () => {
      let n = 0;
      const fetch: FetchLike = async () => {
        n++;
        throw new TypeError('fetch failed', {
          cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        });
      };
      const { c } = client(fetch, { retries: 1 });
      await expect(get(c, '/v2/app/x')).rejects.toThrow(
        expect.objectContaining({
          code: 'REGISTRY_NETWORK',
          message: expect.stringContaining('ECONNREFUSED'),
        }),
      );
      expect(n).toBe(2);
    });
  });
});

describe('RegistryClient scheme', () => {
  it('falls back to plain HTTP on loopback when the server does not speak TLS', async () => {
    const { fetch, calls } = fake((url) => {
      if (url.protocol === 'https:')
        throw new TypeError('fetch failed', {
          cause: Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }),
        });
      return new Response('');
    });
    const c = new RegistryClient({ fetch, credentials: async () => undefined });
    expect(await c.ping('127.0.0.1:5000')).toEqual({ base: 'http://127.0.0.1:5000', auth: 'none' });
    expect(calls.map((x) => x.url)).toEqual(['https://127.0.0.1:5000/v2/', 'http://127.0.0.1:5000/v2/']);
  });

  it('never falls back to HTTP for a remote host, and never after a certificate error', async () => {
    const tlsFail = (code: string) => () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
    };
    const remote = new RegistryClient({
      fetch: async () => tlsFail('ERR_SSL_WRONG_VERSION_NUMBER')(),
      retries: 0,
    });
    await expect(remote.ping('registry.test')).rejects.toThrow(
      expect.objectContaining({ code: 'REGISTRY_NETWORK' }),
    );
    const cert = new RegistryClient({
      fetch: async () => tlsFail('DEPTH_ZERO_SELF_SIGNED_CERT')(),
      retries: 0,
    });
    await expect(cert.ping('127.0.0.1:5000')).rejects.toThrow(
      expect.objectContaining({ code: 'REGISTRY_TLS', message: expect.stringContaining('--ca-file') }),
    );
  });
});

describe('parseRetryAfter', () => {
  it.each([
    ['5', 5000],
    ['Wed, 21 Oct 2015 07:28:10 GMT', 10_000],
    ['soon', undefined],
    [null, undefined],
  ])('reads %s', (v, want) => {
    expect(parseRetryAfter(v, Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(want);
  });
});
