/**
 * HTTP forwarding on undici's dispatch API: one Exchange per attempt, streaming both ways with
 * backpressure, mapping every failure to a ProxyError. This is the hot path: no closures per
 * request beyond the Exchange object, no buffering of bodies.
 *
 *   client req ──► dispatch(path, method, headers, body=req) ──► endpoint pool
 *   client res ◄── onResponseStart / onResponseData / onResponseEnd ◄──┘
 */
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { RequestContext } from '../middleware/context.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import type { Timeouts } from '../config/types.ts';
import { ProxyError, sendError, upstreamError } from './errors.ts';
import { downstreamResponseHeaders } from './headers.ts';

type ResponseHeaders = Record<string, string | string[] | undefined>;

/** What one attempt needs to know beyond the request context. */
export interface AttemptPlan {
  endpoint: Endpoint;
  /** Path (rewritten) plus query, as sent upstream. */
  target: string;
  /** Flat [name, value, ...] request headers, hop-by-hop already removed. */
  headers: string[];
  /** The request body to stream (the client request itself, or a counting wrapper), or null. */
  body: Readable | null;
  timeouts: Timeouts;
  /** Called once when the attempt is over, whatever the outcome. */
  done: (ctx: RequestContext) => void;
}

/** One request to one endpoint. Created per attempt; implements undici's DispatchHandler. */
class Exchange implements Dispatcher.DispatchHandler {
  readonly ctx: RequestContext;
  readonly plan: AttemptPlan;
  controller: Dispatcher.DispatchController | undefined;
  /** Set when we abort before undici handed us a controller. */
  pendingAbort: Error | undefined;
  finished = false;
  dispatchedAt = 0;
  timer: NodeJS.Timeout | undefined;
  /** Armed while the client socket is full: the client has `sendTimeout` to take more. */
  stallTimer: NodeJS.Timeout | undefined;

  constructor(ctx: RequestContext, plan: AttemptPlan) {
    this.ctx = ctx;
    this.plan = plan;
  }

  /** Aborts the upstream side (client went away, request timeout, body too large). */
  abort(reason: Error): void {
    if (this.finished) return;
    if (this.controller) this.controller.abort(reason);
    else this.pendingAbort = reason;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.pendingAbort) controller.abort(this.pendingAbort);
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    const res = this.ctx.res;
    if (statusCode < 200) {
      if (statusCode === 103 && headers.link !== undefined) res.writeEarlyHints(headers as Record<string, string | string[]>);
      else if (statusCode === 102) res.writeProcessing();
      return;
    }
    const ctx = this.ctx;
    ctx.upstreamLatency = performance.now() - this.dispatchedAt;
    this.plan.endpoint.observe(ctx.upstreamLatency);
    if (res.destroyed) return;
    ctx.status = statusCode;
    if (ctx.policy.draining) res.shouldKeepAlive = false;
    const out = downstreamResponseHeaders(headers as ResponseHeaders, ctx.requestId);
    if (statusMessage) res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.ctx.res;
    this.ctx.bytesOut += chunk.length;
    if (!res.write(chunk)) {
      controller.pause();
      // Only responses that outrun their client get here, so this closure is off the common path.
      res.once('drain', () => {
        if (this.stallTimer) clearTimeout(this.stallTimer);
        this.stallTimer = undefined;
        controller.resume();
      });
      const sendTimeout = this.ctx.policy.sendTimeout;
      if (sendTimeout > 0) this.stallTimer = setTimeout(onSendTimeout, sendTimeout, this);
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    const res = this.ctx.res;
    for (const _ in trailers) {
      res.addTrailers(trailers as Record<string, string>);
      break;
    }
    res.end();
    this.finish();
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    const ctx = this.ctx;
    const res = ctx.res;
    const perr = upstreamError(err);
    if (ctx.error === undefined) ctx.error = perr.code;
    if (res.headersSent) {
      // Mid-body failure: the client must see an aborted response, never a clean truncated end.
      res.destroy();
    } else {
      ctx.status = perr.kind.status;
      ctx.bytesOut += sendError(res, perr.code, ctx.requestId, this.plan.body !== null && !ctx.req.complete);
    }
    this.finish();
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.plan.endpoint.inFlight--;
    if (this.timer) clearTimeout(this.timer);
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.plan.done(this.ctx);
  }
}

/** The client stopped reading: give up on it, and on the upstream request feeding it. */
function onSendTimeout(ex: Exchange): void {
  ex.stallTimer = undefined;
  if (ex.ctx.error === undefined) ex.ctx.error = 'SEND_TIMEOUT';
  ex.abort(new ProxyError('SEND_TIMEOUT'));
  ex.ctx.res.destroy();
}

function onRequestTimeout(ex: Exchange): void {
  ex.abort(new ProxyError('UPSTREAM_TIMEOUT', undefined, 'the request took longer than the route allows'));
}

/** A started attempt: the handle the listener keeps to abort it. */
export interface Attempt {
  abort(reason: Error): void;
  readonly finished: boolean;
}

/** Sends one attempt to `plan.endpoint` and streams the answer to `ctx.res`. */
export function dispatch(ctx: RequestContext, plan: AttemptPlan): Attempt {
  const ex = new Exchange(ctx, plan);
  const endpoint = plan.endpoint;
  const t = plan.timeouts;
  endpoint.inFlight++;
  ctx.endpoint = endpoint;
  if (t.request > 0) ex.timer = setTimeout(onRequestTimeout, t.request, ex);
  ex.dispatchedAt = performance.now();
  try {
    endpoint.dispatcherFor(t.connect).dispatch(
      {
        path: plan.target,
        method: ctx.req.method as Dispatcher.HttpMethod,
        headers: plan.headers,
        body: plan.body,
        headersTimeout: t.responseHeaders,
        bodyTimeout: t.bodyIdle,
        idempotent: false,
        blocking: true,
      },
      ex,
    );
  } catch (err) {
    ex.onResponseError(undefined, err as Error);
  }
  return ex;
}
