/**
 * `rate-limit`: `limit` requests per `window` per key, decided and counted in one atomic step of the
 * shared state's token bucket (`take`: a bucket of `burst` tokens refilled at limit / window, the
 * GCRA of redis-cell and Stripe in another form). Of N concurrent requests against an empty count,
 * exactly `burst` pass: the bucket is one entry of the supervisor's MemoryState (every worker of the
 * machine) or one Redis hash changed by one Lua script (every instance), never a read followed by a
 * write. Kong's `rate-limiting` reads the count, decides, then increments, and overshoots under
 * concurrency; APISIX's `limit-count` without Redis counts per node.
 *
 * State: the bucket is per machine (`state.backend: memory`) or per fleet (`redis`); the delay
 * queue's lengths are per worker (they bound how many requests one worker holds).
 *
 * - `mode: reject`: over the limit, 429 RATE_LIMITED with Retry-After (whole seconds until a token
 *   is back).
 * - `mode: delay` (nginx `limit_req` without `nodelay`): the bucket holds one token, so requests pass
 *   one per window / limit; a request that finds it empty waits for the next token (up to `burst`
 *   waiting per key in this worker; beyond them 429). Waiters retry when their token is due, so the
 *   order among them is approximately their arrival order.
 * - Response fields (draft-ietf-httpapi-ratelimit-headers-11, §3 and §4): `RateLimit-Policy:
 *   "<policy>";q=<limit>;w=<window s>` and `RateLimit: "<policy>";r=<remaining>;t=<s>`, where `t` is
 *   the seconds until the bucket is full again (allowed) or until the next token (refused). Several
 *   rate-limit policies on a route each add their item to the same two fields (they are lists).
 *   Legacy `X-RateLimit-*` on request; with several policies, the last one to run sets them.
 *   `partitionKey: true` adds `pk=:<base64>:` (§3.1.4, §4.1.3) to both items: the first 9 bytes of
 *   the SHA-256 of the state key (policy name and key value), so a client can tell its partitions
 *   apart while the key, a credential id or a header value, is never shown.
 * - Per-consumer overrides (`consumers.NAME.limits.<policy>`: limit, window, burst; or unlimited):
 *   compiled into a plan per consumer once per generation (limit-overrides.ts); the plan's numbers
 *   travel with the take, so the decision stays one atomic step.
 * - The backend unreachable: `failOpen` (default true) lets requests through without counting or
 *   answering fields; false refuses them. `StateGuard` logs the outage once and the metrics count it.
 * - Metrics: each decision is published (`allowed`, `limited`, `delayed`, `failed_open`,
 *   `failed_closed`: src/policies/events.ts) by `keep` and `refuse`, for
 *   `switchboard_rate_limit_decisions_total`.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Filter, PolicyType, Reply, ResponseHead, Session } from '../filter.ts';
import { overrideTable, planFor, UNLIMITED } from '../limit-overrides.ts';
import { parseDuration } from '../../util/units.ts';
import { compileKey } from '../../util/limit-key.ts';
import { LimitDecisions } from '../events.ts';
import { rateLimitConfig, type RawRateLimitConfig } from './config.ts';

/** A rate-limit policy's config once resolved. */
export interface ResolvedRateLimit {
  readonly key: string | readonly string[];
  readonly limit: number;
  /** ms */
  readonly window: number;
  readonly burst: number;
  readonly mode: 'reject' | 'delay';
  readonly failOpen: boolean;
  readonly headers: 'ietf' | 'legacy' | 'both' | 'none';
  readonly partitionKey: boolean;
}

/** The numbers of one request's take: the policy's, or a consumer's override (compiled once per generation). */
interface Plan {
  readonly limit: number;
  /** mode reject: the bucket's size; mode delay: how many may wait per key in this worker. */
  readonly burst: number;
  /** The bucket's size as the state holds it (1 in mode delay). */
  readonly capacity: number;
  /** Tokens per second. */
  readonly refill: number;
  /** `"<policy>";q=<limit>;w=<window s>`, the RateLimit-Policy item without `pk`. */
  readonly policyField: string;
}

/** What one request's take answered, kept for the response fields. */
interface Decision {
  plan: Plan;
  /** The state key (for `pk`, which is a hash of it). */
  key: string;
  remaining: number;
  /** Seconds, for `t` / `X-RateLimit-Reset`. */
  reset: number;
}

/** Bytes of SHA-256 in `pk`: 72 bits tell partitions apart and are 12 base64 characters, no padding. */
const PK_BYTES = 9;

const ERROR = Object.freeze({ code: 'RATE_LIMITED', message: 'too many requests: the rate limit is reached; retry after the time Retry-After gives' });

/** The rate-limit policy type (registered in src/policies/registry.ts). */
export const rateLimitPolicy = {
  type: 'rate-limit',
  description:
    'Limits requests per key (consumer, credential, client address, a header, the path, the route, or a combination) to `limit` per `window`, exactly across workers (state.backend memory) and instances (redis); over it 429 RATE_LIMITED with Retry-After, or (mode delay) requests wait their turn. Sends the IETF RateLimit-Policy and RateLimit fields.',
  config: rateLimitConfig,
  overrideKeys: ['limit', 'window', 'burst'],

  resolve(raw: RawRateLimitConfig, ctx): ResolvedRateLimit {
    const window = parseDuration(raw.window);
    if (window <= 0) ctx.problem({ path: ['window'], expected: 'a duration above 0, e.g. 1s or 1m', found: String(raw.window) });
    return {
      key: raw.key ?? 'ip',
      limit: raw.limit,
      window,
      burst: raw.burst ?? raw.limit,
      mode: raw.mode ?? 'reject',
      failOpen: raw.failOpen ?? true,
      headers: raw.headers ?? 'ietf',
      partitionKey: raw.partitionKey ?? false,
    };
  },

  create(config, deps): Filter {
    const { mode, headers } = config;
    const keyOf = compileKey(config.key);
    const prefix = `rl:${deps.name}:`;
    const state = deps.state.user(config.failOpen ? 'failOpen' : 'failClosed');
    const quoted = `"${deps.name.replace(/["\\]/g, '')}"`;
    const ietf = headers === 'ietf' || headers === 'both';
    const legacy = headers === 'legacy' || headers === 'both';
    const partitionKey = config.partitionKey && ietf;
    const planOf = (limit: number, window: number, burst: number): Plan => ({
      limit,
      burst,
      capacity: mode === 'delay' ? 1 : burst,
      refill: (limit * 1000) / window,
      policyField: `${quoted};q=${limit};w=${Math.max(1, Math.round(window / 1000))}`,
    });
    const base = { plan: planOf(config.limit, config.window, config.burst), keySuffix: '' };
    // Per generation: the consumers' own numbers (consumers.NAME.limits); undefined when none.
    const overrides = overrideTable(deps, config.key, (o) => planOf(o.limit, o.window ?? config.window, o.burst ?? o.limit));
    // Per worker: requests of each key waiting their turn (mode delay), to bound them.
    const waiting = new Map<string, number>();
    const decisions = new LimitDecisions(deps);

    /** The IETF items of a decision: `pk` (a hash of the state key, never the key) when `partitionKey`. */
    const items = (d: Decision): [string, string] => {
      if (!partitionKey) return [d.plan.policyField, `${quoted};r=${d.remaining};t=${d.reset}`];
      const pk = `;pk=:${createHash('sha256').update(d.key).digest().subarray(0, PK_BYTES).toString('base64')}:`;
      return [d.plan.policyField + pk, `${quoted};r=${d.remaining};t=${d.reset}${pk}`];
    };

    const fields = (out: Record<string, string>, d: Decision): void => {
      if (ietf) [out['ratelimit-policy'], out.ratelimit] = items(d);
      if (legacy) {
        out['x-ratelimit-limit'] = String(d.plan.limit);
        out['x-ratelimit-remaining'] = String(d.remaining);
        out['x-ratelimit-reset'] = String(d.reset);
      }
    };

    const refuse = (plan: Plan, key: string, retryAfterMs: number): Reply => {
      decisions.decide(false);
      const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      const h: Record<string, string> = { 'retry-after': String(seconds) };
      if (deps.state.available && headers !== 'none') fields(h, { plan, key, remaining: 0, reset: seconds });
      return { status: 429, headers: h, error: ERROR };
    };

    /** Remembers the decision for onResponse (only when the backend answered it: a fail-open grant counted nothing). */
    const keep = (s: Session, self: object, plan: Plan, key: string, remaining: number, waited = false): undefined => {
      decisions.decide(true, waited);
      if (headers !== 'none' && deps.state.available) {
        s.local<Decision>(self, { plan, key, remaining, reset: Math.ceil(((plan.capacity - remaining) * 1000) / plan.refill / 1000) });
      }
      return undefined;
    };

    const delayed = async (s: Session, self: object, plan: Plan, key: string, retryAfterMs: number): Promise<Reply | undefined> => {
      const queued = waiting.get(key) ?? 0;
      if (queued >= plan.burst) return refuse(plan, key, retryAfterMs);
      waiting.set(key, queued + 1);
      try {
        for (;;) {
          await sleep(Math.max(1, retryAfterMs));
          const r = await state.take(key, 1, plan.capacity, plan.refill);
          if (r.allowed) return keep(s, self, plan, key, r.remaining, true);
          retryAfterMs = r.retryAfterMs;
        }
      } finally {
        const n = waiting.get(key)! - 1;
        if (n === 0) waiting.delete(key);
        else waiting.set(key, n);
      }
    };

    const filter: Filter = {
      async onRequest(s) {
        const chosen = planFor(overrides, s, base);
        if (chosen === UNLIMITED) return undefined;
        const plan = chosen.plan;
        const key = prefix + keyOf(s) + chosen.keySuffix;
        const r = await state.take(key, 1, plan.capacity, plan.refill);
        if (r.allowed) return keep(s, filter, plan, key, r.remaining);
        if (mode === 'delay' && deps.state.available) return delayed(s, filter, plan, key, r.retryAfterMs);
        return refuse(plan, key, r.retryAfterMs);
      },
    };
    if (headers !== 'none') {
      filter.onResponse = (s: Session, head: ResponseHead) => {
        const d = s.local<Decision>(filter);
        if (d === undefined) return undefined;
        if (ietf) {
          const [policy, now] = items(d);
          head.headers.append('ratelimit-policy', policy);
          head.headers.append('ratelimit', now);
        }
        if (legacy) {
          head.headers.set('x-ratelimit-limit', String(d.plan.limit));
          head.headers.set('x-ratelimit-remaining', String(d.remaining));
          head.headers.set('x-ratelimit-reset', String(d.reset));
        }
        return undefined;
      };
    }
    return filter;
  },
} satisfies PolicyType<typeof rateLimitConfig, ResolvedRateLimit>;
