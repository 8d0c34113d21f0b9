export {
  backoffMs,
  DEFAULT_POLICY,
  errorCode,
  type HttpPolicy,
  isRetryableError,
  isRetryableStatus,
  MAX_REDIRECTS,
  type PlainHttpRules,
  parseRetryAfter,
  REDIRECT_STATUS,
  redirectTarget,
  resolvePolicy,
  retryDelayMs,
  TLS_CERT_CODES,
} from './policy.ts';
export { describeProxy, type Env, type ProxyRoute, proxyFor } from './proxy.ts';
export {
  describeCause,
  type HttpMethod,
  type HttpRequest,
  type HttpResponse,
  HttpTransport,
  isLoopbackHost,
  type TlsMode,
  type TransportOptions,
} from './transport.ts';
export { type BodySink, type WireRequest, type WireResponse, wireRequest } from './wire.ts';
