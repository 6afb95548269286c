/**
 * Weighted round robin, NGINX's "smooth weighted round robin" (ngx_http_upstream_get_peer in
 * ngx_http_upstream_round_robin.c): on every pick each candidate's `current` grows by its weight,
 * the candidate with the largest `current` wins, and the winner's `current` drops by the sum of the
 * candidates' weights. Over any stretch of picks each endpoint gets its weight's share, and heavy
 * endpoints are interleaved with light ones (5,1,1 gives a a b a c a a) instead of sent in bursts.
 *
 * Weights are read on every pick, so slow start (which scales an endpoint's weight up over time)
 * and fractional weights work. On a retry the candidates are the set minus the endpoints already
 * tried; as in NGINX only those candidates take part in that pick.
 */
import type { Balancer, BalancerEndpoint, PickContext } from './balancer.ts';

export class WeightedRoundRobin implements Balancer {
  readonly name = 'weighted-round-robin';
  /** Endpoint ids in the order of the last update, and their `current` at the same index. */
  #ids: string[] = [];
  #current: number[] = [];
  #index = new Map<string, number>();

  update(endpoints: readonly BalancerEndpoint[]): void {
    // Endpoints that stay keep their place in the schedule (an update after every health flap must
    // not restart it, which would always favour the heaviest endpoint); new ones start at 0.
    const ids: string[] = new Array(endpoints.length);
    const current: number[] = new Array(endpoints.length);
    const index = new Map<string, number>();
    for (let i = 0; i < endpoints.length; i++) {
      const id = endpoints[i].id;
      const old = this.#index.get(id);
      ids[i] = id;
      current[i] = old === undefined ? 0 : this.#current[old];
      index.set(id, i);
    }
    this.#ids = ids;
    this.#current = current;
    this.#index = index;
  }

  pick<E extends BalancerEndpoint>(candidates: readonly E[], _ctx: PickContext): E | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    const ids = this.#ids;
    const current = this.#current;
    let total = 0;
    let best = -1;
    let bestSlot = -1;
    let bestCurrent = -Infinity;
    for (let i = 0; i < n; i++) {
      const e = candidates[i];
      // Common path: candidates is the updated array itself, so slot i is candidate i.
      const slot = i < ids.length && ids[i] === e.id ? i : this.#slotOf(e.id);
      const w = e.weight;
      total += w;
      const c = current[slot] + w;
      current[slot] = c;
      if (c > bestCurrent) {
        bestCurrent = c;
        best = i;
        bestSlot = slot;
      }
    }
    current[bestSlot] -= total;
    return candidates[best];
  }

  /** Slot of an id; an id never given to update (should not happen) gets a new slot. */
  #slotOf(id: string): number {
    let slot = this.#index.get(id);
    if (slot === undefined) {
      slot = this.#ids.length;
      this.#ids.push(id);
      this.#current.push(0);
      this.#index.set(id, slot);
    }
    return slot;
  }
}
