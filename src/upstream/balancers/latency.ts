/**
 * Peak EWMA: an estimate of an endpoint's response time that jumps up at once on a slow response
 * and decays back towards recent observations over time (Finagle's PeakEwma, also used by Linkerd
 * and Envoy's least-request with active request bias). Time is passed in, so the simulator can drive
 * it on virtual time.
 */
export class PeakEwma {
  /** Decay time constant (ms): after `tau` ms an old estimate weighs about 1/e. */
  readonly tau: number;
  #cost = 0;
  #stamp = 0;
  #observed = false;

  constructor(tau = 10_000) {
    this.tau = tau;
  }

  /** Records one response time `rtt` (ms) observed at `now` (ms). */
  observe(rtt: number, now: number): void {
    if (!this.#observed) {
      this.#observed = true;
      this.#cost = rtt;
    } else if (rtt > this.#cost) {
      this.#cost = rtt;
    } else {
      const w = Math.exp(-Math.max(0, now - this.#stamp) / this.tau);
      this.#cost = this.#cost * w + rtt * (1 - w);
    }
    this.#stamp = now;
  }

  /**
   * The estimate at `now` (ms); 0 before the first observation. It decays towards 0 while nothing is
   * observed, so an endpoint that was slow and then got no traffic is tried again after a while
   * instead of being shunned forever.
   */
  cost(now: number): number {
    const idle = now - this.#stamp;
    return idle <= 0 ? this.#cost : this.#cost * Math.exp(-idle / this.tau);
  }

  /** Whether anything was observed yet. */
  get observed(): boolean {
    return this.#observed;
  }
}
