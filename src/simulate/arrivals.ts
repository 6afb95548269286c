/**
 * The traffic of one scenario and seed, drawn once and replayed for every algorithm: arrival times
 * (Poisson), the client and key of each request, and the random numbers that size its service time.
 * Giving every algorithm the very same requests (common random numbers) makes their differences the
 * algorithm's, not the dice's.
 */
import type { ClientModel, Scenario } from './model.ts';
import { discrete, exponential, normal, stream, zipfWeights, type Random } from './random.ts';

/** The requests of a run, by request index, as parallel arrays (the engine's hot loop reads them). */
export interface Arrivals {
  /** Arrival time of each request, ms, ascending. */
  time: Float64Array;
  /** Index of the client that sent it. */
  client: Int32Array;
  /** Index of its key. */
  key: Int32Array;
  /** Uniform in [0, 1) sizing its service time (exponential). */
  u: Float64Array;
  /** Standard normal sizing its service time (lognormal). */
  z: Float64Array;
  /** Client addresses (what ip-hash hashes), by client index. */
  addresses: string[];
  /** Request keys (what consistent-hash hashes), by key index. */
  keys: string[];
}

function clientWeights(model: ClientModel): number[] {
  const { count, heavy } = model;
  if (heavy) {
    const n = Math.min(heavy.clients, count);
    const rest = count - n;
    // With no light clients the heavy ones carry everything.
    const share = rest === 0 ? 1 : heavy.share;
    return Array.from({ length: count }, (_, i) => (i < n ? share / n : (1 - share) / rest));
  }
  return zipfWeights(count, model.zipf ?? 0);
}

/** `10.0.0.1`, `10.0.0.2`, … : one distinct IPv4 address per client. */
function address(i: number): string {
  const n = i + 1;
  return `10.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Draws the requests of `scenario` for `seed`. */
export function drawArrivals(scenario: Scenario, seed: number): Arrivals {
  const n = scenario.requests;
  const random: Random = stream(seed, 'arrivals');
  const pickClient = discrete(clientWeights(scenario.clients));
  const pickKey = discrete(zipfWeights(scenario.keys.count, scenario.keys.zipf));
  const meanGap = 1000 / scenario.rate;
  const a: Arrivals = {
    time: new Float64Array(n),
    client: new Int32Array(n),
    key: new Int32Array(n),
    u: new Float64Array(n),
    z: new Float64Array(n),
    addresses: Array.from({ length: scenario.clients.count }, (_, i) => address(i)),
    keys: Array.from({ length: scenario.keys.count }, (_, i) => `user-${i + 1}`),
  };
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += exponential(random(), meanGap);
    a.time[i] = t;
    a.client[i] = pickClient(random);
    a.key[i] = pickKey(random);
    a.u[i] = random();
    a.z[i] = normal(random);
  }
  return a;
}
