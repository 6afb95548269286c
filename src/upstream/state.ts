/**
 * What Switchboard knows about its upstreams and their endpoints, kept across config generations:
 * requests in flight, response-time estimates, active health (checkers keep running through a
 * reload), outlier ejections, slow start, and the counters behind circuit breaking and the retry
 * budget. A reload that keeps an upstream and an endpoint keeps all of that; the per-generation
 * `Upstream` and `Endpoint` objects only point at it.
 *
 *   StateStore ── UpstreamState (by upstream name) ── EndpointState (by origin)
 *                      │  health checkers, ejection timers, slow-start ramp
 *                      └─ subscribers: each live generation's Upstream, told when availability changes
 */
import type { Logger } from 'pino';
import type { GatewayConfig, UpstreamConfig } from '../config/types.ts';
import { connectionKey, endpointTls } from '../transport/upstream-tls.ts';
import { HealthChecker } from '../health/active.ts';
import { endpointState as endpointStateChannel } from '../observability/events.ts';
import { PeakEwma } from './latency.ts';

/** Slow start begins at this share of an endpoint's weight. */
const SLOW_START_MIN = 0.1;

/** The lasting state of one endpoint (one origin of one upstream). */
export class EndpointState {
  readonly upstream: string;
  readonly origin: string;
  /** Requests in flight to this endpoint, across generations. */
  inFlight = 0;
  /** Response-header latency estimate (peak EWMA). */
  readonly latency = new PeakEwma();
  /** Active health: false while health checks say down; always true without checks. */
  healthy = true;
  /** Outlier detection took it out of rotation until `ejectedUntil`. */
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far (the next one lasts one base time more), decaying while it behaves. */
  ejections = 0;
  lastEjectedAt = 0;
  consecutiveFailures = 0;
  /** Share of its weight in use: below 1 while slow start ramps it up. */
  weightFactor = 1;
  rampStartedAt = 0;
  checker: HealthChecker | undefined;
  /** JSON of the health check config the checker runs, to tell whether a reload changed it. */
  checkerKey = '';
  ejectionTimer: NodeJS.Timeout | undefined;

  constructor(upstream: string, origin: string) {
    this.upstream = upstream;
    this.origin = origin;
  }

  /** Whether traffic may go here (outside panic mode). */
  get usable(): boolean {
    return this.healthy && !this.ejected;
  }
}

/** A request waiting for a free slot of an upstream's circuit breaker. */
export interface QueuedRequest {
  start(): void;
  timer: NodeJS.Timeout | undefined;
}

export class UpstreamState {
  readonly name: string;
  config: UpstreamConfig;
  readonly endpoints = new Map<string, EndpointState>();
  /** Requests in flight to this upstream (queued ones excluded), for circuit breaking and the retry budget. */
  active = 0;
  /** Requests in flight that are on a retry. */
  retrying = 0;
  /** Requests waiting for a circuit breaker slot, oldest first. */
  readonly queue: QueuedRequest[] = [];
  readonly #log: Logger;
  readonly #subscribers = new Set<() => void>();
  #rampTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(config: UpstreamConfig, log: Logger) {
    this.name = config.name;
    this.config = config;
    this.#log = log;
  }

  /** Calls `fn` whenever the set of usable endpoints changes; returns the unsubscribe function. */
  subscribe(fn: () => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  #changed(): void {
    for (const fn of this.#subscribers) fn();
  }

  /**
   * Adopts a new config for this upstream: creates states for new endpoints (slow start applies to
   * them when `warm`), starts, keeps or replaces health checkers. Endpoints the config dropped are
   * kept until `prune`, so a reload that fails to bind can be undone.
   */
  apply(config: UpstreamConfig, warm: boolean): void {
    this.config = config;
    const hc = config.healthCheck;
    const key = hc ? JSON.stringify(hc) + connectionKey(config) : '';
    for (const e of config.endpoints) {
      let state = this.endpoints.get(e.origin);
      const fresh = state === undefined;
      if (state === undefined) {
        state = new EndpointState(this.name, e.origin);
        this.endpoints.set(e.origin, state);
        if (hc?.initialState === 'unhealthy') state.healthy = false;
        if (warm && state.usable) this.#startRamp(state);
      }
      if (state.checkerKey === key) continue;
      const previous = state.checker;
      previous?.stop();
      state.checker = undefined;
      state.checkerKey = key;
      if (hc) {
        const s = state;
        // An endpoint that gains checks on reload keeps its current state until they decide.
        const initial = fresh ? hc : { ...hc, initialState: state.healthy ? ('healthy' as const) : ('unhealthy' as const) };
        const checker = new HealthChecker({ origin: e.scheme === 'tcp' || e.scheme === 'udp' ? `http://${e.host}` : e.origin, host: e.host, tls: endpointTls(config, e), protocol: config.protocol }, initial, (healthy, reason) => this.#onHealth(s, healthy, reason));
        if (previous) checker.adopt(previous);
        state.checker = checker;
        state.healthy = checker.healthy;
        checker.start();
      } else if (!state.healthy) {
        state.healthy = true;
        this.#publish(state, 'health checks removed');
      }
    }
    this.#changed();
  }

  /** Forgets endpoints the config no longer has, stopping their checkers and timers. */
  prune(config: UpstreamConfig): void {
    const keep = new Set(config.endpoints.map((e) => e.origin));
    for (const [origin, state] of this.endpoints) {
      if (keep.has(origin)) continue;
      state.checker?.stop();
      if (state.ejectionTimer) clearTimeout(state.ejectionTimer);
      this.endpoints.delete(origin);
    }
  }

  close(): void {
    this.#closed = true;
    for (const state of this.endpoints.values()) {
      state.checker?.stop();
      if (state.ejectionTimer) clearTimeout(state.ejectionTimer);
    }
    if (this.#rampTimer) clearInterval(this.#rampTimer);
    for (const q of this.queue) if (q.timer) clearTimeout(q.timer);
    this.#subscribers.clear();
  }

  #onHealth(state: EndpointState, healthy: boolean, reason: string): void {
    if (this.#closed || state.healthy === healthy) return;
    state.healthy = healthy;
    if (healthy) this.#log.info({ upstream: this.name, endpoint: state.origin, reason }, 'endpoint healthy');
    else this.#log.warn({ upstream: this.name, endpoint: state.origin, reason }, 'endpoint unhealthy');
    if (healthy && state.usable) this.#startRamp(state);
    this.#publish(state, reason);
    this.#changed();
  }

  /**
   * Outlier detection: records the outcome of one try at `state`. `failed` means a 5xx response,
   * a connect failure, a reset or a timeout. Called on every try, so the success path is one test.
   */
  record(state: EndpointState, failed: boolean): void {
    if (!failed) {
      if (state.consecutiveFailures !== 0) state.consecutiveFailures = 0;
      return;
    }
    const od = this.config.outlier;
    if (od.consecutiveFailures === 0 || state.ejected || ++state.consecutiveFailures < od.consecutiveFailures) return;
    state.consecutiveFailures = 0;
    let ejected = 0;
    for (const s of this.endpoints.values()) if (s.ejected) ejected++;
    const max = Math.max(1, Math.floor((this.endpoints.size * od.maxEjectedPercent) / 100));
    if (ejected >= max) return;
    const now = Date.now();
    // The multiplier decays by one for each base time the endpoint went without an ejection.
    if (state.ejections > 0) {
      const calm = Math.floor((now - state.ejectedUntil) / od.baseEjectionTime);
      if (calm > 0) state.ejections = Math.max(0, state.ejections - calm);
    }
    state.ejections++;
    const duration = Math.min(od.baseEjectionTime * state.ejections, od.maxEjectionTime);
    state.ejected = true;
    state.lastEjectedAt = now;
    state.ejectedUntil = now + duration;
    state.ejectionTimer = setTimeout(() => this.#unEject(state), duration);
    state.ejectionTimer.unref();
    const reason = `${od.consecutiveFailures} consecutive failures; ejected for ${duration} ms (ejection ${state.ejections})`;
    this.#log.warn({ upstream: this.name, endpoint: state.origin, reason }, 'endpoint ejected');
    this.#publish(state, reason);
    this.#changed();
  }

  #unEject(state: EndpointState): void {
    state.ejectionTimer = undefined;
    if (this.#closed || !state.ejected) return;
    state.ejected = false;
    this.#log.info({ upstream: this.name, endpoint: state.origin }, 'endpoint returned from ejection');
    if (state.usable) this.#startRamp(state);
    this.#publish(state, 'ejection time over');
    this.#changed();
  }

  /** Slow start: the endpoint's weight ramps from a tenth to all of it over `slowStart` ms. */
  #startRamp(state: EndpointState): void {
    const window = this.config.slowStart;
    if (window === 0) return;
    state.rampStartedAt = Date.now();
    state.weightFactor = SLOW_START_MIN;
    if (this.#rampTimer) return;
    const step = Math.min(1000, Math.max(25, window / 20));
    this.#rampTimer = setInterval(() => this.#ramp(), step);
    this.#rampTimer.unref();
  }

  #ramp(): void {
    const window = this.config.slowStart;
    const now = Date.now();
    let ramping = false;
    for (const s of this.endpoints.values()) {
      if (s.weightFactor >= 1) continue;
      const f = window === 0 ? 1 : SLOW_START_MIN + ((1 - SLOW_START_MIN) * (now - s.rampStartedAt)) / window;
      s.weightFactor = f >= 1 ? 1 : f;
      if (f < 1) ramping = true;
    }
    if (!ramping && this.#rampTimer) {
      clearInterval(this.#rampTimer);
      this.#rampTimer = undefined;
    }
    // Balancers that precompute from weights (hash tables, schedules) rebuild at each step.
    this.#changed();
  }

  #publish(state: EndpointState, reason: string): void {
    if (endpointStateChannel.hasSubscribers) {
      endpointStateChannel.publish({
        upstream: this.name,
        endpoint: state.origin,
        healthy: state.healthy,
        ejected: state.ejected,
        reason,
      } satisfies EndpointStateEvent);
    }
  }

  /** Frees circuit-breaker slots: starts queued requests while there is room. */
  dequeue(): void {
    const max = this.config.circuitBreaker.maxRequests;
    while (this.queue.length > 0 && (max === 0 || this.active < max)) {
      const next = this.queue.shift()!;
      if (next.timer) clearTimeout(next.timer);
      next.start();
    }
  }
}

/** Published on `switchboard:endpoint:state` whenever an endpoint's health or ejection changes. */
export interface EndpointStateEvent {
  upstream: string;
  endpoint: string;
  healthy: boolean;
  ejected: boolean;
  reason: string;
}

/** Every upstream's lasting state, by name. One per Gateway. */
export class StateStore {
  readonly upstreams = new Map<string, UpstreamState>();
  readonly #log: Logger;
  #warm = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Brings the states up to `config` (new upstreams, endpoints, checkers); nothing is removed yet. */
  apply(config: GatewayConfig): void {
    for (const [name, u] of config.upstreams) {
      let state = this.upstreams.get(name);
      if (state === undefined) {
        state = new UpstreamState(u, this.#log);
        this.upstreams.set(name, state);
      }
      state.apply(u, this.#warm);
    }
    this.#warm = true;
  }

  /** Drops what `config` no longer has; called once `config` serves (or to undo a failed reload). */
  prune(config: GatewayConfig): void {
    for (const [name, state] of this.upstreams) {
      const u = config.upstreams.get(name);
      if (u === undefined) {
        state.close();
        this.upstreams.delete(name);
      } else state.prune(u);
    }
  }

  get(name: string): UpstreamState | undefined {
    return this.upstreams.get(name);
  }

  close(): void {
    for (const s of this.upstreams.values()) s.close();
    this.upstreams.clear();
  }
}
