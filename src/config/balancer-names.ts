/** The balancer names the config accepts (the config owns the list; upstream/balancers/index.ts has one module per name). */
export const BALANCER_NAMES = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'least-response-time',
  'random',
  'power-of-two',
  'ip-hash',
  'consistent-hash',
] as const;

export type BalancerName = (typeof BALANCER_NAMES)[number];
