/**
 * Per-consumer overrides of the counting policies (`consumers.NAME.limits.<policy>`), shared by
 * rate-limit, quota and concurrency-limit. Each policy compiles every override of its own into a
 * plan (its numbers and response fields) once per generation; per request it looks the consumer
 * up in that table, and only when the table exists: a policy no consumer overrides pays nothing.
 *
 * The decision stays one atomic step of the shared state: the override's numbers travel with the
 * operation (`take`'s capacity and refill, `acquire`'s limit, the quota's comparison), and the
 * consumer keeps a count of its own. When the policy's key separates consumers already (it has a
 * `consumer` or `credential` part), the consumer's count is the one it had (a reload that adds an
 * override keeps it); otherwise `\u001fc=<consumer>` is appended to the key for the consumer's
 * requests, so no count is ever shared between requests held to different numbers.
 *
 * State: the tables are per worker and per generation (built from the config, which every worker
 * resolves alike); the counts are the policy's own (per machine or per fleet).
 */
import type { LimitOverride, PolicyDeps, Session } from './filter.ts';

/** What a consumer's override makes of one policy: its compiled plan, and what its key gets appended. */
export interface Overridden<Plan> {
  readonly plan: Plan;
  /** '' when the policy's key separates consumers already; else `\u001fc=<consumer>`. */
  readonly keySuffix: string;
}

/** A consumer let through uncounted (`limit: unlimited`). */
export const UNLIMITED = 'unlimited';

/** Consumer name → its plan, or UNLIMITED. */
export type OverrideTable<Plan> = ReadonlyMap<string, Overridden<Plan> | typeof UNLIMITED>;

/**
 * The table of the policy `deps.name`, each override compiled by `compile` (which gets the numeric
 * limit); undefined when no consumer overrides the policy.
 */
export function overrideTable<Plan>(
  deps: PolicyDeps,
  key: string | readonly string[],
  compile: (o: LimitOverride & { readonly limit: number }) => Plan,
): OverrideTable<Plan> | undefined {
  const overrides = deps.consumers.limits(deps.name);
  if (overrides === undefined || overrides.size === 0) return undefined;
  const parts = typeof key === 'string' ? [key] : key;
  const separates = parts.includes('consumer') || parts.includes('credential');
  const table = new Map<string, Overridden<Plan> | typeof UNLIMITED>();
  for (const [consumer, o] of overrides) {
    if (o.limit === UNLIMITED) table.set(consumer, UNLIMITED);
    else table.set(consumer, { plan: compile(o as LimitOverride & { limit: number }), keySuffix: separates ? '' : `\u001fc=${consumer}` });
  }
  return table;
}

/**
 * The plan for the request: its consumer's override (with its key suffix), UNLIMITED, or `base`
 * (the policy's own, with suffix '') when there is no table, no identity yet, or none for it.
 */
export function planFor<Plan>(table: OverrideTable<Plan> | undefined, s: Session, base: Overridden<Plan>): Overridden<Plan> | typeof UNLIMITED {
  const identity = s.identity;
  if (table === undefined || identity === undefined) return base;
  return table.get(identity.consumer.name) ?? base;
}
