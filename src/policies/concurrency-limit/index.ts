/**
 * `concurrency-limit`: at most `limit` requests of one key in flight at once (HAProxy's
 * `sc_conn_cur` / Envoy's adaptive concurrency, per key). Each request takes a lease of the shared
 * state's counting semaphore (`acquire`: the count and the grant in one atomic step) in onRequest
 * and returns it in onLog, which runs once whatever ended the request (answered, failed, aborted).
 * A lease not returned (a worker that died) expires on its own after `leaseTimeout`.
 *
 * State: the semaphore is per machine (`state.backend: memory`) or per fleet (`redis`); the
 * per-request lease is in the request's locals.
 *
 * A consumer's override (`consumers.NAME.limits.<policy>: { limit }`, or `unlimited`) travels with
 * the acquire, so the count and the grant stay one atomic step (limit-overrides.ts).
 *
 * Metrics: each decision is published (`allowed`, `limited`, `failed_open`, `failed_closed`:
 * src/policies/events.ts) for `switchboard_concurrency_limit_decisions_total`.
 */
import type { Filter, PolicyType, Reply } from '../filter.ts';
import { parseDuration } from '../../util/units.ts';
import { compileKey } from '../../util/limit-key.ts';
import { overrideTable, planFor, UNLIMITED } from '../limit-overrides.ts';
import { LimitDecisions } from '../events.ts';
import { concurrencyLimitConfig, type RawConcurrencyLimitConfig } from './config.ts';

/** A concurrency-limit policy's config once resolved. */
export interface ResolvedConcurrencyLimit {
  readonly key: string | readonly string[];
  readonly limit: number;
  /** ms */
  readonly leaseTimeout: number;
  readonly status: 429 | 503;
  readonly failOpen: boolean;
}

/** The limit a request is held to (the policy's, or its consumer's own) and its refusal, built once per generation. */
interface Plan {
  readonly limit: number;
  readonly refused: Reply;
}

/** One request's place: the semaphore's key and the lease. */
interface Held {
  key: string;
  lease: string;
}

const noop = (): void => undefined;

/** The concurrency-limit policy type (registered in src/policies/registry.ts). */
export const concurrencyLimitPolicy = {
  type: 'concurrency-limit',
  description:
    'Allows at most `limit` requests of one key (consumer, credential, client address, a header, the path, the route, or a combination) in flight at once, across workers and instances; one more is refused with 429 (or 503) CONCURRENCY_LIMITED.',
  config: concurrencyLimitConfig,
  overrideKeys: ['limit'],

  resolve(raw: RawConcurrencyLimitConfig, ctx): ResolvedConcurrencyLimit {
    const leaseTimeout = parseDuration(raw.leaseTimeout ?? '5m');
    if (leaseTimeout < 1000) ctx.problem({ path: ['leaseTimeout'], expected: 'a duration of 1s or more', found: String(raw.leaseTimeout) });
    return { key: raw.key ?? 'ip', limit: raw.limit, leaseTimeout, status: raw.status ?? 429, failOpen: raw.failOpen ?? true };
  },

  create(config, deps): Filter {
    const { leaseTimeout } = config;
    const keyOf = compileKey(config.key);
    const prefix = `cl:${deps.name}:`;
    const state = deps.state.user(config.failOpen ? 'failOpen' : 'failClosed');
    const planOf = (limit: number): Plan => ({
      limit,
      refused: Object.freeze({
        status: config.status,
        headers: Object.freeze({ 'retry-after': '1' }),
        error: Object.freeze({ code: 'CONCURRENCY_LIMITED', message: `more than ${limit} requests in flight at once for this key` }),
      }),
    });
    const base = { plan: planOf(config.limit), keySuffix: '' };
    const decisions = new LimitDecisions(deps);
    // Per generation: the consumers' own limits (consumers.NAME.limits); undefined when none.
    const overrides = overrideTable(deps, config.key, (o) => planOf(o.limit));
    const filter: Filter = {
      async onRequest(s) {
        const chosen = planFor(overrides, s, base);
        if (chosen === UNLIMITED) return undefined;
        const plan = chosen.plan;
        const key = prefix + keyOf(s) + chosen.keySuffix;
        const lease = await state.acquire(key, plan.limit, leaseTimeout);
        decisions.decide(lease !== undefined);
        if (lease === undefined) return plan.refused;
        s.local<Held>(filter, { key, lease });
        return undefined;
      },
      onLog(s) {
        const held = s.local<Held>(filter);
        if (held !== undefined) state.release(held.key, held.lease).catch(noop);
      },
    };
    return filter;
  },
} satisfies PolicyType<typeof concurrencyLimitConfig, ResolvedConcurrencyLimit>;
