/**
 * The proxy step, last in every route's chain: build the upstream request, pick an endpoint, send
 * the attempt. Retries (issue 3) loop here, with `tried` growing; today a request makes one attempt.
 */
import { Transform, type Readable } from 'node:stream';
import type { RequestContext } from '../middleware/context.ts';
import type { Timeouts } from '../config/types.ts';
import { dispatch, type AttemptPlan } from '../transport/forward.ts';
import { ERRORS, ProxyError, sendError, type ErrorCode } from '../transport/errors.ts';
import { upstreamRequestHeaders } from '../transport/headers.ts';
import type { PickContext } from './balancer.ts';
import type { Endpoint } from './endpoint.ts';
import type { Upstream } from './upstream.ts';

/** What the proxy step needs of a route. */
export interface ProxyTarget {
  readonly upstream: Upstream;
  readonly timeouts: Timeouts;
  readonly maxBodySize: number;
}

const NOTHING_TRIED: ReadonlySet<Endpoint> = new Set();
const FIRST_ATTEMPT: PickContext = { tried: NOTHING_TRIED, hashKey: undefined };

/** Answers the client with one of Switchboard's own errors and records it on the context. */
export function fail(ctx: RequestContext, code: ErrorCode, bodyUnread: boolean): void {
  ctx.error = code;
  ctx.status = ERRORS[code].status;
  ctx.bytesOut += sendError(ctx.res, code, ctx.requestId, bodyUnread);
}

function hasBody(ctx: RequestContext): boolean {
  const h = ctx.req.headers;
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/**
 * A chunked request body, counted on its way through: past the route's limit the stream fails with
 * BODY_TOO_LARGE, which undici reports to the attempt, which answers 413 and closes. The client
 * request is only unpiped, never destroyed, so that the 413 can still be written.
 */
function countedBody(ctx: RequestContext, max: number): Transform {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      ctx.bytesIn += chunk.length;
      if (max > 0 && ctx.bytesIn > max) {
        ctx.req.unpipe(counter);
        cb(new ProxyError('BODY_TOO_LARGE'));
      } else cb(null, chunk);
    },
  });
  ctx.req.on('error', (err) => counter.destroy(err));
  return ctx.req.pipe(counter);
}

/**
 * Forwards the request in `ctx` to an endpoint of `target.upstream`. Calls `done` once the
 * exchange is over (answered, failed or aborted).
 */
export function proxy(ctx: RequestContext, target: ProxyTarget, done: (ctx: RequestContext) => void): void {
  const req = ctx.req;
  const body = hasBody(ctx);
  const upstream = target.upstream;
  const headers = upstreamRequestHeaders(
    req.rawHeaders,
    req.headers,
    { peer: ctx.peer, trusted: ctx.trustedPeer, host: ctx.host, proto: ctx.policy.proto },
    ctx.requestId,
    ctx.host,
    ctx.policy.underscores,
  );
  if (headers === undefined) {
    fail(ctx, 'INVALID_HEADER_NAME', body);
    return done(ctx);
  }
  ctx.upstream = upstream.name;
  const endpoint = upstream.pick(FIRST_ATTEMPT);
  if (endpoint === undefined) {
    fail(ctx, 'NO_ENDPOINT', body);
    return done(ctx);
  }
  if (upstream.config.hostHeader === 'endpoint' || ctx.host === '') headers[1] = endpoint.host;
  if (ctx.expectContinue) ctx.res.writeContinue();
  let bodyStream: Readable | null = null;
  if (body) {
    const cl = req.headers['content-length'];
    if (cl !== undefined) {
      ctx.bytesIn = Number(cl);
      bodyStream = req;
    } else bodyStream = countedBody(ctx, target.maxBodySize);
  }
  const plan: AttemptPlan = { endpoint, target: ctx.target, headers, body: bodyStream, timeouts: target.timeouts, done };
  const attempt = dispatch(ctx, plan);
  if (!attempt.finished) ctx.attempt = attempt;
}
