/**
 * What a simulation scenario is: a fleet of endpoints (weight, capacity, queue, service time), the
 * traffic sent to it (Poisson arrivals from skewed clients, each request with a skewed key), events
 * during the run (slowdowns, failures) and the algorithms to compare. Built-in scenarios
 * (`scenarios.ts`) and scenario files (`scenario-file.ts`) both produce this shape; the engine only
 * reads it.
 */
import type { BalancerName } from '../upstream/balancers/index.ts';
import { exponential } from './random.ts';

/** A time in a run: ms from its start, or a percentage of the arrival span (requests / rate). */
export type Moment = { ms: number } | { percent: number };

/** How long an endpoint takes to serve one request once it starts on it, in ms. */
export type ServiceTime =
  | { distribution: 'constant'; mean: number }
  | { distribution: 'exponential'; mean: number }
  /** ln(time) is normal with standard deviation `sigma`, and the mean of time is `mean`. */
  | { distribution: 'lognormal'; mean: number; sigma: number };

/** One server of the simulated fleet. */
export interface EndpointModel {
  /** Shown in reports (`s1`); the balancer sees an id hashed from it, as production ids are. */
  name: string;
  /** The weight the balancer reads; > 0. */
  weight: number;
  /** Requests served at once; more wait in the endpoint's FIFO queue. */
  capacity: number;
  /** Requests that may wait; one more is answered with an error at once. undefined: no limit. */
  queueLimit?: number;
  service: ServiceTime;
}

/** Something that happens to one endpoint during the run. */
export type FleetEvent =
  /** From `at` (until `until`, or the end), the endpoint's service times are multiplied by `factor`. */
  | { type: 'slowdown'; endpoint: string; at: Moment; until?: Moment; factor: number }
  /**
   * At `at` the endpoint fails: requests in it are reset and new ones are refused at once until
   * `recover`. Health checking takes it out of the balancer's set `detectAfter` ms after it fails
   * and back in `detectAfter` ms after it recovers.
   */
  | { type: 'fail'; endpoint: string; at: Moment; recover?: Moment; detectAfter: number };

/** Who sends the traffic: `count` clients, each with its own address (what ip-hash hashes). */
export interface ClientModel {
  count: number;
  /** Zipf exponent of the traffic share per client (0: every client sends as much). */
  zipf?: number;
  /** Instead of Zipf: the first `clients` clients send `share` (0-1) of all requests between them. */
  heavy?: { clients: number; share: number };
}

/** Each request carries a key drawn from `count` keys (user ids): what consistent-hash hashes. */
export interface KeyModel {
  count: number;
  /** Zipf exponent of key popularity (0: uniform). */
  zipf: number;
}

/** One scenario: a fleet, its traffic, what happens to it, and the algorithms to compare. */
export interface Scenario {
  name: string;
  /** One line: what the fleet and the traffic are. */
  description: string;
  /** A paragraph in plain language: what the results show. Optional for scenario files. */
  explanation?: string;
  /** Requests per run. */
  requests: number;
  /** Mean arrival rate, requests per second (Poisson). */
  rate: number;
  clients: ClientModel;
  keys: KeyModel;
  endpoints: EndpointModel[];
  events: FleetEvent[];
  /** Algorithms to compare; undefined: all of them. */
  algorithms?: BalancerName[];
  /** Table for ip-hash and consistent-hash, as in the upstream config. */
  hashTable: 'ring' | 'maglev';
}

/** The expected arrival span of a scenario in ms: what percentages in Moments refer to. */
export function spanOf(scenario: Pick<Scenario, 'requests' | 'rate'>): number {
  return (scenario.requests / scenario.rate) * 1000;
}

/** A Moment in ms from the start of a run of `span` ms. */
export function momentMs(moment: Moment, span: number): number {
  return 'ms' in moment ? moment.ms : (moment.percent / 100) * span;
}

/**
 * What the fleet can serve at most, in requests per second, with every endpoint up and at its
 * normal speed: each endpoint serves `capacity` requests at once, each taking its mean service time.
 */
export function fleetCapacity(scenario: Pick<Scenario, 'endpoints'>): number {
  return scenario.endpoints.reduce((sum, e) => sum + (e.capacity * 1000) / e.service.mean, 0);
}

/** A warning when the scenario offers more than its fleet can serve; undefined when it does not. */
export function overloadWarning(scenario: Pick<Scenario, 'name' | 'rate' | 'endpoints'>): string | undefined {
  const capacity = fleetCapacity(scenario);
  if (!(scenario.rate > capacity)) return undefined;
  return (
    `warning: scenario ${scenario.name} offers ${scenario.rate} req/s but its fleet serves at most ${capacity.toFixed(0)} req/s ` +
    `(capacity / mean service time, summed over the endpoints): queues grow whatever the algorithm, and latency and errors ` +
    `measure the overload more than the balancing`
  );
}

const Z99 = 2.326_347_874_040_841; // the standard normal's 99th percentile

/**
 * The sigma of a lognormal with the given mean and 99th percentile; undefined when there is none
 * (p99 must be above the mean and at most about 15 times it).
 */
export function lognormalSigma(mean: number, p99: number): number | undefined {
  // ln p99 = mu + Z99 sigma and ln mean = mu + sigma²/2, so sigma²/2 - Z99 sigma + ln(p99/mean) = 0.
  const d = Z99 * Z99 - 2 * Math.log(p99 / mean);
  if (!(p99 > mean) || d < 0) return undefined;
  return Z99 - Math.sqrt(d);
}

/** The service time for a request's uniform `u` and standard normal `z` (the same for every endpoint). */
export function serviceMs(service: ServiceTime, u: number, z: number): number {
  switch (service.distribution) {
    case 'constant':
      return service.mean;
    case 'exponential':
      return exponential(u, service.mean);
    case 'lognormal':
      return Math.exp(Math.log(service.mean) - (service.sigma * service.sigma) / 2 + service.sigma * z);
  }
}
