/**
 * Round robin: each pick takes the next candidate in turn (the classic scheme of NGINX's default
 * `upstream` and HAProxy's `roundrobin` without weights). Weights are ignored here; the weighted
 * variant is its own module.
 */
import type { Balancer, PickContext } from '../balancer.ts';
import type { Endpoint } from '../endpoint.ts';

export class RoundRobin implements Balancer {
  readonly name = 'round-robin';
  #next = 0;

  pick(candidates: readonly Endpoint[], _ctx: PickContext): Endpoint | undefined {
    const n = candidates.length;
    if (n === 0) return undefined;
    if (this.#next >= n) this.#next = 0;
    return candidates[this.#next++];
  }
}
