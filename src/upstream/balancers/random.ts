/**
 * Weighted random: each candidate is chosen with probability weight / total weight of the
 * candidates (HAProxy's `random`, NGINX's `random` without `two`). Stateless, so independent
 * proxies sharing one upstream do not synchronise the way round robins started together can.
 */
import type { Balancer, BalancerEndpoint, BalancerOptions, PickContext } from './balancer.ts';

export class WeightedRandom implements Balancer {
  readonly name = 'random';
  readonly #random: () => number;

  constructor(options?: Partial<BalancerOptions>) {
    this.#random = options?.random ?? Math.random;
  }

  update(_endpoints: readonly BalancerEndpoint[]): void {}

  pick<E extends BalancerEndpoint>(candidates: readonly E[], _ctx: PickContext): E | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    // Weights can change on every pick (slow start), so they are summed here rather than cached.
    let total = 0;
    for (let i = 0; i < n; i++) total += candidates[i].weight;
    let r = this.#random() * total;
    for (let i = 0; i < n - 1; i++) {
      r -= candidates[i].weight;
      if (r < 0) return candidates[i];
    }
    return candidates[n - 1];
  }
}
