/**
 * The request pipeline: one request's way through its named phases, the same for HTTP/1.1, HTTP/2
 * (gRPC included) and WebSocket upgrades. Everything it reads comes from one ListenerGeneration, so
 * a request that started on the old config finishes on it even if a reload swaps the listener's.
 *
 *   edge checks (protocol framing, target, path) ─► 400 + close
 *   listener filters   onRequest                  ─► a Reply answers
 *   routing            no route ─► 404            Content-Length > maxBodySize ─► 413
 *   route filters      onRequest                  ─► a Reply answers
 *   request body       onBody(capped prefix)      ─► a Reply answers
 *   forward            the proxy step (proxy.ts), or the upgrade proxy step (upgrade.ts):
 *                      onUpstreamRequest each try; the response through respond.ts's phases;
 *                      or, on a `static:` route, the file (static-files.ts) through the same
 *   end                onLog, the access log, `switchboard:request:end` (session.ts)
 *
 * A phase no filter of the chain uses costs one array-length test. Hooks may be async: the
 * pipeline waits for a promise, and otherwise runs on synchronously.
 */
import { ProxyError } from '../errors.ts';
import type { Verdict } from '../policies/filter.ts';
import { Facts } from '../routing/facts.ts';
import { normalizePath, rewritePath } from '../routing/path.ts';
import type { Placed } from './chain.ts';
import type { Downstream } from './downstream.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { replaysBodies } from '../upstream/selection.ts';
import { awaitVerdict, fail, policyFailed, policyTimedOut, respond } from './respond.ts';
import { RequestSession } from './session.ts';
import { serveStatic } from './static-files.ts';
import { parseForwardTarget, parseTarget } from './strict.ts';

/** What ends the pipeline for one kind of request: the proxy step (HTTP) or the upgrade proxy step. */
export type ForwardStep = RequestSession['forward'];

type Step = (s: RequestSession) => void;

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

/**
 * Starts one request on `gen`: creates its session, attaches it to `down`, and runs the phases up
 * to `forward`. Never throws; an unexpected error becomes a 500 for this request only.
 */
export function runPipeline(gen: ListenerGeneration, down: Downstream, expectContinue: boolean, forward: ForwardStep): void {
  const s = new RequestSession(gen, down, performance.now(), expectContinue, forward);
  gen.generation.enter();
  down.attach(s);
  try {
    const framing = down.check();
    if (framing !== undefined) {
      fail(s, framing);
      return;
    }
    if (gen.forwardRoute !== undefined) return forwardTarget(s);
    const target = parseTarget(down.url, down.authority === '' ? undefined : down.authority);
    if (typeof target === 'string') {
      fail(s, target);
      return;
    }
    const path = normalizePath(target.path);
    if (path === undefined) {
      fail(s, 'INVALID_TARGET');
      return;
    }
    s.path = path;
    s.query = target.query;
    const hooks = gen.chain.request;
    if (hooks.length === 0) routeStep(s);
    else runHooks(s, hooks, 0, invokeOnRequest, routeStep);
  } catch (err) {
    internalError(s, err);
  }
}

/**
 * A forward-proxy listener's target (strict.ts): the destination's authority becomes the request's
 * host (EDGE-CASES 9: it wins over Host, which is rewritten from it), then the listener's filters.
 */
function forwardTarget(s: RequestSession): void {
  const down = s.down;
  const target = parseForwardTarget(down.method, down.url, down.authority);
  if (typeof target === 'string') return fail(s, target);
  s.targetForm = target.form;
  if (target.authority !== undefined) {
    s.host = target.authority;
    // Made here, before the listener's filters: a request they answer (407) is logged and counted as a forward one too.
    s.proxied = {
      kind: target.form === 'authority' ? 'connect' : down.upgrade ? 'websocket' : 'http',
      destination: target.authority,
      rule: undefined,
      address: undefined,
    };
  }
  if (target.form === 'authority') s.path = '';
  else {
    const path = normalizePath(target.path);
    if (path === undefined) return fail(s, 'INVALID_TARGET');
    s.path = path;
    s.query = target.query;
  }
  // A request for the proxy itself (its PAC file) skips the listener's filters: browsers fetch a PAC
  // file without proxy credentials, and it is the same small file for everyone.
  if (target.form === 'origin') return routeStep(s);
  const hooks = s.gen.chain.request;
  if (hooks.length === 0) routeStep(s);
  else runHooks(s, hooks, 0, invokeOnRequest, routeStep);
}

/** Calls one filter's hook for a request phase. */
type Invoke = (placed: Placed, s: RequestSession) => Verdict;

const invokeOnRequest: Invoke = (placed, s) => placed.filter.onRequest!(s);

/**
 * Runs one request phase: `invoke` on `hooks[i…]` in order. A Reply answers, a throw or rejection
 * fails the request, a promise is waited for (at most policyTimeout); then `next`.
 */
function runHooks(s: RequestSession, hooks: readonly Placed[], i: number, invoke: Invoke, next: Step): void {
  for (; i < hooks.length; i++) {
    if (s.over) return;
    const placed = hooks[i];
    let verdict: Verdict;
    try {
      verdict = invoke(placed, s);
    } catch (err) {
      return policyFailed(s, placed, err);
    }
    if (verdict === undefined) continue;
    if (isPromise(verdict)) {
      const from = i + 1;
      awaitVerdict(
        s,
        verdict,
        (reply) => {
          if (s.over) return;
          if (reply !== undefined) return answered(s, placed, reply);
          try {
            runHooks(s, hooks, from, invoke, next);
          } catch (err) {
            internalError(s, err);
          }
        },
        (err: unknown) => policyFailed(s, placed, err),
        () => policyTimedOut(s, placed),
      );
      return;
    }
    return answered(s, placed, verdict);
  }
  if (!s.over) next(s);
}

/** A filter answered in a request phase: nothing goes upstream; the filters before it see the answer. */
function answered(s: RequestSession, placed: Placed, reply: NonNullable<Awaited<Verdict>>): void {
  s.policy = placed.policy;
  respond(s, reply, placed.position);
}

function routeStep(s: RequestSession): void {
  const down = s.down;
  const route = s.gen.forwardRoute ?? s.gen.router.match(new Facts(s.host, down.method, s.path, s.query, down.headers));
  if (route === undefined) return fail(s, 'ROUTE_NOT_FOUND');
  s.routed = route;
  s.chain = route.chain;
  if (route.maxBodySize > 0) {
    const cl = down.headers['content-length'];
    if (cl !== undefined && Number(cl) > route.maxBodySize) return fail(s, 'BODY_TOO_LARGE');
  }
  s.target = rewritePath(s.path, route.config.rewrite) + s.query;
  const hooks = route.chain.request;
  if (hooks.length === 0) bodyStep(s);
  else runHooks(s, hooks, 0, invokeOnRequest, bodyStep);
}

/** The request body phase: the first `bodyBytes` of the body for the filters that want it. */
function bodyStep(s: RequestSession): void {
  const chain = s.chain;
  if (chain.body.length === 0 || !s.down.hasBody) return forwardStep(s);
  const route = s.routed!;
  const upstream = route.upstream;
  const keep = upstream !== undefined && replaysBodies(upstream, s.down.method) ? upstream.config.retries.bodyBuffer : 0;
  const body = s.readBody(Math.max(keep, chain.bodyBytes), route.maxBodySize);
  body.prefix(chain.bodyBytes).then(
    ({ prefix, complete }) => bodyHooks(s, prefix, complete),
    (err: unknown) => {
      if (s.over) return;
      if (err instanceof ProxyError) fail(s, err.code);
      // Otherwise the client went away mid-body: its session closes by itself.
    },
  );
}

/** The request body phase's hooks: each gets the prefix cut to its own `maxBytes`. */
function bodyHooks(s: RequestSession, prefix: Buffer, complete: boolean): void {
  const invoke: Invoke = (placed, session) => {
    const max = placed.filter.requestBody!.maxBytes;
    const own = prefix.length > max ? prefix.subarray(0, max) : prefix;
    return placed.filter.requestBody!.onBody(session, own, complete && own.length === prefix.length);
  };
  runHooks(s, s.chain.body, 0, invoke, forwardStep);
}

function forwardStep(s: RequestSession): void {
  // HTTP/2: forward one event-loop turn later, once every frame of this read is processed, so a
  // stream the client resets right away (rapid reset) never costs an upstream request.
  if (s.down.settleFirst) setImmediate(forwardSettled, s);
  else forwardNow(s);
}

function forwardSettled(s: RequestSession): void {
  // Already over (reset, closed, logged): nothing to forward.
  if (s.over || s.down.destroyed) return;
  forwardNow(s);
}

function forwardNow(s: RequestSession): void {
  try {
    const route = s.routed!;
    if (route.static !== undefined) return serveStatic(s, route.static);
    if (route.upstream === undefined && route !== s.gen.forwardRoute) return fail(s, 'NO_UPSTREAM');
    const pending = s.forward(s, route);
    if (pending !== undefined) pending.catch((err: unknown) => internalError(s, err));
  } catch (err) {
    internalError(s, err);
  }
}

/** A bug: logged, and the request answered 500 (or cut, when its head already went out). */
export function internalError(s: RequestSession, err: unknown): void {
  s.gen.onInternalError(s, err);
  s.error = 'INTERNAL_ERROR';
  if (s.down.headersSent) s.down.abort(new ProxyError('INTERNAL_ERROR', err));
  else fail(s, 'INTERNAL_ERROR');
}
