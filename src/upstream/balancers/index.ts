/** Balancing algorithms by the name the config uses. */
import type { BalancerFactory } from '../balancer.ts';
import { RoundRobin } from './round-robin.ts';

export const balancers: Readonly<Record<string, BalancerFactory>> = {
  'round-robin': () => new RoundRobin(),
};
