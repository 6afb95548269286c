/**
 * HTTP/2 connections from clients (EDGE-CASES 19-24): edge-safe settings, rapid-reset accounting,
 * idle close, and the set of open sessions so that a drain can send every client a GOAWAY.
 *
 * Rapid reset (CVE-2023-44487) is bounded twice:
 *   - a request arriving on HTTP/2 is handled one event-loop turn later (`deferStream`), so a
 *     HEADERS frame reset by a RST_STREAM in the same read never reaches an upstream;
 *   - each client reset counts against `maxResets` per `resetWindow`; past it the connection gets
 *     GOAWAY ENHANCE_YOUR_CALM and is closed (as Envoy's premature-reset limit). nghttp2's own
 *     reset rate limit is set to the same numbers as a backstop.
 */
import http2, { type Http2Server, type Http2Stream, type ServerHttp2Session } from 'node:http2';
import type { ListenerConfig } from '../config/types.ts';

const { NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

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
type TrackedSession = ServerHttp2Session & { [kState]: SessionState; [kOwner]: H2Sessions };
const kOwner = Symbol('switchboard.h2owner');

/** The HTTP/2 sessions of one listener. */
export class H2Sessions {
  readonly sessions = new Set<ServerHttp2Session>();
  #config: ListenerConfig;
  /** Sessions closed for too many resets (for tests and logs). */
  calmed = 0;

  constructor(server: Http2Server, config: ListenerConfig) {
    this.#config = config;
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
    for (const s of this.sessions) if (!s.closed) s.close();
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
type TrackedStream = Http2Stream & { [kSession]?: TrackedSession; [kBodyTimer]?: NodeJS.Timeout };

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
  // A stream reset before its response was complete (by the client, or rarely by us).
  if (this.aborted && this.rstCode !== 0) countReset(session, st);
}

function countReset(session: TrackedSession, st: SessionState): void {
  const h = session[kOwner].config.http2;
  const now = performance.now();
  if (now - st.windowStart > h.resetWindow) {
    st.windowStart = now;
    st.resets = 0;
  }
  if (++st.resets <= h.maxResets || session.destroyed) return;
  session[kOwner].calmed++;
  session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
  session.destroy();
}

/** The header list size limit (the listener's maxHeaderSize) for a request on `stream`. */
export function maxHeaderListSize(stream: Http2Stream): number {
  const session = (stream.session as TrackedSession | undefined) ?? (stream as TrackedStream)[kSession];
  return session?.[kOwner].config.maxHeaderSize ?? Infinity;
}

/** True when the stream behind an HTTP/2 request is gone (reset or closed) before it was handled. */
export function streamGone(stream: Http2Stream): boolean {
  return stream.destroyed || stream.closed;
}
