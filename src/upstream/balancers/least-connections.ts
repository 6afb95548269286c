/**
 * Least connections: the candidate with the fewest requests in flight per unit of weight
 * (`inFlight / weight`), as NGINX's `least_conn` (ngx_http_upstream_least_conn_module.c) and
 * HAProxy's `leastconn`. Ties, which are the rule under light load (everyone at 0), are broken by a
 * weighted random choice among the tied candidates, as NGINX breaks them by weighted round robin:
 * traffic neither piles onto the first endpoint nor ignores weights while the upstream is idle.
 */
import type { Balancer, BalancerEndpoint, BalancerOptions, PickContext } from './balancer.ts';

export class LeastConnections implements Balancer {
  readonly name = 'least-connections';
  readonly #random: () => number;

  constructor(options?: Partial<BalancerOptions>) {
    this.#random = options?.random ?? Math.random;
  }

  update(_endpoints: readonly BalancerEndpoint[]): void {}

  pick<E extends BalancerEndpoint>(candidates: readonly E[], _ctx: PickContext): E | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    // First pass: the lowest load, how many candidates share it and their total weight.
    let least = Infinity;
    let tied = 0;
    let tiedWeight = 0;
    let first = 0;
    for (let i = 0; i < n; i++) {
      const e = candidates[i];
      const load = e.inFlight / e.weight;
      if (load < least) {
        least = load;
        tied = 1;
        tiedWeight = e.weight;
        first = i;
      } else if (load === least) {
        tied++;
        tiedWeight += e.weight;
      }
    }
    if (tied === 1) return candidates[first];
    // Second pass: a weighted random one of the tied.
    let r = this.#random() * tiedWeight;
    let last = first;
    for (let i = first; i < n; i++) {
      const e = candidates[i];
      if (e.inFlight / e.weight !== least) continue;
      r -= e.weight;
      if (r < 0) return e;
      last = i;
    }
    return candidates[last]; // rounding left r at 0: the last tied one
  }
}
