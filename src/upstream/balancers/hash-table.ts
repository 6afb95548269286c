/**
 * The lookup tables behind the hashing balancers (ip-hash, consistent-hash), built once per
 * `update` and shared by both:
 *
 * - `ring`: a weighted ring hash in the manner of Karger et al., "Consistent Hashing and Random
 *   Trees" (STOC 1997) and libketama: each endpoint puts virtual nodes on a 32-bit circle, as many
 *   as its weight asks for, and a key belongs to the first node at or after its hash, wrapping.
 *   Removing an endpoint moves only the keys of its own nodes.
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
import type { BalancerEndpoint } from '../balancer.ts';
import { hash32 } from '../hash.ts';

export type HashTableKind = 'ring' | 'maglev';

export interface HashTable {
  /** Endpoint index (into the builder's array) at each position. Empty for no endpoints. */
  readonly owners: Int32Array;
  /** The position a key with hash `h` (unsigned 32-bit) maps to. */
  start(h: number): number;
}

export function buildHashTable(kind: HashTableKind, endpoints: readonly BalancerEndpoint[]): HashTable {
  return kind === 'maglev' ? new MaglevTable(endpoints) : new RingTable(endpoints);
}

/** Indices of `endpoints` ordered by id, so table building does not depend on array order. */
function byId(endpoints: readonly BalancerEndpoint[]): number[] {
  const order = endpoints.map((_, i) => i);
  order.sort((a, b) => (endpoints[a].id < endpoints[b].id ? -1 : endpoints[a].id > endpoints[b].id ? 1 : a - b));
  return order;
}

/**
 * Virtual nodes the whole ring aims at. With r nodes an endpoint's share deviates from its weight's
 * by about 1/sqrt(r) (relative), so 16384 nodes over 5 endpoints (~4096 each, ~1.6%) keep every
 * share within a few percent; lookup is a binary search over them (14-15 steps), 128 KiB per table.
 */
export const RING_TARGET_NODES = 16_384;
/** Fewest virtual nodes an average-weight endpoint gets however many endpoints there are. */
export const RING_MIN_NODES_PER_ENDPOINT = 64;

/**
 * Weighted ring hash. Endpoint i gets round(weight_i × perWeight) nodes (at least one), node r of
 * it at hash32(id, r). perWeight is a power of two chosen so that the ring holds between
 * RING_TARGET_NODES and twice that: it depends on the endpoints' total weight only through that
 * power of two, so removing or adding an endpoint usually leaves every other endpoint's nodes exactly
 * where they were (only keys on the changed endpoint's nodes move), and when it does change, nodes
 * are added to or removed from every endpoint, never reshuffled.
 */
export class RingTable implements HashTable {
  /** Node hashes, ascending. */
  readonly points: Uint32Array;
  readonly owners: Int32Array;

  constructor(endpoints: readonly BalancerEndpoint[]) {
    const n = endpoints.length;
    let totalWeight = 0;
    for (const e of endpoints) totalWeight += e.weight;
    const target = Math.max(RING_TARGET_NODES, n * RING_MIN_NODES_PER_ENDPOINT);
    const perWeight = n === 0 ? 0 : 2 ** Math.ceil(Math.log2(target / totalWeight));
    const order = byId(endpoints);
    const counts = order.map((i) => Math.max(1, Math.round(endpoints[i].weight * perWeight)));
    let total = 0;
    for (const c of counts) total += c;
    // Sort nodes by (hash, rank by id) packed in one float: hash × 2^21 + rank < 2^53, exact.
    const keys = new Float64Array(total);
    let k = 0;
    for (let rank = 0; rank < n; rank++) {
      const id = endpoints[order[rank]].id;
      for (let r = 0; r < counts[rank]; r++) keys[k++] = hash32(id, r) * 2_097_152 + rank;
    }
    keys.sort();
    this.points = new Uint32Array(total);
    this.owners = new Int32Array(total);
    for (let j = 0; j < total; j++) {
      const rank = keys[j] % 2_097_152;
      this.points[j] = (keys[j] - rank) / 2_097_152;
      this.owners[j] = order[rank];
    }
  }

  /** Index of the first node at or after `h`, wrapping to 0 past the last. */
  start(h: number): number {
    const points = this.points;
    let lo = 0;
    let hi = points.length;
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
    for (const e of endpoints) maxWeight = Math.max(maxWeight, e.weight);
    for (let rank = 0; rank < n; rank++) {
      const e = endpoints[order[rank]];
      next[rank] = hash32(e.id, OFFSET_SEED) % size;
      skip[rank] = (hash32(e.id, SKIP_SEED) % (size - 1)) + 1;
      rate[rank] = e.weight / maxWeight;
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
