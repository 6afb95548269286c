/** The balancer names the config accepts (kept apart from the modules so the config schema can import it cheaply). */
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
