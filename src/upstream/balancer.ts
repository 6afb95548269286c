/**
 * The contract between an Upstream and its balancing algorithm.
 *
 * The Upstream filters its endpoints to the available ones (healthy and not full) before calling
 * `pick`, so no balancer re-checks health. `pick` is called once per attempt of a request (a retry
 * calls it again with the endpoints already tried in `ctx.tried`). It may read each endpoint's
 * `weight`, `inFlight`, `latencyEwma` and `id`, and keep its own state (a cursor, a ring); it must
 * not change the endpoints. It returns `undefined` only when `candidates` is empty.
 */
import type { Endpoint } from './endpoint.ts';

/** Per-attempt facts a balancer may use. */
export interface PickContext {
  /** Endpoints earlier attempts of this request already used; empty on the first attempt. */
  readonly tried: ReadonlySet<Endpoint>;
  /** Key for hashing balancers (client address, header, cookie…); undefined when none applies. */
  readonly hashKey: string | undefined;
}

export interface Balancer {
  /** Algorithm name as written in the config (`round-robin`, …). */
  readonly name: string;
  /**
   * Chooses the endpoint for one attempt. `candidates` are available and, when possible, not yet
   * tried; it is never mutated by the balancer and may be a shared array.
   */
  pick(candidates: readonly Endpoint[], ctx: PickContext): Endpoint | undefined;
  /**
   * Called when the set of available endpoints changes (health, reload), before the next `pick`,
   * so that a balancer can rebuild precomputed tables (hash rings, schedules). Optional.
   */
  update?(available: readonly Endpoint[]): void;
}

/** A balancer factory, one per algorithm, registered by name in `balancers/index.ts`. */
export type BalancerFactory = () => Balancer;
