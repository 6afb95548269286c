/**
 * Seeded randomness for the simulator: a mulberry32 generator (Tommy Ettinger's, public domain),
 * named streams derived from one seed, and the distributions the models draw from (exponential,
 * standard normal, discrete weights such as Zipf). Nothing here reads Math.random or the clock, so a
 * seed fixes every number of a run.
 */

/** A uniform generator on [0, 1). */
export type Random = () => number;

/** mulberry32: 32 bits of state, fast, good enough for simulation (not for cryptography). */
export function mulberry32(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a of a string, for naming streams. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * An independent stream for one purpose (`arrivals`, `balancer`, …) of a seed, so that drawing more
 * numbers for one purpose (a balancer that uses randomness) never shifts another (the arrivals).
 */
export function stream(seed: number, name: string): Random {
  return mulberry32(Math.imul(seed >>> 0, 0x9e3779b1) ^ fnv1a(name));
}

/** An exponential variate with the given mean, by inversion of `u` in [0, 1). */
export function exponential(u: number, mean: number): number {
  return -mean * Math.log(1 - u);
}

/** A standard normal variate (Box-Muller, one of the pair). */
export function normal(random: Random): number {
  const u = 1 - random(); // (0, 1]: log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Draws an index in [0, weights.length) with probability proportional to its weight. */
export function discrete(weights: readonly number[]): (random: Random) => number {
  const cdf = new Float64Array(weights.length);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) cdf[i] = sum += weights[i];
  return (random) => {
    const x = random() * sum;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
}

/** Zipf weights over n ranks: rank i (0-based) weighs 1/(i+1)^s; s = 0 is uniform. */
export function zipfWeights(n: number, s: number): number[] {
  return Array.from({ length: n }, (_, i) => 1 / (i + 1) ** s);
}
