/**
 * `quota`: at most `limit` requests per key per calendar day or month (in a time zone), counted in
 * the shared state: one counter per key and period (`q:<policy>:<key>:<period>`, e.g.
 * `q:monthly:c=alice:2026-12`), incremented and compared in one atomic step (`increment`), so of any
 * number of concurrent requests exactly `limit` pass. The counter expires a minute after its
 * period ends; the period in the key keeps periods apart whatever the clocks say. With
 * `state.backend: redis` it survives restarts of Switchboard (and lives as Redis persists it).
 *
 * State: the counter is per machine (`memory`: lost when the supervisor stops) or per fleet
 * (`redis`). A refused request counts too (the counter goes above `limit`), which changes nothing:
 * remaining is reported as 0. What is left is readable with `Gateway.usage(policy, who)`.
 *
 * A consumer's override (`consumers.NAME.limits.<policy>: { limit }`, or `unlimited`) changes the
 * number compared against, never the atomic increment (limit-overrides.ts); `usage` reports the
 * consumer's own limit when `who.consumer` has one (an unlimited consumer: Infinity, nothing counted).
 *
 * Metrics: each decision is published (`allowed`, `limited`, `failed_open`, `failed_closed`:
 * src/policies/events.ts) for `switchboard_quota_decisions_total`.
 */
import type { Filter, PolicyType, ResponseHead, Session, Usage, UsageQuery } from '../filter.ts';
import { compileKey, type KeySource } from '../../util/limit-key.ts';
import { overrideTable, planFor, UNLIMITED } from '../limit-overrides.ts';
import { LimitDecisions } from '../events.ts';
import { quotaConfig, type RawQuotaConfig } from './config.ts';
import { periodAt, zoneFormatter } from './period.ts';

/** A quota policy's config once resolved. */
export interface ResolvedQuota {
  readonly key: string | readonly string[];
  readonly limit: number;
  readonly period: 'day' | 'month';
  readonly timeZone: string;
  readonly failOpen: boolean;
  readonly headers: 'ietf' | 'none';
}

/** Kept from onRequest for the response fields. */
interface Counted {
  /** The policy's limit, or the consumer's own. */
  limit: number;
  remaining: number;
  end: number;
  length: number;
}

/** Lets a counter outlive its period a little (a request at the boundary still finds it). */
const SLACK = 60_000;
const ERROR = Object.freeze({ code: 'QUOTA_EXCEEDED', message: 'the quota of this period is used up; retry after the time Retry-After gives' });

/** The quota policy type (registered in src/policies/registry.ts). */
export const quotaPolicy = {
  type: 'quota',
  description:
    'Allows at most `limit` requests per key (default the consumer) per calendar `day` or `month` in a time zone, exactly across workers and instances (persistent in Redis); beyond it 429 QUOTA_EXCEEDED with Retry-After until the period ends. What is left: `Gateway.usage(policy, who)`.',
  config: quotaConfig,
  overrideKeys: ['limit'],

  resolve(raw: RawQuotaConfig, ctx): ResolvedQuota {
    const timeZone = raw.timeZone ?? 'UTC';
    try {
      zoneFormatter(timeZone);
    } catch {
      ctx.problem({ path: ['timeZone'], expected: 'an IANA time zone, e.g. UTC or Europe/Berlin', found: JSON.stringify(timeZone) });
    }
    return { key: raw.key ?? 'consumer', limit: raw.limit, period: raw.period, timeZone, failOpen: raw.failOpen ?? true, headers: raw.headers ?? 'ietf' };
  },

  create(config, deps): Filter {
    const { period } = config;
    const keyOf = compileKey(config.key);
    const fmt = zoneFormatter(config.timeZone);
    const prefix = `q:${deps.name}:`;
    const state = deps.state.user(config.failOpen ? 'failOpen' : 'failClosed');
    const quoted = `"${deps.name.replace(/["\\]/g, '')}"`;
    // Per generation: the consumers' own limits (consumers.NAME.limits); undefined when none.
    const overrides = overrideTable(deps, config.key, (o) => o.limit);
    const base = { plan: config.limit, keySuffix: '' };
    const decisions = new LimitDecisions(deps);
    // Per worker: the current period, computed again only once it has ended (Intl is not cheap).
    let current = periodAt(period, fmt, Date.now());
    const periodNow = (now: number) => {
      if (now >= current.end || now < current.start) current = periodAt(period, fmt, now);
      return current;
    };
    const fields = (c: Counted): [string, string] => [
      `${quoted};q=${c.limit};w=${Math.round(c.length / 1000)}`,
      `${quoted};r=${c.remaining};t=${Math.max(0, Math.ceil((c.end - Date.now()) / 1000))}`,
    ];

    const filter: Filter = {
      async onRequest(s) {
        const chosen = planFor(overrides, s, base);
        if (chosen === UNLIMITED) return undefined;
        const limit = chosen.plan;
        const key = keyOf(s) + chosen.keySuffix;
        const now = Date.now();
        const p = periodNow(now);
        const used = await state.increment(`${prefix}${key}:${p.id}`, 1, p.end - now + SLACK);
        const counted = deps.state.available;
        decisions.decide(used <= limit);
        if (used > limit) {
          const headers: Record<string, string> = { 'retry-after': String(Math.max(1, Math.ceil((p.end - now) / 1000))) };
          if (config.headers === 'ietf' && counted) {
            [headers['ratelimit-policy'], headers.ratelimit] = fields({ limit, remaining: 0, end: p.end, length: p.end - p.start });
          }
          return { status: 429, headers, error: ERROR };
        }
        if (config.headers === 'ietf' && counted) s.local<Counted>(filter, { limit, remaining: limit - used, end: p.end, length: p.end - p.start });
        return undefined;
      },
      async usage(who: UsageQuery): Promise<Usage> {
        const p = periodNow(Date.now());
        let limit = config.limit;
        let suffix = '';
        const o = who.consumer === undefined ? undefined : overrides?.get(who.consumer);
        if (o === UNLIMITED) return { limit: Number.POSITIVE_INFINITY, used: 0, remaining: Number.POSITIVE_INFINITY, resetAt: p.end, period: p.id };
        if (o !== undefined) {
          limit = o.plan;
          suffix = o.keySuffix;
        }
        const used = await state.get(`${prefix}${keyOf(sourceOf(who))}${suffix}:${p.id}`);
        return { limit, used: Math.min(used, limit), remaining: Math.max(0, limit - used), resetAt: p.end, period: p.id };
      },
    };
    if (config.headers === 'ietf') {
      filter.onResponse = (s: Session, head: ResponseHead) => {
        const c = s.local<Counted>(filter);
        if (c === undefined) return undefined;
        const [policy, now] = fields(c);
        head.headers.append('ratelimit-policy', policy);
        head.headers.append('ratelimit', now);
        return undefined;
      };
    }
    return filter;
  },
} satisfies PolicyType<typeof quotaConfig, ResolvedQuota>;

/** A UsageQuery as the key function reads a request. */
function sourceOf(who: UsageQuery): KeySource {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(who.headers ?? {})) headers[name.toLowerCase()] = value;
  const named = who.consumer !== undefined || who.credential !== undefined;
  return {
    identity: named ? { consumer: { name: who.consumer ?? '' }, credential: who.credential ?? '' } : undefined,
    client: { ip: who.ip ?? '' },
    request: { path: who.path ?? '/', headers },
    route: who.route,
  };
}
