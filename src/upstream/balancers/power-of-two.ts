/**
 * Power of two random choices: sample two distinct candidates at random (in proportion to weight,
 * see pair-sampler.ts) and send the request to the less loaded one (`inFlight / weight`; on a tie,
 * the first drawn). Mitzenmacher, "The Power of Two Choices in Randomized
 * Load Balancing" (IEEE TPDS, 2001): two samples instead of one cut the maximum load exponentially,
 * without scanning every endpoint or herding on the single least loaded one the way a stale
 * least-connections view can. Also HAProxy's `random(2)` and Envoy's least_request default.
 */
import type { Balancer, BalancerEndpoint, BalancerOptions, PickContext } from './balancer.ts';
import { PairSampler } from './pair-sampler.ts';

export class PowerOfTwo implements Balancer {
  readonly name = 'power-of-two';
  readonly #pair: PairSampler;

  constructor(options?: Partial<BalancerOptions>) {
    this.#pair = new PairSampler(options?.random ?? Math.random);
  }

  update(_endpoints: readonly BalancerEndpoint[]): void {}

  pick<E extends BalancerEndpoint>(candidates: readonly E[], _ctx: PickContext): E | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    const pair = this.#pair;
    pair.sample(candidates);
    const a = candidates[pair.first];
    const b = candidates[pair.second];
    // a.inFlight / a.weight <= b.inFlight / b.weight, without dividing (weights are > 0)
    return a.inFlight * b.weight <= b.inFlight * a.weight ? a : b;
  }
}
