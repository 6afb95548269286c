/**
 * WebSocket upgrades (HTTP/1.1 `Upgrade`) and HTTP/1.1 CONNECT as the pipeline's `Downstream`: once
 * the own server (h1-server.ts) hands the socket over, nothing frames responses for it any more, so every answer that is not a
 * tunnel (our errors, a policy's Reply, an endpoint's non-101 answer) is written here as raw bytes
 * with its own framing (Content-Length, or chunked; none for 204 and 304) and `Connection: close`,
 * and the connection is closed after it (EDGE-CASES 14: the client may already have sent bytes
 * meant for the tunnel, so no later byte may be read as HTTP).
 */
import { STATUS_CODES } from '../util/node-http.ts';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { ProxyError } from '../errors.ts';
import type { Tunnels } from '../transport/tunnel.ts';
import type { Downstream, DownstreamOwner } from './downstream.ts';
import { type H1Head, H1Request } from './h1-request.ts';

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

export class WsDownstream extends H1Request implements Downstream {
  readonly socket: Socket;
  /** Bytes the client sent after its request head (the start of the tunnel). */
  readonly rest: Buffer;
  /** Where the listener keeps open tunnels (destroyed at its hard deadline). */
  readonly tunnels: Tunnels;
  owner: DownstreamOwner | undefined = undefined;
  readonly settleFirst = false;
  readonly hasBody = false;
  readonly bodyComplete = true;
  readonly bodyFailed = false;
  readonly version = 'HTTP/1.1';
  #headSent = false;
  #chunked = false;
  #bodyless = false;
  #ended = false;

  /** Whether the request is a WebSocket opening handshake (isWebSocketUpgrade); if not, it is refused. */
  readonly upgrade: boolean;

  constructor(req: H1Head, socket: Socket, rest: Buffer, tunnels: Tunnels, upgrade: boolean) {
    super(req);
    this.upgrade = upgrade;
    this.socket = socket;
    this.rest = rest;
    this.tunnels = tunnels;
  }

  attach(owner: DownstreamOwner): void {
    this.owner = owner;
    // A tunnel or a relayed answer counts as complete; a client gone before any answer does not.
    this.socket.once('close', () => owner.closed(owner.status !== 0));
  }

  body(): Readable {
    throw new Error('an upgrade request has no body');
  }

  // The response: raw bytes on the socket.

  get headersSent(): boolean {
    return this.#headSent;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  get ended(): boolean {
    return this.#ended;
  }

  informational(): boolean {
    return false;
  }

  head(status: number, reason: string | undefined, headers: string[]): boolean {
    this.owner!.status = status;
    this.#headSent = true;
    if (!this.socket.writable) {
      this.socket.destroy();
      return true;
    }
    this.#bodyless = status === 204 || status === 304;
    let framed = this.#bodyless;
    let head = `HTTP/1.1 ${status} ${reason ?? STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i].toLowerCase();
      if (name === 'transfer-encoding' || name === 'connection') continue;
      if (name === 'content-length') {
        if (this.#bodyless) continue;
        framed = true;
      }
      head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    }
    this.#chunked = !framed;
    if (this.#chunked) head += 'transfer-encoding: chunked\r\n';
    this.socket.write(Buffer.from(`${head}connection: close\r\n\r\n`, 'latin1'));
    return true;
  }

  data(chunk: Buffer): boolean {
    if (this.#bodyless || chunk.length === 0 || this.socket.destroyed) return true;
    this.owner!.bytesOut += chunk.length;
    if (!this.#chunked) return this.socket.write(chunk);
    this.socket.write(`${chunk.length.toString(16)}\r\n`);
    this.socket.write(chunk);
    return this.socket.write(CRLF);
  }

  onDrain(resume: () => void): void {
    this.socket.once('drain', resume);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const socket = this.socket;
    if (!socket.writable) return void socket.destroy();
    if (this.#chunked) socket.end(LAST_CHUNK, () => socket.destroy());
    else socket.end(() => socket.destroy());
  }

  /** An answer cut mid-body: the client sees the connection drop, never a clean short response. */
  abort(_err: ProxyError): void {
    this.#ended = true;
    this.socket.destroy();
  }

  closeAfter(): void {
    // Always: every answer on an upgrade closes the connection.
  }
}
