/** Test scaffolding for balancer unit tests: plain endpoints with settable load. */
import type { BalancerEndpoint } from './balancer.ts';

export interface FakeEndpoint extends BalancerEndpoint {
  weight: number;
  inFlight: number;
  /** Fixed latency estimate returned by latencyCost. */
  cost: number;
}

export function fakeEndpoints(ids: string[], weights: number[] = []): FakeEndpoint[] {
  return ids.map((id, i) => ({
    id,
    weight: weights[i] ?? 1,
    inFlight: 0,
    cost: 0,
    latencyCost(this: FakeEndpoint): number {
      return this.cost;
    },
  }));
}

/** Mulberry32: a tiny seeded PRNG with uniform output in [0, 1), so balancer tests are reproducible. */
export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How many times each id was picked, in first-seen order. */
export function tally(ids: Iterable<string | undefined>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const id of ids) if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
}
