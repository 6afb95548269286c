/**
 * IP hash: consistent hashing of the client address (`ctx.hashKey`), so one client keeps reaching
 * the same endpoint while the set of endpoints is unchanged, and only about 1/N of clients move when
 * one of N endpoints goes or comes back. NGINX's `ip_hash` and HAProxy's `balance source` serve the
 * same purpose; the table is a weighted ring hash (Karger et al. / ketama) or a Maglev table
 * (Eisenbud et al., NSDI 2016) as `hashTable` says: see hash-table.ts and hash-balancer.ts.
 */
import type { BalancerOptions } from './balancer.ts';
import { HashBalancer } from './hash-balancer.ts';

export class IpHash extends HashBalancer {
  constructor(options?: Partial<BalancerOptions>) {
    super('ip-hash', options);
  }
}
