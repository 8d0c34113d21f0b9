import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { createSecureContext, getCACertificates, type SecureContext } from 'node:tls';
import type { Agent, buildConnector, Dispatcher, RequestInit, Response } from 'undici';
import type { Digest } from '../digest/index.ts';
import { type RegistryDiagnostic, RegistryError, type RegistryErrorCode } from '../errors.ts';
import { type Challenge, mergeScopes, parseChallenge } from './auth.ts';
import { type Credential, type CredentialProvider, defaultCredentials } from './credentials.ts';
import { type BodySink, wireRequest } from './wire.ts';

/**
 * The HTTP core of the distribution-spec client (https://github.com/opencontainers/distribution-spec/blob/main/spec.md):
 * per-host scheme and auth discovery through `GET /v2/`, anonymous/basic/bearer auth with a token cache per scope
 * and re-auth on 401, retries with exponential backoff on network errors, 429 and 5xx (honouring `Retry-After`),
 * timeouts, and errors that name host, repository and HTTP status. Runs on undici's `request` (its `fetch` costs a
 * third more CPU per byte through web streams, measured in bench/registry.bench.ts); a `fetch` can be injected so
 * tests answer from memory. Redirects (blob GETs to storage) are followed by hand so that `Authorization` is never
 * sent to another origin and HTTPS is never downgraded. Never prints.
 *
 * Start-up matters (a `pare pull` is one process): undici's package entry loads all of undici (fetch, websockets,
 * caches, mocks: ~110 modules, 0.3 s measured), so the three pieces used here are required by path. The trusted CAs
 * (bundled + system + `--ca-file`, ~900 PEMs) become one TLS context, built on the first HTTPS connection and shared
 * by all (passing `ca` to each connection built a context per connection: 0.1-0.25 s each). A loopback host is
 * probed for TLS with Node's bundled roots first, so a plain-HTTP loopback registry never pays for the context; a
 * certificate the bundled roots cannot verify is retried with the full set before anything fails.
 */

const require = createRequire(import.meta.url);
// Not `import … from 'node:http'`: the ESM facade of node:http reads every export, and its lazy WebSocket getters load
// Node's internal copy of undici (22 ms of start-up, measured); the CommonJS module is the same object without that.
const { STATUS_CODES } = process.getBuiltinModule('node:http');
const UndiciAgent = require('undici/lib/dispatcher/agent.js') as typeof Agent;
const undiciRequest = require('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;
const undiciConnector = require('undici/lib/core/connect.js') as typeof buildConnector;

/** Which TLS trust a request uses: verified (all CAs), insecure (no verification), or the loopback probe. */
type TlsMode = 'verify' | 'insecure' | 'probe';

/** A `fetch` (undici's signature) to use instead of the network, for tests. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** The part of an HTTP response the client uses, whichever transport produced it. */
export interface RegistryResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  readonly body: AsyncIterable<Uint8Array> | null;
  /** Discards the rest of the body so the connection can be reused or closed. */
  cancel(): Promise<void>;
  /** For `wire` requests: streams the body into pooled buffers (wire.ts) instead of `body`. */
  readonly pump?: (sink: BodySink) => Promise<void>;
}

function fromFetch(res: Response): RegistryResponse {
  return {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
    body: res.body,
    cancel: async () => {
      await res.body?.cancel().catch(() => {});
    },
  };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** distribution and S3-style backends redirect once; more hops than this is a loop. */
const MAX_REDIRECTS = 5;

/** Progress of one blob, for progress bars; the library reports, the CLI draws. */
export interface BlobProgress {
  readonly direction: 'push' | 'pull';
  readonly host: string;
  readonly repository: string;
  readonly digest: Digest;
  /** `exists`/`mounted`: nothing to transfer. `data`: `bytes` of `total` moved so far. */
  readonly state: 'start' | 'data' | 'exists' | 'mounted' | 'done';
  readonly bytes: number;
  readonly total: number | undefined;
}

export interface RegistryClientOptions {
  /** Replaces undici's fetch (tests). When set, `caFile`/`ca` and the timeouts of the undici agent do not apply. */
  readonly fetch?: FetchLike;
  /** Where credentials come from; default: docker/podman auth files (see credentials.ts). */
  readonly credentials?: CredentialProvider;
  /** Hosts (`host[:port]`) that may be reached over plain HTTP or with an unverified certificate. */
  readonly insecureHosts?: readonly string[];
  /** PEM files of extra trusted CAs, added to the bundled and system roots. */
  readonly caFile?: string | readonly string[];
  /** Attempts after the first for retryable failures (default 4). */
  readonly retries?: number;
  /** First backoff delay; doubles each attempt, with jitter (default 250 ms). */
  readonly retryBaseMs?: number;
  /** Longest single wait, also the cap for `Retry-After` (default 30 s). */
  readonly maxRetryDelayMs?: number;
  /** Connect + response-headers timeout, and the longest pause while reading a body (default 60 s). */
  readonly timeoutMs?: number;
  /** Parallel blob transfers per image (default 4). */
  readonly concurrency?: number;
  /** Blobs at least this big are uploaded in PATCH chunks (default 64 MiB). */
  readonly chunkedThreshold?: number;
  /** Size of one PATCH chunk (default 16 MiB). */
  readonly chunkSize?: number;
  readonly userAgent?: string;
  readonly onProgress?: (e: BlobProgress) => void;
  /** Replaces the backoff timer (tests). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** One request against a registry; `path` starts with `/v2/`, or `url` is absolute (a `Location` header). */
export interface RegistryRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  readonly host: string;
  readonly repository?: string;
  readonly path?: string;
  readonly url?: string;
  /** Token scopes the request needs, e.g. `repository:app:pull`. */
  readonly scopes: readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
  /** Makes a fresh body for each attempt. */
  readonly body?: () => RequestInit['body'];
  /** Statuses that count as success; the response is returned unread. */
  readonly expect: readonly number[];
  /** What is being done, for messages: `pull manifest "1.0"`. */
  readonly what: string;
  /** False for requests that must not be repeated as they are (upload PATCH/PUT): the caller restarts instead. */
  readonly retry?: boolean;
  /**
   * A GET whose body the caller takes with `pump` (a blob): sent with the pooled-buffer reader of wire.ts instead of
   * undici. Ignored with an injected `fetch` (the response then has only `body`).
   */
  readonly wire?: boolean;
}

interface HostState {
  readonly base: string;
  readonly insecure: boolean;
  challenge: Challenge;
}

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
/** Error bodies are for messages only; a hostile registry must not make us buffer gigabytes. */
const MAX_ERROR_BODY = 64 * 1024;
/** Token responses are small JSON documents. */
const MAX_TOKEN_BODY = 1024 * 1024;
/** Tokens without `expires_in` live 60 s per the token spec; we refresh a little early. */
const DEFAULT_TOKEN_TTL_S = 60;
const TOKEN_EARLY_REFRESH_MS = 10_000;

const TLS_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

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

/** Returns the innermost error code of a fetch failure (undici wraps the socket error as `cause`). */
export function errorCode(e: unknown): string | undefined {
  let cur: unknown = e;
  let code: string | undefined;
  for (let i = 0; i < 5 && cur && typeof cur === 'object'; i++) {
    const c = (cur as { code?: unknown }).code;
    if (typeof c === 'string') code = c;
    cur = (cur as { cause?: unknown }).cause;
  }
  return code;
}

function describeCause(e: unknown): string {
  const parts: string[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur instanceof Error; i++) {
    const code = (cur as { code?: string }).code;
    // Node suggests --use-system-ca for certificate errors; the client already trusts the system roots.
    const message = cur.message.replace(
      /; if the root CA is installed locally, try running Node\.js with --use-system-ca/,
      '',
    );
    const text = code && !message.includes(code) ? `${message} (${code})` : message;
    if (!parts.includes(text)) parts.push(text);
    cur = cur.cause;
  }
  return parts.join(': ') || String(e);
}

/** Returns the delay a `Retry-After` header asks for (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Reads at most `max` bytes of a body; throws REGISTRY_PROTOCOL naming `what` when it is longer. */
export async function readLimited(
  res: RegistryResponse,
  max: number,
  what: string,
  where: { host: string; repository?: string },
): Promise<Uint8Array> {
  const tooBig = () =>
    new RegistryError(
      'REGISTRY_PROTOCOL',
      `cannot read ${what} from "${where.host}${where.repository ? `/${where.repository}` : ''}": larger than the ${max}-byte limit`,
      { ...where },
    );
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > max) {
    await res.cancel();
    throw tooBig();
  }
  if (!res.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += c.length;
    if (n > max) {
      await res.cancel();
      throw tooBig();
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** Discards a response body so the connection can be reused. */
export async function drain(res: RegistryResponse): Promise<void> {
  try {
    await res.cancel();
  } catch {
    /* already closed */
  }
}

function parseDiagnostics(body: Uint8Array): RegistryDiagnostic[] {
  try {
    const j = JSON.parse(Buffer.from(body).toString('utf8')) as { errors?: unknown };
    if (!Array.isArray(j.errors)) return [];
    return j.errors
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
      .map((e) => ({
        code: String(e.code ?? ''),
        message: String(e.message ?? ''),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      }));
  } catch {
    return [];
  }
}

/**
 * A connection to any number of registries, holding per-host scheme, auth challenges and tokens. One client is
 * meant to live for one command; call `close()` at the end.
 */
export class RegistryClient {
  readonly options: RegistryClientOptions;
  readonly concurrency: number;
  readonly chunkedThreshold: number;
  readonly chunkSize: number;
  readonly timeoutMs: number;
  #agents = new Map<TlsMode, Agent>();
  #secure: SecureContext | undefined;
  #credentials: CredentialProvider;
  #credentialCache = new Map<string, Promise<Credential | undefined>>();
  #hosts = new Map<string, Promise<HostState>>();
  #tokens = new Map<string, CachedToken>();
  #tokenFetches = new Map<string, Promise<string>>();
  #insecure: Set<string>;
  #sleep: (ms: number) => Promise<void>;

  constructor(options: RegistryClientOptions = {}) {
    this.options = options;
    this.concurrency = Math.max(1, options.concurrency ?? 4);
    this.chunkedThreshold = options.chunkedThreshold ?? 64 * 1024 * 1024;
    this.chunkSize = Math.max(1, options.chunkSize ?? 16 * 1024 * 1024);
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.#credentials = options.credentials ?? defaultCredentials();
    this.#insecure = new Set((options.insecureHosts ?? []).map((h) => h.toLowerCase()));
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((a) => a.close()));
  }

  /** Reports blob progress to the `onProgress` option. */
  progress(e: BlobProgress): void {
    this.options.onProgress?.(e);
  }

  /** Returns the TLS context trusting the bundled, system and `caFile` CAs (built once); throws REGISTRY_TLS. */
  #secureContext(): SecureContext {
    if (this.#secure) return this.#secure;
    const ca = new Set([...getCACertificates('default'), ...getCACertificates('system')]);
    const files =
      typeof this.options.caFile === 'string' ? [this.options.caFile] : (this.options.caFile ?? []);
    for (const f of files) {
      try {
        ca.add(readFileSync(f, 'utf8'));
      } catch (e) {
        throw new RegistryError('REGISTRY_TLS', `cannot read CA file "${f}": ${describeCause(e)}`, {
          cause: e,
        });
      }
    }
    this.#secure = createSecureContext({ ca: [...ca] });
    return this.#secure;
  }

  #dispatcher(mode: TlsMode): Dispatcher {
    let agent = this.#agents.get(mode);
    if (agent) return agent;
    const timeout = this.timeoutMs;
    const plain = undiciConnector({ timeout });
    let tls: buildConnector.connector | undefined;
    const connect: buildConnector.connector = (opts, cb) => {
      if (opts.protocol !== 'https:') return plain(opts, cb);
      tls ??= undiciConnector({
        timeout,
        ...(mode === 'insecure'
          ? { rejectUnauthorized: false }
          : mode === 'verify'
            ? { rejectUnauthorized: true, secureContext: this.#secureContext() }
            : { rejectUnauthorized: true }),
      });
      return tls(opts, cb);
    };
    agent = new UndiciAgent({ connect, headersTimeout: timeout, bodyTimeout: timeout });
    this.#agents.set(mode, agent);
    return agent;
  }

  /** True when `host` may be spoken to over plain HTTP (loopback or listed as insecure). */
  allowsPlainHttp(host: string): boolean {
    return this.#insecure.has(host.toLowerCase()) || isLoopbackHost(host);
  }

  #credential(host: string, repository?: string): Promise<Credential | undefined> {
    const key = `${host}/${repository ?? ''}`;
    let p = this.#credentialCache.get(key);
    if (!p) {
      p = this.#credentials(host, repository);
      this.#credentialCache.set(key, p);
    }
    return p;
  }

  #backoff(attempt: number): number {
    const base = this.options.retryBaseMs ?? 250;
    const max = this.options.maxRetryDelayMs ?? 30_000;
    const d = Math.min(max, base * 2 ** attempt);
    return d / 2 + Math.random() * (d / 2);
  }

  /** One request (following redirects of GET/HEAD) with a deadline for the response headers. */
  async #send(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: RequestInit['body'] },
    insecure: boolean,
    probe = false,
    wire = false,
  ): Promise<RegistryResponse> {
    const ac = new AbortController();
    const timer = setTimeout(
      () => ac.abort(new RegistryError('REGISTRY_TIMEOUT', `no response within ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    try {
      if (this.options.fetch) {
        const streaming = init.body && typeof init.body === 'object' && Symbol.asyncIterator in init.body;
        return fromFetch(
          await this.options.fetch(url, {
            ...init,
            signal: ac.signal,
            ...(streaming ? { duplex: 'half' } : {}),
          } as RequestInit),
        );
      }
      const mode: TlsMode = insecure ? 'insecure' : probe ? 'probe' : 'verify';
      // Built here, not in the connector, so an unreadable --ca-file fails this request with REGISTRY_TLS.
      if (mode === 'verify' && url.startsWith('https:')) this.#secureContext();
      let current = new URL(url);
      let headers = init.headers;
      for (let hop = 0; ; hop++) {
        if (wire && (init.method === 'GET' || init.method === 'HEAD')) {
          const w = await wireRequest({
            url: current,
            method: init.method,
            headers,
            timeoutMs: this.timeoutMs,
            signal: ac.signal,
            tls:
              mode === 'insecure'
                ? { rejectUnauthorized: false }
                : mode === 'verify' && current.protocol === 'https:'
                  ? { rejectUnauthorized: true, secureContext: this.#secureContext() }
                  : { rejectUnauthorized: true },
          });
          const location = w.headers.get('location');
          if (REDIRECTS.has(w.status) && location !== null && hop < MAX_REDIRECTS) {
            await w.cancel();
            ({ current, headers } = this.#redirect(current, location, headers));
            continue;
          }
          return w;
        }
        const r = await undiciRequest.call(this.#dispatcher(mode), {
          origin: current.origin,
          path: `${current.pathname}${current.search}`,
          method: init.method as Dispatcher.HttpMethod,
          headers,
          body: (init.body ?? null) as Dispatcher.DispatchOptions['body'],
          signal: ac.signal,
        });
        const location = r.headers.location;
        if (
          REDIRECTS.has(r.statusCode) &&
          typeof location === 'string' &&
          (init.method === 'GET' || init.method === 'HEAD') &&
          hop < MAX_REDIRECTS
        ) {
          await r.body.dump();
          ({ current, headers } = this.#redirect(current, location, headers));
          continue;
        }
        const h = r.headers;
        return {
          status: r.statusCode,
          statusText: STATUS_CODES[r.statusCode] ?? '',
          headers: {
            get: (name: string) => {
              const v = h[name.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
            },
          },
          body: r.body,
          cancel: async () => {
            await r.body.dump().catch(() => {});
          },
        };
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Returns where a redirect leads and the headers to send there; throws REGISTRY_PROTOCOL for a downgrade. */
  #redirect(
    current: URL,
    location: string,
    headers: Record<string, string>,
  ): { current: URL; headers: Record<string, string> } {
    const next = new URL(location, current);
    if (next.protocol !== 'https:' && !(next.protocol === 'http:' && this.allowsPlainHttp(next.host)))
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot follow redirect from "${current.origin}" to "${next.origin}": only HTTPS, or HTTP to loopback or insecure hosts`,
        { host: current.host },
      );
    // Credentials for the registry must not reach the storage backend it redirects to.
    if (next.origin === current.origin) return { current: next, headers };
    const { authorization: _, ...rest } = headers;
    return { current: next, headers: rest };
  }

  #networkError(what: string, host: string, repository: string | undefined, e: unknown, attempts: number) {
    const code = errorCode(e);
    const where = `"${host}${repository ? `/${repository}` : ''}"`;
    const errCode: RegistryErrorCode =
      code && TLS_CERT_CODES.has(code)
        ? 'REGISTRY_TLS'
        : code === 'REGISTRY_TIMEOUT' ||
            code === 'UND_ERR_HEADERS_TIMEOUT' ||
            code === 'UND_ERR_CONNECT_TIMEOUT'
          ? 'REGISTRY_TIMEOUT'
          : 'REGISTRY_NETWORK';
    const hint =
      errCode === 'REGISTRY_TLS'
        ? `; pass the registry's CA with --ca-file, or list ${host} as insecure if you trust the network`
        : '';
    const tries = attempts > 1 ? ` (gave up after ${attempts} attempts)` : '';
    return new RegistryError(errCode, `cannot ${what} at ${where}: ${describeCause(e)}${tries}${hint}`, {
      cause: e,
      host,
      ...(repository ? { repository } : {}),
    });
  }

  /** Finds scheme and auth challenge of `host` with `GET /v2/` (memoised; a failed ping is retried next time). */
  #hostState(host: string): Promise<HostState> {
    let p = this.#hosts.get(host);
    if (!p) {
      p = this.#ping(host);
      this.#hosts.set(host, p);
      p.catch(() => this.#hosts.delete(host));
    }
    return p;
  }

  async #ping(host: string): Promise<HostState> {
    const plain = this.allowsPlainHttp(host);
    const insecure = this.#insecure.has(host.toLowerCase());
    const retries = this.options.retries ?? 4;
    for (let attempt = 0; ; attempt++) {
      let res: RegistryResponse;
      let base = `https://${host}`;
      try {
        const get = (probe: boolean) =>
          this.#send(`${base}/v2/`, { method: 'GET', headers: this.#baseHeaders() }, insecure, probe);
        try {
          if (!plain || insecure) res = await get(false);
          else {
            try {
              res = await get(true);
            } catch (e) {
              // The probe trusts only Node's bundled roots: a certificate they cannot verify gets the full set.
              if (!TLS_CERT_CODES.has(errorCode(e) ?? '')) throw e;
              res = await get(false);
            }
          }
        } catch (e) {
          const code = errorCode(e) ?? '';
          // A plain-HTTP server answers a TLS hello with garbage ("wrong version number"): fall back to HTTP
          // where that is allowed. Certificate errors never fall back, so a TLS registry is not silently downgraded.
          const notTls = /WRONG_VERSION|EPROTO|ECONNRESET|ERR_SSL|UND_ERR_SOCKET/.test(code);
          if (!plain || !notTls || TLS_CERT_CODES.has(code)) throw e;
          base = `http://${host}`;
          res = await get(false);
        }
      } catch (e) {
        const code = errorCode(e) ?? '';
        if (attempt < retries && !TLS_CERT_CODES.has(code) && code !== 'REGISTRY_TLS') {
          await this.#sleep(this.#backoff(attempt));
          continue;
        }
        throw this.#networkError('reach registry', host, undefined, e, attempt + 1);
      }
      await drain(res);
      if (res.status === 200) return { base, insecure, challenge: { scheme: 'none' } };
      if (res.status === 401) {
        const challenge = parseChallenge(res.headers.get('www-authenticate'));
        if (!challenge)
          throw new RegistryError(
            'REGISTRY_PROTOCOL',
            `cannot authenticate to "${host}": HTTP 401 without a Basic or Bearer WWW-Authenticate challenge`,
            { host, status: 401 },
          );
        return { base, insecure, challenge };
      }
      if (RETRY_STATUS.has(res.status) && attempt < retries) {
        await this.#sleep(this.#retryDelay(res, attempt));
        continue;
      }
      throw new RegistryError(
        res.status === 404 ? 'REGISTRY_PROTOCOL' : 'REGISTRY_HTTP',
        `cannot reach registry "${host}": GET /v2/ answered HTTP ${res.status}${res.status === 404 ? ' (not an OCI distribution registry)' : ''}`,
        { host, status: res.status },
      );
    }
  }

  #baseHeaders(): Record<string, string> {
    return { 'user-agent': this.options.userAgent ?? 'pare' };
  }

  #retryDelay(res: RegistryResponse, attempt: number): number {
    const max = this.options.maxRetryDelayMs ?? 30_000;
    const ra = parseRetryAfter(res.headers.get('retry-after'));
    return ra === undefined ? this.#backoff(attempt) : Math.min(ra, max);
  }

  /** Returns the Authorization header value for a request, fetching a token when needed. */
  async #authorization(state: HostState, host: string, req: RegistryRequest): Promise<string | undefined> {
    const ch = state.challenge;
    if (ch.scheme === 'none') return undefined;
    const cred = await this.#credential(host, req.repository);
    if (ch.scheme === 'basic') {
      if (!cred?.username && !cred?.password) return undefined;
      return `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`).toString('base64')}`;
    }
    const scopes = mergeScopes(req.scopes);
    const key = `${host}|${ch.realm}|${ch.service ?? ''}|${scopes.join(' ')}`;
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    let p = this.#tokenFetches.get(key);
    if (!p) {
      p = this.#fetchToken(host, ch, scopes, cred, key);
      this.#tokenFetches.set(key, p);
      p.then(
        () => this.#tokenFetches.delete(key),
        () => this.#tokenFetches.delete(key),
      );
    }
    return `Bearer ${await p}`;
  }

  async #fetchToken(
    host: string,
    ch: Extract<Challenge, { scheme: 'bearer' }>,
    scopes: string[],
    cred: Credential | undefined,
    key: string,
  ): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(ch.realm);
    } catch (e) {
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot authenticate to "${host}": token realm ${JSON.stringify(ch.realm)} is not a URL`,
        { host, cause: e },
      );
    }
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.allowsPlainHttp(realm.host)))
      throw new RegistryError(
        'REGISTRY_AUTH',
        `cannot authenticate to "${host}": token realm "${realm.href}" is not HTTPS; credentials are only sent in clear to loopback or insecure hosts`,
        { host },
      );
    const insecure = this.#insecure.has(realm.host);
    const headers: Record<string, string> = this.#baseHeaders();
    let init: { method: string; headers: Record<string, string>; body?: string };
    if (cred?.identityToken) {
      // OAuth2 refresh-token grant (https://distribution.github.io/distribution/spec/auth/oauth/).
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: cred.identityToken,
        client_id: 'pare',
        ...(ch.service ? { service: ch.service } : {}),
        ...(scopes.length ? { scope: scopes.join(' ') } : {}),
      });
      headers['content-type'] = 'application/x-www-form-urlencoded';
      init = { method: 'POST', headers, body: form.toString() };
    } else {
      const q = realm.searchParams;
      if (ch.service) q.set('service', ch.service);
      for (const s of scopes) q.append('scope', s);
      if (cred?.username || cred?.password) {
        if (cred.username) q.set('account', cred.username);
        headers.authorization = `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`).toString('base64')}`;
      }
      init = { method: 'GET', headers };
    }
    const retries = this.options.retries ?? 4;
    let res: RegistryResponse;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await this.#send(realm.href, init, insecure);
      } catch (e) {
        if (attempt < retries) {
          await this.#sleep(this.#backoff(attempt));
          continue;
        }
        throw this.#networkError(
          `get a token for "${host}" from "${realm.origin}"`,
          host,
          undefined,
          e,
          attempt + 1,
        );
      }
      if (RETRY_STATUS.has(res.status) && attempt < retries) {
        await drain(res);
        await this.#sleep(this.#retryDelay(res, attempt));
        continue;
      }
      break;
    }
    const body = await readLimited(res, MAX_TOKEN_BODY, 'token response', { host });
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError(
        'REGISTRY_AUTH',
        `cannot authenticate to "${host}": token server "${realm.origin}" answered HTTP ${res.status}; ${cred ? 'the stored credentials were rejected, run pare login again' : `run pare login ${host}`}`,
        { host, status: res.status, diagnostics: parseDiagnostics(body) },
      );
    }
    if (res.status !== 200)
      throw new RegistryError(
        'REGISTRY_HTTP',
        `cannot authenticate to "${host}": token server "${realm.origin}" answered HTTP ${res.status}`,
        { host, status: res.status, diagnostics: parseDiagnostics(body) },
      );
    let j: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      j = JSON.parse(Buffer.from(body).toString('utf8')) as typeof j;
    } catch (e) {
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot authenticate to "${host}": token response is not JSON`,
        { host, cause: e },
      );
    }
    const token = typeof j.token === 'string' && j.token ? j.token : j.access_token;
    if (typeof token !== 'string' || !token)
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `cannot authenticate to "${host}": token response has no "token" or "access_token"`,
        { host },
      );
    const ttl = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : DEFAULT_TOKEN_TTL_S;
    this.#tokens.set(key, {
      token,
      expiresAt: Date.now() + Math.max(0, ttl * 1000 - TOKEN_EARLY_REFRESH_MS),
    });
    return token;
  }

  /**
   * Sends a request and returns the response for an expected status (body unread). Handles auth (re-auth once on
   * 401), retries (network errors, 408/429/5xx, `Retry-After`) and maps failures to RegistryError:
   * REGISTRY_NOT_FOUND (404), REGISTRY_AUTH (401/403), REGISTRY_DIGEST (400 DIGEST_INVALID), REGISTRY_HTTP,
   * REGISTRY_NETWORK, REGISTRY_TIMEOUT, REGISTRY_TLS.
   */
  async request(req: RegistryRequest): Promise<RegistryResponse> {
    const { host, repository } = req;
    let state = await this.#hostState(host);
    const url = req.url ?? `${state.base}${req.path ?? ''}`;
    const retries = req.retry === false ? 0 : (this.options.retries ?? 4);
    let reauthed = false;
    let scopes = req.scopes;
    for (let attempt = 0; ; ) {
      const headers: Record<string, string> = { ...this.#baseHeaders(), ...req.headers };
      const auth = await this.#authorization(state, host, { ...req, scopes });
      if (auth) headers.authorization = auth;
      let res: RegistryResponse;
      try {
        res = await this.#send(
          url,
          { method: req.method, headers, body: req.body?.() ?? null },
          state.insecure,
          false,
          req.wire === true,
        );
      } catch (e) {
        if (attempt < retries && !TLS_CERT_CODES.has(errorCode(e) ?? '')) {
          await this.#sleep(this.#backoff(attempt));
          attempt++;
          continue;
        }
        throw this.#networkError(req.what, host, repository, e, attempt + 1);
      }
      if (res.status === 401 && !reauthed) {
        // Tokens expire and scopes grow (a mount needs pull on the source): learn the new challenge and try once more.
        reauthed = true;
        const ch = parseChallenge(res.headers.get('www-authenticate'));
        await drain(res);
        if (ch) {
          state = { ...state, challenge: ch };
          this.#hosts.set(host, Promise.resolve(state));
          if (ch.scheme === 'bearer' && ch.scope) scopes = mergeScopes([...scopes, ch.scope]);
        }
        for (const k of this.#tokens.keys()) if (k.startsWith(`${host}|`)) this.#tokens.delete(k);
        continue;
      }
      if (req.expect.includes(res.status)) return res;
      if (RETRY_STATUS.has(res.status) && attempt < retries) {
        await drain(res);
        await this.#sleep(this.#retryDelay(res, attempt));
        attempt++;
        continue;
      }
      throw await this.#httpError(req, res, attempt + 1);
    }
  }

  async #httpError(req: RegistryRequest, res: RegistryResponse, attempts: number): Promise<RegistryError> {
    let body: Uint8Array = new Uint8Array();
    if (req.method !== 'HEAD') {
      try {
        body = await readLimited(res, MAX_ERROR_BODY, 'error body', { host: req.host });
      } catch {
        /* keep the status */
      }
    } else await drain(res);
    const diagnostics = parseDiagnostics(body);
    const where = `"${req.host}${req.repository ? `/${req.repository}` : ''}"`;
    const diag = diagnostics.length
      ? `: ${diagnostics.map((d) => `${d.code}${d.message ? ` ${d.message}` : ''}`).join('; ')}`
      : '';
    const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    let code: RegistryErrorCode = 'REGISTRY_HTTP';
    let hint = '';
    if (res.status === 404) code = 'REGISTRY_NOT_FOUND';
    else if (res.status === 401 || res.status === 403) {
      code = 'REGISTRY_AUTH';
      const cred = await this.#credential(req.host, req.repository).catch(() => undefined);
      hint = cred
        ? `; the credentials for ${req.host} lack access, or were rejected (run pare login ${req.host})`
        : `; run pare login ${req.host}`;
    } else if (diagnostics.some((d) => d.code === 'DIGEST_INVALID' || d.code === 'SIZE_INVALID'))
      code = 'REGISTRY_DIGEST';
    const gaveUp =
      RETRY_STATUS.has(res.status) && attempts > 1 ? ` (gave up after ${attempts} attempts)` : '';
    return new RegistryError(code, `cannot ${req.what} in ${where}: ${status}${diag}${gaveUp}${hint}`, {
      host: req.host,
      ...(req.repository ? { repository: req.repository } : {}),
      status: res.status,
      request: `${req.method} ${req.url ?? req.path ?? ''}`,
      diagnostics,
    });
  }

  /** Returns the base URL (`https://host`) after making sure the registry answers; throws like `request`. */
  async ping(host: string): Promise<{ base: string; auth: Challenge['scheme'] }> {
    const s = await this.#hostState(host);
    return { base: s.base, auth: s.challenge.scheme };
  }

  /**
   * Checks that the credential works for `host` (as `docker login` does): pings and, for token auth, gets a token
   * with no scope, or for basic auth repeats `GET /v2/` with it. Throws REGISTRY_AUTH when rejected.
   */
  async checkLogin(host: string): Promise<void> {
    const res = await this.request({
      method: 'GET',
      host,
      path: '/v2/',
      scopes: [],
      expect: [200],
      what: 'log in',
    });
    await drain(res);
  }
}

/** Resolves the absolute URL of a `Location` header relative to the request URL. */
export function resolveLocation(
  res: RegistryResponse,
  base: string,
  host: string,
  repository: string,
): string {
  const loc = res.headers.get('location');
  if (!loc)
    throw new RegistryError(
      'REGISTRY_PROTOCOL',
      `cannot upload to "${host}/${repository}": HTTP ${res.status} without a Location header`,
      { host, repository, status: res.status },
    );
  return new URL(loc, base).href;
}
