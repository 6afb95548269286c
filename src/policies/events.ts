/**
 * What policies tell the metrics, as `diagnostics_channel` events (policies import no layer of the
 * gateway; src/observability/metrics.ts subscribes): the decision a policy took for one request,
 * the fetches an authentication policy made (JWKS, introspection), and a cache's purges. Publishing costs a
 * `hasSubscribers` check without subscribers (metrics off).
 *
 * A decision's message is built once per policy and result, when the filter is built (once per
 * generation), never per request: a request publishes an object that exists already. Its values
 * come from the config (the policy's name and type) and a fixed set (the result), never from the
 * request: no credential, token, key or consumer is ever in a message (docs/metrics.md).
 *
 * State: none (the messages are per filter, so per worker and per generation; immutable).
 */
import diagnostics from 'node:diagnostics_channel';
import type { PolicyDeps, PolicyState } from './filter.ts';

/** Published once per request a policy decided on: a `PolicyDecisionEvent`. */
export const policyDecision = diagnostics.channel('switchboard:policy:decision');
/** Published once per fetch an authentication policy made, when it is over: an `AuthFetchEvent`. */
export const authFetch = diagnostics.channel('switchboard:auth:fetch');

/** Published once per purge a cache policy applied (in this process): a `CachePurgeEvent`. */
export const cachePurge = diagnostics.channel('switchboard:cache:purge');

/** What `cachePurge` publishes: the policy, the purge's kind, and how many objects went. */
export interface CachePurgeEvent {
  readonly policy: string;
  readonly kind: 'url' | 'prefix' | 'tag';
  readonly objects: number;
}

/** What `policyDecision` publishes. Frozen, and shared by every request with that decision. */
export interface PolicyDecisionEvent {
  /** The policy's name (`policies.<name>`). */
  readonly policy: string;
  /** Its type (`api-key`, `rate-limit`, …). */
  readonly type: string;
  /** One of the type's results (`AuthResult`, `LimitResult`). */
  readonly result: string;
}

/**
 * What an authentication policy (or `authorize`) decided:
 * - `success`: the credential verified (or, for `authorize`, the caller may);
 * - `anonymous`: no credential, let through as the `anonymous` consumer;
 * - `passed`: no credential of its kind, left to the next authentication policy of the route;
 * - `missing`: no credential, 401 AUTH_REQUIRED;
 * - `invalid`: a credential that did not verify (or, all-of, another consumer's), 401 AUTH_INVALID;
 * - `unavailable`: the identity provider could not be asked, 503 AUTH_UNAVAILABLE;
 * - `forbidden`: `authorize` refused an identified caller, 403 FORBIDDEN.
 */
export type AuthResult = 'success' | 'anonymous' | 'passed' | 'missing' | 'invalid' | 'unavailable' | 'forbidden';

/**
 * What a limit (rate-limit, quota, concurrency-limit) decided:
 * - `allowed`, `limited` (refused: 429, or 503 for a concurrency-limit set so);
 * - `delayed`: allowed after waiting its turn (rate-limit `mode: delay`);
 * - `failed_open`, `failed_closed`: the shared state could not be reached and the policy's
 *   `failOpen` choice answered (allowed uncounted, or refused).
 */
export type LimitResult = 'allowed' | 'limited' | 'delayed' | 'failed_open' | 'failed_closed';

const AUTH_RESULTS: readonly AuthResult[] = ['success', 'anonymous', 'passed', 'missing', 'invalid', 'unavailable', 'forbidden'];
const LIMIT_RESULTS: readonly LimitResult[] = ['allowed', 'limited', 'delayed', 'failed_open', 'failed_closed'];

/** One policy's decision messages, built once per filter; `publish` per request. */
export class Decisions<R extends string> {
  readonly #events: Readonly<Record<R, PolicyDecisionEvent>>;

  constructor(policy: string, type: string, results: readonly R[]) {
    const events = {} as Record<R, PolicyDecisionEvent>;
    for (const result of results) events[result] = Object.freeze({ policy, type, result });
    this.#events = events;
  }

  /** Publishes `result` (nothing to do without subscribers). */
  publish(result: R): void {
    if (policyDecision.hasSubscribers) policyDecision.publish(this.#events[result]);
  }
}

/** The decisions of an authentication policy or `authorize`. */
export function authDecisions(deps: Pick<PolicyDeps, 'name' | 'type'>): Decisions<AuthResult> {
  return new Decisions(deps.name, deps.type, AUTH_RESULTS);
}

/** The decisions of a limit, which tell a decision of the state's fallback from one of the state. */
export class LimitDecisions extends Decisions<LimitResult> {
  readonly #state: PolicyState;

  constructor(deps: Pick<PolicyDeps, 'name' | 'type' | 'state'>) {
    super(deps.name, deps.type, LIMIT_RESULTS);
    this.#state = deps.state;
  }

  /**
   * Publishes an allowed (`delayed` when it waited) or refused request: `failed_open` /
   * `failed_closed` when the state was unreachable, so that its fallback answered. Call it right
   * after the state's answer (`available` is the state's last operation's).
   */
  decide(allowed: boolean, delayed = false): void {
    if (!policyDecision.hasSubscribers) return;
    if (!this.#state.available) this.publish(allowed ? 'failed_open' : 'failed_closed');
    else this.publish(allowed ? (delayed ? 'delayed' : 'allowed') : 'limited');
  }
}

/** What an authentication policy fetches: a JWKS, a token introspection, an OpenID discovery document, a token. */
export type AuthFetchKind = 'jwks' | 'introspection' | 'discovery' | 'token';

/** What `authFetch` publishes. */
export interface AuthFetchEvent {
  readonly policy: string;
  readonly kind: AuthFetchKind;
  /** Whether it gave a usable answer (false: refused, timed out, a bad status or document). */
  readonly ok: boolean;
  /** How long it took, ms. */
  readonly durationMs: number;
}

/**
 * Runs `work` (one fetch of `kind` for `policy`) and publishes its outcome and duration when it is
 * over; without subscribers it only runs `work`. Resolves or rejects as `work` does.
 */
export function observeFetch<T>(policy: string, kind: AuthFetchKind, work: () => Promise<T>): Promise<T> {
  if (!authFetch.hasSubscribers) return work();
  const started = performance.now();
  const done = (ok: boolean): void => {
    authFetch.publish({ policy, kind, ok, durationMs: performance.now() - started } satisfies AuthFetchEvent);
  };
  return work().then(
    (value) => {
      done(true);
      return value;
    },
    (err: unknown) => {
      done(false);
      throw err;
    },
  );
}
