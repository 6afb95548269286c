/**
 * Least response time: power of two random choices over a latency-weighted load, as Finagle's
 * "P2C + PeakEWMA" balancer (also Linkerd's default). Two distinct candidates are sampled at random
 * (in proportion to weight, see pair-sampler.ts) and the one with the lower score wins, where
 *
 *     score = latencyCost(now) × (inFlight + 1) / weight
 *
 * i.e. the expected wait behind the requests already sent there, with latencyCost the endpoint's
 * Peak-EWMA response time (see ../latency.ts). Sampling two instead of scanning for the minimum
 * keeps a burst from herding onto the one endpoint that looked fastest a moment ago (Mitzenmacher,
 * The Power of Two Choices).
 *
 * An endpoint with no observation yet has latencyCost 0, which would make its score 0 whatever its
 * in-flight count and send it the whole burst that arrives before its first response. It is scored
 * instead with the mean cost of the observed candidates (or a fixed cost when none is observed), so
 * its in-flight count still counts. (Linkerd uses a configured default RTT to the same end.)
 */
import type { Balancer, BalancerEndpoint, BalancerOptions, PickContext } from './balancer.ts';
import { PairSampler } from './pair-sampler.ts';

/** Cost (ms) assumed when no candidate has an observation; any positive value ranks by load alone. */
const UNOBSERVED_COST = 1;

export class LeastResponseTime implements Balancer {
  readonly name = 'least-response-time';
  readonly #pair: PairSampler;

  constructor(options?: Partial<BalancerOptions>) {
    this.#pair = new PairSampler(options?.random ?? Math.random);
  }

  update(_endpoints: readonly BalancerEndpoint[]): void {}

  pick<E extends BalancerEndpoint>(candidates: readonly E[], ctx: PickContext): E | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    const pair = this.#pair;
    pair.sample(candidates);
    const a = candidates[pair.first];
    const b = candidates[pair.second];
    const now = ctx.now;
    let costA = a.latencyCost(now);
    let costB = b.latencyCost(now);
    if (costA <= 0 || costB <= 0) {
      // Rare (until an endpoint's first response): one scan for the default.
      const fallback = meanObservedCost(candidates, now);
      if (costA <= 0) costA = fallback;
      if (costB <= 0) costB = fallback;
    }
    const scoreA = (costA * (a.inFlight + 1)) / a.weight;
    const scoreB = (costB * (b.inFlight + 1)) / b.weight;
    return scoreA <= scoreB ? a : b;
  }
}

/** Mean latencyCost of the candidates that have one; UNOBSERVED_COST when none has. */
function meanObservedCost(candidates: readonly BalancerEndpoint[], now: number): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < candidates.length; i++) {
    const cost = candidates[i].latencyCost(now);
    if (cost > 0) {
      sum += cost;
      count++;
    }
  }
  return count === 0 ? UNOBSERVED_COST : sum / count;
}
