import { HttpError } from '../errors.ts';

/**
 * How pare behaves on the network, in one place for registries and the Debian mirror: which failures are retried and
 * after how long, how long a request may stall, and which redirects are followed with which headers.
 */

/** Retry and timeout settings; every field has a default (`DEFAULT_POLICY`). */
export interface HttpPolicy {
  /** Attempts after the first for retryable failures. */
  readonly retries: number;
  /** First backoff delay; doubled each attempt, with jitter. */
  readonly retryBaseMs: number;
  /** Longest single wait, also the cap for `Retry-After`. */
  readonly maxRetryDelayMs: number;
  /** Connect + response-headers timeout, and the longest pause while reading a body. */
  readonly timeoutMs: number;
}

export const DEFAULT_POLICY: HttpPolicy = {
  retries: 4,
  retryBaseMs: 250,
  maxRetryDelayMs: 30_000,
  timeoutMs: 60_000,
};

/** Returns `options` over the defaults (undefined fields keep the default). */
export function resolvePolicy(
  options: Partial<Record<keyof HttpPolicy, number | undefined>> = {},
): HttpPolicy {
  return {
    retries: options.retries ?? DEFAULT_POLICY.retries,
    retryBaseMs: options.retryBaseMs ?? DEFAULT_POLICY.retryBaseMs,
    maxRetryDelayMs: options.maxRetryDelayMs ?? DEFAULT_POLICY.maxRetryDelayMs,
    timeoutMs: options.timeoutMs ?? DEFAULT_POLICY.timeoutMs,
  };
}

/** Statuses worth asking again: the server is busy, overloaded or briefly failing. 501 and 505 are not. */
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** True for an HTTP status that is retried. */
export function isRetryableStatus(status: number): boolean {
  return RETRY_STATUS.has(status);
}

/**
 * Errors that say the certificate is wrong: never retried (the answer will not change), never a reason to fall back
 * to plain HTTP.
 */
export const TLS_CERT_CODES: ReadonlySet<string> = new Set([
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

/** Returns the innermost error code of a request failure (undici and pare wrap the socket error as `cause`). */
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

/** Failures of pare's own making or the user's setup: asking again cannot help. */
const NOT_RETRIED = new Set([
  'HTTP_REDIRECT_REFUSED',
  'HTTP_TOO_MANY_REDIRECTS',
  'HTTP_CA_FILE',
  'HTTP_PROXY_INVALID',
  'HTTP_REQUEST_INVALID',
]);

/** True for a failed request (no response) that is retried: anything but a certificate error or a refused redirect. */
export function isRetryableError(e: unknown): boolean {
  const code = errorCode(e) ?? '';
  return !TLS_CERT_CODES.has(code) && !NOT_RETRIED.has(code);
}

/** Returns the wait before attempt `attempt + 1` (0-based): exponential, capped, the upper half jittered. */
export function backoffMs(policy: HttpPolicy, attempt: number): number {
  const d = Math.min(policy.maxRetryDelayMs, policy.retryBaseMs * 2 ** attempt);
  return d / 2 + Math.random() * (d / 2);
}

/** Returns the delay a `Retry-After` header asks for (seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** Returns the wait after a retryable response: its `Retry-After` (capped) or the backoff. */
export function retryDelayMs(policy: HttpPolicy, attempt: number, retryAfter: string | null): number {
  const ra = parseRetryAfter(retryAfter);
  return ra === undefined ? backoffMs(policy, attempt) : Math.min(ra, policy.maxRetryDelayMs);
}

/** Redirect statuses followed for GET and HEAD. */
export const REDIRECT_STATUS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
/** distribution, S3-style backends and mirror redirectors redirect once or twice; more hops than this is a loop. */
export const MAX_REDIRECTS = 5;

/** Which hosts a transport may speak to in clear. */
export interface PlainHttpRules {
  /** True when `host` may be reached over plain HTTP at all (a registry: loopback or insecure; a mirror: any). */
  readonly plain: (host: string) => boolean;
  /** True when an HTTPS answer may redirect to plain HTTP on `host` (only hosts the user listed as insecure). */
  readonly downgrade: (host: string) => boolean;
}

/**
 * Returns where a redirect from `current` to `location` leads and the headers to send there, or throws an Error with
 * code HTTP_REDIRECT_REFUSED:
 * - HTTPS is never downgraded to HTTP unless `rules.downgrade` allows it for the target (the answer of an HTTPS server
 *   must not be replaced by one anyone on the path can forge); plain HTTP goes only where `rules.plain` allows it;
 * - `Authorization`, `Cookie` and `Proxy-Authorization` go only to the origin they were meant for: a registry's
 *   credentials must not reach the storage backend it redirects blob downloads to;
 * - no credentials in the URL, no scheme but HTTP(S).
 */
export function redirectTarget(
  current: URL,
  location: string,
  headers: Readonly<Record<string, string>>,
  rules: PlainHttpRules,
): { url: URL; headers: Record<string, string> } {
  let next: URL;
  try {
    next = new URL(location, current);
  } catch (e) {
    throw new HttpError(
      'HTTP_REDIRECT_REFUSED',
      `cannot follow redirect from "${current.origin}": ${JSON.stringify(location)} is not a URL`,
      { cause: e, host: current.host },
    );
  }
  const target = next;
  const refuse = (why: string) =>
    new HttpError(
      'HTTP_REDIRECT_REFUSED',
      `cannot follow redirect from "${current.origin}" to "${target.origin}": ${why}`,
      { host: current.host },
    );
  if (next.protocol !== 'https:' && next.protocol !== 'http:') throw refuse('only HTTP(S) is followed');
  if (next.protocol === 'http:') {
    if (current.protocol === 'https:' && !rules.downgrade(next.host))
      throw refuse('HTTPS is never redirected to plain HTTP (unless the host is listed as insecure)');
    if (!rules.plain(next.host))
      throw refuse('plain HTTP is only spoken to loopback hosts and hosts listed as insecure');
  }
  if (next.username || next.password) throw refuse('credentials in a redirect URL are refused');
  if (next.origin === current.origin) return { url: next, headers: { ...headers } };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    const name = k.toLowerCase();
    if (name !== 'authorization' && name !== 'cookie' && name !== 'proxy-authorization') out[k] = v;
  }
  return { url: next, headers: out };
}

/** An error for a redirect chain longer than MAX_REDIRECTS. */
export function tooManyRedirects(start: URL): HttpError {
  return new HttpError(
    'HTTP_TOO_MANY_REDIRECTS',
    `cannot fetch "${start.href}": more than ${MAX_REDIRECTS} redirects (a loop?)`,
    { host: start.host },
  );
}
