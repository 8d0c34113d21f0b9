import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, getCACertificates, type SecureContext } from 'node:tls';
import type { buildConnector, Dispatcher } from 'undici';
import { HttpError } from '../errors.ts';
import {
  DEFAULT_POLICY,
  MAX_REDIRECTS,
  type PlainHttpRules,
  REDIRECT_STATUS,
  redirectTarget,
  tooManyRedirects,
} from './policy.ts';
import { describeProxy, type Env, type ProxyRoute, proxyFor } from './proxy.ts';
import { type BodySink, wireRequest } from './wire.ts';

/**
 * The one HTTP client of pare, for registries and Debian mirrors alike: TLS trust (bundled + system roots + CA files,
 * one context built on the first HTTPS connection), proxies from the environment (proxy.ts), redirects followed by
 * hand for GET/HEAD under one policy (policy.ts), and a deadline for the response headers. Two engines: undici's public
 * API (`Agent`/`ProxyAgent` + `request`) for requests with small or uploaded bodies, and the pooled-buffer reader
 * (wire.ts) for GETs whose bodies are big (blobs, indexes, .debs) — and from servers that close the connection after
 * the body (HTTP/1.0), where undici 7 crashes the process when the close arrives while the body is paused under
 * backpressure (nodejs/undici#5360: an `assert(!this.paused)` thrown from the socket's 'end' handler, which no caller
 * can catch). Retries are the caller's (their policy is in policy.ts); nothing here prints.
 *
 * undici is imported on the first request that needs it, so commands that do not touch the network never load it.
 */

/** Which TLS trust a request uses: verified (all CAs), insecure (no verification), or the loopback probe (bundled). */
export type TlsMode = 'verify' | 'insecure' | 'probe';

/** The part of an HTTP response pare uses, whichever engine produced it. */
export interface HttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  readonly body: AsyncIterable<Uint8Array> | null;
  /** Discards the rest of the body so the connection can be reused or closed. */
  cancel(): Promise<void>;
  /** For `wire` requests: streams the body into pooled buffers (wire.ts) instead of `body`. */
  readonly pump?: (sink: BodySink) => Promise<void>;
  /** The URL that answered (after redirects). */
  readonly url: string;
}

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  readonly method: HttpMethod;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Dispatcher.DispatchOptions['body'];
  readonly signal?: AbortSignal;
  /** TLS trust; default `verify`, or `insecure` for a host listed as insecure. */
  readonly tls?: TlsMode;
  /** A GET or HEAD read with the pooled-buffer reader (wire.ts); the body is then taken with `pump` or `body`. */
  readonly wire?: boolean;
}

export interface TransportOptions {
  /** PEM files of extra trusted CAs, added to the bundled and system roots. */
  readonly caFile?: string | readonly string[];
  /** Hosts (`host[:port]`) reached over plain HTTP or with an unverified certificate, as the user asked. */
  readonly insecureHosts?: readonly string[];
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY come from; default `process.env`. */
  readonly env?: Env;
  /** Connect + response-headers timeout, and the longest pause while reading a body. */
  readonly timeoutMs?: number;
  /**
   * True when plain HTTP may go to any host (a Debian mirror, whose files are checked against the signed Release);
   * otherwise only to loopback and insecure hosts (a registry, which gets credentials). HTTPS is never redirected to
   * plain HTTP either way, unless the target is listed as insecure.
   */
  readonly plainHttpAnywhere?: boolean;
}

/** Returns true for hosts on the loopback interface, where plain HTTP is allowed as docker allows it. */
export function isLoopbackHost(host: string): boolean {
  let name = host;
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']'));
  else if (name.includes(':') && isIP(name) !== 6) name = name.slice(0, name.lastIndexOf(':'));
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1';
  return false;
}

/** Returns the message of `e` and its causes, without repeats (for "cannot … : <this>"). */
export function describeCause(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur instanceof Error; i++) {
    const code = (cur as { code?: string }).code;
    // Node suggests --use-system-ca for certificate errors; the transport already trusts the system roots.
    const message = cur.message.replace(
      /; if the root CA is installed locally, try running Node\.js with --use-system-ca/,
      '',
    );
    const text = code && !message.includes(code) ? `${message} (${code})` : message;
    if (!parts.some((p) => p.includes(text))) parts.push(text);
    cur = cur.cause;
  }
  return parts.join(': ') || String(e);
}

type Undici = typeof import('undici');
let undiciModule: Promise<Undici> | undefined;
const loadUndici = (): Promise<Undici> => {
  undiciModule ??= import('undici');
  return undiciModule;
};
// Not `import … from 'node:http'`: the ESM facade of node:http reads every export, and its lazy WebSocket getters load
// Node's internal copy of undici (22 ms of start-up, measured); the CommonJS module is the same object without that.
const { STATUS_CODES } = process.getBuiltinModule('node:http');

export class HttpTransport {
  readonly timeoutMs: number;
  readonly env: Env;
  readonly #options: TransportOptions;
  readonly #insecure: Set<string>;
  readonly #agents = new Map<string, Dispatcher>();
  #secure: SecureContext | undefined;

  constructor(options: TransportOptions = {}) {
    this.#options = options;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_POLICY.timeoutMs;
    this.env = options.env ?? process.env;
    this.#insecure = new Set((options.insecureHosts ?? []).map((h) => h.toLowerCase()));
  }

  /** True when `host` is listed as insecure (plain HTTP, unverified TLS). */
  isInsecure(host: string): boolean {
    return this.#insecure.has(host.toLowerCase());
  }

  /** True when `host` may be spoken to over plain HTTP. */
  allowsPlainHttp(host: string): boolean {
    return this.#options.plainHttpAnywhere === true || this.isInsecure(host) || isLoopbackHost(host);
  }

  /** The redirect rules for plain HTTP (see `redirectTarget`). */
  get rules(): PlainHttpRules {
    return { plain: (h) => this.allowsPlainHttp(h), downgrade: (h) => this.isInsecure(h) };
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((a) => a.close()));
    this.#agents.clear();
  }

  /** Returns the TLS context trusting the bundled, system and CA-file roots (built once); throws for an unreadable file. */
  secureContext(): SecureContext {
    if (this.#secure) return this.#secure;
    const ca = new Set([...getCACertificates('default'), ...getCACertificates('system')]);
    const files =
      typeof this.#options.caFile === 'string' ? [this.#options.caFile] : (this.#options.caFile ?? []);
    for (const f of files) {
      try {
        ca.add(readFileSync(f, 'utf8'));
      } catch (e) {
        throw new HttpError('HTTP_CA_FILE', `cannot read CA file "${f}": ${describeCause(e)}`, { cause: e });
      }
    }
    this.#secure = createSecureContext({ ca: [...ca] });
    return this.#secure;
  }

  #tlsOptions(mode: TlsMode): { rejectUnauthorized: boolean; secureContext?: SecureContext } {
    return mode === 'insecure'
      ? { rejectUnauthorized: false }
      : mode === 'verify'
        ? { rejectUnauthorized: true, secureContext: this.secureContext() }
        : { rejectUnauthorized: true };
  }

  async #dispatcher(mode: TlsMode, url: URL, proxy: ProxyRoute | undefined): Promise<Dispatcher> {
    const key = proxy ? `${mode}|${proxy.url.href}|${url.protocol}` : mode;
    let agent = this.#agents.get(key);
    if (agent) return agent;
    const undici = await loadUndici();
    const timeout = this.timeoutMs;
    const common = { headersTimeout: timeout, bodyTimeout: timeout };
    if (proxy) {
      agent = new undici.ProxyAgent({
        uri: proxy.url.href,
        ...common,
        proxyTls: { timeout },
        requestTls: { timeout, ...(url.protocol === 'https:' ? this.#tlsOptions(mode) : {}) },
      });
    } else {
      // The TLS connector is built on the first HTTPS connection, so a plain-HTTP registry never builds the context.
      const plain = undici.buildConnector({ timeout });
      let tls: buildConnector.connector | undefined;
      const connect: buildConnector.connector = (opts, cb) => {
        if (opts.protocol !== 'https:') return plain(opts, cb);
        try {
          tls ??= undici.buildConnector({ timeout, ...this.#tlsOptions(mode) });
        } catch (e) {
          cb(e as Error, null);
          return;
        }
        return tls(opts, cb);
      };
      agent = new undici.Agent({ connect, ...common });
    }
    this.#agents.set(key, agent);
    return agent;
  }

  /**
   * Sends one request and returns the response once its headers arrived (body unread), following redirects of GET and
   * HEAD (at most MAX_REDIRECTS, under `redirectTarget`'s rules). Throws the engine's error (with its `code`; a
   * refused redirect has code HTTP_REDIRECT_REFUSED or HTTP_TOO_MANY_REDIRECTS, a headers timeout HTTP_TIMEOUT).
   */
  async send(url: string, init: HttpRequest): Promise<HttpResponse> {
    const ac = new AbortController();
    const timer = setTimeout(
      () =>
        ac.abort(
          new HttpError(
            'HTTP_TIMEOUT',
            `no response from "${new URL(url).host}" within ${this.timeoutMs} ms`,
            {
              host: new URL(url).host,
            },
          ),
        ),
      this.timeoutMs,
    );
    // The caller's signal stops the body too, after the deadline for the headers is gone.
    const signal = init.signal ? AbortSignal.any([ac.signal, init.signal]) : ac.signal;
    const start = new URL(url);
    const follow = init.method === 'GET' || init.method === 'HEAD';
    try {
      let current = start;
      let headers: Record<string, string> = { ...init.headers };
      for (let hop = 0; ; hop++) {
        // The caller's TLS mode is for the host it named; a redirect target is verified unless listed as insecure.
        const mode: TlsMode =
          hop === 0 && init.tls ? init.tls : this.isInsecure(current.host) ? 'insecure' : 'verify';
        const proxy = proxyFor(current, this.env);
        const res = await this.#once(current, { ...init, headers }, mode, proxy, signal);
        const location = res.headers.get('location');
        if (!follow || !REDIRECT_STATUS.has(res.status) || location === null) return res;
        await res.cancel();
        if (hop >= MAX_REDIRECTS) throw tooManyRedirects(start);
        ({ url: current, headers } = redirectTarget(current, location, headers, this.rules));
      }
    } finally {
      clearTimeout(timer);
    }
  }

  async #once(
    url: URL,
    init: HttpRequest,
    mode: TlsMode,
    proxy: ProxyRoute | undefined,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    if (init.wire && (init.method === 'GET' || init.method === 'HEAD')) {
      let w: Awaited<ReturnType<typeof wireRequest>>;
      try {
        w = await wireRequest({
          url,
          method: init.method,
          headers: init.headers,
          timeoutMs: this.timeoutMs,
          signal,
          ...(url.protocol === 'https:' ? { tls: this.#tlsOptions(mode) } : {}),
          ...(proxy ? { proxy } : {}),
        });
      } catch (e) {
        throw proxy ? viaProxy(e, proxy) : e;
      }
      return { ...w, url: url.href };
    }
    const dispatcher = await this.#dispatcher(mode, url, proxy);
    try {
      return await dispatchUnpaused(dispatcher, url, init, signal);
    } catch (e) {
      throw proxy ? viaProxy(e, proxy) : e;
    }
  }
}

/**
 * Bodies read through undici are held, unread, up to this many bytes; beyond it the request fails (HTTP_BODY_UNREAD).
 * Only small bodies travel this way (manifests ≤ 4 MiB, configs ≤ 16 MiB, tokens, tag lists, error bodies): every
 * big one is a wire.ts GET.
 */
const MAX_UNREAD = 64 << 20;

/**
 * Sends a request through undici's public `dispatch` with a handler that never pauses the connection: undici 7 throws
 * an uncatchable `assert(!this.paused)` when a server closes the connection (HTTP/1.0, close-delimited body) while the
 * parser is paused under backpressure (nodejs/undici#5360). Chunks queue here until the caller reads them, bounded by
 * MAX_UNREAD.
 */
function dispatchUnpaused(
  dispatcher: Dispatcher,
  url: URL,
  init: HttpRequest,
  signal: AbortSignal,
): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let started = false;
    const queue: Buffer[] = [];
    let unread = 0;
    let ended = false;
    let failed: Error | undefined;
    let wake: (() => void) | undefined;
    const onAbort = () => {
      const reason =
        signal.reason instanceof Error
          ? signal.reason
          : new HttpError('HTTP_ABORTED', `cannot read from "${url.host}": request aborted`, {
              host: url.host,
            });
      controller?.abort(reason);
      if (!controller) fail(reason);
    };
    const fail = (e: Error) => {
      signal.removeEventListener('abort', onAbort);
      if (!started) reject(e);
      else {
        failed ??= e;
        wake?.();
      }
    };
    const body: AsyncIterable<Uint8Array> = {
      async *[Symbol.asyncIterator]() {
        try {
          for (;;) {
            const c = queue.shift();
            if (c) {
              unread -= c.length;
              yield c;
              continue;
            }
            if (failed) throw failed;
            if (ended) return;
            await new Promise<void>((r) => {
              wake = r;
            });
            wake = undefined;
          }
        } finally {
          if (!ended && !failed)
            controller?.abort(
              new HttpError('HTTP_ABORTED', `cannot read from "${url.host}": response cancelled`, {
                host: url.host,
              }),
            );
        }
      },
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    dispatcher.dispatch(
      {
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: init.method,
        headers: init.headers,
        body: init.body ?? null,
      },
      {
        onRequestStart(c) {
          controller = c;
        },
        onResponseStart(_c, statusCode, headers) {
          started = true;
          resolve({
            status: statusCode,
            statusText: STATUS_CODES[statusCode] ?? '',
            headers: {
              get: (name: string) => {
                const v = headers[name.toLowerCase()];
                return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
              },
            },
            body,
            cancel: async () => {
              queue.length = 0;
              if (!ended && !failed) {
                failed = new HttpError('HTTP_ABORTED', `cannot read from "${url.host}": response cancelled`, {
                  host: url.host,
                });
                controller?.abort(failed);
              }
            },
            url: url.href,
          });
        },
        onResponseData(c, chunk) {
          if (failed) return;
          unread += chunk.length;
          if (unread > MAX_UNREAD) {
            const e = new HttpError(
              'HTTP_BODY_UNREAD',
              `response body from ${url.origin} left unread beyond ${MAX_UNREAD} bytes`,
              { host: url.host },
            );
            c.abort(e);
            fail(e);
            return;
          }
          queue.push(chunk);
          wake?.();
        },
        onResponseEnd() {
          ended = true;
          signal.removeEventListener('abort', onAbort);
          wake?.();
        },
        onResponseError(_c, e) {
          fail(e);
        },
      },
    );
  });
}

/** Adds "through proxy …" to a failure, keeping its code. */
function viaProxy(e: unknown, proxy: ProxyRoute): Error {
  const err = e instanceof Error ? e : new Error(String(e));
  if (err.message.includes('proxy')) return err;
  // The failure stays the cause, so errorCode (the innermost code) reads what it did before the wrap.
  return new HttpError(
    err instanceof HttpError ? err.code : 'HTTP_CONNECTION_FAILED',
    `${err.message} (through ${describeProxy(proxy)})`,
    { cause: err, ...(err instanceof HttpError && err.host ? { host: err.host } : {}) },
  );
}
