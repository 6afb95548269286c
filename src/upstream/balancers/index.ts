/** Balancing algorithms by the name the config uses. */
import type { BalancerFactory } from './balancer.ts';
import { ConsistentHash } from './consistent-hash.ts';
import { IpHash } from './ip-hash.ts';
import { LeastConnections } from './least-connections.ts';
import { LeastResponseTime } from './least-response-time.ts';
import { PowerOfTwo } from './power-of-two.ts';
import { WeightedRandom } from './random.ts';
import { RoundRobin } from './round-robin.ts';
import { WeightedRoundRobin } from './weighted-round-robin.ts';

import type { BalancerName } from '../../config/balancer-names.ts';

export { BALANCER_NAMES, type BalancerName } from '../../config/balancer-names.ts';

export const balancers: Readonly<Record<BalancerName, BalancerFactory>> = {
  'round-robin': () => new RoundRobin(),
  'weighted-round-robin': () => new WeightedRoundRobin(),
  'least-connections': (opts) => new LeastConnections(opts),
  'least-response-time': (opts) => new LeastResponseTime(opts),
  random: (opts) => new WeightedRandom(opts),
  'power-of-two': (opts) => new PowerOfTwo(opts),
  'ip-hash': (opts) => new IpHash(opts),
  'consistent-hash': (opts) => new ConsistentHash(opts),
};
