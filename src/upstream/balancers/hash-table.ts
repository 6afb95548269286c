/**
 * The lookup tables behind the hashing balancers (ip-hash, consistent-hash), built once per
 * `update` and shared by both:
 *
 * - `ring`: a weighted ring hash in the manner of Karger et al., "Consistent Hashing and Random
 *   Trees" (STOC 1997) and libketama: each endpoint puts virtual nodes on a circle of 2^31
 *   positions, as many as its weight asks for, and a key belongs to the first node at or after its
 *   hash, wrapping. Removing an endpoint moves only the keys of its own nodes.
 * - `maglev`: the lookup table of "Maglev: A Fast and Reliable Software Network Load Balancer"
 *   (Eisenbud et al., NSDI 2016), section 3.4: each endpoint walks its own permutation of a prime
 *   number of slots (offset and skip from two hashes of its id) and claims the next free slot of it
 *   in turn, here in proportion to its weight; a key belongs to slot hash % size. Spread is more
 *   even than a ring of the same memory and lookup is O(1); an endpoint change moves slightly more
 *   than its own share of keys.
 *
 * Both hash endpoint ids, never array positions, and visit endpoints in id order, so the same set of
 * endpoints gives the same table in any order, on any proxy, across reloads. Both expose the same
 * shape: `owners[p]` is the endpoint (its index in the array given to the builder) at position `p`,
 * `start(h)` is the position of a key hash, and positions after it (wrapping) are where a key goes
 * when its endpoint is not among the candidates of a retry.
 *
 * Weights are read when the table is built. An endpoint whose weight changes later (slow start
 * ramping up) keeps its share in the table until the next `update`.
 */
import type { BalancerEndpoint } from './balancer.ts';
import { hash31 } from './hash.ts';

export type HashTableKind = 'ring' | 'maglev';

export interface HashTable {
  /** Endpoint index (into the builder's array) at each position. Empty for no endpoints. */
  readonly owners: Int32Array;
  /** The position a key with hash `h` (hash31 of the key: 0 … 2^31-1) maps to. */
  start(h: number): number;
}

export function buildHashTable(kind: HashTableKind, endpoints: readonly BalancerEndpoint[]): HashTable {
  return kind === 'maglev' ? new MaglevTable(endpoints) : new RingTable(endpoints);
}

/** An endpoint's weight for table building; the contract says > 0, anything else counts as 1. */
function weightOf(e: BalancerEndpoint): number {
  const w = e.weight;
  return w > 0 && w < Infinity ? w : 1;
}

/** Indices of `endpoints` ordered by id, so table building does not depend on array order. */
function byId(endpoints: readonly BalancerEndpoint[]): number[] {
  const order = endpoints.map((_, i) => i);
  order.sort((a, b) => (endpoints[a].id < endpoints[b].id ? -1 : endpoints[a].id > endpoints[b].id ? 1 : a - b));
  return order;
}

/**
 * Virtual nodes per unit of weight (a weight-1 endpoint gets 4096). With r nodes an endpoint's
 * share deviates from its weight's by about 1/sqrt(r) (relative): ~1.6% here. Measured (exact arc
 * shares, 40 random sets of 5 equal endpoints): rms deviation 1.5%, worst 4.4%; 2048 per endpoint
 * gives 2.1% / 5.7%, 8192 gives 1.0% / 2.8%. Lookup is a binary search within one bucket of a few
 * nodes (an index by the top bits of the hash), so its cost hardly depends on the ring size; memory
 * is ~10 bytes per node.
 */
export const RING_NODES_PER_WEIGHT = 4096;
/** Most nodes a ring holds (~2.6 MB); beyond it nodes per weight halve until the ring fits. */
export const RING_MAX_NODES = 262_144;

/**
 * Weighted ring hash. Endpoint i gets round(weight_i × perWeight) nodes (at least one), node r of
 * it at hash31(id, r), so an endpoint's nodes depend on its own id and weight only: removing,
 * adding or reweighting one endpoint leaves every other endpoint's nodes where they were, and only
 * keys on the changed endpoint's arcs move (a slow-starting endpoint gains nodes as its weight
 * grows, keeping those it had). perWeight is RING_NODES_PER_WEIGHT unless the total weight exceeds
 * RING_MAX_NODES / RING_NODES_PER_WEIGHT (64: e.g. 64 endpoints of weight 1); then it is the largest
 * power of two that keeps the ring within RING_MAX_NODES, and a change that moves the total weight
 * across a power of two halves or doubles every endpoint's nodes (moving more keys, once).
 */
export class RingTable implements HashTable {
  /** Node hashes, ascending. */
  readonly points: Int32Array;
  readonly owners: Int32Array;
  /** Index of the first node of each bucket of hashes sharing their top bits (about 2-4 nodes). */
  readonly #bucketStart: Int32Array;
  /** h >>> shift is h's bucket. */
  readonly #shift: number;

  constructor(endpoints: readonly BalancerEndpoint[]) {
    const n = endpoints.length;
    let totalWeight = 0;
    for (const e of endpoints) totalWeight += weightOf(e);
    const perWeight = totalWeight * RING_NODES_PER_WEIGHT <= RING_MAX_NODES ? RING_NODES_PER_WEIGHT : 2 ** Math.floor(Math.log2(RING_MAX_NODES / totalWeight));
    const order = byId(endpoints);
    const counts = order.map((i) => Math.max(1, Math.round(weightOf(endpoints[i]) * perWeight)));
    let total = 0;
    for (const c of counts) total += c;
    // Sort nodes by (hash, rank by id) packed in one float: hash × 2^21 + rank < 2^52, exact.
    const keys = new Float64Array(total);
    let k = 0;
    for (let rank = 0; rank < n; rank++) {
      const id = endpoints[order[rank]].id;
      for (let r = 0; r < counts[rank]; r++) keys[k++] = hash31(id, r) * 2_097_152 + rank;
    }
    keys.sort();
    this.points = new Int32Array(total);
    this.owners = new Int32Array(total);
    for (let j = 0; j < total; j++) {
      const rank = keys[j] % 2_097_152;
      this.points[j] = (keys[j] - rank) / 2_097_152;
      this.owners[j] = order[rank];
    }
    const bits = Math.max(0, Math.min(20, Math.floor(Math.log2(Math.max(1, total))) - 1));
    this.#shift = 31 - bits;
    this.#bucketStart = new Int32Array((1 << bits) + 1);
    for (let b = 0, j = 0; b <= 1 << bits; b++) {
      const from = b * 2 ** this.#shift; // first hash of bucket b
      while (j < total && this.points[j] < from) j++;
      this.#bucketStart[b] = j;
    }
  }

  /** Index of the first node at or after `h`, wrapping to 0 past the last. */
  start(h: number): number {
    // Binary search within the bucket of h's top bits (a few nodes), not the whole ring.
    const points = this.points;
    const b = h >>> this.#shift;
    let lo = this.#bucketStart[b];
    let hi = this.#bucketStart[b + 1];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === points.length ? 0 : lo;
  }
}

/** Prime table sizes; the smallest at least 100 × the endpoint count is used (the paper's advice). */
const MAGLEV_SIZES = [65_537, 131_071, 262_139, 524_287, 1_048_573, 2_097_143];
const OFFSET_SEED = 0x4f464653; // 'OFFS'
const SKIP_SEED = 0x534b4950; // 'SKIP'

/**
 * Maglev lookup table. Endpoints take turns in id order; in each round an endpoint earns
 * weight / maxWeight of a slot and claims one whenever it has earned a whole one, so the heaviest
 * claims every round and each endpoint ends with slots in proportion to its weight.
 */
export class MaglevTable implements HashTable {
  readonly owners: Int32Array;

  constructor(endpoints: readonly BalancerEndpoint[]) {
    const n = endpoints.length;
    if (n === 0) {
      this.owners = new Int32Array(0);
      return;
    }
    const size = MAGLEV_SIZES.find((m) => m >= 100 * n) ?? MAGLEV_SIZES[MAGLEV_SIZES.length - 1];
    const order = byId(endpoints);
    const next = new Float64Array(n); // next slot of each endpoint's permutation
    const skip = new Float64Array(n);
    const rate = new Float64Array(n);
    const credit = new Float64Array(n);
    let maxWeight = 0;
    for (const e of endpoints) maxWeight = Math.max(maxWeight, weightOf(e));
    for (let rank = 0; rank < n; rank++) {
      const e = endpoints[order[rank]];
      next[rank] = hash31(e.id, OFFSET_SEED) % size;
      skip[rank] = (hash31(e.id, SKIP_SEED) % (size - 1)) + 1;
      rate[rank] = weightOf(e) / maxWeight;
    }
    const owners = new Int32Array(size).fill(-1);
    let filled = 0;
    while (filled < size) {
      for (let rank = 0; rank < n && filled < size; rank++) {
        credit[rank] += rate[rank];
        if (credit[rank] < 1) continue;
        credit[rank] -= 1;
        let slot = next[rank];
        while (owners[slot] >= 0) {
          slot += skip[rank];
          if (slot >= size) slot -= size;
        }
        owners[slot] = order[rank];
        slot += skip[rank];
        next[rank] = slot >= size ? slot - size : slot;
        filled++;
      }
    }
    this.owners = owners;
  }

  start(h: number): number {
    return h % this.owners.length;
  }
}
