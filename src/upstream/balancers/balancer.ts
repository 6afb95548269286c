/**
 * The contract between an Upstream and its balancing algorithm, shared by HTTP today, TCP and UDP
 * later, and by the simulator (`switchboard simulate`), which drives these same modules over a
 * synthetic fleet.
 *
 * The Upstream keeps the set of endpoints traffic may go to (healthy and not ejected, or all of them
 * in panic mode) and tells the balancer whenever that set changes, through `update`. Each attempt of
 * a request then calls `pick` with `candidates`: that set, or, on a retry, that set minus the
 * endpoints already tried. A balancer reads each endpoint's `id`, `weight`, `inFlight` and
 * `latencyCost(now)`, keeps its own state (a cursor, a ring, a table), and never changes endpoints.
 */

/** What a balancer may know about one endpoint. */
export interface BalancerEndpoint {
  /** Opaque id, stable for the same upstream and origin across reloads; what hash tables hash. */
  readonly id: string;
  /** Effective weight now (configured weight, scaled down while slow start ramps it up); > 0. */
  readonly weight: number;
  /** Requests (or connections, for layer 4) in flight to this endpoint now. */
  readonly inFlight: number;
  /**
   * Peak-EWMA estimate of this endpoint's response time in ms at time `now` (ms, same clock as
   * PickContext.now). 0 when nothing was observed yet.
   */
  latencyCost(now: number): number;
}

/** Per-attempt facts a balancer may use. Upstreams reuse one object; read it, never keep it. */
export interface PickContext {
  /**
   * Key for hashing balancers: the client address (ip-hash) or the configured request key
   * (consistent-hash). undefined when the request has none; a hashing balancer then picks at random.
   */
  hashKey: string | undefined;
  /** Current time in ms (performance.now() in production, virtual time in the simulator). */
  now: number;
}

export interface Balancer {
  /** Algorithm name as written in the config (`round-robin`, …). */
  readonly name: string;
  /**
   * Called with the current set of endpoints traffic may go to, before the first `pick` and
   * whenever that set changes (health, ejection, panic, reload). Balancers that precompute (hash
   * rings, Maglev tables, schedules) rebuild here; the array must not be kept beyond the next update
   * call and is never mutated by the balancer.
   */
  update(endpoints: readonly BalancerEndpoint[]): void;
  /**
   * Chooses the endpoint for one attempt among `candidates`, a subset (often the very array) of the
   * last `update`'s set. Returns undefined only when `candidates` is empty.
   */
  pick<E extends BalancerEndpoint>(candidates: readonly E[], ctx: PickContext): E | undefined;
}

/** Options every balancer factory receives. */
export interface BalancerOptions {
  /** Uniform random number in [0, 1). Math.random in production; a seeded generator in the simulator. */
  random: () => number;
  /** Table for the hashing balancers (ip-hash, consistent-hash): `ring` (weighted ring hash) or `maglev`. */
  hashTable: 'ring' | 'maglev';
}

/** A balancer factory, one per algorithm, registered by name in `balancers/index.ts`. */
export type BalancerFactory = (options: BalancerOptions) => Balancer;
