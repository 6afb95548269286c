/**
 * HTTP forwarding on undici's dispatch API: one Exchange per try, streaming both ways with
 * backpressure, mapping every failure to a ProxyError. This is the hot path: no closures per
 * request beyond the Exchange object, no buffering of bodies.
 *
 *   client req ──► dispatch(path, method, headers, body=req) ──► endpoint pool
 *   client res ◄── onResponseStart / onResponseData / onResponseEnd ◄──┘
 *
 * Whether a failed try is retried is not decided here: the Exchange asks its owner (the request's
 * Forwarding, in upstream/proxy.ts) before it writes anything to the client, and hands over to it.
 */
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { RequestContext } from '../middleware/context.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import type { Timeouts } from '../config/types.ts';
import { grpcErrorStatus, isGrpcRequest, ProxyError, sendError, upstreamError } from './errors.ts';
import { downstreamResponseHeaders } from './headers.ts';

type ResponseHeaders = Record<string, string | string[] | undefined>;

/** The request a try belongs to: what to send, and the retry decisions. */
export interface TryOwner {
  readonly ctx: RequestContext;
  /** Path (rewritten) plus query, as sent upstream. */
  readonly target: string;
  /** Flat [name, value, ...] request headers, hop-by-hop already removed. */
  readonly headers: string[];
  /** The request body to stream (the client request itself, or a counting wrapper), or null. */
  readonly body: Readable | null;
  readonly timeouts: Timeouts;
  /** ms a try may take to get response headers; 0 = no limit. */
  readonly perTryTimeout: number;
  /** A Set-Cookie value to add to the response (sticky sessions), or undefined. */
  readonly setCookie: string | undefined;
  /** Set once anything (a 1xx) went to the client: no retry after that. */
  committed: boolean;
  /** Outlier detection: the outcome of one try at `endpoint`. */
  record(endpoint: Endpoint, failed: boolean): void;
  /** Asked on a final status before anything is written: true = discard this response and retry. */
  retryStatus(ex: Exchange, status: number): boolean;
  /** Asked when a try failed before anything was written: true = retry. */
  retryError(ex: Exchange, err: ProxyError): boolean;
  /** The try is over and a retry was granted: start the next one. */
  next(): void;
  /** The request is over (answered, failed or aborted). */
  end(): void;
}

/** One request to one endpoint. Created per try; implements undici's DispatchHandler. */
export class Exchange implements Dispatcher.DispatchHandler {
  readonly owner: TryOwner;
  readonly endpoint: Endpoint;
  controller: Dispatcher.DispatchController | undefined;
  /** Set when the try was given up before undici started it; undici's later start is aborted. */
  pendingAbort: Error | undefined;
  /** undici started writing the request (so some of it may have reached the endpoint). */
  sent = false;
  /** Abandoned before undici started it (its body may still be touched later, so never reused). */
  abandoned = false;
  /** The response is being thrown away for a retry. */
  discard = false;
  finished = false;
  dispatchedAt = 0;
  tryTimer: NodeJS.Timeout | undefined;
  /** Armed while the client socket is full: the client has `sendTimeout` to take more. */
  stallTimer: NodeJS.Timeout | undefined;
  /** A gRPC Trailers-Only response: its headers are set on the response, not yet written. */
  trailersOnly = false;

  constructor(owner: TryOwner, endpoint: Endpoint) {
    this.owner = owner;
    this.endpoint = endpoint;
  }

  /** Ends this try with `reason` (client gone, timeout, body too large). */
  abort(reason: Error): void {
    if (this.finished) return;
    if (this.controller) {
      this.controller.abort(reason);
      return;
    }
    // undici has not started it (waiting for a connection): fail now, abort when it starts.
    this.pendingAbort = reason;
    this.abandoned = true;
    this.onResponseError(undefined, reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.pendingAbort) {
      controller.abort(this.pendingAbort);
      return;
    }
    this.controller = controller;
    this.sent = true;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (this.finished) return;
    const owner = this.owner;
    const ctx = owner.ctx;
    const res = ctx.res;
    if (statusCode < 200) {
      if (statusCode === 103 && headers.link !== undefined) {
        owner.committed = true;
        res.writeEarlyHints(headers as Record<string, string | string[]>);
      } else if (statusCode === 102 && !ctx.h2) {
        owner.committed = true;
        res.writeProcessing();
      }
      return;
    }
    if (this.tryTimer) {
      clearTimeout(this.tryTimer);
      this.tryTimer = undefined;
    }
    const now = performance.now();
    const endpoint = this.endpoint;
    ctx.upstreamLatency = now - this.dispatchedAt;
    endpoint.state.latency.observe(ctx.upstreamLatency, now);
    owner.record(endpoint, statusCode >= 500);
    if (owner.retryStatus(this, statusCode)) {
      this.discard = true;
      controller.abort(new ProxyError('UPSTREAM_ERROR', undefined, `status ${statusCode} discarded for a retry`));
      return;
    }
    if (res.destroyed) return;
    ctx.status = statusCode;
    if (ctx.policy.draining) res.shouldKeepAlive = false;
    const out = downstreamResponseHeaders(headers as ResponseHeaders, ctx.requestId);
    if (owner.setCookie !== undefined) out.push('set-cookie', owner.setCookie);
    const hsts = ctx.policy.hsts;
    if (hsts !== undefined && headers['strict-transport-security'] === undefined) out.push('strict-transport-security', hsts);
    // gRPC Trailers-Only (grpc-status already in the response headers): it must reach an HTTP/2
    // client as one HEADERS frame with END_STREAM. writeHead would send the HEADERS now and the end
    // an empty DATA frame, which gRPC clients read as "ended without gRPC status". So the headers
    // are only set here; res.end() in onResponseEnd sends them with END_STREAM.
    if (ctx.h2 && headers['grpc-status'] !== undefined) {
      this.trailersOnly = true;
      res.statusCode = statusCode;
      for (let i = 0; i < out.length; i += 2) res.appendHeader(out[i], out[i + 1]);
      return;
    }
    // HTTP/2 has no reason phrase.
    if (statusMessage && !ctx.h2) res.writeHead(statusCode, statusMessage, out);
    else res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.discard || this.finished) return;
    const ctx = this.owner.ctx;
    const res = ctx.res;
    ctx.bytesOut += chunk.length;
    if (!res.write(chunk)) {
      controller.pause();
      // Only responses that outrun their client get here, so this closure is off the common path.
      res.once('drain', () => {
        if (this.stallTimer) clearTimeout(this.stallTimer);
        this.stallTimer = undefined;
        controller.resume();
      });
      const sendTimeout = ctx.policy.sendTimeout;
      if (sendTimeout > 0) this.stallTimer = setTimeout(onSendTimeout, sendTimeout, this);
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    if (this.finished) return;
    if (this.discard) return this.#retry();
    const res = this.owner.ctx.res;
    for (const _ in trailers) {
      res.addTrailers(trailers as Record<string, string>);
      break;
    }
    res.end();
    this.#cleanup();
    this.owner.end();
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.finished) return;
    if (this.discard) return this.#retry();
    const owner = this.owner;
    const ctx = owner.ctx;
    const res = ctx.res;
    const perr = upstreamError(err);
    // A failure the client caused (left, stopped reading, sent too much) says nothing about the endpoint.
    const clientSide = perr.kind.side !== 'upstream' || res.destroyed || ctx.req.errored !== null;
    if (!clientSide) {
      owner.record(this.endpoint, true);
      if (!res.headersSent && owner.retryError(this, perr)) return this.#retry();
    }
    if (ctx.error === undefined) ctx.error = perr.code;
    if (res.headersSent) {
      // Mid-body failure: the client must see an aborted response, never a clean truncated end.
      // A gRPC call over HTTP/2 ends with our error as its status in the trailers instead (a
      // non-OK grpc-status is no clean end): a reset would tell the client only "no status".
      if (ctx.h2 && !res.destroyed && !res.writableEnded && isGrpcRequest(ctx.req)) {
        res.addTrailers(grpcErrorStatus(perr.code));
        res.end();
      } else if (ctx.h2) {
        // With an error, node resets the stream with INTERNAL_ERROR; without, it would say NO_ERROR.
        if (!res.destroyed) res.destroy(perr);
      } else res.destroy();
    } else {
      // Upstream headers set for a Trailers-Only response are not part of our error.
      if (this.trailersOnly) for (const name of res.getHeaderNames()) res.removeHeader(name);
      ctx.status = perr.kind.status;
      ctx.bytesOut += sendError(res, perr.code, ctx.requestId, owner.body !== null && !ctx.req.complete, perr.message);
    }
    this.#cleanup();
    owner.end();
  }

  #retry(): void {
    this.#cleanup();
    this.owner.next();
  }

  #cleanup(): void {
    this.finished = true;
    this.endpoint.state.inFlight--;
    if (this.tryTimer) clearTimeout(this.tryTimer);
    if (this.stallTimer) clearTimeout(this.stallTimer);
  }
}

/** The client stopped reading: give up on it, and on the upstream request feeding it. */
function onSendTimeout(ex: Exchange): void {
  ex.stallTimer = undefined;
  const ctx = ex.owner.ctx;
  if (ctx.error === undefined) ctx.error = 'SEND_TIMEOUT';
  ex.abort(new ProxyError('SEND_TIMEOUT'));
  ctx.res.destroy();
}

function onTryTimeout(ex: Exchange): void {
  ex.tryTimer = undefined;
  ex.abort(new ProxyError('UPSTREAM_TIMEOUT', undefined, 'the endpoint did not answer within the per-try timeout'));
}

/** Sends one try of `owner`'s request to `endpoint` and streams the answer to the client. */
export function dispatch(owner: TryOwner, endpoint: Endpoint): Exchange {
  const ex = new Exchange(owner, endpoint);
  const ctx = owner.ctx;
  const t = owner.timeouts;
  endpoint.state.inFlight++;
  ctx.endpoint = endpoint;
  if (owner.perTryTimeout > 0) ex.tryTimer = setTimeout(onTryTimeout, owner.perTryTimeout, ex);
  ex.dispatchedAt = performance.now();
  try {
    endpoint.dispatcherFor(t.connect).dispatch(
      {
        path: owner.target,
        method: ctx.req.method as Dispatcher.HttpMethod,
        headers: owner.headers,
        body: owner.body,
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
