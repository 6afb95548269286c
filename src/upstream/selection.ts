/**
 * The one selection and retry loop, for HTTP requests, WebSocket upgrades, TCP connections and UDP
 * sessions alike (after Envoy's `chooseHost(context)` with the hosts already tried, and its retry
 * policy; nginx's proxy_next_upstream for the idempotency rule):
 *
 *   next()   the sticky endpoint on the first try when it is available, else the balancer's pick
 *            among the available endpoints not tried yet
 *   retry()  after a failed try: may the request go to another endpoint?
 *              - never once a response byte (even a 1xx) went to the client        (committed)
 *              - a try that sent nothing (connect refused or timed out) is retried for any
 *                method, unless its body may have been consumed and cannot be replayed
 *              - a try that sent the request is retried on reset / timeout / a configured status
 *                only for an idempotent method (or with `nonIdempotent`), and only when it had no
 *                body or its body can be replayed (kept whole, within `bodyBuffer`)
 *              - within `attempts`, on an endpoint not tried yet, and only while retries in
 *                flight stay under the budget, max(minConcurrent, percent × requests in flight)
 *   finish() once the request (or connection) is over: gives its budget slot back
 *
 * One Selection per request; nothing is allocated until a retry happens.
 */
import type { Endpoint } from './endpoint.ts';
import type { Upstream } from './upstream.ts';

/** How a try failed, as far as retrying is concerned. */
export type TryFailure = 'connect' | 'reset' | 'timeout' | 'status' | 'other';

/** The request's side of a retry decision. */
export interface RetryFacts {
  /** Whether any byte of the request may have reached the endpoint. */
  readonly sent: boolean;
  /** Whether anything (a 1xx included) went to the client: nothing can be retried after. */
  readonly committed: boolean;
  /** Whether the request has a body. */
  readonly body: boolean;
  /** Whether the body can be sent again whole (kept in memory, or never touched). */
  readonly replayable: boolean;
  /** For `status` failures: the status the endpoint answered. */
  readonly status?: number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Whether a request with this method may be retried once sent: idempotent (RFC 9110 §9.2.2), or `nonIdempotent` on. */
function retriesOnceSent(upstream: Upstream, method: string): boolean {
  return upstream.config.retries.nonIdempotent || IDEMPOTENT.has(method);
}

/**
 * Whether a request's body is worth keeping for a replay: a retry after the body was sent is
 * possible (more than one attempt, a `bodyBuffer`, a method retried once sent).
 */
export function replaysBodies(upstream: Upstream, method: string): boolean {
  const r = upstream.config.retries;
  return r.attempts > 1 && r.bodyBuffer > 0 && retriesOnceSent(upstream, method);
}

export class Selection {
  readonly upstream: Upstream;
  readonly hashKey: string | undefined;
  /** The endpoint id a sticky cookie names, when the upstream is sticky. */
  readonly stickyId: string | undefined;
  /** Whether the request's method may be retried once sent. */
  readonly retrySent: boolean;
  /** Tries so far (1 + retries). */
  tries = 0;
  tried: Endpoint[] | undefined = undefined;
  /** Holds a retry budget slot. */
  #onRetry = false;

  constructor(upstream: Upstream, hashKey: string | undefined, stickyId: string | undefined, method: string) {
    this.upstream = upstream;
    this.hashKey = hashKey;
    this.stickyId = stickyId;
    this.retrySent = retriesOnceSent(upstream, method);
  }

  /** The endpoint for the next try, or undefined when none is left. Counts the try. */
  next(): Endpoint | undefined {
    const upstream = this.upstream;
    let endpoint: Endpoint | undefined;
    if (this.tries === 0 && this.stickyId !== undefined) endpoint = upstream.availableById(this.stickyId);
    endpoint ??= upstream.pick(this.hashKey, this.tried);
    if (endpoint !== undefined) {
      this.tries++;
      endpoint.state.picks++;
    }
    return endpoint;
  }

  /** Whether a sticky upstream should (re)set its cookie for `endpoint`: it is not the one the cookie named. */
  movedFromSticky(endpoint: Endpoint): boolean {
    return this.stickyId !== endpoint.id;
  }

  /**
   * Whether the request may be retried after its try at `endpoint` failed with `failure`. A yes
   * takes a retry budget slot (once per request) and marks `endpoint` tried.
   */
  retry(endpoint: Endpoint, failure: TryFailure, facts: RetryFacts): boolean {
    if (facts.committed) return false;
    const r = this.upstream.config.retries;
    let allowed: boolean;
    if (!facts.sent || failure === 'connect') {
      // Nothing reached the endpoint; the body is reusable unless it may have been read.
      allowed = !facts.body || facts.replayable;
    } else {
      allowed =
        this.retrySent &&
        (!facts.body || facts.replayable) &&
        ((failure === 'reset' && r.onReset) ||
          (failure === 'timeout' && r.onTimeout) ||
          (failure === 'status' && facts.status !== undefined && r.statuses.includes(facts.status)));
    }
    if (!allowed || this.tries >= r.attempts) return false;
    this.tried ??= [];
    this.tried.push(endpoint);
    if (!this.upstream.hasUntried(this.tried)) return false;
    if (!this.#onRetry) {
      const state = this.upstream.state;
      if (!state.retryBudget.tryAcquire(state.breaker.active)) return false;
      this.#onRetry = true;
    }
    return true;
  }

  /** Whether a response with this status would be retried, before any of it is read. */
  retriesStatus(status: number): boolean {
    const statuses = this.upstream.config.retries.statuses;
    return statuses.length !== 0 && statuses.includes(status);
  }

  /** The request is over: its budget slot (if any) is given back. */
  finish(): void {
    if (this.#onRetry) {
      this.#onRetry = false;
      this.upstream.state.retryBudget.release();
    }
  }
}
