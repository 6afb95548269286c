/**
 * Round robin: each pick takes the next candidate in turn (NGINX's `upstream` default and HAProxy's
 * `roundrobin`, without weights). Weights are ignored here; `weighted-round-robin` honours them.
 */
import type { Balancer, BalancerEndpoint, PickContext } from './balancer.ts';

export class RoundRobin implements Balancer {
  readonly name = 'round-robin';
  #next = 0;

  update(_endpoints: readonly BalancerEndpoint[]): void {}

  pick<E extends BalancerEndpoint>(candidates: readonly E[], _ctx: PickContext): E | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (this.#next >= n) this.#next = 0;
    return candidates[this.#next++];
  }
}
