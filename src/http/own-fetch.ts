/**
 * Requests Switchboard makes by itself, outside any client request: a cache's background
 * revalidation (stale-while-revalidate). `PolicyDeps.fetch` (built per generation in
 * generation.ts) lands here. The request goes the way a client's would, through the route's
 * upstream: the circuit breaker (queued like any request when it must wait), the selection loop
 * (balancer, retries within the retry budget), the route's timeouts and the per-try timeout, the
 * request header hygiene. Differences: no session, no filters in either direction, no
 * X-Forwarded-* headers (no client), the route's rewrite applied to the target, and the response
 * body read whole, at most `maxBodySize` bytes (a larger one gives undefined).
 *
 * Any failure (no endpoint, breaker full, a try that cannot be retried, a timeout, a body too
 * large) resolves undefined: the caller keeps what it had. Never rejects.
 *
 *   fetchThrough ─► admit / enqueue ─► each try: Selection.next() ─► startTry ─► head, data, end
 *
 * State: one `OwnFetch` per request, per worker; it counts in its generation's requests in flight
 * so that a retiring generation keeps its pools until the request is over.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RewriteConfig, Timeouts } from '../config/types.ts';
import { ProxyError } from '../errors.ts';
import { rewritePath } from '../routing/path.ts';
import { startTry, type ResponseSink, type TryOwner, type UpstreamTry } from '../transport/forward.ts';
import { downstreamResponseHeaders, ownRequestHeaders } from '../transport/headers.ts';
import type { QueueTicket } from '../upstream/circuit-breaker.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import { Selection, type TryFailure } from '../upstream/selection.ts';
import type { Upstream } from '../upstream/upstream.ts';
import { queryValue } from '../util/request-values.ts';
import type { OwnRequest, OwnResponse } from '../policies/filter.ts';
import { nextRequestId } from './session.ts';

/** What a request of our own needs of its route (built once per generation and route). */
export interface FetchRoute {
  readonly upstream: Upstream;
  readonly timeouts: Timeouts;
  readonly rewrite: RewriteConfig | undefined;
}

/** Who counts requests in flight (the generation). */
export interface InFlight {
  enter(): void;
  leave(): void;
}

/** Sends `req` through `route`'s upstream; see the module comment. */
export function fetchThrough(route: FetchRoute, req: OwnRequest, maxBodySize: number, tracker: InFlight): Promise<OwnResponse | undefined> {
  const upstream = route.upstream;
  if (upstream.available.length === 0) return Promise.resolve(undefined);
  const admission = upstream.state.breaker.admit();
  if (admission === 'full') return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const f = new OwnFetch(route, req, maxBodySize, tracker, resolve);
    if (admission === 'now') f.start();
    else f.enqueue();
  });
}

/** The key a hashing balancer hashes, as far as a request without a client has one. */
function hashKey(upstream: Upstream, path: string, query: string, req: OwnRequest): string | undefined {
  const key = upstream.config.hashKey;
  if (!upstream.hashes || key === undefined) return undefined;
  switch (key.kind) {
    case 'header':
      return req.headers[key.name];
    case 'query':
      return queryValue(query, key.name);
    case 'path':
      return path;
    default:
      return undefined;
  }
}

class OwnFetch implements TryOwner {
  readonly route: FetchRoute;
  readonly req: OwnRequest;
  readonly maxBodySize: number;
  readonly tracker: InFlight;
  readonly resolve: (r: OwnResponse | undefined) => void;
  readonly selection: Selection;
  readonly path: string;
  readonly id = nextRequestId();
  readonly sendTimeout = 0;
  readonly sink: ResponseSink = new BodySink(this);
  endpoint: Endpoint | undefined = undefined;
  current: UpstreamTry | undefined = undefined;
  status = 0;
  headers: Record<string, string | string[]> = {};
  chunks: Buffer[] = [];
  size = 0;
  tooLarge = false;
  retrying = false;
  timedOut = false;
  entered = false;
  done = false;
  timer: NodeJS.Timeout | undefined = undefined;
  ticket: QueueTicket | undefined = undefined;

  constructor(route: FetchRoute, req: OwnRequest, maxBodySize: number, tracker: InFlight, resolve: (r: OwnResponse | undefined) => void) {
    this.route = route;
    this.req = req;
    this.maxBodySize = maxBodySize;
    this.tracker = tracker;
    this.resolve = resolve;
    const q = req.target.indexOf('?');
    const path = q < 0 ? req.target : req.target.slice(0, q);
    const query = q < 0 ? '' : req.target.slice(q);
    this.path = rewritePath(path, route.rewrite) + query;
    this.selection = new Selection(route.upstream, hashKey(route.upstream, path, query, req), undefined, req.method);
    tracker.enter();
  }

  enqueue(): void {
    this.ticket = this.route.upstream.state.breaker.enqueue(
      () => {
        this.ticket = undefined;
        this.start();
      },
      () => {
        this.ticket = undefined;
        this.finish(undefined);
      },
    );
  }

  start(): void {
    this.route.upstream.state.breaker.enter();
    this.entered = true;
    const t = this.route.timeouts.request;
    if (t > 0) this.timer = setTimeout(onTimeout, t, this);
    this.next();
  }

  next(): void {
    if (this.done) return;
    if (this.timedOut) return this.finish(undefined);
    const upstream = this.route.upstream;
    const endpoint = this.selection.next();
    if (endpoint === undefined) return this.finish(undefined);
    this.endpoint = endpoint;
    this.status = 0;
    this.chunks = [];
    this.size = 0;
    const host = upstream.config.hostHeader === 'endpoint' || this.req.authority === '' ? endpoint.host : this.req.authority;
    const t = this.route.timeouts;
    endpoint.state.begin();
    this.current = startTry(
      this,
      endpoint.dispatcherFor(t.connect),
      {
        method: this.req.method,
        path: this.path,
        headers: ownRequestHeaders(this.req.headers, this.id, host),
        body: null,
        headersTimeout: t.responseHeaders,
        bodyTimeout: t.bodyIdle,
      },
      upstream.config.retries.perTryTimeout,
    );
  }

  informational(): void {}

  head(t: UpstreamTry, status: number, headers: IncomingHttpHeaders): boolean {
    const endpoint = this.endpoint!;
    const now = performance.now();
    endpoint.state.latency.observe(now - t.startedAt, now);
    this.route.upstream.state.record(endpoint.state, status >= 500);
    if (this.selection.retriesStatus(status) && this.#mayRetry(t, 'status', status)) {
      this.retrying = true;
      return false;
    }
    const cl = headers['content-length'];
    if (cl !== undefined && Number(cl) > this.maxBodySize) {
      this.tooLarge = true;
      return false;
    }
    this.status = status;
    const flat = downstreamResponseHeaders(headers as Record<string, string | string[] | undefined>, this.id);
    const out: Record<string, string | string[]> = {};
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i];
      const before = out[name];
      if (before === undefined) out[name] = flat[i + 1];
      else if (Array.isArray(before)) before.push(flat[i + 1]);
      else out[name] = [before, flat[i + 1]];
    }
    this.headers = out;
    return true;
  }

  data(chunk: Buffer): boolean {
    if (this.tooLarge) return true;
    this.size += chunk.length;
    if (this.size > this.maxBodySize) {
      this.tooLarge = true;
      this.current?.stop();
      return true;
    }
    this.chunks.push(chunk);
    return true;
  }

  ended(): void {
    this.endpoint!.state.end();
    this.current = undefined;
    const body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
    this.finish({ status: this.status, headers: this.headers, body });
  }

  failed(t: UpstreamTry, err: ProxyError): void {
    this.endpoint!.state.end();
    this.current = undefined;
    if (err.kind.side === 'upstream') {
      this.route.upstream.state.record(this.endpoint!.state, true);
      if (this.status === 0 && this.#mayRetry(t, failureOf(t, err))) return void process.nextTick(nextTry, this);
    }
    this.finish(undefined);
  }

  dropped(): void {
    this.endpoint!.state.end();
    this.current = undefined;
    if (!this.retrying) return this.finish(undefined);
    this.retrying = false;
    process.nextTick(nextTry, this);
  }

  #mayRetry(t: UpstreamTry, failure: TryFailure, status?: number): boolean {
    if (this.timedOut || this.done) return false;
    return this.selection.retry(this.endpoint!, failure, { sent: t.sent, committed: false, body: false, replayable: true, status });
  }

  finish(r: OwnResponse | undefined): void {
    if (this.done) return;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.selection.finish();
    if (this.entered) this.route.upstream.state.breaker.leave();
    this.tracker.leave();
    this.resolve(this.tooLarge ? undefined : r);
  }
}

/** Where the transport hands the body: to the request's buffer (never full, so never waits). */
class BodySink implements ResponseSink {
  readonly headersSent = true;
  readonly destroyed = false;
  readonly #f: OwnFetch;
  constructor(f: OwnFetch) {
    this.#f = f;
  }
  head(): boolean {
    return true;
  }
  data(chunk: Buffer): boolean {
    return this.#f.data(chunk);
  }
  onDrain(): void {}
  end(): void {}
  abort(): void {}
}

function nextTry(f: OwnFetch): void {
  f.next();
}

function onTimeout(f: OwnFetch): void {
  f.timer = undefined;
  f.timedOut = true;
  if (f.current !== undefined) f.current.abort(new ProxyError('UPSTREAM_TIMEOUT', undefined, 'the request took longer than the route allows'));
  else f.finish(undefined);
}

function failureOf(t: UpstreamTry, err: ProxyError): TryFailure {
  if (!t.sent) return 'connect';
  return err.code === 'UPSTREAM_RESET' ? 'reset' : err.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : 'other';
}
