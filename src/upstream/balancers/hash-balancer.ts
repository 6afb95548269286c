/**
 * What ip-hash and consistent-hash share: pick the endpoint a key maps to in a hash table (ring or
 * Maglev, see hash-table.ts), built in `update` and only read in `pick`.
 *
 * On the first attempt the candidates are the updated set itself, and the answer is one hash and
 * one table read. On a retry (the candidates are the set minus the endpoints already tried) the key
 * goes to the next position of the table whose endpoint is still a candidate: deterministic, and
 * spread over the remaining endpoints as the table spreads keys. Without a key the pick is uniformly
 * random.
 */
import type { Balancer, BalancerEndpoint, BalancerOptions, PickContext } from './balancer.ts';
import { hash31 } from './hash.ts';
import { buildHashTable, type HashTable, type HashTableKind } from './hash-table.ts';

export class HashBalancer implements Balancer {
  readonly name: string;
  readonly #random: () => number;
  readonly #kind: HashTableKind;
  #table: HashTable = buildHashTable('ring', []);
  /** Ids of the last update, by index (the indices the table stores). */
  #ids: string[] = [];
  #index = new Map<string, number>();
  /** Retry path scratch, reused: #mark[i] === #generation when endpoint i is a candidate now. */
  #mark = new Uint32Array(0);
  #generation = 0;
  #candidateAt: (BalancerEndpoint | undefined)[] = [];

  constructor(name: string, options?: Partial<BalancerOptions>) {
    this.name = name;
    this.#random = options?.random ?? Math.random;
    this.#kind = options?.hashTable ?? 'ring';
  }

  /** Which table this balancer builds. */
  get hashTable(): HashTableKind {
    return this.#kind;
  }

  update(endpoints: readonly BalancerEndpoint[]): void {
    const n = endpoints.length;
    const ids: string[] = new Array(n);
    const index = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      ids[i] = endpoints[i].id;
      index.set(ids[i], i);
    }
    this.#table = buildHashTable(this.#kind, endpoints);
    this.#ids = ids;
    this.#index = index;
    this.#mark = new Uint32Array(n);
    this.#generation = 0;
    this.#candidateAt = new Array(n).fill(undefined);
  }

  pick<E extends BalancerEndpoint>(candidates: readonly E[], ctx: PickContext): E | undefined {
    const n = candidates.length;
    if (n <= 1) return candidates[0];
    const key = ctx.hashKey;
    if (key === undefined) return candidates[Math.floor(this.#random() * n)];
    const h = hash31(key);
    const owners = this.#table.owners;
    if (owners.length === 0) return candidates[h % n]; // pick before any update
    const position = this.#table.start(h);
    if (n === this.#ids.length) {
      // Common path: candidates is the updated array (or the same endpoints in the same order).
      const i = owners[position];
      const e = candidates[i];
      if (e !== undefined && e.id === this.#ids[i]) return e;
    }
    return this.#walk(candidates, position, h);
  }

  /** The first endpoint at or after `position` that is among `candidates`. */
  #walk<E extends BalancerEndpoint>(candidates: readonly E[], position: number, h: number): E {
    const mark = this.#mark;
    const candidateAt = this.#candidateAt;
    let generation = ++this.#generation;
    if (generation > 0xfffffff0) {
      mark.fill(0);
      generation = this.#generation = 1;
    }
    let known = 0;
    for (let c = 0; c < candidates.length; c++) {
      const i = this.#index.get(candidates[c].id);
      if (i === undefined) continue;
      mark[i] = generation;
      candidateAt[i] = candidates[c];
      known++;
    }
    if (known > 0) {
      const owners = this.#table.owners;
      const size = owners.length;
      for (let step = 0, p = position; step < size; step++) {
        const i = owners[p];
        if (i >= 0 && mark[i] === generation) return candidateAt[i] as E;
        if (++p === size) p = 0;
      }
    }
    // None of the candidates is in the table (not given to update, or owns no position).
    return candidates[h % candidates.length];
  }
}
