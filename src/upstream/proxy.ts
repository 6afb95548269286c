/**
 * The proxy step, last in every route's chain: admit the request past the upstream's circuit
 * breaker, build the upstream request, pick an endpoint (sticky cookie first), and send tries until
 * one answers or retrying is no longer safe or allowed.
 *
 * Retry rules (as in EDGE-CASES 28-29, Envoy's retry policy and nginx's proxy_next_upstream):
 *   - a try that sent nothing (connect refused or timed out, no connection yet) is always retried;
 *   - a try that sent the request is retried on reset / timeout / a configured status only for an
 *     idempotent method without a body (a streamed body cannot be replayed);
 *   - never once any response byte (even a 1xx) has gone to the client;
 *   - each retry goes to an endpoint not tried yet, within `attempts`, and only while the
 *     upstream's retry budget allows (retries in flight ≤ max(minConcurrent, percent × requests)).
 */
import { Transform, type Readable } from 'node:stream';
import type { RequestContext, AttemptHandle } from '../middleware/context.ts';
import type { RetryConfig, Timeouts, UpstreamConfig } from '../config/types.ts';
import { dispatch, type Exchange, type TryOwner } from '../transport/forward.ts';
import { ERRORS, ProxyError, sendError, type ErrorCode } from '../transport/errors.ts';
import { upstreamRequestHeaders } from '../transport/headers.ts';
import { cookieValue, queryValue } from '../util/request-values.ts';
import type { Endpoint } from './endpoint.ts';
import type { QueueTicket } from './circuit-breaker.ts';
import type { UpstreamState } from './state.ts';
import type { Upstream } from './upstream.ts';

/** What the proxy step needs of a route. */
export interface ProxyTarget {
  readonly upstream: Upstream;
  readonly timeouts: Timeouts;
  readonly maxBodySize: number;
}

/** Answers the client with one of Switchboard's own errors and records it on the context. */
export function fail(ctx: RequestContext, code: ErrorCode, bodyUnread: boolean, message?: string): void {
  ctx.error = code;
  ctx.status = ERRORS[code].status;
  ctx.bytesOut += sendError(ctx.res, code, ctx.requestId, bodyUnread, message);
}

function hasBody(ctx: RequestContext): boolean {
  if (ctx.h2) return !(ctx.req as unknown as { stream: { endAfterHeaders: boolean } }).stream.endAfterHeaders;
  const h = ctx.req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * A chunked request body, counted on its way through: past the route's limit the stream fails with
 * BODY_TOO_LARGE, which undici reports to the try, which answers 413 and closes. The client
 * request is only unpiped, never destroyed, so that the 413 can still be written.
 */
function countedBody(ctx: RequestContext, source: Readable, max: number): Transform {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      ctx.bytesIn += chunk.length;
      if (max > 0 && ctx.bytesIn > max) {
        source.unpipe(counter);
        cb(new ProxyError('BODY_TOO_LARGE'));
      } else cb(null, chunk);
    },
  });
  source.on('error', (err) => counter.destroy(err));
  return source.pipe(counter);
}

/** The key a hashing balancer hashes for this request, or undefined. */
export function hashKeyOf(ctx: RequestContext, config: UpstreamConfig): string | undefined {
  if (config.balancer === 'ip-hash') return ctx.client;
  const key = config.hashKey;
  if (key === undefined) return undefined;
  switch (key.kind) {
    case 'header': {
      const v = ctx.req.headers[key.name];
      return typeof v === 'string' ? v : v?.[0];
    }
    case 'cookie':
      return cookieValue(ctx.req.headers.cookie, key.name);
    case 'query':
      return queryValue(ctx.query, key.name);
    case 'path':
      return ctx.path;
  }
}

function onRequestTimeout(fw: Forwarding): void {
  fw.timer = undefined;
  fw.timedOut = true;
  fw.current?.abort(new ProxyError('UPSTREAM_TIMEOUT', undefined, 'the request took longer than the route allows'));
}

/** One request's way through an upstream: admission, tries, retries. Also the listener's abort handle. */
class Forwarding implements TryOwner, AttemptHandle {
  readonly ctx: RequestContext;
  readonly upstream: Upstream;
  readonly state: UpstreamState;
  readonly retries: RetryConfig;
  readonly target: string;
  readonly headers: string[];
  readonly body: Readable | null;
  readonly timeouts: Timeouts;
  readonly perTryTimeout: number;
  readonly hashKey: string | undefined;
  /** The endpoint id the request's sticky cookie names, when the upstream is sticky. */
  readonly stickyId: string | undefined;
  readonly done: (ctx: RequestContext) => void;
  setCookie: string | undefined = undefined;
  committed = false;
  current: Exchange | undefined = undefined;
  tries = 0;
  tried: Endpoint[] | undefined = undefined;
  onRetry = false;
  timedOut = false;
  finished = false;
  timer: NodeJS.Timeout | undefined = undefined;
  queued: QueueTicket | undefined = undefined;

  constructor(ctx: RequestContext, target: ProxyTarget, headers: string[], body: Readable | null, done: (ctx: RequestContext) => void) {
    const upstream = target.upstream;
    this.ctx = ctx;
    this.upstream = upstream;
    this.state = upstream.state;
    this.retries = upstream.config.retries;
    this.target = ctx.target;
    this.headers = headers;
    this.body = body;
    this.timeouts = target.timeouts;
    this.perTryTimeout = this.retries.perTryTimeout;
    this.hashKey = upstream.hashes ? hashKeyOf(ctx, upstream.config) : undefined;
    this.stickyId = upstream.sticky ? cookieValue(ctx.req.headers.cookie, upstream.sticky.cookie) : undefined;
    this.done = done;
  }

  /** Admitted: count the request in and send the first try. */
  start(): void {
    this.state.breaker.enter();
    const t = this.timeouts.request;
    if (t > 0) this.timer = setTimeout(onRequestTimeout, t, this);
    this.#try();
  }

  #try(): void {
    const upstream = this.upstream;
    let endpoint: Endpoint | undefined;
    if (this.tries === 0 && this.stickyId !== undefined) endpoint = upstream.availableById(this.stickyId);
    endpoint ??= upstream.pick(this.hashKey, this.tried);
    if (endpoint === undefined) {
      // Only a first try can find nothing: a retry is granted only while an untried endpoint exists.
      fail(this.ctx, 'NO_ENDPOINT', this.body !== null);
      return this.end();
    }
    this.ctx.tries = ++this.tries;
    if (upstream.sticky !== undefined) this.setCookie = this.stickyId === endpoint.id ? undefined : upstream.cookieFor(endpoint);
    if (upstream.config.hostHeader === 'endpoint' || this.ctx.host === '') this.headers[1] = endpoint.host;
    this.current = dispatch(this, endpoint);
  }

  record(endpoint: Endpoint, failed: boolean): void {
    this.state.record(endpoint.state, failed);
  }

  retryStatus(ex: Exchange, status: number): boolean {
    const statuses = this.retries.statuses;
    if (statuses.length === 0 || !statuses.includes(status)) return false;
    return this.body === null && IDEMPOTENT.has(this.ctx.req.method!) && this.#mayRetry(ex);
  }

  retryError(ex: Exchange, err: ProxyError): boolean {
    let allowed: boolean;
    if (!ex.sent) {
      // Nothing reached the endpoint. A body can be reused only if undici itself gave the try up
      // (it then never touched the stream); a try we abandoned may still start and consume it.
      allowed = !(ex.abandoned && this.body !== null);
    } else {
      const r = this.retries;
      allowed =
        this.body === null &&
        IDEMPOTENT.has(this.ctx.req.method!) &&
        ((err.code === 'UPSTREAM_RESET' && r.onReset) || (err.code === 'UPSTREAM_TIMEOUT' && r.onTimeout));
    }
    return allowed && this.#mayRetry(ex);
  }

  /** The limits every retry obeys: not committed, attempts, an untried endpoint, the budget. */
  #mayRetry(ex: Exchange): boolean {
    if (this.committed || this.timedOut || this.finished || this.tries >= this.retries.attempts) return false;
    (this.tried ??= []).push(ex.endpoint);
    if (!this.upstream.hasUntried(this.tried)) return false;
    if (!this.onRetry) {
      const state = this.state;
      if (!state.retryBudget.tryAcquire(state.breaker.active)) return false;
      this.onRetry = true;
    }
    return true;
  }

  next(): void {
    this.current = undefined;
    if (this.finished) return;
    // Off the stack of undici's callback for the failed try.
    process.nextTick(nextTry, this);
  }

  retryNow(): void {
    if (this.finished) return;
    if (this.timedOut) {
      fail(this.ctx, 'UPSTREAM_TIMEOUT', this.body !== null && !this.ctx.req.complete, 'the request took longer than the route allows');
      return this.end();
    }
    this.#try();
  }

  /** The listener's abort: the client left, or the request is being cut. */
  abort(reason: Error): void {
    if (this.finished) return;
    if (this.queued !== undefined) {
      this.leaveQueue();
      this.done(this.ctx);
      return;
    }
    if (this.current !== undefined) this.current.abort(reason);
    else this.end();
  }

  /** Gives up a circuit-breaker queue place without being started (client gone, queue timeout). */
  leaveQueue(): void {
    const queued = this.queued!;
    this.queued = undefined;
    this.state.breaker.cancel(queued);
    this.finished = true;
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.current = undefined;
    if (this.timer) clearTimeout(this.timer);
    const state = this.state;
    if (this.onRetry) state.retryBudget.release();
    state.breaker.leave();
    this.done(this.ctx);
  }
}

function nextTry(fw: Forwarding): void {
  fw.retryNow();
}

/** Waits for a circuit-breaker slot, or gives up after `queueTimeout` with 503. */
function enqueue(fw: Forwarding): void {
  const ctx = fw.ctx;
  fw.queued = fw.state.breaker.enqueue(
    () => {
      fw.queued = undefined;
      if (ctx.expectContinue) ctx.res.writeContinue();
      fw.start();
    },
    () => {
      fw.leaveQueue();
      fail(ctx, 'UPSTREAM_OVERLOADED', fw.body !== null, 'no request slot of the upstream freed up within its queueTimeout');
      fw.done(ctx);
    },
  );
  ctx.attempt = fw;
}

/**
 * The upstream request headers for `ctx` (transport/headers.ts with the listener's policies), or
 * undefined when a header name breaks the underscore policy `reject`.
 */
export function forwardHeaders(ctx: RequestContext): string[] | undefined {
  const req = ctx.req;
  return upstreamRequestHeaders(
    req.rawHeaders,
    req.headers,
    {
      peer: ctx.peer,
      trusted: ctx.trustedPeer,
      host: ctx.host,
      proto: ctx.policy.proto,
      h2: ctx.h2,
      certHeaders: ctx.policy.clientCertHeaders,
      cert: ctx.clientCert,
    },
    ctx.requestId,
    ctx.host,
    ctx.policy.underscores,
  );
}

/**
 * Forwards the request in `ctx` to an endpoint of `target.upstream`. Calls `done` once the
 * exchange is over (answered, failed or aborted).
 */
export function proxy(ctx: RequestContext, target: ProxyTarget, done: (ctx: RequestContext) => void): void {
  const req = ctx.req;
  const body = hasBody(ctx);
  const upstream = target.upstream;
  const headers = forwardHeaders(ctx);
  if (headers === undefined) {
    fail(ctx, 'INVALID_HEADER_NAME', body);
    return done(ctx);
  }
  ctx.upstream = upstream.name;
  if (upstream.available.length === 0) {
    fail(ctx, 'NO_ENDPOINT', body);
    return done(ctx);
  }
  const admission = upstream.state.breaker.admit();
  if (admission === 'full') {
    fail(ctx, 'UPSTREAM_OVERLOADED', body);
    return done(ctx);
  }
  let bodyStream: Readable | null = null;
  if (body) {
    // HTTP/2: the body comes from the stream (listeners/h2-exchange.ts H2Request.body()).
    const source: Readable = ctx.h2 ? (req as unknown as { body(): Readable }).body() : req;
    const cl = req.headers['content-length'];
    if (cl !== undefined) {
      ctx.bytesIn = Number(cl);
      bodyStream = source;
    } else bodyStream = countedBody(ctx, source, target.maxBodySize);
  }
  const fw = new Forwarding(ctx, target, headers, bodyStream, done);
  if (admission === 'queue') return enqueue(fw);
  if (ctx.expectContinue) ctx.res.writeContinue();
  ctx.attempt = fw;
  fw.start();
}
