/**
 * HTTP/2 connections from clients (EDGE-CASES 19-24): edge-safe settings, rapid-reset accounting,
 * idle close, and the set of open sessions so that a drain can send every client a GOAWAY.
 *
 * Rapid reset (CVE-2023-44487) is bounded twice:
 *   - a request arriving on HTTP/2 is handled one event-loop turn later (`deferStream`), so a
 *     HEADERS frame reset by a RST_STREAM in the same read never reaches an upstream;
 *   - each client reset counts against `maxResets` per `resetWindow`; past it the connection gets
 *     GOAWAY ENHANCE_YOUR_CALM and is closed (as Envoy's premature-reset limit). nghttp2's own
 *     reset rate limit is set to the same numbers as a backstop. Resets are counted as node:http2
 *     closes each stream (its `http2.server.stream.close` channel, synchronous), not on the
 *     stream's later 'close' event: node:http2 reads the connection through a CheckedTransport
 *     (h2-field-check.ts), so deferred events of one read run only once nghttp2 has processed all
 *     of it, after its own limit.
 */
import { http2Event, type Http2Event } from '../observability/events.ts';
import diagnostics from 'node:diagnostics_channel';
import http2, { type Http2Server, type Http2Session, type Http2Stream, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { ListenerConfig } from '../config/types.ts';
import { CheckedTransport } from './h2-field-check.ts';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_PROTOCOL_ERROR } = http2.constants;

/** Options of the listener's node:http2 server (fixed when it is created; see bindingKey). */
export function h2ServerOptions(config: ListenerConfig): http2.ServerOptions {
  const h = config.http2;
  return {
    maxHeaderListPairs: 128,
    maxSettings: 32,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    streamResetBurst: h.maxResets,
    streamResetRate: Math.max(1, Math.ceil(h.maxResets / Math.max(1, h.resetWindow / 1000))),
    unknownProtocolTimeout: config.headerTimeout,
    strictFieldWhitespaceValidation: true,
    settings: {
      maxConcurrentStreams: h.maxConcurrentStreams,
      initialWindowSize: h.initialWindowSize,
      maxHeaderListSize: config.maxHeaderSize,
      enablePush: false,
    },
  };
}

/** Per-session bookkeeping, kept on the session object. */
interface SessionState {
  resets: number;
  windowStart: number;
  open: number;
  idleTimer: NodeJS.Timeout | undefined;
}

const kState = Symbol('switchboard.h2state');
type TrackedSession = ServerHttp2Session & { [kState]: SessionState; [kOwner]: H2Sessions; [kTransport]?: CheckedTransport };
const kOwner = Symbol('switchboard.h2owner');
/** The CheckedTransport node:http2 reads the session from (h2-field-check.ts). */
const kTransport = Symbol('switchboard.h2transport');

/** The HTTP/2 sessions of one listener. */
export class H2Sessions {
  readonly sessions = new Set<ServerHttp2Session>();
  #config: ListenerConfig;
  /** Sessions closed for too many resets (for tests and logs). */
  calmed = 0;

  /** The transport of the connection node:http2 is making a session of (its 'session' is synchronous). */
  #connecting: CheckedTransport | undefined;

  constructor(server: Http2Server, config: ListenerConfig) {
    this.#config = config;
    // Every connection reaches node:http2 through a CheckedTransport, which checks header blocks
    // before nghttp2 reads them (node drops malformed fields instead of refusing the request).
    const nodeConnection = server.listeners('connection')[0] as (this: Http2Server, socket: unknown) => void;
    server.removeAllListeners('connection');
    server.on('connection', (socket: Socket) => {
      const transport = new CheckedTransport(socket, Math.max(4 * this.#config.maxHeaderSize, 65_536));
      this.#connecting = transport;
      try {
        nodeConnection.call(server, transport);
      } finally {
        this.#connecting = undefined;
      }
    });
    server.on('session', (session) => this.#add(session as TrackedSession));
    server.on('stream', onStream);
  }

  update(config: ListenerConfig): void {
    this.#config = config;
  }

  get config(): ListenerConfig {
    return this.#config;
  }

  #add(session: TrackedSession): void {
    session[kState] = { resets: 0, windowStart: performance.now(), open: 0, idleTimer: undefined };
    session[kOwner] = this;
    const transport = this.#connecting;
    if (transport !== undefined) {
      session[kTransport] = transport;
      transport.onFatal = (code) => {
        if (!session.destroyed) {
          if (http2Event.hasSubscribers) publishGoAway(this.#config.name, 'protocol');
          session.goaway(code);
          session.destroy();
        }
      };
    }
    this.sessions.add(session);
    session.on('error', () => undefined); // a session error also closes it; nothing else to do
    session.once('close', () => {
      this.sessions.delete(session);
      const t = session[kState].idleTimer;
      if (t) clearTimeout(t);
    });
    const window = this.#config.http2.connectionWindowSize;
    session.once('localSettings', () => {
      if (!session.destroyed) session.setLocalWindowSize(window);
    });
    armIdle(session);
  }

  /** Graceful drain: GOAWAY to every client; streams in flight finish, then the sessions close. */
  goAwayAll(): void {
    for (const s of this.sessions) {
      if (s.closed) continue;
      if (http2Event.hasSubscribers) publishGoAway(this.#config.name, 'drain');
      s.close();
    }
  }

  destroyAll(): void {
    for (const s of this.sessions) s.destroy();
  }
}

function armIdle(session: TrackedSession): void {
  const ms = session[kOwner].config.keepAliveTimeout;
  if (ms > 0) session[kState].idleTimer = setTimeout(onIdle, ms, session).unref();
}

function onIdle(session: TrackedSession): void {
  session[kState].idleTimer = undefined;
  if (session[kState].open === 0 && !session.closed) session.close();
}

/** The session a stream was opened on: by 'close', node:http2 has already detached `stream.session`. */
const kSession = Symbol('switchboard.h2session');
/** The stream's request-body timer (requestTimeout), while its body is still arriving. */
const kBodyTimer = Symbol('switchboard.h2bodyTimer');
/** Set on a stream whose request header block held a malformed field; it was reset with PROTOCOL_ERROR. */
const kMalformed = Symbol('switchboard.h2malformed');
type TrackedStream = Http2Stream & { [kSession]?: TrackedSession; [kBodyTimer]?: NodeJS.Timeout; [kMalformed]?: boolean };

/**
 * The listener's requestTimeout for HTTP/2 (node:http applies it to HTTP/1.1 only): a request
 * body that has not fully arrived in time is cut with RST_STREAM CANCEL (EDGE-CASES 26), which
 * aborts its upstream request too.
 */
function armBodyTimer(stream: TrackedStream, ms: number): void {
  stream[kBodyTimer] = setTimeout(onBodyTimeout, ms, stream);
  stream.once('end', clearBodyTimer);
}

function clearBodyTimer(this: TrackedStream): void {
  clearTimeout(this[kBodyTimer]);
  this[kBodyTimer] = undefined;
}

function onBodyTimeout(stream: TrackedStream): void {
  stream[kBodyTimer] = undefined;
  if (!stream.destroyed && !stream.readableEnded) stream.close(http2.constants.NGHTTP2_CANCEL);
}

function onStream(stream: Http2Stream): void {
  const session = stream.session as TrackedSession | undefined;
  if (session === undefined) return;
  // RFC 9113 §8.1.1: a malformed request is a stream error PROTOCOL_ERROR, and is never forwarded.
  const transport = session[kTransport];
  if (transport !== undefined && stream.id !== undefined && transport.reader.takeMalformed(stream.id)) {
    (stream as TrackedStream)[kMalformed] = true;
    stream.close(NGHTTP2_PROTOCOL_ERROR);
  }
  const st = session[kState];
  st.open++;
  if (st.idleTimer) {
    clearTimeout(st.idleTimer);
    st.idleTimer = undefined;
  }
  (stream as TrackedStream)[kSession] = session;
  stream.once('close', onStreamClose);
  const requestTimeout = session[kOwner].config.requestTimeout;
  if (requestTimeout > 0 && !stream.endAfterHeaders) armBodyTimer(stream as TrackedStream, requestTimeout);
}

function onStreamClose(this: TrackedStream): void {
  if (this[kBodyTimer] !== undefined) clearTimeout(this[kBodyTimer]);
  const session = this[kSession];
  if (session === undefined) return;
  this[kSession] = undefined;
  const st = session[kState];
  if (--st.open === 0 && !session.closed) armIdle(session);
}

/**
 * node:http2 closing a stream (any server's: ours have a kState). A stream reset before its
 * response was complete (by the client, or rarely by us) counts against the session's resets.
 */
function onStreamClosing(message: unknown): void {
  const stream = (message as { stream: Http2Stream }).stream;
  if (!stream.aborted || stream.rstCode === 0) return;
  const session = stream.session as TrackedSession | undefined;
  const st = session?.[kState];
  if (st === undefined) return;
  if (http2Event.hasSubscribers) http2Event.publish({ listener: session![kOwner].config.name, kind: 'reset' } satisfies Http2Event);
  countReset(session!, st);
}

function publishGoAway(listener: string, reason: NonNullable<Http2Event['reason']>): void {
  http2Event.publish({ listener, kind: 'goaway', reason } satisfies Http2Event);
}
diagnostics.subscribe('http2.server.stream.close', onStreamClosing);

function countReset(session: TrackedSession, st: SessionState): void {
  const h = session[kOwner].config.http2;
  const now = performance.now();
  if (now - st.windowStart > h.resetWindow) {
    st.windowStart = now;
    st.resets = 0;
  }
  if (++st.resets <= h.maxResets || session.destroyed) return;
  session[kOwner].calmed++;
  if (http2Event.hasSubscribers) publishGoAway(session[kOwner].config.name, 'rapid_reset');
  session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
  session.destroy();
}

/** True when the stream's request header block held a field RFC 9113 §8.2.1 forbids (it was reset). */
export function malformedStream(stream: Http2Stream): boolean {
  return (stream as TrackedStream)[kMalformed] === true;
}

/** The client's socket (TCP or TLS) under a session: node:http2 itself sees only its CheckedTransport. */
export function clientSocketOf(session: Http2Session): { remoteAddress?: string | undefined } {
  return (session as TrackedSession)[kTransport]?.socket ?? session.socket;
}
