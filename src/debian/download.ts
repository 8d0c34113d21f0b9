import { DebianError } from '../errors.ts';
import {
  describeCause,
  type Env,
  type HttpPolicy,
  HttpTransport,
  isRetryableError,
  isRetryableStatus,
  resolvePolicy,
  retryDelayMs,
} from '../http/index.ts';

/**
 * HTTP for the archive, on pare's one HTTP layer (src/http: proxies from the environment, redirects under one policy,
 * the retry and timeout policy): GET with retries and backoff on network errors, 408/429/5xx (honouring
 * `Retry-After`); byte limits on every body (sizes come from signed indexes, and a hostile server must not make us
 * buffer without bound); `Range` for resuming. Bodies are read with the layer's own reader (wire.ts), which copes
 * with mirrors that close the connection after each response. `fetch` is a parameter so tests can count or fail
 * requests; nothing here prints.
 */

/** The part of a response the archive reads: the HTTP layer's `HttpResponse` and a global fetch Response satisfy it. */
export interface FetchResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: AsyncIterable<Uint8Array> | null;
}

/** A fetch function: GET `url` with `headers`. */
export type Fetch = (
  url: string,
  init: { headers: Record<string, string>; signal?: AbortSignal },
) => Promise<FetchResponse>;

/** Retry policy and transport; defaults are resolved by `normalizeHttpOptions`. */
export interface HttpOptions {
  readonly fetch?: Fetch;
  /** Attempts after the first for retryable failures; default 4. */
  readonly retries?: number;
  /** First backoff delay; doubled each attempt, the upper half jittered; default 250 ms. */
  readonly retryDelayMs?: number;
  /** Connect + response-headers timeout, and the longest pause while reading a body; default 60 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Where HTTPS_PROXY, HTTP_PROXY and NO_PROXY come from; default process.env. */
  readonly env?: Env;
}

export interface ResolvedHttpOptions {
  readonly fetch: Fetch;
  readonly retries: number;
  readonly policy: HttpPolicy;
  readonly signal: AbortSignal | undefined;
}

/** Returns `options` with defaults filled in. */
export function normalizeHttpOptions(options: HttpOptions = {}): ResolvedHttpOptions {
  const policy = resolvePolicy({
    retries: options.retries,
    retryBaseMs: options.retryDelayMs,
    timeoutMs: options.timeoutMs,
  });
  return {
    fetch: options.fetch ?? mirrorFetch(policy, options.env),
    retries: policy.retries,
    policy,
    signal: options.signal,
  };
}

/**
 * GETs through the HTTP layer: plain HTTP to any mirror (every file is checked against the signed Release), HTTPS
 * never redirected to plain HTTP (as apt refuses), bodies read by wire.ts.
 */
function mirrorFetch(policy: HttpPolicy, env: Env | undefined): Fetch {
  const transport = new HttpTransport({
    plainHttpAnywhere: true,
    timeoutMs: policy.timeoutMs,
    ...(env ? { env } : {}),
  });
  return (url, init) =>
    transport.send(url, {
      method: 'GET',
      headers: init.headers,
      wire: true,
      ...(init.signal ? { signal: init.signal } : {}),
    });
}

/** A failure worth retrying (network error, 5xx, 429, a body cut short); `retryAfter` is the server's wish. */
export class RetryableError extends Error {
  readonly retryAfter: string | null;
  constructor(message: string, options?: { cause?: unknown; retryAfter?: string | null }) {
    super(message, options);
    this.retryAfter = options?.retryAfter ?? null;
  }
}

/** Returns after the delay before attempt `attempt + 1` (0-based): `Retry-After`, else the policy's backoff. */
export async function backoff(
  options: ResolvedHttpOptions,
  attempt: number,
  e?: RetryableError,
): Promise<void> {
  const ms = retryDelayMs(options.policy, attempt, e?.retryAfter ?? null);
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Returns the response of one GET, or throws: DEBIAN_NOT_FOUND on 404/410, DEBIAN_HTTP on other 4xx, and
 * RetryableError on network errors, 5xx and 429. `Accept-Encoding: identity` keeps hashes meaningful: a proxy must
 * not hand us a transparently decompressed body.
 */
export async function getOnce(
  options: ResolvedHttpOptions,
  url: string,
  headers: Record<string, string> = {},
  what = url,
): Promise<FetchResponse> {
  let res: FetchResponse;
  try {
    res = await options.fetch(url, {
      headers: { 'accept-encoding': 'identity', 'user-agent': 'pare', ...headers },
      signal: options.signal,
    });
  } catch (e) {
    if (options.signal?.aborted) throw e;
    if (!isRetryableError(e))
      throw new DebianError('DEBIAN_HTTP', `cannot fetch ${what}: ${describeCause(e)}`, { cause: e, url });
    throw new RetryableError(`cannot fetch ${what}: ${describeCause(e)}`, { cause: e });
  }
  if (res.status === 404 || res.status === 410) {
    await discard(res);
    throw new DebianError('DEBIAN_NOT_FOUND', `cannot fetch ${what}: ${url} answered ${res.status}`, { url });
  }
  if (isRetryableStatus(res.status)) {
    await discard(res);
    throw new RetryableError(`cannot fetch ${what}: ${url} answered ${res.status}`, {
      retryAfter: res.headers.get('retry-after'),
    });
  }
  if (res.status !== 200 && res.status !== 206 && res.status !== 416) {
    await discard(res);
    throw new DebianError('DEBIAN_HTTP', `cannot fetch ${what}: ${url} answered ${res.status}`, { url });
  }
  return res;
}

/**
 * Returns the whole body of `url` (at most `maxBytes`), retrying per `options`. Throws DEBIAN_NOT_FOUND, DEBIAN_HTTP
 * (after the last retry, or when the body is over `maxBytes`).
 */
export async function fetchBytes(
  options: ResolvedHttpOptions,
  url: string,
  maxBytes: number,
  what = url,
): Promise<Uint8Array> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await getOnce(options, url, {}, what);
      if (res.status !== 200) {
        await discard(res);
        throw new DebianError(
          'DEBIAN_HTTP',
          `cannot fetch ${what}: ${url} answered ${res.status} to a plain GET`,
          {
            url,
          },
        );
      }
      const chunks: Uint8Array[] = [];
      let n = 0;
      try {
        for await (const c of res.body ?? []) {
          n += c.length;
          if (n > maxBytes) {
            throw new DebianError(
              'DEBIAN_HTTP',
              `cannot fetch ${what}: ${url} sent more than ${maxBytes} bytes, more than such a file can be`,
              { url },
            );
          }
          chunks.push(c);
        }
      } catch (e) {
        if (e instanceof DebianError) throw e;
        throw new RetryableError(
          `cannot fetch ${what}: connection lost after ${n} bytes: ${describeCause(e)}`,
          {
            cause: e,
          },
        );
      }
      return concat(chunks, n);
    } catch (e) {
      if (!(e instanceof RetryableError)) throw e;
      if (attempt >= options.retries) {
        throw new DebianError('DEBIAN_HTTP', `${e.message} (gave up after ${attempt + 1} attempts)`, {
          cause: e,
          url,
        });
      }
      await backoff(options, attempt, e);
    }
  }
}

/** Reads and drops a body so the connection can be reused. */
export async function discard(res: FetchResponse): Promise<void> {
  try {
    for await (const _ of res.body ?? []) {
      /* drain */
    }
  } catch {
    /* the connection is closed anyway */
  }
}

/** Returns the chunks joined into one array of `size` bytes. */
export function concat(chunks: readonly Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * Calls `fn` on every item with at most `limit` calls in flight; returns the results in input order. The first
 * failure rejects, after the calls already running have settled (so no download is left writing in the background).
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed: { error: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (e) {
        failed ??= { error: e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed) throw failed.error;
  return out;
}
