/**
 * An HTTP/1.1 listener: one node:http server with edge-safe limits, whose request handling reads a
 * swappable ListenerRuntime. A reload swaps the runtime (new requests see the new config at once,
 * in-flight ones keep theirs); the socket stays open, so no connection is refused.
 */
import http from 'node:http';
import type { Socket, AddressInfo } from 'node:net';
import type { ListenerConfig } from '../config/types.ts';
import { errorBody, ERRORS, type ErrorCode } from '../transport/errors.ts';
import { handleRequest, type ListenerRuntime } from './http-handler.ts';
import { ConnectionLimits } from './connection-limits.ts';

/** Settings that can only be set when the server is created; a change means a new server. */
export function bindingKey(c: ListenerConfig): string {
  return `${c.protocol}|${c.address.host}|${c.address.port}|${c.maxHeaderSize}`;
}

function rawError(socket: Socket, code: ErrorCode): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const k = ERRORS[code];
  const body = errorBody(code, undefined);
  socket.end(
    `HTTP/1.1 ${k.status} ${http.STATUS_CODES[k.status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  socket.destroySoon?.();
}

/** Parse failures Node reports before a request exists: 408, 431 or 400, always closing. */
function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
    socket.destroy();
    return;
  }
  // The parser can fail right after emitting a request (llhttp raises an invalid Transfer-Encoding
  // once the headers are complete): if that request's response has already started, a second
  // response would desynchronise the client. Close instead, flushing a response that has ended.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent: boolean; writableEnded: boolean } | null })._httpMessage;
  if (inFlight?.headersSent) {
    if (inFlight.writableEnded) socket.end();
    else socket.destroy();
    return;
  }
  // Node reports both of its timeouts as ERR_HTTP_REQUEST_TIMEOUT: with a request already parsed it
  // was the body (requestTimeout), otherwise the header block (headersTimeout).
  const code: ErrorCode =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? inFlight
        ? 'REQUEST_TIMEOUT'
        : 'HEADER_TIMEOUT'
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? 'HEADERS_TOO_LARGE'
        : 'BAD_REQUEST';
  rawError(socket, code);
}

export class HttpListener {
  readonly name: string;
  readonly server: http.Server;
  config: ListenerConfig;
  #runtime: ListenerRuntime;
  readonly limits: ConnectionLimits;

  constructor(config: ListenerConfig, runtime: ListenerRuntime) {
    this.name = config.name;
    this.config = config;
    this.#runtime = runtime;
    this.limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerClient);
    this.server = http.createServer({
      maxHeaderSize: config.maxHeaderSize,
      insecureHTTPParser: false,
      requireHostHeader: true,
      joinDuplicateHeaders: false,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(config.headerTimeout / 4))),
    });
    this.applyTunables(config);
    // Registered after node:http's own connection listener, so a refused socket is already parsed
    // for; answering and closing it is all that is left to do.
    this.server.on('connection', (socket: Socket) => {
      if (!this.limits.admit(socket)) rawError(socket, 'TOO_MANY_CONNECTIONS');
    });
    this.server.on('request', (req, res) => handleRequest(this.#runtime, req, res, false));
    this.server.on('checkContinue', (req, res) => handleRequest(this.#runtime, req, res, true));
    this.server.on('clientError', onClientError);
    this.server.on('connect', (_req, socket: Socket) => rawError(socket, 'METHOD_NOT_ALLOWED'));
  }

  /** Settings a running server accepts changes to. */
  applyTunables(config: ListenerConfig): void {
    this.config = config;
    const s = this.server;
    s.headersTimeout = config.headerTimeout;
    s.requestTimeout = config.requestTimeout;
    s.keepAliveTimeout = config.keepAliveTimeout;
    s.maxRequestsPerSocket = config.maxRequestsPerConnection;
    this.limits.update(config.maxConnections, config.maxConnectionsPerClient);
  }

  /** The runtime new requests use. */
  get runtime(): ListenerRuntime {
    return this.#runtime;
  }

  /** Points new requests at a new config generation; in-flight ones keep the old. */
  swap(runtime: ListenerRuntime, config: ListenerConfig): void {
    this.applyTunables(config);
    this.#runtime = runtime;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: this.config.address.host, port: this.config.address.port, reusePort: true }, () => {
        this.server.off('error', onError);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | undefined {
    const a = this.server.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  /** Stops accepting, marks responses `Connection: close`, closes idle keep-alive connections. */
  stopAccepting(): Promise<void> {
    this.#runtime.policy.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    return closed;
  }

  /** Ends every connection now (after the drain timeout). */
  destroyConnections(): void {
    this.server.closeAllConnections();
  }
}
