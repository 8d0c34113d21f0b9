import { HttpError } from '../errors.ts';

/**
 * Which proxy a request goes through, from `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (lower case wins, as in curl
 * and undici; an empty variable counts as unset, as in curl). The rules are those of undici's `EnvHttpProxyAgent`: `https:` URLs use HTTPS_PROXY, else HTTP_PROXY;
 * `http:` URLs use HTTP_PROXY; NO_PROXY lists host names (a leading `.` or `*.` is ignored, and subdomains match too)
 * with an optional `:port`, or `*` for none at all. They are decided here, once, because two transports need the
 * answer: undici (through its `ProxyAgent`) and the pooled-buffer body reader (wire.ts), which tunnels itself.
 * Loopback hosts are not exempt unless NO_PROXY says so (curl does the same).
 */

export type Env = Readonly<Record<string, string | undefined>>;

const DEFAULT_PORTS: Record<string, number> = { 'http:': 80, 'https:': 443 };

/** A proxy to use: its URL (`http://[user:pass@]host:port`). */
export interface ProxyRoute {
  readonly url: URL;
  /** `Proxy-Authorization` from the URL's user and password, if any. */
  readonly authorization?: string;
}

/** Returns the proxy for `url` under `env`, or undefined to connect directly. Throws for an unusable proxy URL. */
export function proxyFor(url: URL, env: Env): ProxyRoute | undefined {
  // An empty variable counts as unset (as in curl), so `http_proxy=` does not hide HTTP_PROXY.
  const http = env.http_proxy || env.HTTP_PROXY;
  const raw = url.protocol === 'https:' ? env.https_proxy || env.HTTPS_PROXY || http : http;
  if (!raw) return undefined;
  if (!shouldProxy(url, env.no_proxy || env.NO_PROXY || '')) return undefined;
  let proxy: URL;
  try {
    proxy = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch (e) {
    throw new HttpError('HTTP_PROXY_INVALID', `cannot use proxy ${JSON.stringify(raw)}: not a URL`, {
      cause: e,
    });
  }
  if (proxy.protocol !== 'http:')
    throw new HttpError(
      'HTTP_PROXY_INVALID',
      `cannot use proxy ${JSON.stringify(raw)}: only http:// proxies are supported (CONNECT tunnels)`,
    );
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return user || pass
    ? { url: proxy, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` }
    : { url: proxy };
}

function shouldProxy(url: URL, noProxy: string): boolean {
  const entries = noProxy.split(/[,\s]/).filter(Boolean);
  if (entries.length === 0) return true;
  if (noProxy.trim() === '*') return false;
  const host = url.host.replace(/:\d*$/, '').toLowerCase();
  const port = Number.parseInt(url.port, 10) || DEFAULT_PORTS[url.protocol] || 0;
  for (const entry of entries) {
    const m = /^(.+):(\d+)$/.exec(entry);
    const name = (m ? m[1]! : entry).replace(/^\*?\./, '').toLowerCase();
    const p = m ? Number.parseInt(m[2]!, 10) : 0;
    if (p && p !== port) continue;
    if (host === name || host.endsWith(`.${name}`)) return false;
  }
  return true;
}

/** A short description for messages: `proxy "http://host:port"` (never the password). */
export function describeProxy(p: ProxyRoute): string {
  return `proxy "${p.url.protocol}//${p.url.host}"`;
}
