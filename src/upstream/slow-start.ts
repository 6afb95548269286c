/**
 * Slow start: an endpoint that joins the rotation (added by a reload, healthy again, back from an
 * ejection) takes a tenth of its weight at first, and the share grows linearly to all of it over the
 * upstream's `slowStart` window, so a cold process is not handed its full share at once.
 *
 * Source: Envoy's slow start mode (envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/
 * load_balancing/slow_start: `slow_start_window`, `min_weight_percent` 10%, here with aggression 1,
 * a straight line) and nginx's `slow_start` server parameter (NGINX Plus: the weight is recovered
 * over a time when a server becomes healthy or available again; nginx starts from zero).
 *
 * The factor is a pure function of the time since the ramp started (`rampFactor`); one timer per
 * upstream recomputes every ramping endpoint at each step and tells the owner, because balancers
 * that precompute from weights (hash tables, schedules) must rebuild.
 *
 * State scope: per worker, and the same for every worker in effect: a ramp starts when an endpoint
 * becomes usable, and health (per machine, from the supervisor) reaches every worker at about the
 * same instant, so their ramps run in step (after an ejection, which is per worker, only that
 * worker ramps). Not per fleet:
 * each instance ramps its own share of the traffic, and the fleet's total ramps the same way when
 * the instances see the endpoint join at about the same time.
 */

/** Slow start begins at this share of an endpoint's weight (Envoy's default `min_weight_percent`). */
export const SLOW_START_MIN = 0.1;

/** What slow start keeps on each endpoint (`EndpointState` carries these fields). */
export interface Ramping {
  /** Share of its weight in use: below 1 while the ramp runs. */
  weightFactor: number;
  rampStartedAt: number;
}

/** The share of weight `elapsed` ms into a ramp of `window` ms (1 once over, or without a window). */
export function rampFactor(elapsed: number, window: number): number {
  if (window === 0) return 1;
  const f = SLOW_START_MIN + ((1 - SLOW_START_MIN) * elapsed) / window;
  return Math.min(f, 1);
}

/**
 * The weight ramps of one upstream's endpoints. `endpoints` is the live map the upstream keeps;
 * `onStep` is called after each step (the upstream tells its subscribers); `now` is injectable.
 */
export class SlowStart<E extends Ramping> {
  #window: number;
  readonly #endpoints: ReadonlyMap<string, E>;
  readonly #onStep: () => void;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;

  constructor(window: number, endpoints: ReadonlyMap<string, E>, onStep: () => void, now: () => number = Date.now) {
    this.#window = window;
    this.#endpoints = endpoints;
    this.#onStep = onStep;
    this.#now = now;
  }

  /** Adopts a reloaded window; ramps in progress continue at the new rate (at once to 1 for 0). */
  configure(window: number): void {
    this.#window = window;
  }

  /** Starts (or restarts) `endpoint`'s ramp at a tenth of its weight; nothing when the window is 0. */
  start(endpoint: E): void {
    const window = this.#window;
    if (window === 0) return;
    endpoint.rampStartedAt = this.#now();
    endpoint.weightFactor = SLOW_START_MIN;
    if (this.#timer) return;
    const step = Math.min(1000, Math.max(25, window / 20));
    this.#timer = setInterval(() => this.step(), step);
    this.#timer.unref();
  }

  /** One step, run by the timer: every ramping endpoint's factor at `now`; the timer ends with the last ramp. */
  step(): void {
    const now = this.#now();
    let ramping = false;
    for (const s of this.#endpoints.values()) {
      if (s.weightFactor >= 1) continue;
      s.weightFactor = rampFactor(now - s.rampStartedAt, this.#window);
      if (s.weightFactor < 1) ramping = true;
    }
    if (!ramping) this.stop();
    this.#onStep();
  }

  /** Stops the timer; factors stay where they are. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
