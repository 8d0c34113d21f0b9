import { describe, expect, it } from 'vitest';
import { proxyFor } from './proxy.ts';

describe('proxyFor', () => {
  describe('when choosing by scheme', () => {
    it.each([
      ['https://r.test/v2/', { HTTPS_PROXY: 'http://s:1', HTTP_PROXY: 'http://p:2' }, 'http://s:1/'],
      ['http://r.test/v2/', { HTTPS_PROXY: 'http://s:1', HTTP_PROXY: 'http://p:2' }, 'http://p:2/'],
      // as undici's EnvHttpProxyAgent: HTTPS falls back to HTTP_PROXY, never the other way
      ['https://r.test/', { HTTP_PROXY: 'http://p:2' }, 'http://p:2/'],
      ['http://r.test/', { HTTPS_PROXY: 'http://s:1' }, undefined],
      // lower case wins, as in curl
      ['http://r.test/', { http_proxy: 'http://lower:3', HTTP_PROXY: 'http://upper:4' }, 'http://lower:3/'],
      ['http://r.test/', { HTTP_PROXY: 'p:5' }, 'http://p:5/'],
      // an empty variable counts as unset
      ['http://r.test/', { http_proxy: '', HTTP_PROXY: 'http://upper:4' }, 'http://upper:4/'],
      ['http://r.test/', {}, undefined],
    ])('%s under %j goes through %s', (url, env, want) => {
      expect(proxyFor(new URL(url), env)?.url.href).toBe(want);
    });
  });

  describe('when NO_PROXY lists hosts', () => {
    const env = (no: string) => ({ HTTP_PROXY: 'http://p:2', NO_PROXY: no });
    it.each([
      ['http://r.test/', 'r.test', false],
      ['http://a.r.test/', 'r.test', false],
      ['http://a.r.test/', '.r.test', false],
      ['http://a.r.test/', '*.r.test', false],
      ['http://xr.test/', 'r.test', true],
      ['http://r.test:8080/', 'r.test:8080', false],
      ['http://r.test:8081/', 'r.test:8080', true],
      ['http://r.test/', 'r.test:80', false],
      ['http://127.0.0.1:5000/', 'localhost', true],
      ['http://127.0.0.1:5000/', 'a.test, 127.0.0.1', false],
      ['http://R.TEST/', 'r.test', false],
      ['http://r.test/', '*', false],
      ['http://r.test/', '', true],
    ])('%s with NO_PROXY=%j is proxied: %s', (url, no, proxied) => {
      expect(proxyFor(new URL(url), env(no)) !== undefined).toBe(proxied);
    });
  });

  it('sends the user and password of the proxy URL as Proxy-Authorization', () => {
    const p = proxyFor(new URL('https://r.test/'), { HTTPS_PROXY: 'http://me:p%40ss@p:3128' });
    expect(p?.authorization).toBe(`Basic ${Buffer.from('me:p@ss').toString('base64')}`);
  });

  it('refuses proxies it cannot speak to, with HTTP_PROXY_INVALID', () => {
    expect(() => proxyFor(new URL('https://r.test/'), { HTTPS_PROXY: 'socks5://p:1080' })).toThrow(
      expect.objectContaining({
        code: 'HTTP_PROXY_INVALID',
        message: expect.stringContaining('socks5://p:1080'),
      }),
    );
  });
});
