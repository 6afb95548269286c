/**
 * Every failure Switchboard answers for itself, each with a stable code, its HTTP status, whether a
 * retry may help, and which side caused it (after undici's lib/core/errors.js: one error class, a
 * stable code per failure). A leaf module: it imports nothing, so every layer may use it. The
 * answers themselves, one JSON body shape everywhere
 * (`{"error":{"code":"UPSTREAM_TIMEOUT","status":504,"message":"...","requestId":"..."}}`), are
 * written by the HTTP layer (http/error-response.ts).
 */

export type ErrorSide = 'downstream' | 'upstream' | 'internal';

export interface ErrorKind {
  status: number;
  message: string;
  side: ErrorSide;
  /** True when another endpoint might succeed (before any byte of the request was sent). */
  retryable: boolean;
  /** Close the client connection after answering (framing in doubt, or body left unread). */
  close: boolean;
}

function kind(status: number, side: ErrorSide, message: string, opts: { retryable?: boolean; close?: boolean } = {}): ErrorKind {
  return { status, side, message, retryable: opts.retryable ?? false, close: opts.close ?? false };
}

export const ERRORS = {
  BAD_REQUEST: kind(400, 'downstream', 'the request is malformed', { close: true }),
  DUPLICATE_HOST: kind(400, 'downstream', 'the request has more than one Host header', { close: true }),
  INVALID_HOST: kind(400, 'downstream', 'the Host header is not a valid host[:port]', { close: true }),
  HOST_MISMATCH: kind(400, 'downstream', 'the absolute-form request target names another host than the Host header', { close: true }),
  INVALID_CONTENT_LENGTH: kind(400, 'downstream', 'Content-Length must be a decimal number no larger than 2^53 - 1', { close: true }),
  INVALID_TRANSFER_ENCODING: kind(400, 'downstream', 'Transfer-Encoding must be exactly "chunked" (and is not allowed in HTTP/1.0)', { close: true }),
  INVALID_TARGET: kind(400, 'downstream', 'the request target is not a valid origin-form or absolute-form target', { close: true }),
  INVALID_REQUEST_LINE: kind(400, 'downstream', 'the request line must be method, target and version separated by single spaces', { close: true }),
  UNSUPPORTED_HTTP_VERSION: kind(400, 'downstream', 'only HTTP/1.0 and HTTP/1.1 are accepted here', { close: true }),
  MALFORMED_HEADER: kind(400, 'downstream', 'an HTTP/2 request field has a character RFC 9113 forbids; the stream was reset with PROTOCOL_ERROR', { close: true }),
  INVALID_HEADER_NAME: kind(400, 'downstream', 'a header name contains an underscore', { close: true }),
  METHOD_NOT_ALLOWED: kind(405, 'downstream', 'this listener does not accept this method', { close: true }),
  HEADER_TIMEOUT: kind(408, 'downstream', 'the request headers did not arrive in time', { close: true }),
  REQUEST_TIMEOUT: kind(408, 'downstream', 'the request body did not arrive in time', { close: true }),
  BODY_TOO_LARGE: kind(413, 'downstream', 'the request body is larger than this route allows', { close: true }),
  HEADERS_TOO_LARGE: kind(431, 'downstream', 'the request header block is too large', { close: true }),
  SEND_TIMEOUT: kind(408, 'downstream', 'the client did not take the response in time', { close: true }),
  CLIENT_CLOSED: kind(499, 'downstream', 'the client closed the connection before the response was complete', { close: true }),
  AUTH_REQUIRED: kind(401, 'downstream', 'this route needs a credential'),
  AUTH_INVALID: kind(401, 'downstream', 'the credential was not accepted'),
  AUTH_UNAVAILABLE: kind(503, 'upstream', 'the credential could not be checked: the identity provider is unavailable'),
  FORBIDDEN: kind(403, 'downstream', 'the caller may not make this request'),
  ROUTE_NOT_FOUND: kind(404, 'downstream', 'no route matches this request'),
  DESTINATION_FORBIDDEN: kind(403, 'downstream', 'the forward proxy does not connect to this destination address'),
  PORT_FORBIDDEN: kind(403, 'downstream', 'the forward proxy does not connect to this port'),
  DOMAIN_BLOCKED: kind(403, 'downstream', 'the forward proxy does not connect to this domain'),
  CONTENT_BLOCKED: kind(403, 'downstream', 'a content filter refused this request or its response (by URL, media type or size)'),
  PROXY_AUTH_REQUIRED: kind(407, 'downstream', 'this proxy needs a credential (Proxy-Authorization)'),
  PROXY_LOOP: kind(508, 'downstream', 'the request has already passed through this proxy (loop)'),
  DESTINATION_UNRESOLVED: kind(502, 'upstream', 'the destination host name could not be resolved', { retryable: false }),
  PARENT_PROXY_FAILED: kind(502, 'upstream', 'the parent proxy did not open a tunnel to the destination (it refused, could not reach it, or did not answer)'),
  FILE_NOT_FOUND: kind(404, 'downstream', 'no file to serve at this path'),
  INVALID_FILE_PATH: kind(400, 'downstream', 'the path has an encoded separator, a NUL, a backslash or a malformed escape'),
  FILE_METHOD_NOT_ALLOWED: kind(405, 'downstream', 'a static route answers GET and HEAD only'),
  PRECONDITION_FAILED: kind(412, 'downstream', 'a precondition of the request (If-Match, If-Unmodified-Since) does not hold'),
  RANGE_NOT_SATISFIABLE: kind(416, 'downstream', 'the requested range is outside the file'),
  RATE_LIMITED: kind(429, 'downstream', 'too many requests: the rate limit is reached, retry after the time Retry-After gives'),
  QUOTA_EXCEEDED: kind(429, 'downstream', 'the quota of this period is used up, retry after the time Retry-After gives'),
  CONCURRENCY_LIMITED: kind(429, 'downstream', 'too many requests in flight at once for this key'),
  NO_ENDPOINT: kind(503, 'upstream', 'no endpoint of the upstream is available', { retryable: true }),
  UPSTREAM_OVERLOADED: kind(503, 'upstream', 'the upstream is at its circuit breaker limit'),
  UPSTREAM_CONNECT_REFUSED: kind(502, 'upstream', 'the endpoint refused the connection', { retryable: true }),
  UPSTREAM_CONNECT_TIMEOUT: kind(504, 'upstream', 'connecting to the endpoint timed out', { retryable: true }),
  UPSTREAM_UNREACHABLE: kind(502, 'upstream', 'the endpoint could not be reached', { retryable: true }),
  UPSTREAM_TLS_ERROR: kind(502, 'upstream', 'the TLS handshake with the endpoint failed (certificate not trusted, expired or for another name)', { retryable: true }),
  UPSTREAM_RESET: kind(502, 'upstream', 'the endpoint closed or reset the connection'),
  UPSTREAM_BAD_RESPONSE: kind(502, 'upstream', 'the endpoint sent an invalid response'),
  UPSTREAM_TIMEOUT: kind(504, 'upstream', 'the endpoint did not answer in time'),
  UPSTREAM_ERROR: kind(502, 'upstream', 'forwarding to the endpoint failed'),
  TOO_MANY_CONNECTIONS: kind(503, 'downstream', 'this listener or this client has too many open connections', { close: true }),
  SHUTTING_DOWN: kind(503, 'internal', 'the gateway is shutting down', { close: true }),
  INTERNAL_ERROR: kind(500, 'internal', 'the gateway failed to handle this request', { close: true }),
  POLICY_ERROR: kind(500, 'internal', 'a policy failed while handling this request', { close: true }),
  POLICY_TIMEOUT: kind(503, 'internal', 'a policy did not decide in time', { close: true }),
  FILE_READ_ERROR: kind(500, 'internal', 'reading the file failed', { close: true }),
  NO_UPSTREAM: kind(500, 'internal', 'the route has no upstream, and none of its policies answered'),
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERRORS;

/** An error Switchboard answers with its own response. */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  override readonly cause: unknown;

  constructor(code: ErrorCode, cause?: unknown, message?: string) {
    super(message ?? ERRORS[code].message);
    this.name = 'ProxyError';
    this.code = code;
    this.kind = ERRORS[code];
    this.cause = cause;
  }
}

/** OpenSSL certificate verification failures, as Node reports them in `err.code`. */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
]);

/** Maps an undici / socket error to the proxy error the client should see. */
export function upstreamError(err: unknown): ProxyError {
  if (err instanceof ProxyError) return err;
  const code = (err as { code?: string } | null)?.code ?? '';
  switch (code) {
    case 'ECONNREFUSED':
      return new ProxyError('UPSTREAM_CONNECT_REFUSED', err);
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new ProxyError('UPSTREAM_CONNECT_TIMEOUT', err);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new ProxyError('UPSTREAM_UNREACHABLE', err);
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return new ProxyError('UPSTREAM_TIMEOUT', err);
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
    case 'ERR_HTTP2_STREAM_ERROR':
    case 'ERR_HTTP2_SESSION_ERROR':
    case 'ERR_HTTP2_GOAWAY_SESSION':
    case 'ERR_HTTP2_STREAM_CANCEL':
      return new ProxyError('UPSTREAM_RESET', err);
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_INFO':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
      return new ProxyError('UPSTREAM_BAD_RESPONSE', err);
    default:
      if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || TLS_VERIFY_CODES.has(code)) return new ProxyError('UPSTREAM_TLS_ERROR', err);
      // undici's HTTPParserError usually has no code (it looks the llhttp error number up in a
      // name→number table), so recognise it by name too.
      if (code.startsWith('HPE_') || (err as Error | null)?.name === 'HTTPParserError') return new ProxyError('UPSTREAM_BAD_RESPONSE', err);
      return new ProxyError('UPSTREAM_ERROR', err);
  }
}
