/**
 * HTTP/1.x requests as the pipeline's `Downstream`: a thin adapter over node:http's
 * IncomingMessage and ServerResponse (strict llhttp parsing; never insecureHTTPParser). Listeners
 * serve HTTP/1.1 with Switchboard's own server (h1-server.ts); node:http, and this adapter, serve
 * only what that server hands over: a connection whose head asked for an upgrade or CONNECT (a
 * non-WebSocket Upgrade becomes a plain request here), and one refused for the connection limits.
 *
 * Pipelining (RFC 9112 §9.3): node:http parses every request of a pipelined burst at once and
 * queues their responses. Requests on one connection are served one at a time here, as nginx and
 * HAProxy do: a request waits until the response before it is over, and when that response closed
 * the connection (an error with `Connection: close`, a client's `Connection: close`, a response cut
 * short), the requests behind it are never processed (RFC 9112 §9.6), so nothing is forwarded on
 * behalf of a client that will never see the answer. A request carrying a non-WebSocket Upgrade
 * closes the connection after its answer (node:http drops what was pipelined behind it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ProxyError } from '../errors.ts';
import type { Downstream, DownstreamOwner } from './downstream.ts';
import { H1Request } from './h1-request.ts';

const kDown = Symbol('switchboard.h1');
const kConn = Symbol('switchboard.h1conn');

/** One connection's requests: the one being served, those waiting behind it. */
interface H1Connection {
  busy: boolean;
  waiting: H1Downstream[] | undefined;
  /** A response closed the connection: nothing after it is processed. */
  closing: boolean;
  readonly start: (down: H1Downstream) => void;
}

type Tracked = ServerResponse & { [kDown]?: H1Downstream };
type ConnSocket = { [kConn]?: H1Connection };

/** The response is over: tell the pipeline, then serve the next pipelined request, if any. */
function onClose(this: Tracked): void {
  const down = this[kDown];
  if (down === undefined) return;
  this[kDown] = undefined;
  const complete = this.writableFinished;
  down.owner?.closed(complete);
  const conn = down.conn;
  conn.busy = false;
  if (!complete || !this.shouldKeepAlive) {
    conn.closing = true;
    conn.waiting = undefined;
    return;
  }
  const next = conn.waiting?.shift();
  if (next !== undefined) {
    conn.busy = true;
    conn.start(next);
  }
}

/**
 * Takes a request node:http emitted ('request' or 'checkContinue'): `start` runs it now, or once
 * the requests before it on the connection are answered; never when one of those closed it.
 */
export function acceptH1(req: IncomingMessage, res: ServerResponse, expectContinue: boolean, start: (down: H1Downstream) => void): void {
  const socket = req.socket as typeof req.socket & ConnSocket;
  let conn = socket[kConn];
  if (conn === undefined) {
    conn = { busy: false, waiting: undefined, closing: false, start };
    socket[kConn] = conn;
  }
  if (conn.closing) return;
  const down = new H1Downstream(req, res, expectContinue, conn);
  if (conn.busy) {
    conn.waiting ??= [];
    conn.waiting.push(down);
    return;
  }
  conn.busy = true;
  start(down);
}

export class H1Downstream extends H1Request implements Downstream {
  readonly res: ServerResponse;
  readonly expectContinue: boolean;
  readonly conn: H1Connection;
  owner: DownstreamOwner | undefined = undefined;
  readonly settleFirst = false;
  readonly upgrade = false;

  constructor(req: IncomingMessage, res: ServerResponse, expectContinue: boolean, conn: H1Connection) {
    super(req);
    this.res = res;
    this.expectContinue = expectContinue;
    this.conn = conn;
  }

  attach(owner: DownstreamOwner): void {
    this.owner = owner;
    (this.res as Tracked)[kDown] = this;
    this.res.on('close', onClose);
    // node:http stops parsing a connection at a request with `Connection: upgrade` that it does not
    // hand to 'upgrade' (not a WebSocket): bytes pipelined after it are lost. Close after answering,
    // so the client retries them on a new connection instead of waiting for answers out of step.
    if (owner.draining || this.req.headers.upgrade !== undefined) this.res.shouldKeepAlive = false;
  }

  get version(): string {
    return this.req.httpVersionMinor === 0 ? 'HTTP/1.0' : 'HTTP/1.1';
  }

  get hasBody(): boolean {
    const h = this.req.headers;
    const cl = h['content-length'];
    return h['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0' && Number(cl) !== 0);
  }

  get bodyComplete(): boolean {
    return this.req.complete;
  }

  get bodyFailed(): boolean {
    return this.req.errored !== null;
  }

  body(): Readable {
    return this.req;
  }

  // The response.

  get headersSent(): boolean {
    return this.res.headersSent;
  }

  get destroyed(): boolean {
    return this.res.destroyed;
  }

  get ended(): boolean {
    return this.res.writableEnded;
  }

  informational(status: number, headers?: Record<string, string | string[]>): boolean {
    const res = this.res;
    if (res.headersSent || res.destroyed) return false;
    if (status === 100) res.writeContinue();
    else if (status === 102) res.writeProcessing();
    else if (status === 103 && headers !== undefined) res.writeEarlyHints(headers);
    else return false;
    return true;
  }

  head(status: number, reason: string | undefined, headers: string[]): boolean {
    const res = this.res;
    const owner = this.owner!;
    owner.status = status;
    if (res.destroyed) return true;
    if (owner.draining) res.shouldKeepAlive = false;
    if (reason) res.writeHead(status, reason, headers);
    else res.writeHead(status, headers);
    return true;
  }

  data(chunk: Buffer): boolean {
    this.owner!.bytesOut += chunk.length;
    return this.res.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.res.once('drain', resume);
  }

  end(trailers: Record<string, string | string[]> | undefined): void {
    const res = this.res;
    if (trailers !== undefined) {
      for (const _ in trailers) {
        res.addTrailers(trailers as Record<string, string>);
        break;
      }
    }
    res.end();
  }

  /** Mid-body failure: the client must see an aborted response, never a clean truncated end. */
  abort(_err: ProxyError): void {
    if (!this.res.destroyed) this.res.destroy();
  }

  closeAfter(): void {
    this.res.shouldKeepAlive = false;
  }
}
