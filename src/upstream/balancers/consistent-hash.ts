/**
 * Consistent hash: consistent hashing of the request key the proxy puts in `ctx.hashKey` (a header,
 * cookie, query parameter or path value, as configured), for cache affinity and sticky sessions;
 * NGINX's `hash … consistent` and Envoy's ring_hash / maglev load balancers. The table is a weighted
 * ring hash (Karger et al., "Consistent Hashing and Random Trees", STOC 1997 / libketama) or a
 * Maglev table (Eisenbud et al., NSDI 2016) as `hashTable` says: see hash-table.ts and
 * hash-balancer.ts.
 */
import type { BalancerOptions } from './balancer.ts';
import { HashBalancer } from './hash-balancer.ts';

export class ConsistentHash extends HashBalancer {
  constructor(options?: Partial<BalancerOptions>) {
    super('consistent-hash', options);
  }
}
