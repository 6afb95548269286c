/**
 * `consumers.NAME.limits`: a consumer's own numbers for counting policies, checked against the
 * policies they name. A name must be a policy whose type takes overrides (`PolicyType.overrideKeys`:
 * rate-limit, quota, concurrency-limit, and any registered type that declares them), and each key
 * one that type allows; problems are placed by the consumer's source (the config or
 * `consumers.file`). The result goes into the consumer's summary, from which the directory builds
 * its per-policy maps (src/policies/consumers.ts).
 */
import type { LimitOverride } from '../policies/filter.ts';
import { policyTypeOf } from '../policies/registry.ts';
import { parseDuration } from '../util/units.ts';
import type { ConsumerSource } from './consumers-file.ts';
import type { RawConsumer } from './consumers-schema.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import type { RawConfig } from './schema.ts';
import { suggest } from './suggest.ts';

/** A policy whose type takes per-consumer overrides: its type's name and the keys it allows. */
export type Overridable = ReadonlyMap<string, { type: string; keys: ReadonlyArray<string> }>;

/** The policies of `raw` whose type takes per-consumer overrides. */
export function overridable(raw: RawConfig): Overridable {
  const out = new Map<string, { type: string; keys: ReadonlyArray<string> }>();
  for (const [name, entry] of Object.entries(raw.policies ?? {})) {
    const type = policyTypeOf((entry as { type?: string }).type ?? '');
    if (type?.overrideKeys !== undefined) out.set(name, { type: type.type, keys: type.overrideKeys });
  }
  return out;
}

/** A consumer's `limits`, checked against the policies they name; undefined when it has none (or none valid). */
export function resolveLimits(
  raw: RawConfig,
  policies: Overridable,
  name: string,
  c: RawConsumer,
  src: ConsumerSource,
  problems: Problem[],
): Record<string, LimitOverride> | undefined {
  if (c.limits === undefined) return undefined;
  const out: Record<string, LimitOverride> = {};
  for (const [policy, o] of Object.entries(c.limits)) {
    const at: KeyPath = [name, 'limits', policy];
    const target = policies.get(policy);
    if (target === undefined) {
      const other = (raw.policies?.[policy] as { type?: string } | undefined)?.type;
      const candidates = [...policies.keys()];
      src.report(at, {
        atKey: true,
        expected: candidates.length
          ? `the name of a rate-limit, quota or concurrency-limit policy (one of: ${candidates.join(', ')})`
          : 'the name of a rate-limit, quota or concurrency-limit policy (none are defined under policies)',
        found: other === undefined ? show(policy) : `${show(policy)}, a ${other} policy (it takes no per-consumer limits)`,
        hint: other === undefined ? suggest(policy, candidates) : undefined,
      });
      continue;
    }
    const before = problems.length;
    for (const key of Object.keys(o) as Array<keyof typeof o>) {
      if (o[key] === undefined || target.keys.includes(key)) continue;
      src.report([...at, key], { atKey: true, expected: `a key a ${target.type} policy’s override takes (${target.keys.join(', ')})`, found: show(key) });
    }
    if (problems.length === before && o.limit === 'unlimited' && (o.window !== undefined || o.burst !== undefined)) {
      src.report([...at, o.window !== undefined ? 'window' : 'burst'], { atKey: true, expected: 'no window or burst beside limit: unlimited', found: 'one' });
    }
    const window = o.window === undefined ? undefined : parseDuration(o.window);
    if (window !== undefined && window <= 0) src.report([...at, 'window'], { expected: 'a duration above 0, e.g. 1s or 1m', found: show(o.window) });
    if (problems.length !== before) continue;
    out[policy] = Object.freeze({ limit: o.limit, ...(window === undefined ? {} : { window }), ...(o.burst === undefined ? {} : { burst: o.burst }) });
  }
  return Object.keys(out).length > 0 ? Object.freeze(out) : undefined;
}
