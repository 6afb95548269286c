/**
 * Every failure Switchboard answers for itself, each with a stable code, its HTTP status, whether a
 * retry may help, and which side caused it. One JSON body shape everywhere:
 * `{"error":{"code":"UPSTREAM_TIMEOUT","status":504,"message":"...","requestId":"..."}}`.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

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
  INVALID_TRANSFER_ENCODING: kind(400, 'downstream', 'Transfer-Encoding must be exactly "chunked" (and is not allowed in HTTP/1.0)', { close: true }),
  INVALID_TARGET: kind(400, 'downstream', 'the request target is not a valid origin-form or absolute-form target', { close: true }),
  UNSUPPORTED_HTTP_VERSION: kind(400, 'downstream', 'only HTTP/1.0 and HTTP/1.1 are accepted here', { close: true }),
  INVALID_HEADER_NAME: kind(400, 'downstream', 'a header name contains an underscore', { close: true }),
  METHOD_NOT_ALLOWED: kind(405, 'downstream', 'this listener does not accept this method', { close: true }),
  HEADER_TIMEOUT: kind(408, 'downstream', 'the request headers did not arrive in time', { close: true }),
  REQUEST_TIMEOUT: kind(408, 'downstream', 'the request body did not arrive in time', { close: true }),
  BODY_TOO_LARGE: kind(413, 'downstream', 'the request body is larger than this route allows', { close: true }),
  HEADERS_TOO_LARGE: kind(431, 'downstream', 'the request header block is too large', { close: true }),
  SEND_TIMEOUT: kind(408, 'downstream', 'the client did not take the response in time', { close: true }),
  CLIENT_CLOSED: kind(499, 'downstream', 'the client closed the connection before the response was complete', { close: true }),
  ROUTE_NOT_FOUND: kind(404, 'downstream', 'no route matches this request'),
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

/** The JSON body for an error code. */
export function errorBody(code: ErrorCode, requestId: string | undefined, message?: string): string {
  const k = ERRORS[code];
  return JSON.stringify({ error: { code, status: k.status, message: message ?? k.message, requestId } });
}

/**
 * Answers `res` with the error's status and JSON body. Adds `Connection: close` when the error
 * demands it or when `bodyUnread` (the request body was not consumed, so its bytes must never be
 * parsed as a next request). When headers already went out it destroys the response instead.
 * Returns the number of body bytes sent.
 */
export function sendError(res: ServerResponse, code: ErrorCode, requestId: string | undefined, bodyUnread = false, message?: string): number {
  if (res.headersSent || res.destroyed) {
    if (!res.writableEnded) res.destroy();
    return 0;
  }
  const req = res.req as IncomingMessage | undefined;
  if (req !== undefined && isGrpcRequest(req)) return sendGrpcError(res, code, requestId, message);
  const k = ERRORS[code];
  const body = errorBody(code, requestId, message);
  const length = Buffer.byteLength(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': length,
    'cache-control': 'no-store',
  };
  if (requestId) headers['x-request-id'] = requestId;
  // HTTP/2 has no Connection header: its framing is never in doubt, and the stream simply ends.
  if ((k.close || bodyUnread) && (req as { stream?: unknown } | undefined)?.stream === undefined) headers.connection = 'close';
  if (k.status === 503) headers['retry-after'] = '1';
  res.writeHead(k.status, headers);
  res.end(body);
  return length;
}

/** gRPC status codes (grpc/doc/statuscodes.md) Switchboard answers with. */
const GRPC = { CANCELLED: 1, DEADLINE_EXCEEDED: 4, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14 } as const;

/**
 * The gRPC status a client should see for one of our errors: timeouts are DEADLINE_EXCEEDED, size
 * limits RESOURCE_EXHAUSTED, no route UNIMPLEMENTED, anything an upstream or capacity problem
 * caused UNAVAILABLE (retryable by gRPC clients), the rest INTERNAL.
 */
export function grpcStatus(code: ErrorCode): number {
  switch (code) {
    case 'UPSTREAM_TIMEOUT':
    case 'UPSTREAM_CONNECT_TIMEOUT':
    case 'REQUEST_TIMEOUT':
      return GRPC.DEADLINE_EXCEEDED;
    case 'BODY_TOO_LARGE':
    case 'HEADERS_TOO_LARGE':
      return GRPC.RESOURCE_EXHAUSTED;
    case 'ROUTE_NOT_FOUND':
    case 'METHOD_NOT_ALLOWED':
      return GRPC.UNIMPLEMENTED;
    case 'CLIENT_CLOSED':
      return GRPC.CANCELLED;
    case 'INTERNAL_ERROR':
      return GRPC.INTERNAL;
    default:
      return ERRORS[code].side === 'downstream' && code !== 'TOO_MANY_CONNECTIONS' ? GRPC.INTERNAL : GRPC.UNAVAILABLE;
  }
}

/**
 * `grpc-message` percent-encoding (gRPC PROTOCOL-HTTP2): UTF-8 bytes outside printable ASCII, and
 * `%`, as `%XX`; everything else as is. Not encodeURIComponent: clients decode with the equivalent
 * of decodeURI, which leaves reserved characters such as `%3A` encoded.
 */
export function grpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** A gRPC call (content-type application/grpc, +proto, +json...): its errors are gRPC statuses. */
export function isGrpcRequest(req: IncomingMessage): boolean {
  const contentType = req.headers['content-type'];
  return contentType !== undefined && contentType.startsWith('application/grpc');
}

/** `grpc-status` and `grpc-message` for one of our errors: a Trailers-Only response, or the trailers of one under way. */
export function grpcErrorStatus(code: ErrorCode, message?: string): Record<string, string> {
  return { 'grpc-status': String(grpcStatus(code)), 'grpc-message': grpcMessage(`${code}: ${message ?? ERRORS[code].message}`) };
}

/**
 * A gRPC client's error: HTTP 200 with the status in a trailers-only response (`grpc-status`,
 * `grpc-message` percent-encoded), as gRPC servers and Envoy answer, so every gRPC client reads it.
 */
function sendGrpcError(res: ServerResponse, code: ErrorCode, requestId: string | undefined, message?: string): number {
  const headers: Record<string, string> = { 'content-type': 'application/grpc', ...grpcErrorStatus(code, message) };
  if (requestId) headers['x-request-id'] = requestId;
  // Headers set, not written: node:http2's compat writeHead sends HEADERS at once without
  // END_STREAM, and the empty end that follows makes a headers-then-empty-trailers response, which
  // gRPC clients read as "ended without gRPC status" (INTERNAL). From end() alone the HEADERS frame
  // carries END_STREAM: a real Trailers-Only response.
  res.statusCode = 200;
  for (const name in headers) res.setHeader(name, headers[name]);
  res.end();
  return 0;
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

/**
 * Answers on a raw socket (no response object: before a request exists, or an upgrade) with one of
 * Switchboard's own errors, the same status and JSON body as `sendError`, and `Connection: close`,
 * then closes. Returns the body length.
 */
export function writeRawError(socket: Socket, code: ErrorCode, requestId: string | undefined, message?: string): number {
  if (!socket.writable) {
    socket.destroy();
    return 0;
  }
  const k = ERRORS[code];
  const body = errorBody(code, requestId, message);
  const length = Buffer.byteLength(body);
  let head = `HTTP/1.1 ${k.status} ${STATUS_CODES[k.status]}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\ncache-control: no-store\r\n`;
  if (requestId !== undefined) head += `x-request-id: ${requestId}\r\n`;
  if (k.status === 503) head += 'retry-after: 1\r\n';
  socket.end(`${head}connection: close\r\n\r\n${body}`, () => socket.destroy());
  return length;
}

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
