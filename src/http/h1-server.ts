/**
 * Switchboard's own HTTP/1.1 server side: one `H1Connection` per client connection reads request
 * heads (h1-head.ts) and bodies, and each request is an `H1Exchange`, the pipeline's `Downstream`,
 * which writes the response. It replaces node:http's server: a WebSocket upgrade or a CONNECT
 * leaves HTTP/1.1 through `H1Host.upgrade` with the bytes read after its head (upgrade.ts,
 * ws-downstream.ts); any other Upgrade is served as a plain request and closes the connection.
 *
 * Why: an idle keep-alive connection costs node:http about 13 KB (its parser, a headers timer, seven
 * listeners, a ServerResponse and IncomingMessage per request); here it is the socket and one small
 * object, and a request allocates no ServerResponse, no IncomingMessage, no timer (issue 11's 10,000
 * idle connections).
 *
 * What it keeps from node:http, so clients and the pipeline see no difference:
 *   - requests on a connection are served one at a time (pipelined ones wait, RFC 9112 §9.3);
 *     a response that closes the connection drops what was pipelined behind it (§9.6);
 *   - keep-alive as HTTP/1.1 and HTTP/1.0 define it; `Connection`, `Keep-Alive: timeout=N` and
 *     `Date` written on every response; chunked framing when a response has no Content-Length
 *     (close-delimited for an HTTP/1.0 client); no body for HEAD, 204 and 304;
 *   - a client's FIN or reset aborts its request in flight, as node:http (and nginx) do;
 *   - header timeout (from the first byte of a request, or from the connection's start), request
 *     timeout (head and body), keep-alive timeout, max requests per connection; one sweeper per
 *     listener checks them (`H1Host.sweep`), no timer per connection or request;
 *   - the answers node:http gave before a request existed (400, 408, 431, 417), as
 *     `writeRawError` writes them, closing the connection.
 */
import { STATUS_CODES } from '../util/node-http.ts';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { ErrorCode, ProxyError } from '../errors.ts';
import { clientAddressOf, clientCertOf, type VerifiedCertificate } from '../transport/connection-info.ts';
import { CHUNK_SIZE_LINE, isFieldValue, isToken, TRAILER_LINE } from '../util/header-fields.ts';
import type { Downstream, DownstreamOwner } from './downstream.ts';
import { writeRawError } from './error-response.ts';
import { CHUNKED_BODY, checkLine, isWebSocketUpgrade, NO_BODY, parseRequestHead, type RequestHead } from './h1-head.ts';
import type { H1Head } from './h1-request.ts';
import { checkFraming } from './strict.ts';

/** The listener's settings an HTTP/1.1 connection reads (each time: a reload may change them). */
export interface H1Settings {
  readonly maxHeaderSize: number;
  /** ms; 0: none. */
  readonly headerTimeout: number;
  /** ms; 0: none. */
  readonly requestTimeout: number;
  /** ms; 0: none. */
  readonly keepAliveTimeout: number;
  /** 0: no limit. */
  readonly maxRequestsPerConnection: number;
}

/** What a listener gives its HTTP/1.1 connections. */
export interface H1Host {
  readonly settings: H1Settings;
  /** Runs one request through the pipeline. */
  start(exchange: H1Exchange): void;
  /**
   * A WebSocket upgrade or a CONNECT: the connection is the caller's from now on (a tunnel, or an
   * answer that closes it). `rest`: the bytes read after the head. The socket is left neither
   * flowing nor paused (as node:http leaves it after 'upgrade'): its next reader starts it.
   */
  upgrade(req: H1Head, rest: Buffer): void;
}

// Connection states.
const IDLE = 0; // between requests (or before the first)
const HEAD = 1; // a head is arriving
const BODY = 2; // a request is in flight and its body arriving
const WAIT = 3; // a request is in flight, all of it read
const CLOSED = 4; // closed, refused, or handed over

// Chunked body phases (RFC 9112 §7.1).
const SIZE = 0;
const DATA = 1;
const DATA_END = 2;
const TRAILER = 3;

const CR = 13;
const LF = 10;
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Pipelined bytes buffered while a response is in flight, beyond which the connection stops being read. */
const PIPELINE_LIMIT = 64 * 1024;
/** The longest chunk-size line (size and extensions). */
const MAX_CHUNK_LINE = 4096;

const kConn = Symbol('switchboard.h1server');
type OwnSocket = Socket & { [kConn]?: H1Connection };

/** One `Date` value per second, as node:http caches it. */
let dateSecond = -1;
let dateValue = '';
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

/** Date.now() `ms` after `from`, or Infinity when the timeout is off (0). */
function deadline(from: number, ms: number): number {
  return ms > 0 ? from + ms : Infinity;
}

function uncork(socket: Socket): void {
  socket.uncork();
}

function bodyError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

// Socket listeners: shared functions, the connection found through the socket (no closure per connection).
function onData(this: OwnSocket, chunk: Buffer): void {
  this[kConn]?.read(chunk);
}
function onEnd(this: OwnSocket): void {
  this[kConn]?.ended();
}
function onClose(this: OwnSocket): void {
  this[kConn]?.closed();
}
function ignore(): void {}

/** Every own HTTP/1.1 connection of a listener, and the one sweeper that checks their deadlines. */
export class H1Connections {
  readonly all = new Set<H1Connection>();
  #timer: NodeJS.Timeout | undefined;
  #period = 0;

  /** Starts serving `socket` (after any PROXY header, TLS handshake or h2c sniff). */
  serve(socket: Socket, host: H1Host): void {
    const conn = new H1Connection(socket, host, this);
    this.all.add(conn);
    this.#schedule(host.settings);
  }

  /** (Re)starts the sweeper at a quarter of the header timeout, between 100 ms and 1 s (node:http's connectionsCheckingInterval). */
  #schedule(s: H1Settings): void {
    const period = Math.min(1000, Math.max(100, Math.floor((s.headerTimeout || 4000) / 4)));
    if (this.#timer !== undefined && this.#period === period) return;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#period = period;
    this.#timer = setInterval(() => this.sweep(), period);
    this.#timer.unref();
  }

  /** Ends every connection whose deadline passed (header, request or keep-alive timeout). */
  sweep(): void {
    if (this.all.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = Date.now();
    for (const conn of this.all) if (conn.deadline <= now) conn.expire();
  }

  /** Closes the connections with no request in flight (a drain; node:http's closeIdleConnections). */
  closeIdle(): void {
    for (const conn of this.all) if (conn.state === IDLE) conn.socket.destroy();
  }

  closeAll(): void {
    for (const conn of this.all) conn.socket.destroy();
  }
}

export class H1Connection {
  readonly socket: OwnSocket;
  readonly host: H1Host;
  readonly #set: H1Connections;
  state = IDLE;
  /** Bytes read and not yet parsed. */
  #buf: Buffer | undefined = undefined;
  /** The request in flight. */
  #ex: H1Exchange | undefined = undefined;
  /** Requests started on this connection. */
  requests = 0;
  /** Date.now() past which the sweeper acts (Infinity: nothing to time). */
  deadline: number;
  /** When the current request's first byte came (requestTimeout counts from it). */
  #started = 0;
  #lineChecked = false;
  #pumping = false;
  /** Reading stopped: the body's consumer is full, or pipelined bytes wait. */
  #paused = false;
  // The body being read.
  #left = 0;
  #chunkPhase = SIZE;
  #line = '';
  #trailerBytes = 0;
  #afterData = 0;
  #flushed: ((err?: Error | null) => void) | undefined = undefined;

  constructor(socket: Socket, host: H1Host, set: H1Connections) {
    this.socket = socket as OwnSocket;
    this.host = host;
    this.#set = set;
    this.deadline = deadline(Date.now(), host.settings.headerTimeout);
    this.socket[kConn] = this;
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', ignore);
  }

  read(chunk: Buffer): void {
    const st = this.state;
    if (st === CLOSED) return;
    this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
    if (st === WAIT) {
      if (this.#buf.length > PIPELINE_LIMIT) this.#pause();
      return;
    }
    this.#pump();
  }

  #pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.socket.pause();
  }

  #resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket.resume();
  }

  resumeBody(): void {
    if (this.state === BODY) this.#resume();
  }

  /** Parses what is buffered for as long as the connection's state lets it. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        const st = this.state;
        if (this.#buf === undefined) break;
        if (st === IDLE || st === HEAD) {
          if (!this.#head()) break;
        } else if (st === BODY) {
          const b = this.#buf;
          this.#buf = undefined;
          this.#body(b);
        } else break;
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** Reads a head from the buffer; true when a request started. */
  #head(): boolean {
    let b = this.#buf!;
    const settings = this.host.settings;
    if (this.state === IDLE) {
      // Empty lines before a request line are ignored (RFC 9112 §2.2).
      let i = 0;
      while (i < b.length && (b[i] === CR || b[i] === LF)) i++;
      if (i === b.length) {
        this.#buf = undefined;
        return false;
      }
      if (i > 0) b = this.#buf = b.subarray(i);
      this.state = HEAD;
      const now = Date.now();
      this.#started = now;
      this.#lineChecked = false;
      this.deadline = Math.min(deadline(now, settings.headerTimeout), deadline(now, settings.requestTimeout));
    }
    const end = b.indexOf(CRLFCRLF);
    const max = settings.maxHeaderSize;
    if (end === -1 || end + 4 > max) {
      if (b.length > max || end !== -1) return this.#refuse('HEADERS_TOO_LARGE');
      if (!this.#lineChecked) {
        const lf = b.indexOf(LF);
        if (lf !== -1) {
          // A request line that can never become a request is answered now, not at the header timeout.
          this.#lineChecked = true;
          if (lf === 0 || b[lf - 1] !== CR) return this.#refuse('BAD_REQUEST');
          const c = checkLine(b.toString('latin1', 0, lf - 1));
          if (c !== undefined) return this.#refuse(c.code);
        }
      }
      return false;
    }
    const head = parseRequestHead(b.toString('latin1', 0, end + 4));
    if (typeof head === 'string') return this.#refuse(head);
    const upgrade = head.upgrade ? upgradeHead(head, this.socket) : undefined;
    if (upgrade !== undefined && (head.method === 'CONNECT' || isWebSocketUpgrade(upgrade))) {
      // The connection leaves HTTP/1.1: a tunnel (or an answer that closes it) takes it over. Any
      // other Upgrade is served as a plain request below, its Upgrade dropped, and closes after it.
      this.state = CLOSED;
      this.socket.pause();
      this.#detach();
      (this.socket as { readableFlowing: boolean | null }).readableFlowing = null;
      this.host.upgrade(upgrade, b.subarray(end + 4));
      return false;
    }
    if (head.expect === 2) {
      this.state = CLOSED;
      this.socket.write('HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      this.socket.destroySoon();
      return false;
    }
    this.#buf = end + 4 < b.length ? b.subarray(end + 4) : undefined;
    this.requests++;
    const ex = new H1Exchange(this, head);
    this.#ex = ex;
    if (head.body === NO_BODY) {
      this.state = WAIT;
      this.deadline = Infinity;
    } else {
      this.state = BODY;
      ex.stream = new H1Body(this);
      if (head.body === CHUNKED_BODY) {
        this.#chunkPhase = SIZE;
        this.#line = '';
        this.#trailerBytes = 0;
      } else this.#left = head.length;
      this.deadline = deadline(this.#started, settings.requestTimeout);
    }
    this.host.start(ex);
    return true;
  }

  /** Body bytes: to the body stream, up to the body's end; what follows is kept (pipelined). */
  #body(b: Buffer): void {
    const ex = this.#ex!;
    let i = 0;
    if (ex.req.body !== CHUNKED_BODY) {
      const n = Math.min(this.#left, b.length);
      if (n > 0) this.#deliver(ex, n === b.length ? b : b.subarray(0, n));
      this.#left -= n;
      i = n;
      if (this.#left === 0) this.#bodyDone(ex);
    } else {
      i = this.#chunked(ex, b);
      if (i === -1) return;
    }
    if (i < b.length && this.state !== CLOSED) this.#buf = b.subarray(i);
  }

  /** Decodes chunked bytes from `b`; returns where the body ended (b.length if it goes on), -1 when refused. */
  #chunked(ex: H1Exchange, b: Buffer): number {
    let i = 0;
    while (i < b.length && this.state === BODY) {
      switch (this.#chunkPhase) {
        case DATA: {
          const n = Math.min(this.#left, b.length - i);
          this.#deliver(ex, b.subarray(i, i + n));
          i += n;
          this.#left -= n;
          if (this.#left === 0) {
            this.#chunkPhase = DATA_END;
            this.#afterData = 0;
          }
          break;
        }
        case DATA_END: {
          const want = this.#afterData === 0 ? CR : LF;
          if (b[i] !== want) return this.#badBody(ex, 'HPE_STRICT', 'chunk data not followed by CRLF');
          i++;
          if (++this.#afterData === 2) this.#chunkPhase = SIZE;
          break;
        }
        default: {
          const lf = b.indexOf(LF, i);
          const part = b.toString('latin1', i, lf === -1 ? b.length : lf);
          const line = this.#line + part;
          if (lf === -1) {
            if (line.length > (this.#chunkPhase === SIZE ? MAX_CHUNK_LINE : this.host.settings.maxHeaderSize)) {
              return this.#badBody(ex, 'HPE_INVALID_CHUNK_SIZE', 'chunk line too long');
            }
            this.#line = line;
            return b.length;
          }
          this.#line = '';
          i = lf + 1;
          if (line.charCodeAt(line.length - 1) !== CR) return this.#badBody(ex, 'HPE_STRICT', 'bare LF in a chunked body');
          const text = line.slice(0, -1);
          if (this.#chunkPhase === SIZE) {
            if (!CHUNK_SIZE_LINE.test(text)) return this.#badBody(ex, 'HPE_INVALID_CHUNK_SIZE', 'invalid chunk size line');
            const semi = text.indexOf(';');
            const size = Number.parseInt(semi === -1 ? text : text.slice(0, semi), 16);
            if (!Number.isSafeInteger(size)) return this.#badBody(ex, 'HPE_INVALID_CHUNK_SIZE', 'chunk size too large');
            if (size === 0) this.#chunkPhase = TRAILER;
            else {
              this.#left = size;
              this.#chunkPhase = DATA;
            }
          } else if (text === '') this.#bodyDone(ex);
          else {
            this.#trailerBytes += line.length + 1;
            if (this.#trailerBytes > this.host.settings.maxHeaderSize || !TRAILER_LINE.test(text)) {
              return this.#badBody(ex, 'HPE_INVALID_HEADER_TOKEN', 'invalid trailer');
            }
            const name = text.slice(0, text.indexOf(':')).toLowerCase();
            if (name === 'content-length' || name === 'transfer-encoding') return this.#badBody(ex, 'HPE_INVALID_HEADER_TOKEN', 'framing field in trailers');
          }
        }
      }
    }
    return i;
  }

  #deliver(ex: H1Exchange, chunk: Buffer): void {
    const stream = ex.stream!;
    if (stream.destroyed) return; // its consumer gave up: the bytes are read and dropped
    if (!stream.push(chunk)) this.#pause();
  }

  #bodyDone(ex: H1Exchange): void {
    ex.bodyComplete = true;
    this.state = WAIT;
    this.deadline = Infinity;
    if (!ex.stream!.destroyed) ex.stream!.push(null);
    this.#resume();
  }

  /** A body that cannot be read on: the body fails; the client gets a 400 unless its response started. */
  #badBody(ex: H1Exchange, code: string, message: string): number {
    this.#failBody(ex, bodyError(message, code));
    this.#refuse('BAD_REQUEST');
    return -1;
  }

  #failBody(ex: H1Exchange, err: Error): void {
    if (ex.bodyComplete || ex.bodyFailed) return;
    ex.bodyFailed = true;
    ex.stream?.destroy(err);
  }

  /** Stops reading the body it gave up on, if any; the response closes the connection. */
  bodyDestroyed(): void {
    const ex = this.#ex;
    if (ex !== undefined && !ex.bodyComplete) ex.keepAlive = false;
  }

  /** Answers `code` on the raw socket (unless a response already started: then it is cut) and closes. */
  #refuse(code: ErrorCode): false {
    this.state = CLOSED;
    this.#buf = undefined;
    const ex = this.#ex;
    if (ex !== undefined) {
      if (ex.headersSent) {
        this.socket.destroy();
        return false;
      }
      ex.gone = true;
    }
    writeRawError(this.socket, code, undefined);
    return false;
  }

  /** The sweeper found the deadline passed. */
  expire(): void {
    const st = this.state;
    if (st === IDLE && this.requests > 0) {
      this.socket.destroy();
      return;
    }
    if (st === IDLE || st === HEAD) {
      this.#refuse('HEADER_TIMEOUT');
      return;
    }
    if (st === BODY) {
      const ex = this.#ex!;
      this.#failBody(ex, bodyError('request timeout', 'ERR_HTTP_REQUEST_TIMEOUT'));
      this.#refuse('REQUEST_TIMEOUT');
    }
  }

  /** The response of `ex` went out whole (`complete`), or the connection failed under it. */
  finish(ex: H1Exchange, complete: boolean): void {
    if (this.#ex !== ex) return;
    this.#ex = undefined;
    ex.owner?.closed(complete);
    if (this.state === CLOSED) return;
    if (!complete) {
      this.state = CLOSED;
      this.socket.destroy();
      return;
    }
    if (!ex.keepAlive || this.state !== WAIT) {
      // Nothing after this response is read: a half-read body or a pipelined request is dropped (RFC 9112 §9.6).
      this.state = CLOSED;
      this.#buf = undefined;
      this.socket.destroySoon();
      return;
    }
    this.state = IDLE;
    this.deadline = deadline(Date.now(), this.host.settings.keepAliveTimeout);
    this.#resume();
    if (this.#buf !== undefined) this.#pump();
  }

  /** The write callback of a response's last bytes. */
  flushedCallback(): (err?: Error | null) => void {
    this.#flushed ??= (err) => {
      const ex = this.#ex;
      if (ex?.ended) this.finish(ex, err === undefined || err === null);
    };
    return this.#flushed;
  }

  /** The client's FIN: a request in flight is aborted (as node:http and nginx do); a partial head is a 400. */
  ended(): void {
    const st = this.state;
    if (st === CLOSED) return;
    if (st === HEAD) {
      this.#refuse('BAD_REQUEST');
      return;
    }
    const ex = this.#ex;
    if (st === BODY && ex !== undefined) {
      this.#failBody(ex, bodyError('aborted', 'ECONNRESET'));
      this.#refuse('BAD_REQUEST');
      return;
    }
    this.state = CLOSED;
    if (ex !== undefined) this.socket.destroy();
    else this.socket.destroySoon();
  }

  closed(): void {
    this.state = CLOSED;
    this.#buf = undefined;
    this.#set.all.delete(this);
    const ex = this.#ex;
    if (ex !== undefined) {
      this.#failBody(ex, bodyError('aborted', 'ECONNRESET'));
      this.finish(ex, false);
    }
  }

  /** Leaves the socket to its upgrade (a tunnel, or an answer that closes it). */
  #detach(): void {
    const s = this.socket;
    s[kConn] = undefined;
    s.off('data', onData);
    s.off('end', onEnd);
    s.off('close', onClose);
    s.off('error', ignore);
    this.#set.all.delete(this);
  }
}

/** A head in node:http's names, for the upgrade path (h1-request.ts). */
function upgradeHead(head: RequestHead, socket: Socket): H1Head {
  return {
    method: head.method,
    url: head.url,
    headers: head.headers,
    rawHeaders: head.raw,
    httpVersionMajor: 1,
    httpVersionMinor: head.minor,
    socket,
    lineError: head.lineError,
  };
}

/** The request body as the pipeline reads it: pushed by the connection, with backpressure. */
class H1Body extends Readable {
  readonly #conn: H1Connection;

  constructor(conn: H1Connection) {
    super();
    this.#conn = conn;
  }

  override _read(): void {
    this.#conn.resumeBody();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#conn.bodyDestroyed();
    // As node:http's IncomingMessage: the error is emitted only to a listener (a body nobody reads,
    // of a request answered without it, must not throw).
    cb(this.listenerCount('error') === 0 ? null : err);
  }
}

/** An empty body, for a consumer that asks for the body of a request without one. */
function emptyBody(): Readable {
  const r = new Readable({ read() {} });
  r.push(null);
  return r;
}

/** One request and its response, on an own HTTP/1.1 connection. */
export class H1Exchange implements Downstream {
  readonly conn: H1Connection;
  readonly req: RequestHead;
  owner: DownstreamOwner | undefined = undefined;
  stream: H1Body | undefined = undefined;
  bodyComplete: boolean;
  bodyFailed = false;
  /** The connection may serve another request after this response. */
  keepAlive: boolean;
  headersSent = false;
  ended = false;
  /** The connection answered on its own (a 400 or 408 mid-body): nothing more is written. */
  gone = false;
  readonly settleFirst = false;
  readonly upgrade = false;
  readonly trailersAccepted = false;
  #chunked = false;
  #noBody = false;

  constructor(conn: H1Connection, req: RequestHead) {
    this.conn = conn;
    this.req = req;
    this.bodyComplete = req.body === NO_BODY;
    this.keepAlive = req.keepAlive;
  }

  get method(): string {
    return this.req.method;
  }

  get url(): string {
    return this.req.url;
  }

  get authority(): string {
    return (this.req.headers.host as string | undefined) ?? '';
  }

  get headers(): RequestHead['headers'] {
    return this.req.headers;
  }

  get fields(): readonly string[] {
    return this.req.raw;
  }

  get version(): string {
    return this.req.minor === 0 ? 'HTTP/1.0' : 'HTTP/1.1';
  }

  get hasBody(): boolean {
    return this.req.body !== NO_BODY;
  }

  get remoteAddress(): string {
    return clientAddressOf(this.conn.socket);
  }

  get clientCertificate(): VerifiedCertificate | undefined {
    return clientCertOf(this.conn.socket);
  }

  check(): ErrorCode | undefined {
    const r = this.req;
    return checkFraming(r.lineError, r.minor, r.raw, r.headers);
  }

  body(): Readable {
    return this.stream ?? emptyBody();
  }

  get destroyed(): boolean {
    return this.gone || this.conn.socket.destroyed;
  }

  attach(owner: DownstreamOwner): void {
    this.owner = owner;
    // A non-WebSocket Upgrade is served as a plain request; the connection closes after it.
    if (owner.draining || this.req.headers.upgrade !== undefined) this.keepAlive = false;
  }

  informational(status: number, headers?: Record<string, string | string[]>): boolean {
    if (this.headersSent || this.destroyed || this.req.minor === 0) return false;
    let text: string;
    if (status === 100) text = 'HTTP/1.1 100 Continue\r\n\r\n';
    else if (status === 102) text = 'HTTP/1.1 102 Processing\r\n\r\n';
    else if (status === 103 && headers !== undefined) {
      text = 'HTTP/1.1 103 Early Hints\r\n';
      for (const name in headers) {
        if (!isToken(name)) continue;
        const v = headers[name];
        for (const value of typeof v === 'string' ? [v] : v) if (isFieldValue(value)) text += `${name}: ${value}\r\n`;
      }
      text += '\r\n';
    } else return false;
    this.conn.socket.write(text, 'latin1');
    return true;
  }

  head(status: number, reason: string | undefined, headers: string[]): boolean {
    const owner = this.owner!;
    owner.status = status;
    if (this.destroyed) return true;
    const conn = this.conn;
    const settings = conn.host.settings;
    // A reason phrase the response came with, unless it could split the status line (node:http throws on it).
    const phrase = reason && isFieldValue(reason) ? reason : STATUS_CODES[status] || 'unknown';
    let text = `HTTP/1.1 ${status} ${phrase}\r\n`;
    let hasLength = false;
    let hasDate = false;
    let keepAlive = this.keepAlive && !owner.draining;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      const value = headers[i + 1];
      if (!isToken(name)) throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), { code: 'ERR_INVALID_HTTP_TOKEN' });
      if (!isFieldValue(value)) throw Object.assign(new TypeError(`Invalid character in header content ["${name}"]`), { code: 'ERR_INVALID_CHAR' });
      const n = name.length;
      if (n === 4 || n === 10 || n === 14 || n === 17) {
        const lower = name.toLowerCase();
        if (lower === 'content-length') hasLength = true;
        else if (lower === 'date') hasDate = true;
        else if (lower === 'connection') {
          // The connection's own fields are written below; `close` from the response is honoured.
          if (/(?:^|[\s,])close(?:$|[\s,])/i.test(value)) keepAlive = false;
          continue;
        } else if (lower === 'keep-alive' || lower === 'transfer-encoding') continue;
      }
      text += `${name}: ${value}\r\n`;
    }
    const noBody = this.req.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    this.#noBody = noBody;
    if (!hasLength && !noBody) {
      if (this.req.minor === 1) {
        this.#chunked = true;
        text += 'Transfer-Encoding: chunked\r\n';
      } else keepAlive = false; // HTTP/1.0: the body ends with the connection
    }
    const max = settings.maxRequestsPerConnection;
    if (max > 0 && conn.requests >= max) keepAlive = false;
    if (!hasDate) text += `Date: ${httpDate()}\r\n`;
    if (keepAlive) {
      text += 'Connection: keep-alive\r\n';
      const k = settings.keepAliveTimeout;
      if (k > 0) text += max > 0 ? `Keep-Alive: timeout=${Math.floor(k / 1000)}, max=${max}\r\n` : `Keep-Alive: timeout=${Math.floor(k / 1000)}\r\n`;
    } else text += 'Connection: close\r\n';
    this.keepAlive = keepAlive;
    this.headersSent = true;
    const socket = conn.socket;
    // The head goes out with the first body bytes of this tick, in one write.
    socket.cork();
    socket.write(`${text}\r\n`, 'latin1');
    process.nextTick(uncork, socket);
    return true;
  }

  data(chunk: Buffer): boolean {
    if (this.#noBody || this.destroyed) return true;
    this.owner!.bytesOut += chunk.length;
    const socket = this.conn.socket;
    // Writes of one tick go out together (as node:http corks them).
    if (socket.writableCorked === 0) {
      socket.cork();
      process.nextTick(uncork, socket);
    }
    if (!this.#chunked) return socket.write(chunk);
    if (chunk.length === 0) return true;
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    return socket.write('\r\n', 'latin1');
  }

  onDrain(resume: () => void): void {
    this.conn.socket.once('drain', resume);
  }

  end(trailers: Record<string, string | string[]> | undefined): void {
    if (this.ended) return;
    this.ended = true;
    const socket = this.conn.socket;
    // The connection answered for this request already, or is gone: its close ends the exchange.
    if (this.destroyed) return;
    let last = '';
    if (this.#chunked) {
      last = '0\r\n';
      if (trailers !== undefined) {
        for (const name in trailers) {
          if (!isToken(name)) continue;
          const v = trailers[name];
          for (const value of typeof v === 'string' ? [v] : v) if (isFieldValue(value)) last += `${name}: ${value}\r\n`;
        }
      }
      last += '\r\n';
    }
    socket.write(last, 'latin1', this.conn.flushedCallback());
  }

  /** Mid-body failure: the client must see an aborted response, never a clean truncated end. */
  abort(_err: ProxyError): void {
    if (!this.conn.socket.destroyed) this.conn.socket.destroy();
  }

  closeAfter(): void {
    this.keepAlive = false;
  }
}
