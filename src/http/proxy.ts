/**
 * The proxy step, last phase of an HTTP request: admit it past the upstream's circuit breaker,
 * build the upstream request head, and send tries (transport/forward.ts) to the endpoints the
 * selection loop (upstream/selection.ts) chooses, until one answers or retrying is no longer safe
 * or allowed. The response goes to the request's sink: the downstream itself, or the response
 * filters before it (respond.ts).
 *
 *   breaker full ─► queue (≤ maxQueued, ≤ queueTimeout) ─► 503 UPSTREAM_OVERLOADED
 *   each try: Selection.next() ─► onUpstreamRequest hooks ─► startTry ─► head ─► sink
 *   a try fails before anything reached the client ─► Selection.retry()? ─► next try : error answer
 *
 * One `Forwarding` per request: it is the owner of each try and the session's abort handle.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Timeouts, UpstreamConfig } from '../config/types.ts';
import { ProxyError } from '../errors.ts';
import type { UpstreamRequestHead } from '../policies/filter.ts';
import type { RequestTrace } from '../observability/tracing.ts';
import { startTry, type ResponseSink, type TryOwner, type UpstreamTry } from '../transport/forward.ts';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../transport/headers.ts';
import type { QueueTicket } from '../upstream/circuit-breaker.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import { replaysBodies, Selection, type TryFailure } from '../upstream/selection.ts';
import type { Upstream } from '../upstream/upstream.ts';
import { cookieValue, queryValue } from '../util/request-values.ts';
import { errorReply } from './error-response.ts';
import { HeaderList } from './header-list.ts';
import type { ListenerRoute } from './listener-generation.ts';
import type { RequestBody } from './request-body.ts';
import { FilteredResponse, fail, policyFailed, respond } from './respond.ts';
import type { AttemptHandle, RequestSession } from './session.ts';

/** The key a hashing balancer hashes for this request, or undefined. */
export function hashKeyOf(s: RequestSession, config: UpstreamConfig): string | undefined {
  if (config.balancer === 'ip-hash') return s.clientIp;
  const key = config.hashKey;
  if (key === undefined) return undefined;
  switch (key.kind) {
    case 'header': {
      const v = s.down.headers[key.name];
      return typeof v === 'string' ? v : v?.[0];
    }
    case 'cookie':
      return cookieValue(s.down.headers.cookie, key.name);
    case 'query':
      return queryValue(s.query, key.name);
    case 'path':
      return s.path;
  }
}

/**
 * The upstream request headers for `s` (transport/headers.ts with the listener's settings), or
 * undefined when a header name breaks the underscore policy `reject`. `identify` false: no
 * X-Forwarded-*, Forwarded or X-Request-Id (a forward proxy's anonymous and elite levels).
 */
export function forwardHeaders(s: RequestSession, identify = true): string[] | undefined {
  const down = s.down;
  const settings = s.settings;
  return upstreamRequestHeaders(
    down.fields,
    down.headers,
    {
      peer: s.peer,
      trusted: s.trustedPeer,
      host: s.host,
      proto: settings.scheme,
      trailers: down.trailersAccepted,
      certHeaders: settings.clientCertHeaders,
      cert: settings.clientCertHeaders === undefined ? undefined : down.clientCertificate,
      identify,
    },
    s.requestId,
    s.host,
    settings.underscores,
  );
}

/**
 * Tracing on: takes the client's `traceparent`/`tracestate` out of `headers` (a trusted peer's were
 * read into the request's trace; an untrusted one is never passed on), adds ours (the value set
 * per try by `traceTry`) and the trace's `tracestate`. Returns the index of the traceparent value.
 */
export function placeTraceHeaders(headers: string[], trace: RequestTrace): number {
  for (let i = headers.length - 2; i >= 2; i -= 2) {
    const name = headers[i];
    if ((name.length === 11 || name.length === 10) && (name.toLowerCase() === 'traceparent' || name.toLowerCase() === 'tracestate')) headers.splice(i, 2);
  }
  if (trace.tracestate !== undefined) headers.push('tracestate', trace.tracestate);
  headers.push('traceparent', '');
  return headers.length - 1;
}

/** The selection loop for one request to `upstream`: its hash key and the endpoint its sticky cookie names. */
export function selectionFor(s: RequestSession, upstream: Upstream): Selection {
  const sticky = upstream.sticky === undefined ? undefined : cookieValue(s.down.headers.cookie, upstream.sticky.cookie);
  return new Selection(upstream, upstream.hashes ? hashKeyOf(s, upstream.config) : undefined, sticky, s.down.method);
}

/**
 * The chain's onUpstreamRequest hooks for one try, on a copy of `headers` (a retry starts from
 * the originals again). Undefined when a hook threw: the request has been answered POLICY_ERROR.
 */
export function upstreamRequestHooks(
  s: RequestSession,
  headers: string[],
  target: string,
  origin: string,
  attempt: number,
): { headers: HeaderList; target: string } | undefined {
  const head: UpstreamRequestHead & { headers: HeaderList } = {
    method: s.down.method,
    target,
    headers: new HeaderList(headers.slice()),
    endpoint: origin,
    attempt,
  };
  for (const placed of s.chain.upstreamRequest) {
    try {
      placed.filter.onUpstreamRequest!(s, head);
    } catch (err) {
      policyFailed(s, placed, err);
      return undefined;
    }
  }
  return head;
}

function onRequestTimeout(fw: Forwarding): void {
  fw.timer = undefined;
  fw.timedOut = true;
  fw.current?.abort(new ProxyError('UPSTREAM_TIMEOUT', undefined, 'the request took longer than the route allows'));
}

function nextTry(fw: Forwarding): void {
  fw.retryNow();
}

function failureOf(t: UpstreamTry, err: ProxyError): TryFailure {
  if (!t.sent) return 'connect';
  return err.code === 'UPSTREAM_RESET' ? 'reset' : err.code === 'UPSTREAM_TIMEOUT' ? 'timeout' : 'other';
}

/** One request's way through an upstream: admission, tries, retries. */
class Forwarding implements TryOwner, AttemptHandle {
  readonly s: RequestSession;
  readonly upstream: Upstream;
  readonly selection: Selection;
  readonly headers: string[];
  readonly timeouts: Timeouts;
  readonly perTryTimeout: number;
  readonly sendTimeout: number;
  readonly sink: ResponseSink;
  /** The body when it is passed through untouched (no replay, no count): the client's stream. */
  readonly direct: Readable | null;
  /** The body when it must be read by us (replay for retries, counted, prefix-read by a filter). */
  readonly reader: RequestBody | undefined;
  /** The endpoint of the try in flight. */
  endpoint: Endpoint | undefined = undefined;
  setCookie: string | undefined = undefined;
  committed = false;
  current: UpstreamTry | undefined = undefined;
  /** The current try's response is being dropped for a retry. */
  retrying = false;
  timedOut = false;
  finished = false;
  timer: NodeJS.Timeout | undefined = undefined;
  ticket: QueueTicket | undefined = undefined;
  /** Tracing on: where the traceparent value is in `headers` (set per try); -1 when off. */
  readonly traceAt: number;
  /** The status the endpoint answered on the try in flight, for its client span (0: none yet). */
  tryStatus = 0;

  constructor(s: RequestSession, route: ListenerRoute, upstream: Upstream, headers: string[]) {
    this.s = s;
    this.upstream = upstream;
    this.headers = headers;
    this.traceAt = s.trace === undefined ? -1 : placeTraceHeaders(headers, s.trace);
    this.timeouts = route.timeouts;
    const r = upstream.config.retries;
    this.perTryTimeout = r.perTryTimeout;
    this.sendTimeout = s.settings.sendTimeout;
    this.selection = selectionFor(s, upstream);
    this.sink = s.chain.filtersResponse ? new FilteredResponse(s) : s.down;
    const down = s.down;
    let direct: Readable | null = null;
    let reader = s.body;
    if (down.hasBody) {
      const cl = down.headers['content-length'];
      if (cl !== undefined) s.bytesIn = Number(cl);
      if (reader === undefined) {
        const replay = replaysBodies(upstream, down.method);
        // Read by us only when needed: to keep it for a replay, or to count a body without length.
        if (cl === undefined || replay) reader = s.readBody(replay ? r.bodyBuffer : 0, route.maxBodySize);
        else direct = down.body();
      }
    }
    this.direct = direct;
    this.reader = reader;
  }

  /** Admitted: count the request in and send the first try. */
  start(): void {
    this.upstream.state.breaker.enter();
    const t = this.timeouts.request;
    if (t > 0) this.timer = setTimeout(onRequestTimeout, t, this);
    if (this.direct !== null) this.s.sendContinue();
    this.#try();
  }

  /** Waits for a circuit-breaker slot, or gives up after `queueTimeout` with 503. */
  enqueue(): void {
    this.ticket = this.upstream.state.breaker.enqueue(
      () => {
        this.ticket = undefined;
        this.start();
      },
      () => {
        this.ticket = undefined;
        this.finished = true;
        this.selection.finish();
        fail(this.s, 'UPSTREAM_OVERLOADED', 'no request slot of the upstream freed up within its queueTimeout');
      },
    );
  }

  #try(): void {
    const s = this.s;
    const upstream = this.upstream;
    const endpoint = this.selection.next();
    if (endpoint === undefined) {
      // Only a first try can find nothing: a retry is granted only while an untried endpoint exists.
      fail(s, 'NO_ENDPOINT');
      return this.end();
    }
    s.tries = this.selection.tries;
    s.endpoint = endpoint;
    this.endpoint = endpoint;
    if (upstream.sticky !== undefined) this.setCookie = this.selection.movedFromSticky(endpoint) ? upstream.cookieFor(endpoint) : undefined;
    let headers = this.headers;
    if (upstream.config.hostHeader === 'endpoint' || s.host === '') headers[1] = endpoint.host;
    let path = s.target;
    if (this.traceAt >= 0) {
      this.tryStatus = 0;
      headers[this.traceAt] = s.trace!.startTry(endpoint.origin, this.selection.tries);
    }
    if (s.chain.upstreamRequest.length > 0) {
      const head = upstreamRequestHooks(s, headers, path, endpoint.origin, this.selection.tries);
      if (head === undefined) return this.end();
      headers = head.headers.raw;
      path = head.target;
    }
    endpoint.state.begin();
    const t = this.timeouts;
    this.current = startTry(
      this,
      endpoint.dispatcherFor(t.connect),
      {
        method: s.down.method,
        path,
        headers,
        body: this.reader !== undefined ? this.reader.stream() : this.direct,
        headersTimeout: t.responseHeaders,
        bodyTimeout: t.bodyIdle,
      },
      this.perTryTimeout,
    );
  }

  informational(_t: UpstreamTry, status: number, headers: IncomingHttpHeaders): void {
    if (status === 103 && headers.link === undefined) return;
    if (status !== 102 && status !== 103) return;
    if (this.s.down.informational(status, headers as Record<string, string | string[]>)) this.committed = true;
  }

  head(t: UpstreamTry, status: number, headers: IncomingHttpHeaders, reason: string | undefined): boolean {
    const s = this.s;
    const endpoint = this.endpoint!;
    const now = performance.now();
    s.upstreamLatency = now - t.startedAt;
    this.tryStatus = status;
    endpoint.state.latency.observe(s.upstreamLatency, now);
    this.upstream.state.record(endpoint.state, status >= 500);
    if (this.selection.retriesStatus(status) && this.#mayRetry(t, 'status', status)) {
      this.retrying = true;
      return false;
    }
    const out = downstreamResponseHeaders(headers as Record<string, string | string[] | undefined>, s.requestId);
    if (this.setCookie !== undefined) out.push('set-cookie', this.setCookie);
    return this.sink.head(status, reason, out, t);
  }

  ended(_t: UpstreamTry, trailers: IncomingHttpHeaders): void {
    this.endpoint!.state.end();
    if (this.traceAt >= 0) this.s.trace!.endTry(this.tryStatus, undefined);
    this.sink.end(trailers as Record<string, string | string[]>);
    this.end();
  }

  failed(t: UpstreamTry, err: ProxyError): void {
    this.endpoint!.state.end();
    if (this.traceAt >= 0) this.s.trace!.endTry(this.tryStatus, err.code);
    const s = this.s;
    const down = s.down;
    // A failure the client caused (left, stopped reading, sent too much) says nothing about the endpoint.
    const clientSide = err.kind.side !== 'upstream' || down.destroyed || down.bodyFailed;
    if (!clientSide) {
      this.upstream.state.record(this.endpoint!.state, true);
      if (!this.sink.headersSent && this.#mayRetry(t, failureOf(t, err))) return this.next();
    }
    if (s.error === undefined) s.error = err.code;
    if (this.sink.headersSent) this.sink.abort(err);
    else respond(s, errorReply(err.code, err.message), Infinity, err.kind.close);
    this.end();
  }

  dropped(_t: UpstreamTry): void {
    this.endpoint!.state.end();
    if (this.traceAt >= 0) this.s.trace!.endTry(this.tryStatus, undefined);
    if (!this.retrying) return this.end();
    this.retrying = false;
    this.next();
  }

  /** Whether the failed try `t` may be retried: the request's own limits, then the selection loop's rules. */
  #mayRetry(t: UpstreamTry, failure: TryFailure, status?: number): boolean {
    if (this.committed || this.timedOut || this.finished) return false;
    const reader = this.reader;
    return this.selection.retry(this.endpoint!, failure, {
      sent: t.sent,
      committed: false,
      body: reader !== undefined || this.direct !== null,
      replayable: reader !== undefined ? reader.replayable : !t.sent && !t.abandoned,
      status,
    });
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
      fail(this.s, 'UPSTREAM_TIMEOUT', 'the request took longer than the route allows');
      return this.end();
    }
    this.#try();
  }

  /** The session's abort: the client left, or the request is being cut. */
  abort(reason: Error): void {
    if (this.finished) return;
    if (this.ticket !== undefined) {
      this.upstream.state.breaker.cancel(this.ticket);
      this.ticket = undefined;
      this.finished = true;
      this.selection.finish();
      return;
    }
    if (this.current !== undefined) this.current.abort(reason);
    else this.end();
  }

  end(): void {
    if (this.finished) return;
    this.finished = true;
    this.current = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.selection.finish();
    this.upstream.state.breaker.leave();
  }
}

/** Forwards the routed request in `s` to an endpoint of `route.upstream`. */
export function proxy(s: RequestSession, route: ListenerRoute): void {
  const upstream = route.upstream!;
  const headers = forwardHeaders(s);
  if (headers === undefined) return fail(s, 'INVALID_HEADER_NAME');
  s.upstream = upstream.name;
  if (upstream.available.length === 0) return fail(s, 'NO_ENDPOINT');
  const admission = upstream.state.breaker.admit();
  if (admission === 'full') return fail(s, 'UPSTREAM_OVERLOADED');
  const fw = new Forwarding(s, route, upstream, headers);
  s.attempt = fw;
  if (admission === 'queue') fw.enqueue();
  else fw.start();
}
