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
 * - The backend unreachable: `failOpen` (default true) lets requests through without counting or
 *   answering fields; false refuses them. `StateGuard` logs the outage once and the metrics count it.
 * - Metrics: each decision is published (`allowed`, `limited`, `delayed`, `failed_open`,
 *   `failed_closed`: src/policies/events.ts) by `keep` and `refuse`, for
 *   `switchboard_rate_limit_decisions_total`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Filter, PolicyType, Reply, ResponseHead, Session } from '../filter.ts';
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
}

/** What one request's take answered, kept for the response fields. */
interface Decision {
  remaining: number;
  /** Seconds, for `t` / `X-RateLimit-Reset`. */
  reset: number;
}

const ERROR = Object.freeze({ code: 'RATE_LIMITED', message: 'too many requests: the rate limit is reached; retry after the time Retry-After gives' });

/** The rate-limit policy type (registered in src/policies/registry.ts). */
export const rateLimitPolicy = {
  type: 'rate-limit',
  description:
    'Limits requests per key (consumer, credential, client address, a header, the path, the route, or a combination) to `limit` per `window`, exactly across workers (state.backend memory) and instances (redis); over it 429 RATE_LIMITED with Retry-After, or (mode delay) requests wait their turn. Sends the IETF RateLimit-Policy and RateLimit fields.',
  config: rateLimitConfig,

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
    };
  },

  create(config, deps): Filter {
    const { limit, window, burst, mode, headers } = config;
    const keyOf = compileKey(config.key);
    const prefix = `rl:${deps.name}:`;
    const state = deps.state.user(config.failOpen ? 'failOpen' : 'failClosed');
    const refill = (limit * 1000) / window;
    const capacity = mode === 'delay' ? 1 : burst;
    const quoted = `"${deps.name.replace(/["\\]/g, '')}"`;
    const policyField = `${quoted};q=${limit};w=${Math.max(1, Math.round(window / 1000))}`;
    const ietf = headers === 'ietf' || headers === 'both';
    const legacy = headers === 'legacy' || headers === 'both';
    // Per worker: requests of each key waiting their turn (mode delay), to bound them.
    const waiting = new Map<string, number>();
    const decisions = new LimitDecisions(deps);

    const fields = (out: Record<string, string>, d: Decision): void => {
      if (ietf) {
        out['ratelimit-policy'] = policyField;
        out.ratelimit = `${quoted};r=${d.remaining};t=${d.reset}`;
      }
      if (legacy) {
        out['x-ratelimit-limit'] = String(limit);
        out['x-ratelimit-remaining'] = String(d.remaining);
        out['x-ratelimit-reset'] = String(d.reset);
      }
    };

    const refuse = (retryAfterMs: number): Reply => {
      decisions.decide(false);
      const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
      const h: Record<string, string> = { 'retry-after': String(seconds) };
      if (deps.state.available) fields(h, { remaining: 0, reset: seconds });
      return { status: 429, headers: h, error: ERROR };
    };

    /** Remembers the decision for onResponse (only when the backend answered it: a fail-open grant counted nothing). */
    const keep = (s: Session, self: object, remaining: number, waited = false): undefined => {
      decisions.decide(true, waited);
      if (headers !== 'none' && deps.state.available) {
        s.local<Decision>(self, { remaining, reset: Math.ceil(((capacity - remaining) * 1000) / refill / 1000) });
      }
      return undefined;
    };

    const delayed = async (s: Session, self: object, key: string, retryAfterMs: number): Promise<Reply | undefined> => {
      const queued = waiting.get(key) ?? 0;
      if (queued >= burst) return refuse(retryAfterMs);
      waiting.set(key, queued + 1);
      try {
        for (;;) {
          await sleep(Math.max(1, retryAfterMs));
          const r = await state.take(key, 1, capacity, refill);
          if (r.allowed) return keep(s, self, r.remaining, true);
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
        const key = prefix + keyOf(s);
        const r = await state.take(key, 1, capacity, refill);
        if (r.allowed) return keep(s, filter, r.remaining);
        if (mode === 'delay' && deps.state.available) return delayed(s, filter, key, r.retryAfterMs);
        return refuse(r.retryAfterMs);
      },
    };
    if (headers !== 'none') {
      filter.onResponse = (s: Session, head: ResponseHead) => {
        const d = s.local<Decision>(filter);
        if (d === undefined) return undefined;
        if (ietf) {
          head.headers.append('ratelimit-policy', policyField);
          head.headers.append('ratelimit', `${quoted};r=${d.remaining};t=${d.reset}`);
        }
        if (legacy) {
          head.headers.set('x-ratelimit-limit', String(limit));
          head.headers.set('x-ratelimit-remaining', String(d.remaining));
          head.headers.set('x-ratelimit-reset', String(d.reset));
        }
        return undefined;
      };
    }
    return filter;
  },
} satisfies PolicyType<typeof rateLimitConfig, ResolvedRateLimit>;
