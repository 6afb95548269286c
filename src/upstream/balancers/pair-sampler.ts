/**
 * Two distinct random candidates for the power-of-two-choices balancers (power-of-two,
 * least-response-time), drawn in proportion to weight without replacement: the first with
 * probability weight / total, the second likewise among the others.
 *
 * Drawing by weight rather than uniformly matters for unequal weights. A uniform draw offers an
 * endpoint in only 2/n of picks, so one whose weight asks for more than that (weights 1,1,1,1,3 over
 * 5 endpoints: 3/7 of traffic, offered 2/5) could never reach its share; and when the two loads
 * tie, as they all do on an idle upstream, taking the first drawn makes shares follow the weights.
 * When all weights are equal (the common case) the draw is two uniform indices, O(1) after the one
 * pass that finds that out; weights are read on every pick, since slow start changes them.
 */
import type { BalancerEndpoint } from './balancer.ts';

export class PairSampler {
  /** Indices into the candidates of the last `sample`, distinct. */
  first = 0;
  second = 0;
  readonly #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  /** Draws `first` and `second` among `candidates` (at least two). */
  sample(candidates: readonly BalancerEndpoint[]): void {
    const n = candidates.length;
    const w0 = candidates[0].weight;
    let total = w0;
    let equal = true;
    for (let i = 1; i < n; i++) {
      const w = candidates[i].weight;
      total += w;
      if (w !== w0) equal = false;
    }
    if (equal) {
      const i = Math.floor(this.#random() * n);
      let j = Math.floor(this.#random() * (n - 1));
      if (j >= i) j++; // uniform over the others
      this.first = i;
      this.second = j;
      return;
    }
    const i = draw(candidates, this.#random() * total, -1);
    this.first = i;
    this.second = draw(candidates, this.#random() * (total - candidates[i].weight), i);
  }
}

/** The candidate where `r` falls in the cumulative weights, skipping index `skip`. */
function draw(candidates: readonly BalancerEndpoint[], r: number, skip: number): number {
  let last = -1;
  for (let i = 0; i < candidates.length; i++) {
    if (i === skip) continue;
    r -= candidates[i].weight;
    if (r < 0) return i;
    last = i;
  }
  return last; // rounding left r at 0
}
