/**
 * One HTTP/1.1 Upgrade request to one endpoint, up to the endpoint's answer:
 *
 *   dial(endpoint) ── connected ──► sendUpgrade(conn) ──► 101: the caller opens a Tunnel
 *        │                                         └───► anything else: the caller relays it, then closes
 *        └─ refused / timed out / TLS failed: nothing was sent, the caller may try another endpoint
 *
 * The answer is read by Node's HTTP client parser (llhttp, strict: no bare LF, NUL or obs-fold, the
 * head bounded by `maxHeaderSize`). Nothing here writes to the client: the HTTP layer relays.
 */
import type { IncomingMessage } from 'node:http';
import http from '../util/node-http.ts';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { ProxyError, upstreamError } from '../errors.ts';
import { downstreamResponseHeaders } from './headers.ts';

/** What a dial needs of an endpoint: its address, and TLS options for an https:// one. */
export interface Dialable {
  readonly address: { readonly host: string; readonly port: number };
  readonly tls: tls.ConnectionOptions | undefined;
}

/** A connection being opened; destroy `socket` to cancel. */
export interface Dialled {
  readonly socket: Socket;
  /** Resolves when the socket may be written (TLS: handshake done); rejects with a ProxyError. */
  readonly connected: Promise<void>;
}

/** The endpoint's TLS options for a tunnel: HTTP/1.1 by ALPN (an h2 upstream has no Upgrade), half-open. */
function tlsOptions(endpoint: Dialable): tls.ConnectionOptions {
  // tls.connect honours allowHalfOpen as net.connect does; its typings leave it out.
  const options: tls.ConnectionOptions & { allowHalfOpen: boolean } = { ...endpoint.tls, ...endpoint.address, ALPNProtocols: ['http/1.1'], allowHalfOpen: true };
  return options;
}

/**
 * Opens a connection to `endpoint`: TLS with its options for an https:// endpoint (ALPN forced to
 * http/1.1), half-open allowed so a tunnel can pass a FIN on. `timeout` ms (0 = none) for the
 * connection and handshake. A socket destroyed before it connected rejects with CLIENT_CLOSED.
 */
export function dial(endpoint: Dialable, timeout: number): Dialled {
  const secure = endpoint.tls !== undefined;
  const socket = secure ? tls.connect(tlsOptions(endpoint)) : net.connect({ ...endpoint.address, allowHalfOpen: true });
  let failure: ProxyError | undefined;
  // Stays for the socket's life: a late error must never be unhandled.
  socket.on('error', (err) => {
    failure ??= err instanceof ProxyError ? err : upstreamError(err);
  });
  const connected = new Promise<void>((resolve, reject) => {
    const ready = secure ? 'secureConnect' : 'connect';
    const timer = timeout > 0 ? setTimeout(() => socket.destroy(new ProxyError('UPSTREAM_CONNECT_TIMEOUT')), timeout) : undefined;
    const onClose = (): void => {
      clearTimeout(timer);
      reject(failure ?? new ProxyError('CLIENT_CLOSED'));
    };
    socket.once('close', onClose);
    socket.once(ready, () => {
      clearTimeout(timer);
      socket.off('close', onClose);
      resolve();
    });
  });
  return { socket, connected };
}

/** What the endpoint answered to an upgrade request. */
export type UpgradeAnswer =
  | { readonly switched: true; readonly response: IncomingMessage /** Bytes after the 101 head. */; readonly rest: Buffer }
  | { readonly switched: false; readonly response: IncomingMessage };

export interface UpgradeRequest {
  readonly method: string;
  /** Path and query as sent. */
  readonly target: string;
  /** Flat [name, value, ...], Connection and Upgrade included. */
  readonly headers: string[];
  /** Largest answer head in bytes. */
  readonly maxHeaderSize: number;
  /** ms for the answer's head to arrive; 0 = no limit. */
  readonly timeout: number;
}

/**
 * Writes the request head on the connected `conn` and resolves with the answer's head (a 1xx other
 * than 101 is skipped). Rejects with a ProxyError: UPSTREAM_BAD_RESPONSE (unparseable or too large),
 * UPSTREAM_RESET, UPSTREAM_TIMEOUT. The socket stays the caller's to destroy or splice.
 */
export function sendUpgrade(conn: Socket, r: UpgradeRequest): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      createConnection: () => conn,
      method: r.method,
      path: r.target,
      headers: r.headers,
      setHost: false,
      maxHeaderSize: r.maxHeaderSize,
      insecureHTTPParser: false,
    });
    const timer =
      r.timeout > 0
        ? setTimeout(() => req.destroy(new ProxyError('UPSTREAM_TIMEOUT', undefined, 'the endpoint did not answer the upgrade in time')), r.timeout)
        : undefined;
    req.once('upgrade', (response: IncomingMessage, _socket, rest: Buffer) => {
      clearTimeout(timer);
      resolve({ switched: true, response, rest });
    });
    req.once('response', (response: IncomingMessage) => {
      clearTimeout(timer);
      resolve({ switched: false, response });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(upstreamError(err));
    });
    req.end();
  });
}

/**
 * The 101's headers for the client: the endpoint's without hop-by-hop ones (Sec-WebSocket-Accept,
 * -Protocol and -Extensions pass) and Content-Length, plus the sticky cookie, if any. Response
 * filters may change the list before `switchedHead` writes it.
 */
export function switchedHeaders(response: IncomingMessage, requestId: string, setCookie: string | undefined): string[] {
  const headers = downstreamResponseHeaders(response.headersDistinct, requestId);
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (headers[i] !== 'content-length') out.push(headers[i], headers[i + 1]);
  if (setCookie !== undefined) out.push('set-cookie', setCookie);
  return out;
}

/** The 101 head as bytes: `headers` (from `switchedHeaders`), then Connection and Upgrade. */
export function switchedHead(headers: readonly string[], upgrade: string): Buffer {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i].toLowerCase();
    if (name === 'connection' || name === 'upgrade' || name === 'content-length' || name === 'transfer-encoding') continue;
    head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  }
  head += `connection: Upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
  return Buffer.from(head, 'latin1');
}
