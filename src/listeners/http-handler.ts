/**
 * The HTTP request pipeline of a listener, once per request:
 * strict checks → context → route → middleware chain → proxy step → access log.
 * Everything it reads comes from one ListenerRuntime snapshot, so a request that started on the
 * old config finishes on it even if a reload swaps the runtime meanwhile.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ListenerPolicy, RequestContext } from '../middleware/context.ts';
import type { MatchInput } from '../routing/matchers.ts';
import { normalizePath, rewritePath } from '../routing/path.ts';
import type { RuntimeRoute } from '../routing/route.ts';
import type { Router } from '../routing/router.ts';
import { fail } from '../upstream/proxy.ts';
import { ProxyError, type ErrorCode } from '../transport/errors.ts';
import { clientAddress } from '../transport/headers.ts';
import type { AddressSet } from '../util/cidr.ts';
import { requestEnd } from '../observability/events.ts';
import { checkFraming, checkH2, parseTarget } from './strict.ts';
import { clientCertOf } from './client-cert.ts';
import { clientAddressOf } from './proxy-header.ts';
import { maxHeaderListSize, streamGone } from './h2-sessions.ts';
import type { Http2Stream } from 'node:http2';

/** Counts the requests a config generation still has in flight. */
export interface GenerationTracker {
  enter(): void;
  leave(): void;
}

/** Everything a listener's requests depend on that a reload may change. */
export interface ListenerRuntime {
  readonly name: string;
  readonly router: Router<RuntimeRoute>;
  readonly trusted: AddressSet;
  readonly policy: ListenerPolicy;
  readonly generation: GenerationTracker;
  /** Called once per finished request (the access log). */
  readonly onRequestEnd: (ctx: RequestContext) => void;
  /** Called when handling a request threw: a bug, logged; the request gets a 500. */
  readonly onInternalError: (ctx: RequestContext, err: unknown) => void;
}

const kCtx = Symbol('switchboard.ctx');
const kRuntime = Symbol('switchboard.runtime');

/** The response carries its request's context and runtime, so the 'close' handler is shared. */
type TrackedResponse = ServerResponse & { [kCtx]: RequestContext | undefined; [kRuntime]: ListenerRuntime };

/** The facts routing looks at; the query string is parsed only if a route asks. */
export class Facts implements MatchInput {
  hostname: string;
  port: string;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  #rawQuery: string;
  #query: URLSearchParams | undefined;

  constructor(host: string, method: string, path: string, rawQuery: string, headers: Record<string, string | string[] | undefined>) {
    let hostname = host;
    let port = '';
    const colon = host.lastIndexOf(':');
    if (colon !== -1 && colon > host.lastIndexOf(']')) {
      hostname = host.slice(0, colon);
      port = host.slice(colon + 1);
    }
    hostname = hostname.toLowerCase();
    if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
    this.hostname = hostname;
    this.port = port;
    this.method = method;
    this.path = path;
    this.headers = headers;
    this.#rawQuery = rawQuery;
  }

  query(): URLSearchParams {
    return (this.#query ??= new URLSearchParams(this.#rawQuery));
  }
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Request ids: 128 random bits drawn once per 4096 ids, the low bits counting up, formatted as a
 * UUID. Unique like randomUUID(), at a fraction of its cost per request.
 */
let idBase = '';
let idCounter = 4096;
function nextRequestId(): string {
  if (idCounter >= 4096) {
    idBase = randomUUID().slice(0, 33);
    idCounter = 0;
  }
  return idBase + (idCounter++).toString(16).padStart(3, '0');
}

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && given.length > 0 && given.length <= 200 ? given : nextRequestId();
}

/** The HTTP/2 stream behind a request that came over HTTP/2 (node:http2's compat request). */
export function h2Stream(req: IncomingMessage): Http2Stream {
  return (req as unknown as { stream: Http2Stream }).stream;
}

/**
 * Whether a request came over HTTP/2 (node:http2's compat request has its stream); an HTTP/1.1
 * request line claiming `HTTP/2.0` does not count, and is refused by checkFraming.
 */
export function isH2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 && (req as unknown as { stream?: Http2Stream }).stream !== undefined;
}

function bodyPending(req: IncomingMessage): boolean {
  if (req.complete) return false;
  if (isH2(req)) return !h2Stream(req).endAfterHeaders;
  return req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0';
}

/** Response 'close': abort the upstream if the client left early, then log and count. */
function onResponseClose(this: TrackedResponse): void {
  const ctx = this[kCtx];
  if (ctx === undefined) return;
  this[kCtx] = undefined;
  const rt = this[kRuntime];
  const attempt = ctx.attempt;
  // HTTP/2: a stream reset by the client reports writableFinished (node ends its writable side on
  // close), so a response is complete only if we ended it and the stream closed without an error code.
  if (ctx.h2 ? !this.writableEnded || h2Stream(ctx.req).rstCode !== 0 : !this.writableFinished) {
    if (attempt && !attempt.finished) attempt.abort(new ProxyError('CLIENT_CLOSED'));
    if (ctx.error === undefined) ctx.error = 'CLIENT_CLOSED';
    if (ctx.status === 0) ctx.status = 499;
  }
  rt.generation.leave();
  rt.onRequestEnd(ctx);
  if (requestEnd.hasSubscribers) requestEnd.publish(ctx);
}

function reject(ctx: RequestContext, code: ErrorCode): void {
  fail(ctx, code, bodyPending(ctx.req));
}

/**
 * A request's context as the listener knows it at arrival: ids, addresses (the peer's, and the
 * client's after trusted-proxy resolution), host, the connection's client certificate. Also used
 * for WebSocket upgrades (listeners/upgrade.ts), whose `socket` is the upgraded connection.
 */
export function createContext(
  rt: ListenerRuntime,
  req: IncomingMessage,
  res: ServerResponse,
  socket: { remoteAddress?: string | undefined },
  startedAt: number,
  expectContinue: boolean,
  h2: boolean,
  host: string,
): RequestContext {
  // The PROXY header's client when the listener takes one (listeners/proxy-header.ts).
  const peer = clientAddressOf(socket);
  const trustedPeer = rt.trusted.has(peer);
  return {
    req,
    res,
    listener: rt.name,
    requestId: requestIdOf(req),
    peer,
    client: trustedPeer ? clientAddress(peer, true, headerValue(req.headers['x-forwarded-for']), (a) => rt.trusted.has(a)) : peer,
    trustedPeer,
    host,
    path: '',
    query: '',
    target: '',
    policy: rt.policy,
    startedAt,
    expectContinue,
    route: undefined,
    upstream: undefined,
    endpoint: undefined,
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
    upstreamLatency: -1,
    tries: 0,
    error: undefined,
    attempt: undefined,
    h2,
    clientCert: rt.policy.clientCertHeaders === undefined ? undefined : clientCertOf(socket),
  };
}

/** Handles one request on `rt`. Never throws; an unexpected error becomes a 500 for this request only. */
export function handleRequest(rt: ListenerRuntime, req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
  const startedAt = performance.now();
  rt.generation.enter();
  if (rt.policy.draining) res.shouldKeepAlive = false;
  const h2 = isH2(req);
  const host = (h2 ? (req.headers[':authority'] as string | undefined) : undefined) ?? req.headers.host ?? '';
  const ctx = createContext(rt, req, res, req.socket, startedAt, expectContinue, h2, host);
  (res as TrackedResponse)[kCtx] = ctx;
  (res as TrackedResponse)[kRuntime] = rt;
  res.on('close', onResponseClose);
  try {
    const framing = h2 ? checkH2(req, maxHeaderListSize(h2Stream(req))) : checkFraming(req);
    if (framing !== undefined) return reject(ctx, framing);
    const target = parseTarget(req.url ?? '', h2 ? host : req.headers.host);
    if (typeof target === 'string') return reject(ctx, target);
    if (rt.policy.httpsRedirect !== undefined) return redirectToHttps(ctx, rt.policy.httpsRedirect, target.path + target.query);
    const path = normalizePath(target.path);
    if (path === undefined) return reject(ctx, 'INVALID_TARGET');
    ctx.path = path;
    ctx.query = target.query;
    const route = rt.router.match(new Facts(host, req.method ?? 'GET', path, target.query, req.headers));
    if (route === undefined) return reject(ctx, 'ROUTE_NOT_FOUND');
    ctx.route = route.name;
    if (route.maxBodySize > 0) {
      const cl = req.headers['content-length'];
      if (cl !== undefined && Number(cl) > route.maxBodySize) return reject(ctx, 'BODY_TOO_LARGE');
    }
    ctx.target = rewritePath(path, route.config.rewrite) + target.query;
    // HTTP/2: forward one event-loop turn later, once every frame of this read is processed, so a
    // stream the client resets right away (rapid reset) never costs an upstream request.
    if (h2) setImmediate(runDeferred, rt, ctx, route);
    else run(rt, ctx, route);
  } catch (err) {
    internalError(rt, ctx, err);
  }
}

function run(rt: ListenerRuntime, ctx: RequestContext, route: RuntimeRoute): void {
  try {
    const pending = route.handle(ctx);
    if (pending !== undefined) pending.catch((err: unknown) => internalError(rt, ctx, err));
  } catch (err) {
    internalError(rt, ctx, err);
  }
}

function runDeferred(rt: ListenerRuntime, ctx: RequestContext, route: RuntimeRoute): void {
  // Already over (reset, closed, logged by the 'close' handler): nothing to forward.
  if ((ctx.res as TrackedResponse)[kCtx] === undefined || streamGone(h2Stream(ctx.req))) return;
  run(rt, ctx, route);
}

/** `httpsRedirect`'s target: the same host, path and query over https (the port left out when 443). */
export function httpsLocation(host: string, port: number, pathAndQuery: string): string {
  const hostname = new Facts(host, '', '', '', {}).hostname; // port removed; IPv6 keeps its brackets
  return `https://${hostname}${port === 443 ? '' : `:${port}`}${pathAndQuery}`;
}

/** `httpsRedirect`: 308 to the same resource over https; nothing is forwarded. */
function redirectToHttps(ctx: RequestContext, port: number, pathAndQuery: string): void {
  const location = httpsLocation(ctx.host, port, pathAndQuery);
  ctx.status = 308;
  const unread = bodyPending(ctx.req);
  const headers: Record<string, string | number> = { location, 'content-length': 0, 'x-request-id': ctx.requestId };
  if (unread && !ctx.h2) headers.connection = 'close';
  ctx.res.writeHead(308, headers);
  ctx.res.end();
}

function internalError(rt: ListenerRuntime, ctx: RequestContext, err: unknown): void {
  rt.onInternalError(ctx, err);
  ctx.error = 'INTERNAL_ERROR';
  if (ctx.res.headersSent) ctx.res.destroy(err as Error);
  else fail(ctx, 'INTERNAL_ERROR', bodyPending(ctx.req));
}
