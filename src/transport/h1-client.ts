/**
 * Switchboard's own HTTP/1.1 client: the forward proxy's way to its destinations
 * (forward/forward-route.ts) and the reverse proxy's to HTTP/1.1 endpoints, http and https
 * (pools.ts), in place of undici's Agent and Pool on that hot path.
 *
 * Why own it: bench/experiments/own-http.ts measured undici's side of a proxied request at about
 * a quarter of node:http + undici's CPU per request, and a client that writes the head as one
 * string and parses the response head with one validating regex at about 12 µs less per request
 * (issue 15 §7: Switchboard's forward proxy against Squid per core). It speaks undici's dispatch
 * API (`dispatch(options, handler)` with the controller-style handler), so `transport/forward.ts`
 * `startTry` drives it exactly as it drives undici, and the error codes are undici's where undici
 * has one, so `upstreamError` maps them unchanged.
 *
 *   dispatch ─► OriginPool (idle keep-alive connections, LIFO) ─► Connection ─► Exchange (the controller)
 *   socket data ─► Connection.parse ─► head (one regex checks the whole head) ─► body: length | chunked | until close
 *
 * What it does, as undici does: one request at a time per connection (no pipelining); connections
 * per origin unlimited (the forward proxy's) or at most `connections` (an endpoint's pool, whose
 * further requests wait first in, first out); https with ALPN http/1.1 and TLS sessions resumed;
 * keep-alive honouring `Connection: close`, HTTP/1.0 and the origin's `Keep-Alive: timeout=N` (reuse
 * stops 2 s before it; an idle connection past its limit is never reused); a request body streamed
 * with backpressure (its Content-Length checked, chunked when it has none); `content-length: 0`
 * for a POST, PUT or PATCH without one; 1xx heads passed on before the final one; trailers; and
 * timeouts for connect, response head and body silence.
 *
 * Strict parsing (RFC 9112; never more lenient than llhttp in strict mode, which
 * h1-client-differential.test.ts checks on seeded mutations): a status line `HTTP/1.0|1.1 NNN
 * reason` (no control characters in the reason, where llhttp allows them); header names that are
 * tokens; no whitespace before a colon; no obs-fold; no bare CR or LF; no control characters but
 * HTAB in values; a head over `maxHeaderSize`; a Content-Length that is not digits or appears
 * twice; Content-Length with Transfer-Encoding; a tab in Transfer-Encoding; a chunk size that is
 * not hex (or longer than 16 digits), whitespace in a chunk-size line, a chunk not followed by
 * CRLF; Content-Length or Transfer-Encoding in the trailers; bytes beyond a complete response (a
 * 502 when they come with its head); a 101 nobody asked for. Each is an error with an `HPE_` code
 * (UPSTREAM_BAD_RESPONSE) and the connection is closed.
 *
 * Diagnostics: the channel `switchboard:upstream:connect` gets `{ origin }` as a new connection is
 * opened (a test stalls the event loop there); nothing is published per request.
 *
 * Not here (they stay on undici): HTTP/2 and h2c, upgrades (http/upgrade.ts dials itself), parent
 * proxies (their connector tunnels through the parent).
 *
 * Not here: health checks (health/active.ts has its own undici Client).
 *
 * State: per worker (the sockets are this process's). A forward route's agent lives with its
 * generation; an endpoint's is shared by the generations that keep the endpoint (pools.ts).
 */
import { channel } from 'node:diagnostics_channel';
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import { maxHeaderSize as NODE_MAX_HEADER_SIZE } from '../util/node-http.ts';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CHUNK_SIZE_LINE, isToken, TOKEN_CHAR, TRAILER_LINE } from '../util/header-fields.ts';

/** An error with a code `upstreamError` (errors.ts) knows: undici's where undici has one, llhttp-style `HPE_` for a bad response. */
export class H1ClientError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'H1ClientError';
    this.code = code;
  }
}

export interface H1AgentOptions {
  /** ms an idle keep-alive connection is kept (shortened by the origin's Keep-Alive hint). */
  keepAliveTimeout: number;
  /** ms to establish a connection (TLS included); 0: undici's default, 10 s. */
  connectTimeout: number;
  /** Largest response head, in bytes (default: node's http.maxHeaderSize, as undici). */
  maxHeaderSize?: number;
  /** The origin of requests whose options name none (an endpoint's pool, pools.ts). */
  origin?: string;
  /** Connections per origin at most; further requests wait for one (FIFO). 0 or absent: no limit. */
  connections?: number;
  /** TLS options for https:// origins (servername, ca, checkServerIdentity...); ALPN http/1.1. */
  tls?: ConnectionOptions;
}

/**
 * The whole response head, checked in one pass: status line, header fields (token names, a colon
 * right after the name, values without control characters but HTAB), CRLF line ends, the empty
 * line. Latin-1 text, so obs-text (0x80-0xFF) is one char each. obs-fold (a line starting with
 * SP or HTAB) fails the name class.
 */
const HEAD_RE = new RegExp(String.raw`^HTTP\/1\.[01] [0-9]{3}(?: [\t\x20-\x7e\x80-\xff]*)?\r\n(?:${TOKEN_CHAR}+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n$`);
const DIGITS_RE = /^[0-9]{1,15}$/;
/** A request path with a character outside 0x21-0xFF (SP, CR, LF, controls): it would break the request line. */
const BAD_PATH_RE = /[^\u0021-\u00ff]/;
/** `{ origin }` when a new connection is being opened (not per request): for tests and diagnostics. */
const connectChannel = channel('switchboard:upstream:connect');
const HTTP_PREFIX = Buffer.from('HTTP/1.');
/** ms kept between our last reuse of a connection and the close its origin announced (undici's keepAliveTimeoutThreshold). */
const KEEPALIVE_MARGIN = 2000;
const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
/** ms to connect when the options say 0, as undici's connector. */
const DEFAULT_CONNECT_TIMEOUT = 10_000;
/** A chunk-size line or a trailer line longer than this is an error. */
const MAX_LINE = 8192;
/** Request methods whose missing body undici sends as `content-length: 0`. */
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** Parser states of a connection. */
const State = {
  /** Waiting for (the rest of) a response head. */
  Head: 0,
  /** A body of `remaining` bytes. */
  Length: 1,
  /** A chunk-size line. */
  ChunkSize: 2,
  /** `remaining` bytes of chunk data. */
  ChunkData: 3,
  /** The CRLF after chunk data. */
  ChunkEnd: 4,
  /** Trailer lines after the last chunk, until an empty line. */
  Trailers: 5,
  /** A body delimited by the connection's close. */
  UntilClose: 6,
  /** No exchange (idle, or done). */
  Idle: 7,
} as const;
type State = (typeof State)[keyof typeof State];

/** Trims SP and HTAB (only: String#trim would also take 0xA0, an obs-text byte). */
function trimOws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s.charCodeAt(a) === 32 || s.charCodeAt(a) === 9)) a++;
  while (b > a && (s.charCodeAt(b - 1) === 32 || s.charCodeAt(b - 1) === 9)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function addField(into: Record<string, string | string[]>, name: string, value: string): void {
  // A field named __proto__ would set the object's prototype: dropped (no origin means it).
  if (name === '__proto__') return;
  const had = into[name];
  if (had === undefined) into[name] = value;
  else if (typeof had === 'string') into[name] = [had, value];
  else had.push(value);
}

function bad(code: string, message: string): H1ClientError {
  return new H1ClientError(code, message);
}

/** One request on one connection; the handler's controller. */
class Exchange implements Dispatcher.DispatchController {
  readonly handler: Dispatcher.DispatchHandler;
  readonly method: string;
  readonly path: string;
  readonly headers: readonly string[];
  readonly body: Readable | null;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  conn: Connection | undefined = undefined;
  /** The request head went to the socket. */
  written = false;
  /** The request body is all written (true when there is none). */
  bodyDone = true;
  /** Stops sending the body (its listeners off); `drain`: let the rest flow to nobody, as node:http's dump does. */
  detach: ((drain: boolean) => void) | undefined = undefined;
  done = false;
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;

  constructor(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
    this.handler = handler;
    this.method = opts.method;
    this.path = opts.path;
    this.headers = (opts.headers as string[] | null | undefined) ?? [];
    this.body = (opts.body as Readable | null | undefined) ?? null;
    this.headersTimeout = opts.headersTimeout ?? 300_000;
    this.bodyTimeout = opts.bodyTimeout ?? 300_000;
    // From dispatch on, as undici does: a body that fails (the client aborted its upload) ends the
    // exchange, whether it is sending, waiting for a connection, or over (then it is ignored), and
    // never becomes an uncaught exception.
    if (this.body !== null) this.body.on('error', (err: Error) => this.abort(err));
  }

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }

  abort(reason: Error): void {
    if (this.done || this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    const conn = this.conn;
    if (conn !== undefined) conn.abandon(this);
    this.fail(reason);
  }

  pause(): void {
    if (this.done) return;
    this.#paused = true;
    this.conn?.socket.pause();
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.conn?.resumeParse();
  }

  /** The exchange failed: tells the handler once. */
  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    if (!this.bodyDone) this.detach?.(false);
    this.handler.onResponseError?.(this, err);
  }
}

/** One keep-alive connection to an origin. */
class Connection {
  readonly pool: OriginPool;
  readonly socket: net.Socket;
  ex: Exchange | undefined = undefined;
  state: State = State.Idle;
  /** Bytes received but not yet parsed: a partial head or line, waiting for more. */
  pending: Buffer | undefined = undefined;
  /** Bytes held back while the exchange is paused (parsed on resume). */
  held: Buffer | undefined = undefined;
  /** Bytes of body or chunk still to come. */
  remaining = 0;
  /** The response lets the connection be reused. */
  keepAlive = true;
  /** The origin's Keep-Alive timeout hint, ms (0 = none). */
  hint = 0;
  /** The HEAD request's response has no body. */
  headRequest = false;
  /** Trailers of a chunked response. */
  trailers: Record<string, string | string[]> | undefined = undefined;
  /** Whether a parse loop is running (a resume() inside a handler call must not start another). */
  parsing = false;
  /** performance.now() when the current deadline started (request written, or the last body check). */
  since = 0;
  /** Body bytes arrived since the sweeper last looked. */
  activity = false;
  /** performance.now() when it went idle. */
  idleSince = 0;
  /** ms it may stay idle: the agent's keepAliveTimeout, or less when the origin's hint says so. */
  idleLimit = 0;
  /** Connected (a connection being opened has no socket events to parse yet). */
  connected = false;
  dead = false;
  connectTimer: NodeJS.Timeout | undefined = undefined;

  constructor(pool: OriginPool, socket: net.Socket) {
    this.pool = pool;
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: Error) => this.onError(err));
    socket.on('close', () => this.onClose());
  }

  /** Sends `ex` on this connection (connected and idle). */
  start(ex: Exchange): void {
    this.ex = ex;
    ex.conn = this;
    this.pool.busy.add(this);
    ex.handler.onRequestStart?.(ex, {});
    if (ex.aborted) return;
    let head: string;
    try {
      head = this.#head(ex);
    } catch (err) {
      this.ex = undefined;
      ex.conn = undefined;
      this.release();
      ex.fail(err as Error);
      return;
    }
    ex.written = true;
    this.state = State.Head;
    this.keepAlive = true;
    this.hint = 0;
    this.trailers = undefined;
    this.headRequest = ex.method === 'HEAD';
    this.since = performance.now();
    this.socket.write(head, 'latin1');
    if (ex.body !== null) this.#sendBody(ex, ex.body);
  }

  /** The request head, validated; records what the body needs on `ex`. */
  #head(ex: Exchange): string {
    const h = ex.headers;
    // As undici checks: a method that is a token, a path of visible characters only (no SP, CR, LF).
    if (!isToken(ex.method)) throw new H1ClientError('UND_ERR_INVALID_ARG', 'invalid request method');
    if (BAD_PATH_RE.test(ex.path)) throw new H1ClientError('UND_ERR_INVALID_ARG', 'invalid request path');
    let head = `${ex.method} ${ex.path} HTTP/1.1\r\n`;
    let host = false;
    let length = -1;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i];
      const value = h[i + 1];
      if (!isToken(name) || value.indexOf('\r') !== -1 || value.indexOf('\n') !== -1 || value.indexOf('\0') !== -1) {
        throw new H1ClientError('UND_ERR_INVALID_ARG', 'invalid request header');
      }
      switch (name.length) {
        case 4:
          if (name.toLowerCase() === 'host') host = true;
          break;
        case 6:
          if (name.toLowerCase() === 'expect') throw new H1ClientError('UND_ERR_NOT_SUPPORTED', 'expect header not supported');
          break;
        case 7:
        case 10:
        case 17: {
          const lower = name.toLowerCase();
          if (lower === 'upgrade' || lower === 'connection' || lower === 'keep-alive' || lower === 'transfer-encoding') {
            throw new H1ClientError('UND_ERR_INVALID_ARG', `invalid ${name} header`);
          }
          break;
        }
        case 14:
          if (name.toLowerCase() === 'content-length') {
            if (!DIGITS_RE.test(value)) throw new H1ClientError('UND_ERR_INVALID_ARG', 'invalid content-length header');
            length = Number(value);
          }
          break;
      }
      head += `${name}: ${value}\r\n`;
    }
    if (!host) head += `host: ${this.pool.host}\r\n`;
    if (ex.body === null) {
      if (length === -1 && PAYLOAD_METHODS.has(ex.method)) head += 'content-length: 0\r\n';
    } else {
      ex.bodyDone = false;
      if (length === -1) head += 'transfer-encoding: chunked\r\n';
      this.remainingOut = length;
    }
    return `${head}connection: keep-alive\r\n\r\n`;
  }

  /** Request body bytes still to send when it has a length; -1 when chunked. */
  remainingOut = -1;

  /** Streams the request body with backpressure; chunked unless it has a length. */
  #sendBody(ex: Exchange, body: Readable): void {
    const socket = this.socket;
    const chunked = this.remainingOut === -1;
    let left = this.remainingOut;
    const onData = (chunk: Buffer | string): void => {
      if (ex.done && this.ex !== ex) return cleanup();
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (buf.length === 0) return;
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${buf.length.toString(16)}\r\n`, 'latin1');
        socket.write(buf);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else {
        left -= buf.length;
        if (left < 0) return onFail(new H1ClientError('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'request body longer than its content-length'));
        ok = socket.write(buf);
      }
      if (!ok) {
        body.pause();
        paused = true;
        socket.once('drain', onDrain);
      }
    };
    let paused = false;
    const onDrain = (): void => {
      paused = false;
      body.resume();
    };
    const onEnd = (): void => {
      cleanup();
      if (ex.done && this.ex !== ex) return;
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      else if (left !== 0) return onFail(new H1ClientError('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'request body shorter than its content-length'));
      ex.bodyDone = true;
    };
    const onFail = (err: Error): void => {
      cleanup();
      if (this.ex === ex) ex.abort(err);
    };
    const onClose = (): void => {
      // The body's stream closed without ending (the client went away mid-body).
      if (!ex.bodyDone) onFail(new H1ClientError('UND_ERR_ABORTED', 'request body aborted'));
    };
    // No 'error' listener here: the exchange has heard the body's errors since dispatch.
    const cleanup = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('close', onClose);
      socket.off('drain', onDrain);
    };
    ex.detach = (drain: boolean): void => {
      cleanup();
      if (drain && paused) body.resume();
    };
    if (body.readableEnded) return onEnd();
    if (body.destroyed) return onFail(new H1ClientError('UND_ERR_ABORTED', 'request body destroyed'));
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('close', onClose);
    if (body.isPaused()) body.resume();
  }

  onData(chunk: Buffer): void {
    const ex = this.ex;
    if (ex === undefined || this.state === State.Idle) {
      // Bytes with no request outstanding: the connection's framing is lost.
      this.destroy();
      return;
    }
    this.activity = true;
    if (this.held !== undefined) {
      this.held = Buffer.concat([this.held, chunk]);
      if (!ex.paused) this.resumeParse();
      return;
    }
    if (this.pending !== undefined) {
      chunk = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    this.parse(ex, chunk);
  }

  /** Parses `buf` for `ex` until it is used up, the exchange pauses, or it ends. */
  parse(ex: Exchange, buf: Buffer): void {
    this.parsing = true;
    let at = 0;
    try {
      while (at < buf.length) {
        if (this.ex !== ex || ex.aborted) return;
        if (ex.paused) {
          this.held = buf.subarray(at);
          return;
        }
        switch (this.state) {
          case State.Head: {
            const end = buf.indexOf(CRLFCRLF, at);
            if (end === -1) {
              if (buf.length - at > this.pool.agent.maxHeaderSize) throw bad('HPE_HEADER_OVERFLOW', 'response head too large');
              // Not waiting for the rest of what cannot be a response (llhttp fails at the first wrong byte).
              const n = Math.min(buf.length - at, HTTP_PREFIX.length);
              if (buf.compare(HTTP_PREFIX, 0, n, at, at + n) !== 0) throw bad('HPE_INVALID_CONSTANT', 'not an HTTP/1.x response');
              if (buf.indexOf(0, at) !== -1) throw bad('HPE_INVALID_HEADER_TOKEN', 'NUL in a response head');
              this.pending = buf.subarray(at);
              return;
            }
            if (end + 4 - at > this.pool.agent.maxHeaderSize) throw bad('HPE_HEADER_OVERFLOW', 'response head too large');
            const next = end + 4;
            this.#onHead(ex, buf.toString('latin1', at, next), buf.length - next);
            at = next;
            // A response without a body is complete at its head.
            if ((this.state as State) === State.Length && this.remaining === 0 && this.ex === ex && !ex.aborted) {
              this.#complete(ex, buf.length - at);
              return;
            }
            break;
          }
          case State.Length: {
            const n = Math.min(this.remaining, buf.length - at);
            this.remaining -= n;
            const part = at === 0 && n === buf.length ? buf : buf.subarray(at, at + n);
            at += n;
            ex.handler.onResponseData?.(ex, part);
            // Complete unless the handler gave the exchange up meanwhile.
            if (this.remaining === 0 && this.ex === ex && !ex.aborted) {
              this.#complete(ex, buf.length - at);
              return;
            }
            break;
          }
          case State.UntilClose: {
            const part = at === 0 ? buf : buf.subarray(at);
            at = buf.length;
            ex.handler.onResponseData?.(ex, part);
            break;
          }
          case State.ChunkSize: {
            const eol = this.#lineEnd(buf, at, 'HPE_INVALID_CHUNK_SIZE', 'chunk size line too long');
            if (eol === -1) return;
            const line = buf.toString('latin1', at, eol);
            if (!CHUNK_SIZE_LINE.test(line)) throw bad('HPE_INVALID_CHUNK_SIZE', 'invalid chunk size line');
            const size = Number.parseInt(line, 16);
            if (!Number.isSafeInteger(size)) throw bad('HPE_INVALID_CHUNK_SIZE', 'chunk size too large');
            at = eol + 2;
            if (size === 0) this.state = State.Trailers;
            else {
              this.remaining = size;
              this.state = State.ChunkData;
            }
            break;
          }
          case State.ChunkData: {
            const n = Math.min(this.remaining, buf.length - at);
            this.remaining -= n;
            const part = buf.subarray(at, at + n);
            at += n;
            if (this.remaining === 0) this.state = State.ChunkEnd;
            ex.handler.onResponseData?.(ex, part);
            break;
          }
          case State.ChunkEnd: {
            if (buf.length - at < 2) {
              this.pending = buf.subarray(at);
              return;
            }
            if (buf[at] !== 13 || buf[at + 1] !== 10) throw bad('HPE_STRICT', 'chunk data not followed by CRLF');
            at += 2;
            this.state = State.ChunkSize;
            break;
          }
          case State.Trailers: {
            const eol = this.#lineEnd(buf, at, 'HPE_HEADER_OVERFLOW', 'trailer line too long');
            if (eol === -1) return;
            if (eol === at) {
              this.#complete(ex, buf.length - at - 2);
              return;
            }
            const line = buf.toString('latin1', at, eol);
            if (!TRAILER_LINE.test(line)) throw bad('HPE_INVALID_HEADER_TOKEN', 'invalid trailer line');
            const colon = line.indexOf(':');
            const name = line.slice(0, colon).toLowerCase();
            // Framing fields in a trailer section (RFC 9110 §6.5.1): refused, as llhttp does.
            if (name === 'content-length' || name === 'transfer-encoding') throw bad('HPE_INVALID_CONTENT_LENGTH', `${name} in the trailers`);
            this.trailers ??= {};
            addField(this.trailers, name, trimOws(line.slice(colon + 1)));
            at = eol + 2;
            break;
          }
          default:
            // Idle: unreachable with an exchange in flight (completion returns at once).
            return;
        }
      }
    } catch (err) {
      this.ex = undefined;
      this.destroy();
      ex.fail(err as Error);
    } finally {
      this.parsing = false;
    }
  }

  /**
   * Where the line starting at `at` ends (its CR), or -1: the partial line is kept in `pending`
   * for the next read, unless it is already longer than MAX_LINE (`code`, `message`).
   */
  #lineEnd(buf: Buffer, at: number, code: string, message: string): number {
    const eol = buf.indexOf(CRLF, at);
    if (eol !== -1) return eol;
    if (buf.length - at > MAX_LINE) throw bad(code, message);
    this.pending = buf.subarray(at);
    return -1;
  }

  /** A complete response head `text` (with its final CRLFCRLF). */
  #onHead(ex: Exchange, text: string, available: number): void {
    if (!HEAD_RE.test(text)) throw bad('HPE_INVALID_HEADER_TOKEN', 'malformed response head');
    const status = (text.charCodeAt(9) - 48) * 100 + (text.charCodeAt(10) - 48) * 10 + (text.charCodeAt(11) - 48);
    const http10 = text.charCodeAt(7) === 48;
    let eol = text.indexOf('\r\n');
    const reason = eol > 13 ? text.slice(13, eol) : '';
    const headers: Record<string, string | string[]> = {};
    let length = -1;
    let chunked = false;
    let te = false;
    let connection: string | undefined;
    let keepAliveHint: string | undefined;
    let at = eol + 2;
    const last = text.length - 2;
    while (at < last) {
      eol = text.indexOf('\r\n', at);
      const colon = text.indexOf(':', at);
      const name = text.slice(at, colon).toLowerCase();
      const raw = text.slice(colon + 1, eol);
      const value = trimOws(raw);
      at = eol + 2;
      switch (name) {
        case 'content-length':
          if (length !== -1) throw bad('HPE_UNEXPECTED_CONTENT_LENGTH', 'duplicate content-length');
          if (!DIGITS_RE.test(value)) throw bad('HPE_INVALID_CONTENT_LENGTH', 'invalid content-length');
          length = Number(value);
          break;
        case 'transfer-encoding': {
          te = true;
          // A tab around a coding: RFC 9110 trims it as OWS, llhttp does not take the coding as
          // chunked; two parsers framing one response differently is refused.
          if (raw.indexOf('\t') !== -1) throw bad('HPE_INVALID_TRANSFER_ENCODING', 'a tab in transfer-encoding');
          // The final coding decides (RFC 9112 §6.3): chunked, or the body runs to the close.
          const comma = value.lastIndexOf(',');
          chunked = trimOws(comma === -1 ? value : value.slice(comma + 1)).toLowerCase() === 'chunked';
          break;
        }
        case 'connection':
          connection = connection === undefined ? value : `${connection}, ${value}`;
          break;
        case 'keep-alive':
          keepAliveHint = value;
          break;
      }
      addField(headers, name, value);
    }
    if (te && length !== -1) throw bad('HPE_UNEXPECTED_CONTENT_LENGTH', 'content-length with transfer-encoding');
    if (status < 200) {
      if (status === 101) throw bad('HPE_INVALID_STATUS', 'unexpected 101 response');
      ex.handler.onResponseStart?.(ex, status, headers as IncomingHttpHeaders, reason);
      return; // the final head follows
    }
    let keepAlive = !http10;
    if (connection !== undefined) {
      const c = connection.toLowerCase();
      if (c.includes('close')) keepAlive = false;
      else if (http10 && c.includes('keep-alive')) keepAlive = true;
    }
    this.keepAlive = keepAlive;
    if (keepAliveHint !== undefined) {
      const m = /timeout\s*=\s*(\d+)/i.exec(keepAliveHint);
      if (m !== null) {
        this.hint = Number(m[1]) * 1000;
        // As undici (keepAliveTimeoutThreshold): 2 s are kept between our reuse and the origin's
        // close, for the request's way there; a hint that leaves none means no reuse.
        if (this.hint <= KEEPALIVE_MARGIN) this.keepAlive = false;
      }
    }
    // The body's framing (RFC 9112 §6.3).
    if (this.headRequest || status === 204 || status === 304) {
      this.state = State.Length;
      this.remaining = 0;
    } else if (chunked) this.state = State.ChunkSize;
    else if (te) {
      this.state = State.UntilClose;
      this.keepAlive = false;
    } else if (length !== -1) {
      this.state = State.Length;
      this.remaining = length;
    } else {
      this.state = State.UntilClose;
      this.keepAlive = false;
    }
    // More bytes than the length promised, already here: an invalid response (EDGE-CASES 31), a
    // 502 before its head goes anywhere. (Bytes that come later fail it in #complete, or, once it
    // is over, close the idle connection.)
    if (this.state === State.Length && available > this.remaining) throw bad('HPE_INVALID_CONSTANT', 'bytes beyond the response');
    this.since = performance.now();
    this.activity = false;
    ex.handler.onResponseStart?.(ex, status, headers as IncomingHttpHeaders, reason);
  }

  /**
   * The response is complete; `extra` bytes followed it in the same read. Any is a protocol error
   * (llhttp fails it too): the exchange fails (the client's response is cut, never cleanly ended)
   * and the connection is closed.
   */
  #complete(ex: Exchange, extra: number): void {
    if (extra > 0) throw bad('HPE_INVALID_CONSTANT', 'bytes beyond the response');
    this.state = State.Idle;
    this.#finish(ex);
  }

  #finish(ex: Exchange): void {
    this.ex = undefined;
    ex.conn = undefined;
    ex.done = true;
    this.pool.busy.delete(this);
    // The origin answered before the whole body went out (a 413, say): the rest is not sent.
    if (!ex.bodyDone) ex.detach?.(true);
    // A body still going out: this connection can carry no other request.
    if (!ex.bodyDone || !this.keepAlive) this.destroy();
    else this.release();
    ex.handler.onResponseEnd?.(ex, (this.trailers ?? {}) as IncomingHttpHeaders);
    this.trailers = undefined;
  }

  /** Back to the pool's idle list. */
  release(): void {
    this.state = State.Idle;
    this.pool.busy.delete(this);
    if (this.dead) return;
    if (this.pool.agent.closed && this.pool.waiting.length === 0) return this.destroy();
    if (this.socket.isPaused()) this.socket.resume();
    const waiting = this.pool.waiting.length > 0 ? this.pool.next() : undefined;
    if (waiting !== undefined) return this.start(waiting);
    this.idleSince = performance.now();
    const keep = this.pool.agent.keepAliveTimeout;
    this.idleLimit = this.hint > 0 ? Math.min(keep, this.hint - KEEPALIVE_MARGIN) : keep;
    this.pool.idle.push(this);
  }

  /** Continues after a resume(): the bytes held back, then the socket. */
  resumeParse(): void {
    const ex = this.ex;
    if (ex === undefined || this.parsing) return;
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      this.parse(ex, held);
    }
    if (this.ex === ex && !ex.paused) this.socket.resume();
  }

  /** The exchange was aborted by its handler: a connection with a request written cannot be reused. */
  abandon(ex: Exchange): void {
    if (this.ex !== ex) return;
    this.ex = undefined;
    ex.conn = undefined;
    this.pool.busy.delete(this);
    if (!ex.written && this.connected) this.release();
    else this.destroy();
  }

  onEnd(): void {
    const ex = this.ex;
    // A close-delimited body ends with the connection (its FIN); anything else in flight is cut.
    if (ex !== undefined && this.state === State.UntilClose && this.held === undefined) return this.#complete(ex, 0);
    this.onClose();
  }

  onError(err: Error): void {
    this.failWith(err);
  }

  onClose(): void {
    const s = this.state;
    const midBody = s !== State.Head && s !== State.UntilClose && s !== State.Idle;
    this.failWith(new H1ClientError('UND_ERR_SOCKET', midBody ? 'other side closed before the response ended' : 'other side closed'));
  }

  /** Closes the connection and fails the exchange in flight, if any, with `err`. */
  failWith(err: Error): void {
    const ex = this.ex;
    this.ex = undefined;
    this.destroy();
    if (ex !== undefined) {
      ex.conn = undefined;
      ex.fail(err);
    }
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.state = State.Idle;
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.pool.forget(this);
    this.socket.destroy();
  }
}

/** The connections to one origin. */
class OriginPool {
  readonly agent: H1Agent;
  readonly origin: string;
  /** host:port as a Host header (when the request carries none). */
  readonly host: string;
  readonly hostname: string;
  readonly port: number;
  /** Idle connections, the most recently used last. */
  readonly idle: Connection[] = [];
  /** Connections carrying (or connecting for) an exchange. */
  readonly busy = new Set<Connection>();
  /** Exchanges waiting for a connection (the origin is at its `connections` limit), oldest first. */
  readonly waiting: Exchange[] = [];
  /** dispatch is dropping expired idle connections before it picks one. */
  #choosing = false;
  /** TLS options for an https origin, else undefined. */
  readonly tls: ConnectionOptions | undefined;

  constructor(agent: H1Agent, origin: string) {
    this.agent = agent;
    this.origin = origin;
    const url = new URL(origin);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new H1ClientError('UND_ERR_INVALID_ARG', `H1Agent speaks http and https, not ${url.protocol}`);
    this.host = url.host;
    this.hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const secure = url.protocol === 'https:';
    this.port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
    this.tls = secure ? { ALPNProtocols: ['http/1.1'], ...agent.tls } : undefined;
  }

  dispatch(ex: Exchange): void {
    let conn = this.idle.pop();
    if (conn !== undefined) {
      // Exact expiry here (the sweeper's is up to a tick late): never reuse past the limit.
      const now = performance.now();
      this.#choosing = true;
      while (conn !== undefined && (conn.dead || conn.socket.destroyed || now - conn.idleSince >= conn.idleLimit)) {
        conn.destroy();
        conn = this.idle.pop();
      }
      this.#choosing = false;
      if (conn !== undefined) return conn.start(ex);
    }
    const max = this.agent.maxConnections;
    if (max > 0 && this.busy.size >= max) {
      this.waiting.push(ex);
      return;
    }
    this.#connect(ex);
  }

  /** The oldest waiting exchange not given up, or undefined. */
  next(): Exchange | undefined {
    while (this.waiting.length > 0) {
      const ex = this.waiting.shift()!;
      if (!ex.done && !ex.aborted) return ex;
    }
    return undefined;
  }

  #connect(ex: Exchange): void {
    const t = this.tls;
    const socket =
      t === undefined
        ? net.connect({ host: this.hostname, port: this.port, noDelay: true })
        : tls.connect({ ...t, host: this.hostname, port: this.port, session: this.agent.sessions.get(this.origin) });
    if (t !== undefined) {
      socket.setNoDelay(true);
      socket.on('session', (session: Buffer) => {
        this.agent.sessions.set(this.origin, session);
      });
    }
    const conn = new Connection(this, socket);
    if (connectChannel.hasSubscribers) connectChannel.publish({ origin: this.origin });
    conn.ex = ex;
    ex.conn = conn;
    this.busy.add(conn);
    const timeout = this.agent.connectTimeout;
    conn.connectTimer = setTimeout(() => {
      conn.connectTimer = undefined;
      if (!conn.connected) conn.failWith(new H1ClientError('UND_ERR_CONNECT_TIMEOUT', `connect timeout (${timeout} ms)`));
    }, timeout);
    socket.once(t === undefined ? 'connect' : 'secureConnect', () => {
      conn.connected = true;
      if (conn.connectTimer !== undefined) clearTimeout(conn.connectTimer);
      conn.connectTimer = undefined;
      const waiting = conn.ex;
      if (waiting === undefined || waiting.aborted) {
        conn.ex = undefined;
        conn.release();
        return;
      }
      conn.start(waiting);
    });
  }

  forget(conn: Connection): void {
    this.busy.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i !== -1) this.idle.splice(i, 1);
    // A connection gone makes room for a waiting exchange.
    if (this.waiting.length > 0) {
      const ex = this.next();
      if (ex !== undefined) {
        this.#connect(ex);
        return;
      }
    }
    // Not while dispatch is choosing a connection: the exchange it holds is about to use this pool.
    if (this.idle.length === 0 && this.busy.size === 0 && !this.#choosing) this.agent.drop(this);
  }
}

/**
 * Pools by origin (`http://host:port`), created on first use and dropped when their last
 * connection closes: the shape of undici's Agent for `dispatch` and `close`.
 */
export class H1Agent {
  readonly keepAliveTimeout: number;
  readonly connectTimeout: number;
  readonly maxHeaderSize: number;
  /** Connections per origin at most (0: no limit). */
  readonly maxConnections: number;
  readonly tls: ConnectionOptions | undefined;
  readonly #origin: string | undefined;
  readonly #pools = new Map<string, OriginPool>();
  /** The last TLS session each https origin gave, resumed by its next connection (as undici does); kept when the origin's pool goes. */
  readonly sessions = new Map<string, Buffer>();
  #sweeper: NodeJS.Timeout | undefined = undefined;
  /** The sweeper's period, ms: a quarter of the shortest timeout it watches, between 10 ms and 1 s. */
  #tick = 1000;
  #closed = false;
  #closing: (() => void) | undefined = undefined;

  constructor(opts: H1AgentOptions) {
    this.keepAliveTimeout = opts.keepAliveTimeout;
    this.connectTimeout = opts.connectTimeout || DEFAULT_CONNECT_TIMEOUT;
    this.maxHeaderSize = opts.maxHeaderSize ?? NODE_MAX_HEADER_SIZE;
    this.maxConnections = opts.connections ?? 0;
    this.tls = opts.tls;
    this.#origin = opts.origin;
    this.#want(opts.keepAliveTimeout);
  }

  /** Sends one request; the handler hears everything, errors included (never thrown). */
  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const ex = new Exchange(opts, handler);
    if (this.#closed) {
      ex.fail(new H1ClientError('UND_ERR_CLOSED', 'the agent is closed'));
      return false;
    }
    if (ex.headersTimeout > 0) this.#want(ex.headersTimeout);
    if (ex.bodyTimeout > 0) this.#want(ex.bodyTimeout);
    const origin = opts.origin === undefined ? this.#origin : String(opts.origin);
    if (origin === undefined) {
      ex.fail(new H1ClientError('UND_ERR_INVALID_ARG', 'no origin'));
      return true;
    }
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      try {
        pool = new OriginPool(this, origin);
      } catch (err) {
        ex.fail(err as Error);
        return true;
      }
      this.#pools.set(origin, pool);
    }
    pool.dispatch(ex);
    return true;
  }

  /** Makes the sweeper look often enough for a timeout of `ms`. */
  #want(ms: number): void {
    const tick = Math.max(10, Math.min(1000, Math.floor(ms / 4)));
    if (this.#sweeper !== undefined && tick >= this.#tick) return;
    this.#tick = Math.min(tick, this.#tick);
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = setInterval(sweep, this.#tick, this);
    this.#sweeper.unref();
  }

  /** Times out heads and silent bodies, closes connections idle too long. */
  sweep(): void {
    const now = performance.now();
    for (const pool of this.#pools.values()) {
      for (const conn of pool.busy) {
        const ex = conn.ex;
        if (ex === undefined || !ex.written) continue;
        if (conn.state === State.Head) {
          if (ex.headersTimeout > 0 && now - conn.since >= ex.headersTimeout) conn.failWith(new H1ClientError('UND_ERR_HEADERS_TIMEOUT', 'response head timeout'));
        } else if (conn.activity || ex.paused) {
          conn.activity = false;
          conn.since = now;
        } else if (ex.bodyTimeout > 0 && now - conn.since >= ex.bodyTimeout) conn.failWith(new H1ClientError('UND_ERR_BODY_TIMEOUT', 'response body timeout'));
      }
      for (let i = pool.idle.length - 1; i >= 0; i--) {
        const conn = pool.idle[i];
        if (now - conn.idleSince >= conn.idleLimit) conn.destroy();
      }
    }
  }

  drop(pool: OriginPool): void {
    if (this.#pools.get(pool.origin) === pool) this.#pools.delete(pool.origin);
    if (this.#closing !== undefined && this.#pools.size === 0) this.#closing();
  }

  /** Connections open (for tests). */
  get connections(): number {
    let n = 0;
    for (const pool of this.#pools.values()) n += pool.idle.length + pool.busy.size;
    return n;
  }

  /** Closes idle connections now and the others once their responses end; new requests fail. */
  close(): Promise<void> {
    this.#closed = true;
    for (const pool of [...this.#pools.values()]) for (const conn of [...pool.idle]) conn.destroy();
    // Connections finishing a response are destroyed as they become idle (release checks #closed).
    if (this.#pools.size === 0) return this.#stop();
    return new Promise<void>((resolve) => {
      this.#closing = resolve;
    }).then(() => this.#stop());
  }

  get closed(): boolean {
    return this.#closed;
  }

  #stop(): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    return Promise.resolve();
  }
}

function sweep(agent: H1Agent): void {
  agent.sweep();
}
