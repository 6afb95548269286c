/**
 * How Switchboard's own answers look on the wire: the JSON error body, gRPC statuses for gRPC
 * clients, a Reply rendered into a head and a body, and raw error bytes for a socket that has no
 * request object (before a request exists, or during a WebSocket upgrade).
 *
 * One JSON body shape everywhere: `{"error":{"code","status","message","requestId"}}`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { STATUS_CODES } from '../util/node-http.ts';
import type { Socket } from 'node:net';
import { ERRORS, type ErrorCode } from '../errors.ts';
import type { Reply } from '../policies/filter.ts';
import { HeaderList } from './header-list.ts';

/** The JSON body of an error. */
export function errorBody(code: string, status: number, message: string, requestId: string | undefined): string {
  return JSON.stringify({ error: { code, status, message, requestId } });
}

/** The Reply for one of the gateway's own errors (message: the table's, unless given). */
export function errorReply(code: ErrorCode, message?: string): Reply {
  const k = ERRORS[code];
  return { status: k.status, error: { code, message: message ?? k.message } };
}

/** gRPC status codes (grpc/doc/statuscodes.md) Switchboard answers with. */
const GRPC = {
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * The gRPC status a client should see for an error: for the gateway's codes, timeouts are
 * DEADLINE_EXCEEDED, size limits RESOURCE_EXHAUSTED, no route UNIMPLEMENTED, upstream and capacity
 * problems UNAVAILABLE (retryable by gRPC clients), the rest INTERNAL. Refusals by a policy, ours
 * (AUTH_REQUIRED, RATE_LIMITED…) or a custom one, go by their HTTP status, as Envoy's ext_authz and
 * rate-limit filters answer gRPC callers: 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 429
 * RESOURCE_EXHAUSTED (a limit or quota: "some resource has been exhausted, perhaps a per-user
 * quota", grpc/doc/statuscodes.md; not UNAVAILABLE, which clients retry at once); any other
 * status of a policy as gRPC's http-grpc-status-mapping.md maps it.
 */
export function grpcStatus(code: string, status: number): number {
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
    case 'POLICY_ERROR':
      return GRPC.INTERNAL;
  }
  switch (status) {
    case 401:
      return GRPC.UNAUTHENTICATED;
    case 403:
      return GRPC.PERMISSION_DENIED;
    case 429:
      return GRPC.RESOURCE_EXHAUSTED;
  }
  const known = (ERRORS as Record<string, (typeof ERRORS)[ErrorCode] | undefined>)[code];
  if (known !== undefined) return known.side === 'downstream' && code !== 'TOO_MANY_CONNECTIONS' ? GRPC.INTERNAL : GRPC.UNAVAILABLE;
  switch (status) {
    case 404:
      return GRPC.UNIMPLEMENTED;
    case 502:
    case 503:
    case 504:
      return GRPC.UNAVAILABLE;
    default:
      return status >= 500 ? GRPC.INTERNAL : GRPC.UNKNOWN;
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
export function isGrpc(headers: IncomingHttpHeaders): boolean {
  const contentType = headers['content-type'];
  return contentType?.startsWith('application/grpc') === true;
}

/** `grpc-status` and `grpc-message` for an error: a Trailers-Only response, or the trailers of one under way. */
export function grpcErrorStatus(code: string, status: number, message: string): Record<string, string> {
  return { 'grpc-status': String(grpcStatus(code, status)), 'grpc-message': grpcMessage(`${code}: ${message}`) };
}

/** A Reply as it goes out: the head (a HeaderList filters may change) and the body. */
export interface RenderedReply {
  status: number;
  headers: HeaderList;
  body: Buffer | undefined;
  /** `Reply.stream`, sent after `body`. */
  stream?: AsyncIterator<Buffer>;
}

/**
 * Renders `reply` for a request with `requestHeaders`: an `error` becomes the JSON body (or, for a
 * gRPC call, a Trailers-Only answer: HTTP 200 with `grpc-status`, as gRPC servers and Envoy answer);
 * Content-Length and X-Request-Id are added when missing; a 503 error gets Retry-After.
 */
export function renderReply(reply: Reply, requestId: string, requestHeaders: IncomingHttpHeaders): RenderedReply {
  const headers = new HeaderList();
  let status = reply.status;
  let body: Buffer | undefined;
  const e = reply.error;
  const given = reply.headers;
  if (e !== undefined) {
    // The Reply's own headers (WWW-Authenticate, Retry-After, Vary) go with the error body.
    if (given !== undefined) {
      for (const name in given) {
        const lower = name.toLowerCase();
        if (lower === 'content-type' || lower === 'content-length') continue;
        const v = given[name];
        if (typeof v === 'string') headers.raw.push(name, v);
        else for (const one of v) headers.raw.push(name, one);
      }
    }
    if (isGrpc(requestHeaders)) {
      const grpc = grpcErrorStatus(e.code, status, e.message);
      headers.raw.push('content-type', 'application/grpc', 'grpc-status', grpc['grpc-status'], 'grpc-message', grpc['grpc-message'], 'x-request-id', requestId);
      return { status: 200, headers, body: undefined };
    }
    body = Buffer.from(errorBody(e.code, status, e.message, requestId));
    headers.raw.push('content-type', 'application/json', 'content-length', String(body.length), 'cache-control', 'no-store', 'x-request-id', requestId);
    if (status === 503 && !headers.has('retry-after')) headers.raw.push('retry-after', '1');
    return { status, headers, body };
  }
  if (given !== undefined) {
    for (const name in given) {
      const v = given[name];
      if (typeof v === 'string') headers.raw.push(name, v);
      else for (const one of v) headers.raw.push(name, one);
    }
  }
  if (reply.body !== undefined)
    body = typeof reply.body === 'string' ? Buffer.from(reply.body) : Buffer.from(reply.body.buffer, reply.body.byteOffset, reply.body.byteLength);
  if (status !== 204 && status !== 304 && !(status >= 100 && status < 200) && !headers.has('content-length'))
    headers.raw.push('content-length', String(body?.length ?? 0));
  if (!headers.has('x-request-id')) headers.raw.push('x-request-id', requestId);
  status = status | 0;
  if (reply.stream !== undefined) return { status, headers, body, stream: reply.stream };
  return { status, headers, body };
}

/**
 * Answers on a raw socket (no response object: before a request exists, or an upgrade) with one of
 * Switchboard's own errors, the same status and JSON body as every other, and `Connection: close`,
 * then closes. Returns the body length.
 */
export function writeRawError(socket: Socket, code: ErrorCode, requestId: string | undefined, message?: string): number {
  if (!socket.writable) {
    socket.destroy();
    return 0;
  }
  const k = ERRORS[code];
  const body = errorBody(code, k.status, message ?? k.message, requestId);
  const length = Buffer.byteLength(body);
  let head = `HTTP/1.1 ${k.status} ${STATUS_CODES[k.status]}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\ncache-control: no-store\r\n`;
  if (requestId !== undefined) head += `x-request-id: ${requestId}\r\n`;
  if (k.status === 503) head += 'retry-after: 1\r\n';
  socket.end(`${head}connection: close\r\n\r\n${body}`, () => socket.destroy());
  return length;
}
