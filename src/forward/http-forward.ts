/**
 * The forward step of a forward-proxy listener (pipeline.ts calls it as every listener's last
 * step), and the exchange for absolute-form requests (`GET http://host:port/path`):
 *
 *   target form  authority (CONNECT)  ─► connect.ts
 *                origin (a path)      ─► the proxy's own resources (PROXY-OWN below), else 400
 *                absolute https://    ─► 400: https goes through CONNECT
 *                absolute http://     ─► destination.ts (loops, the guard) ─► a try to a checked address
 *
 * The try is the reverse proxy's (transport/forward.ts `startTry`: backpressure, timeouts,
 * the response through the response phases of respond.ts, so the listener's cache and header
 * policies apply), sent through the route's H1Agent to the origin `http://<checked ip>:<port>`, Host
 * being the name the client gave: the destination is never looked up a second time. A try that
 * could not connect goes to the permit's next address (nothing was sent); once the request went
 * out nothing is retried. No circuit breaker, balancer or outlier detection: a destination is not
 * an upstream of ours.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { ProxyError } from '../errors.ts';
import { errorReply } from '../http/error-response.ts';
import type { ListenerRoute } from '../http/listener-generation.ts';
import { upstreamRequestHooks } from '../http/proxy.ts';
import type { RequestBody } from '../http/request-body.ts';
import { FilteredResponse, fail, respond } from '../http/respond.ts';
import type { AttemptHandle, RequestSession } from '../http/session.ts';
import { startTry, type ResponseSink, type TryOwner, type UpstreamTry } from '../transport/forward.ts';
import { downstreamResponseHeaders } from '../transport/headers.ts';
import { forwardConnect } from './connect-method.ts';
import type { Permit } from './destination-guard.ts';
import { admitDestination } from './destination.ts';
import { addsVia, destinationHeaders, viaValue } from './forward-headers.ts';
import type { ForwardRoute } from './forward-route.ts';
import { servePac } from './pac.ts';

/** One absolute-form request's way to its destination: tries to the permit's addresses in order. */
class ForwardExchange implements TryOwner, AttemptHandle {
  readonly s: RequestSession;
  readonly route: ForwardRoute;
  readonly permit: Permit;
  readonly headers: string[];
  readonly sink: ResponseSink;
  readonly sendTimeout: number;
  readonly direct: Readable | null;
  readonly reader: RequestBody | undefined;
  /** The response's Via, or undefined when none is added. */
  readonly via: string | undefined;
  /** Index in `permit.addresses` of the try in flight. */
  at = 0;
  current: UpstreamTry | undefined = undefined;
  finished = false;

  constructor(s: RequestSession, route: ForwardRoute, permit: Permit, headers: string[]) {
    this.s = s;
    this.route = route;
    this.permit = permit;
    this.headers = headers;
    this.sendTimeout = s.settings.sendTimeout;
    this.sink = s.chain.filtersResponse ? new FilteredResponse(s) : s.down;
    this.via = addsVia(route.forward) ? viaValue(s.down.version, route.forward.via!) : undefined;
    const down = s.down;
    let direct: Readable | null = null;
    let reader = s.body;
    if (down.hasBody) {
      const cl = down.headers['content-length'];
      if (cl !== undefined) s.bytesIn = Number(cl);
      // Read by us only to count a body without length (as proxy.ts); nothing is kept for a replay.
      if (reader === undefined) {
        if (cl === undefined) reader = s.readBody(0, 0);
        else direct = down.body();
      }
    }
    this.direct = direct;
    this.reader = reader;
  }

  start(): void {
    if (this.direct !== null) this.s.sendContinue();
    this.#try();
  }

  #try(): void {
    const s = this.s;
    const address = this.permit.addresses[this.at];
    const origin = `http://${address.includes(':') ? `[${address}]` : address}:${this.permit.port}`;
    s.proxied!.address = address;
    s.tries = this.at + 1;
    let headers = this.headers;
    let path = s.target;
    if (s.chain.upstreamRequest.length > 0) {
      const head = upstreamRequestHooks(s, headers, path, origin, s.tries);
      if (head === undefined) return this.finish();
      headers = head.headers.raw;
      path = head.target;
    }
    const t = this.route.timeouts;
    this.current = startTry(
      this,
      this.route.agentFor(this.permit.host),
      {
        origin,
        method: s.down.method,
        path,
        headers,
        body: this.reader !== undefined ? this.reader.stream() : this.direct,
        headersTimeout: t.responseHeaders,
        bodyTimeout: t.bodyIdle,
      },
      0,
    );
  }

  informational(_t: UpstreamTry, status: number, headers: IncomingHttpHeaders): void {
    if (status === 103 && headers.link === undefined) return;
    if (status !== 102 && status !== 103) return;
    this.s.down.informational(status, headers as Record<string, string | string[]>);
  }

  head(t: UpstreamTry, status: number, headers: IncomingHttpHeaders, reason: string | undefined): boolean {
    const s = this.s;
    s.upstreamLatency = performance.now() - t.startedAt;
    const out = downstreamResponseHeaders(headers as Record<string, string | string[] | undefined>, s.requestId);
    if (this.via !== undefined) out.push('via', this.via);
    return this.sink.head(status, reason, out, t);
  }

  ended(_t: UpstreamTry, trailers: IncomingHttpHeaders): void {
    this.sink.end(trailers as Record<string, string | string[]>);
    this.finish();
  }

  failed(t: UpstreamTry, err: ProxyError): void {
    const s = this.s;
    // Nothing reached the destination and there is another checked address: try it (the body is untouched).
    if (!t.sent && !t.abandoned && !s.down.destroyed && this.at + 1 < this.permit.addresses.length && err.kind.side === 'upstream') {
      this.at++;
      this.current = undefined;
      process.nextTick(retry, this);
      return;
    }
    if (s.error === undefined) s.error = err.code;
    if (this.sink.headersSent) this.sink.abort(err);
    else respond(s, errorReply(err.code, err.message), Infinity, err.kind.close);
    this.finish();
  }

  dropped(_t: UpstreamTry): void {
    this.finish();
  }

  abort(reason: Error): void {
    if (this.finished) return;
    if (this.current !== undefined) this.current.abort(reason);
    else this.finish();
  }

  finish(): void {
    this.finished = true;
    this.current = undefined;
  }

  retryNow(): void {
    if (this.finished) return;
    this.#try();
  }
}

function retry(x: ForwardExchange): void {
  x.retryNow();
}

/**
 * A request for the proxy itself (origin-form target): the PAC file (`GET /proxy.pac`,
 * `/wpad.dat`, forward/pac.ts), or 400. It arrives here without the listener's policies
 * (pipeline.ts): browsers fetch a PAC file without proxy credentials.
 */
function ownResource(s: RequestSession, route: ForwardRoute): void {
  const host = s.down.headers.host;
  const pac = servePac(route.forward, s.down.method, s.path, typeof host === 'string' ? host : undefined, route.pacFallback());
  if (pac !== undefined) return respond(s, pac, Infinity);
  fail(s, 'INVALID_TARGET', 'a forward proxy takes absolute-form targets (http://host/path) and CONNECT host:port');
}

/** An absolute-form http:// request: destination check, then the exchange. Rejects only on a bug. */
function forwardHttp(s: RequestSession, route: ForwardRoute): void | Promise<void> {
  const permit = admitDestination(s, route, 'http', 'http', 80);
  if (permit instanceof Promise) return permit.then((p) => exchange(s, route, p));
  exchange(s, route, permit);
}

/** The exchange to `permit`'s addresses (nothing when the request was answered already). */
function exchange(s: RequestSession, route: ForwardRoute, permit: Permit | undefined): void {
  if (permit === undefined) return;
  const headers = destinationHeaders(s, route.forward);
  if (headers === undefined) return fail(s, 'INVALID_HEADER_NAME');
  const x = new ForwardExchange(s, route, permit, headers);
  s.attempt = x;
  x.start();
}

/** The forward step of a forward listener: every request's last phase (see the file comment). */
export function forwardStep(s: RequestSession, r: ListenerRoute): void | Promise<void> {
  const route = r as ForwardRoute;
  switch (s.targetForm) {
    case 'authority':
      return forwardConnect(s, route);
    case 'absolute':
      return forwardHttp(s, route);
    case 'absolute-https':
      return fail(s, 'INVALID_TARGET', 'https:// destinations are reached through CONNECT, not as absolute-form requests');
    default:
      return ownResource(s, route);
  }
}
