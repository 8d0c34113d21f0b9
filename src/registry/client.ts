import type { RequestInit, Response } from 'undici';
import type { Digest } from '../digest/index.ts';
import { type RegistryDiagnostic, RegistryError, type RegistryErrorCode } from '../errors.ts';
import {
  backoffMs,
  describeCause,
  type Env,
  errorCode,
  type HttpPolicy,
  type HttpResponse,
  HttpTransport,
  isLoopbackHost,
  isRetryableError,
  isRetryableStatus,
  parseRetryAfter,
  resolvePolicy,
  retryDelayMs,
  TLS_CERT_CODES,
  type TlsMode,
} from '../http/index.ts';
import { type Challenge, mergeScopes, parseChallenge } from './auth.ts';
import { type Credential, type CredentialProvider, defaultCredentials } from './credentials.ts';

export { errorCode, isLoopbackHost, parseRetryAfter };

/**
 * The HTTP core of the distribution-spec client (https://github.com/opencontainers/distribution-spec/blob/main/spec.md):
 * per-host scheme and auth discovery through `GET /v2/`, anonymous/basic/bearer auth with a token cache per scope
 * and re-auth on 401, retries with exponential backoff on network errors, 429 and 5xx (honouring `Retry-After`),
 * timeouts, and errors that name host, repository and HTTP status. The wire, TLS trust, proxies, redirects (blob GETs
 * to storage: `Authorization` never sent to another origin, HTTPS never downgraded) and the retry/timeout policy are
 * pare's one HTTP layer (src/http); a `fetch` can be injected so tests answer from memory. Never prints.
 *
 * A loopback host is probed for TLS with Node's bundled roots first, so a plain-HTTP loopback registry never pays for
 * the full trust context; a certificate the bundled roots cannot verify is retried with the full set before anything
 * fails.
 */

/** A `fetch` (undici's signature) to use instead of the network, for tests. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

/** The part of an HTTP response the client uses, whichever transport produced it (an injected fetch too). */
export type RegistryResponse = Omit<HttpResponse, 'url'>;

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
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY come from (default `process.env`). */
  readonly env?: Env;
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

/** Error bodies are for messages only; a hostile registry must not make us buffer gigabytes. */
const MAX_ERROR_BODY = 64 * 1024;
/** Token responses are small JSON documents. */
const MAX_TOKEN_BODY = 1024 * 1024;
/** Tokens without `expires_in` live 60 s per the token spec; we refresh a little early. */
const DEFAULT_TOKEN_TTL_S = 60;
const TOKEN_EARLY_REFRESH_MS = 10_000;

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
  readonly #transport: HttpTransport;
  /** Retries, backoff and timeouts (src/http/policy.ts defaults under this client's options). */
  readonly policy: HttpPolicy;
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
    this.policy = resolvePolicy(options);
    this.timeoutMs = this.policy.timeoutMs;
    this.#credentials = options.credentials ?? defaultCredentials();
    this.#insecure = new Set((options.insecureHosts ?? []).map((h) => h.toLowerCase()));
    this.#sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.#transport = new HttpTransport({
      ...(options.caFile !== undefined ? { caFile: options.caFile } : {}),
      insecureHosts: [...this.#insecure],
      timeoutMs: this.timeoutMs,
      ...(options.env ? { env: options.env } : {}),
    });
  }

  /** Closes pooled connections. */
  async close(): Promise<void> {
    await this.#transport.close();
  }

  /** Reports blob progress to the `onProgress` option. */
  progress(e: BlobProgress): void {
    this.options.onProgress?.(e);
  }

  /** True when `host` may be spoken to over plain HTTP (loopback or listed as insecure). */
  allowsPlainHttp(host: string): boolean {
    return this.#transport.allowsPlainHttp(host);
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
    return backoffMs(this.policy, attempt);
  }

  /** One request (following redirects of GET/HEAD) with a deadline for the response headers. */
  async #send(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: RequestInit['body'] },
    insecure: boolean,
    probe = false,
    wire = false,
  ): Promise<RegistryResponse> {
    if (this.options.fetch) {
      const ac = new AbortController();
      const timer = setTimeout(
        () => ac.abort(new RegistryError('REGISTRY_TIMEOUT', `no response within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      try {
        const streaming = init.body && typeof init.body === 'object' && Symbol.asyncIterator in init.body;
        return fromFetch(
          await this.options.fetch(url, {
            ...init,
            signal: ac.signal,
            ...(streaming ? { duplex: 'half' } : {}),
          } as RequestInit),
        );
      } finally {
        clearTimeout(timer);
      }
    }
    const mode: TlsMode = insecure ? 'insecure' : probe ? 'probe' : 'verify';
    try {
      // Built here, not in the connector, so an unreadable --ca-file fails this request with REGISTRY_TLS.
      if (mode === 'verify' && url.startsWith('https:')) this.#transport.secureContext();
    } catch (e) {
      throw new RegistryError('REGISTRY_TLS', (e as Error).message, { cause: e });
    }
    return this.#transport.send(url, {
      method: init.method as RegistryRequest['method'],
      headers: init.headers,
      body: (init.body ?? null) as never,
      tls: mode,
      wire,
    });
  }

  #networkError(what: string, host: string, repository: string | undefined, e: unknown, attempts: number) {
    const code = errorCode(e);
    const where = `"${host}${repository ? `/${repository}` : ''}"`;
    const errCode: RegistryErrorCode =
      code && TLS_CERT_CODES.has(code)
        ? 'REGISTRY_TLS'
        : code === 'HTTP_REDIRECT_REFUSED' || code === 'HTTP_TOO_MANY_REDIRECTS'
          ? 'REGISTRY_PROTOCOL'
          : code === 'HTTP_CA_FILE'
            ? 'REGISTRY_TLS'
            : code === 'REGISTRY_TIMEOUT' ||
                code === 'HTTP_TIMEOUT' ||
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
    const retries = this.policy.retries;
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
        if (attempt < retries && isRetryableError(e) && code !== 'REGISTRY_TLS') {
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
      if (isRetryableStatus(res.status) && attempt < retries) {
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
    return retryDelayMs(this.policy, attempt, res.headers.get('retry-after'));
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
    const retries = this.policy.retries;
    let res: RegistryResponse;
    for (let attempt = 0; ; attempt++) {
      try {
        res = await this.#send(realm.href, init, insecure);
      } catch (e) {
        if (attempt < retries && isRetryableError(e)) {
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
      if (isRetryableStatus(res.status) && attempt < retries) {
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
    const retries = req.retry === false ? 0 : this.policy.retries;
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
        if (attempt < retries && isRetryableError(e)) {
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
      if (isRetryableStatus(res.status) && attempt < retries) {
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
      isRetryableStatus(res.status) && attempts > 1 ? ` (gave up after ${attempts} attempts)` : '';
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
