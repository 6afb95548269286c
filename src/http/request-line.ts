/**
 * Since Switchboard's own HTTP/1.1 server (h1-server.ts, which reads every request line itself), this
 * guard runs only on connections node:http parses: those handed over for an upgrade or CONNECT, and
 * those refused for the connection limits.
 *
 * The request line, as RFC 9112 §3 has it: `method SP request-target SP HTTP-version CRLF`, single
 * spaces (nginx's strict parsing; EDGE-CASES 10). llhttp is lenient in two ways no option changes:
 *   - it skips any run of spaces before and after the target, and reports neither: req.url,
 *     req.method and rawHeaders of `GET  /  HTTP/1.1` are those of `GET / HTTP/1.1`;
 *   - it takes `GET /` + CRLF as HTTP/0.9 (version 0.9) and then reads header lines: a client that
 *     sent only that line waits for an answer while node waits for the end of a header block, until
 *     the header timeout (408). No event fires in between.
 * So the bytes of the request line must be read, and node consumes the socket in C++ (no 'data'
 * events). `guardRequestLines` hooks two callbacks of the connection's llhttp parser instead, once
 * per connection, no closure per request:
 *   - message begin (parser slot kOnMessageBegin): the current read's bytes (getCurrentBuffer) from
 *     where this message starts; its request line is checked as far as it has arrived;
 *   - end of each read (slot kOnExecute, or a 'data' listener for bytes node reads in JavaScript):
 *     a line that continues in this read is finished, and a head still open whose line is already
 *     known bad (HTTP/0.9) is answered 400 at once.
 * A complete request is refused in the pipeline (`checkRequestLine`, from checkFraming), so it is
 * logged like any other.
 *
 * Where a message starts in a read: at its start when the parser was idle at the end of the last
 * read (the first request, and a keep-alive request sent after its predecessor's response); for a
 * pipelined one, right after its predecessor, whose end this module finds by the predecessor's
 * framing: its head ends at the first empty line, then comes Content-Length bytes or a chunked body
 * (walked). Only a chunked body that began in an earlier read cannot be walked (its chunk sizes are
 * gone): a request pipelined right behind one in the same read is refused, UNCHECKED_PIPELINED_REQUEST
 * (clients should not pipeline after a non-idempotent request anyway). Whenever this module and the
 * parser disagree it fails closed the same way, and it starts afresh when a read ends with the
 * parser idle.
 */
import { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../errors.ts';
import { writeRawError } from './error-response.ts';

/** Slots of node's HTTPParser (internalBinding('http_parser'): kOnMessageBegin 0 ... kOnExecute 5). */
const K_ON_MESSAGE_BEGIN = 0;
const K_ON_HEADERS_COMPLETE = 2;
const K_ON_EXECUTE = 5;

/** A request as node's parser makes it (`upgrade`: the parser hands the socket over after it). */
type ParsedRequest = IncomingMessage & { upgrade?: boolean };

/** The parts of node's HTTPParser used here. */
interface Parser {
  [K_ON_MESSAGE_BEGIN]: ((this: Parser) => void) | null;
  [K_ON_HEADERS_COMPLETE]: unknown;
  [K_ON_EXECUTE]: ((this: Parser, ret: number | Error) => void) | null;
  socket: Socket | null;
  /** The request whose headers completed last. */
  incoming: ParsedRequest | null;
  /** A copy of the bytes being parsed (during a parse, and in the kOnExecute callback). */
  getCurrentBuffer(): Buffer;
}

/** Where the guard is in the byte stream. */
const START = 0; // between messages (CR and LF are skipped there)
const LINE = 1; // in a request line
const HEAD = 2; // in a header block after its request line
const BODY = 3; // in a Content-Length body
const CHUNKED = 4; // in a chunked body
const LOST = 5; // position unknown until the parser is idle at the end of a read

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const CRLFCRLF = Buffer.from('\r\n\r\n');

const kGuard = Symbol('switchboard.requestLine');
type Guarded = Socket & {
  [kGuard]?: LineGuard;
  parser?: Parser | null;
  /** The response node:http is writing now (an earlier request's, when requests are pipelined). */
  _httpMessage?: { once(event: 'finish', listener: () => void): unknown } | null;
};

class LineGuard {
  readonly socket: Guarded;
  readonly parser: Parser;
  readonly nodeOnExecute: (ret: number | Error) => void;
  phase = START;
  /** The current read (fetched once per read, when needed) and how far the guard has got in it. */
  buf: Buffer | undefined = undefined;
  pos = 0;
  /** A message has begun and its headers have not been seen to complete (see headOpen). */
  open = false;
  /** parser.incoming when the current message began: the parser sets a new request there when the headers complete. */
  prevIncoming: IncomingMessage | null = null;
  /** The current message's request line: spaces so far, whether the last byte was one, the verdict. */
  spaces = 0;
  lastSpace = false;
  verdict: ErrorCode | undefined = undefined;
  /** HEAD: how much of CR LF CR LF the bytes so far end with. BODY: bytes left. */
  crlf = 0;
  left = 0;
  /** refuseNow waits for the response in flight to finish. */
  waiting = false;

  constructor(socket: Guarded, parser: Parser, nodeOnExecute: (ret: number | Error) => void) {
    this.socket = socket;
    this.parser = parser;
    this.nodeOnExecute = nodeOnExecute;
  }

  bytes(): Buffer {
    if (this.buf === undefined) this.buf = this.parser.getCurrentBuffer();
    return this.buf;
  }

  /**
   * The headers of the message that began last have not completed. The parser puts a new request in
   * parser.incoming when they complete; node:http later resets it to null once that request and its
   * response are done (or an earlier one's are), which says nothing. The guard looks after every
   * parse (end of read, a request's check), before node can reset it, so a new request there is
   * never missed.
   */
  headOpen(): boolean {
    if (!this.open) return false;
    const incoming = this.parser.incoming;
    if (incoming !== null && incoming !== this.prevIncoming) this.open = false;
    return this.open;
  }

  /** A message begins in the current read. */
  begin(): void {
    this.headOpen();
    const b = this.bytes();
    // A pipelined message: first step over the end of its predecessor.
    if (this.phase !== START && this.phase !== LOST) this.run(b, true);
    this.open = true;
    this.prevIncoming = this.parser.incoming;
    this.spaces = 0;
    this.lastSpace = false;
    let i = this.pos;
    while (i < b.length && (b[i] === CR || b[i] === LF)) i++;
    // Lost, or the parser saw a message start where the guard sees none: the line cannot be checked.
    if (i >= b.length) this.lose();
    if (this.phase === LOST) {
      this.verdict = 'UNCHECKED_PIPELINED_REQUEST';
      return;
    }
    this.verdict = undefined;
    this.phase = LINE;
    this.pos = this.line(b, i);
  }

  /** The verdict on the request whose headers just completed (its line may end in this read). */
  verdictNow(): ErrorCode | undefined {
    this.headOpen();
    if (this.phase === LINE) {
      const b = this.bytes();
      if (b.length === 0) return 'UNCHECKED_PIPELINED_REQUEST'; // not parsing now: the bytes are gone
      this.pos = this.line(b, this.pos);
    }
    return this.verdict;
  }

  /** The parser has parsed `length` bytes of a read (`chunk`, when node read them in JavaScript). */
  endOfRead(length: number, chunk: Buffer | undefined): void {
    const p = this.parser;
    const idle = !this.headOpen() && (p.incoming === null || p.incoming.complete);
    if (idle) {
      this.phase = START;
      this.open = false;
    } else if (this.phase === BODY && this.buf === undefined) {
      // Only body bytes since the last look: counted, not read.
      const n = length - this.pos;
      if (n >= this.left) this.lose();
      else this.left -= n;
    } else if (this.phase !== LOST) {
      if (chunk !== undefined) this.buf ??= chunk;
      this.run(this.bytes().subarray(0, length), false);
      if (this.phase === CHUNKED) this.lose(); // the body goes on in the next read: cannot be walked
    }
    this.buf = undefined;
    this.pos = 0;
    const verdict = this.verdict;
    if (verdict !== undefined && this.headOpen()) this.refuseNow(verdict);
  }

  /**
   * Answers a head that has not completed (HTTP/0.9 waits for an answer) with `code` and closes, as
   * node's own parse errors are answered. Behind a response still going out (pipelining) the answer
   * waits for it, so that answers keep their order; meanwhile, should the head complete, the
   * request is refused in the pipeline like any other.
   */
  refuseNow(code: ErrorCode): void {
    const socket = this.socket;
    const inFlight = socket._httpMessage;
    if (inFlight) {
      if (!this.waiting) inFlight.once('finish', () => setImmediate(() => this.refuseLater(code)));
      this.waiting = true;
      return;
    }
    uninstall(socket);
    socket.pause();
    writeRawError(socket, code, undefined);
  }

  refuseLater(code: ErrorCode): void {
    this.waiting = false;
    if (this.socket[kGuard] === this && !this.socket.destroyed && this.verdict === code && this.headOpen()) this.refuseNow(code);
  }

  lose(): void {
    this.phase = LOST;
  }

  /**
   * Walks `b` from `pos`: to the end of `b`, or (`toNextMessage`) to where the message after the
   * current one starts, which must then be within `b`.
   */
  run(b: Buffer, toNextMessage: boolean): void {
    let i = this.pos;
    while (i < b.length) {
      switch (this.phase) {
        case START:
          while (i < b.length && (b[i] === CR || b[i] === LF)) i++;
          if (i < b.length) {
            this.pos = i;
            // Bytes of a message the parser has not announced: the guard has lost its place.
            if (!toNextMessage) this.lose();
            return;
          }
          break;
        case LINE:
          i = this.line(b, i);
          break;
        case HEAD:
          i = this.head(b, i);
          break;
        case BODY: {
          const n = Math.min(this.left, b.length - i);
          i += n;
          this.left -= n;
          if (this.left === 0) this.phase = START;
          break;
        }
        case CHUNKED: {
          const end = chunkedEnd(b, i);
          if (end === -1) {
            // Ends beyond this read: only possible at the end of a read.
            if (toNextMessage) this.lose();
            this.pos = b.length;
            return;
          }
          i = end;
          this.phase = START;
          break;
        }
        case LOST:
          this.pos = b.length;
          return;
      }
    }
    this.pos = i;
    if (toNextMessage && this.phase !== START) this.lose();
  }

  /** Reads request-line bytes from `i`; returns where it stopped (past the LF when the line ended). */
  line(b: Buffer, i: number): number {
    let lastSpace = this.lastSpace;
    let spaces = this.spaces;
    let bad = false;
    let k = i;
    for (; k < b.length; k++) {
      const c = b[k];
      if (c === LF) break;
      if (c === SP) {
        if (lastSpace) bad = true;
        spaces++;
        lastSpace = true;
      } else lastSpace = false;
    }
    this.lastSpace = lastSpace;
    this.spaces = spaces;
    if (bad) this.verdict ??= 'INVALID_REQUEST_LINE';
    if (k === b.length) return k;
    // No second space: `GET /` CRLF, HTTP/0.9 (llhttp rejects other shapes itself).
    if (spaces < 2) this.verdict ??= 'UNSUPPORTED_HTTP_VERSION';
    this.phase = HEAD;
    this.crlf = 2; // the line's own CR LF
    return k + 1;
  }

  /** Looks for the empty line that ends the head; at it, the message's framing decides what follows. */
  head(b: Buffer, i: number): number {
    let m = this.crlf;
    while (m > 0 && i < b.length) {
      const c = b[i++];
      m = c === CRLFCRLF[m] ? m + 1 : c === CR ? 1 : 0;
      if (m === 4) return this.headEnd(i);
    }
    if (i < b.length) {
      const at = b.indexOf(CRLFCRLF, i);
      if (at !== -1) return this.headEnd(at + 4);
      // How much of CR LF CR LF the read ends with.
      const n = b.length;
      m = b[n - 1] === CR ? (n - i >= 3 && b[n - 3] === CR && b[n - 2] === LF ? 3 : 1) : n - i >= 2 && b[n - 1] === LF && b[n - 2] === CR ? 2 : 0;
    }
    this.crlf = m;
    return b.length;
  }

  headEnd(i: number): number {
    const msg = this.parser.incoming;
    if (msg === null || msg === this.prevIncoming || msg.upgrade) {
      // The parser has not completed these headers (we disagree), or hands the socket over.
      this.lose();
      return i;
    }
    this.open = false;
    const h = msg.headers;
    const length = h['content-length'];
    if (h['transfer-encoding'] !== undefined) this.phase = CHUNKED;
    else if (length === undefined || length === '0') this.phase = START;
    else {
      this.left = Number(length);
      this.phase = Number.isSafeInteger(this.left) ? BODY : LOST;
    }
    return i;
  }
}

/** Where a chunked body (RFC 9112 §7.1) starting at `i` ends in `b`, or -1 if it goes on past `b`. */
function chunkedEnd(b: Buffer, i: number): number {
  for (;;) {
    const lf = b.indexOf(LF, i);
    if (lf === -1) return -1;
    let size = 0;
    for (let k = i; k < lf; k++) {
      const d = hexDigit(b[k]);
      if (d < 0) break; // `;` extensions, or the CR
      size = size * 16 + d;
    }
    i = lf + 1;
    if (size === 0) {
      // The trailer section: field lines up to an empty one.
      for (;;) {
        if (i + 1 < b.length && b[i] === CR && b[i + 1] === LF) return i + 2;
        const end = b.indexOf(LF, i);
        if (end === -1) return -1;
        i = end + 1;
      }
    }
    i += size + 2; // data, CR LF
    if (i > b.length) return -1;
  }
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}

function onMessageBegin(this: Parser): void {
  (this.socket as Guarded | null)?.[kGuard]?.begin();
}

function onExecute(this: Parser, ret: number | Error): void {
  const socket = this.socket as Guarded | null;
  const g = socket?.[kGuard];
  if (g === undefined) return;
  // A parse error (node answers it) or an upgrade (node hands the socket over) ends the guard's work
  // on this connection; node's own callback then does its part.
  if (typeof ret === 'number' && !this.incoming?.upgrade) g.endOfRead(ret, undefined);
  else if (typeof ret === 'number') g.verdictNow(); // an upgrade request whose line ended in this read
  g.nodeOnExecute(ret);
}

/** Bytes node parsed in JavaScript (data read before node:http took the socket): after node's listener. */
function onData(this: Guarded, chunk: Buffer): void {
  const g = this[kGuard];
  if (g === undefined) return;
  if (this.parser !== g.parser || this.destroyed) return uninstall(this);
  g.endOfRead(chunk.length, chunk);
}

function uninstall(socket: Guarded): void {
  const g = socket[kGuard];
  if (g === undefined) return;
  socket[kGuard] = undefined;
  socket.off('data', onData);
  if (g.parser.socket === socket) {
    g.parser[K_ON_MESSAGE_BEGIN] = null;
    g.parser[K_ON_EXECUTE] = g.nodeOnExecute;
  }
}

/**
 * Called once per HTTP/1.1 connection, right after node:http's connection handler set up its
 * parser. Without node's parser layout (checked here), the connection goes unguarded.
 */
export function guardRequestLines(socket: Socket): void {
  const parser = (socket as Socket & { parser?: Parser | null }).parser;
  if (parser === undefined || parser === null || parser.socket !== socket) return;
  const nodeOnExecute = parser[K_ON_EXECUTE];
  if (parser[K_ON_MESSAGE_BEGIN] !== null || typeof nodeOnExecute !== 'function' || typeof parser[K_ON_HEADERS_COMPLETE] !== 'function') return;
  const g = new LineGuard(socket as Guarded, parser, nodeOnExecute);
  (socket as Guarded)[kGuard] = g;
  parser[K_ON_MESSAGE_BEGIN] = onMessageBegin;
  parser[K_ON_EXECUTE] = onExecute;
  // Node consumes the socket in C++ and emits no 'data'; bytes it reads in JavaScript (put back by
  // the h2c sniff or the PROXY header reader) do come as 'data'. Socket.prototype.on: node's own
  // socket.on would stop consuming the socket when a 'data' listener is added.
  (Socket.prototype.on as (this: Socket, event: 'data', listener: (this: Guarded, chunk: Buffer) => void) => Socket).call(socket, 'data', onData);
}

/**
 * The request line of the request whose headers just completed on this connection: undefined when
 * it was well-formed (or the connection is not guarded, as for HTTP/2), else the error to answer.
 */
export function checkRequestLine(socket: object | undefined | null): ErrorCode | undefined {
  const g = (socket as Guarded | undefined | null)?.[kGuard];
  return g === undefined ? undefined : g.verdictNow();
}
