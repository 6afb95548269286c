/**
 * What Switchboard knows about its upstreams and their endpoints, kept across config generations:
 * requests in flight, response-time estimates, active health (checkers keep running through a
 * reload), outlier ejections, slow start, circuit breaking and the retry budget. A reload that
 * keeps an upstream and an endpoint keeps all of that; the per-generation `Upstream` and `Endpoint`
 * objects only point at it.
 *
 *   StateStore ── UpstreamState (by upstream name) ── EndpointState (by origin)
 *                      │  health checkers (here), outlier-detection.ts, slow-start.ts,
 *                      │  circuit-breaker.ts, retry-budget.ts
 *                      └─ subscribers: each live generation's Upstream, told when availability changes
 *
 * State scope: each piece says its own (docs/architecture.md, "Workers", has the table). In a worker,
 * health comes from the supervisor's checkers (`externalHealth`) and the machine-wide counts through
 * a MachineLink (machine-link.ts); in a lone process everything here is the machine's.
 */
import type { Logger } from 'pino';
import type { GatewayConfig, UpstreamConfig } from '../config/types.ts';
import { connectionKey, endpointTls } from '../transport/upstream-tls.ts';
import { HealthChecker } from '../health/active.ts';
import { endpointState as endpointStateChannel } from '../observability/events.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { LOAD_AWARE_BALANCERS, loadKey, type MachineLink } from './machine-link.ts';
import { PeakEwma } from './balancers/latency.ts';
import { OutlierDetection, type OutlierRecord } from './outlier-detection.ts';
import { RetryBudget } from './retry-budget.ts';
import { SlowStart, type Ramping } from './slow-start.ts';

/** The lasting state of one endpoint (one origin of one upstream). */
export class EndpointState implements OutlierRecord, Ramping {
  readonly upstream: string;
  readonly origin: string;
  /**
   * This worker's requests in flight to this endpoint, across generations (exact). Balancers read
   * the machine's: this plus `othersInFlight` (as nginx shares it across workers with a `zone`).
   */
  inFlight = 0;
  /**
   * Times the balancer (or a sticky cookie) chose this endpoint for a try: one increment per try,
   * read by metrics at scrape time. Per worker (the metrics sum the workers), across generations.
   */
  picks = 0;
  /**
   * The other workers' requests in flight here, as the supervisor last summed them (0 in a lone
   * process): balancers read `inFlight + othersInFlight`, the machine's load.
   */
  othersInFlight = 0;
  /** Where this worker's count goes to be shared (a worker), and the key it goes under. */
  link: MachineLink | undefined;
  readonly linkKey: string;
  /**
   * Response-header latency estimate (peak EWMA). Per worker, and it may stay so: each worker's
   * samples estimate the same latency.
   */
  readonly latency = new PeakEwma();
  /**
   * Active health: false while health checks say down; always true without checks. Per machine:
   * one checker per endpoint (in the supervisor when there are workers), not one per worker
   * multiplying the probes. Not per fleet: each instance checks over its own network path.
   */
  healthy = true;
  // Outlier detection (outlier-detection.ts, which states their scope).
  /** Outlier detection took it out of rotation until `ejectedUntil`. */
  ejected = false;
  ejectedUntil = 0;
  /** Ejections so far (the next one lasts one base time more), decaying while it behaves. */
  ejections = 0;
  lastEjectedAt = 0;
  consecutiveFailures = 0;
  ejectionTimer: NodeJS.Timeout | undefined;
  // Slow start (slow-start.ts, which states their scope).
  /** Share of its weight in use: below 1 while slow start ramps it up. */
  weightFactor = 1;
  rampStartedAt = 0;
  /**
   * Set through the admin API (src/admin/): `ready` (in rotation), `drain` (no new requests or
   * connections; those in flight finish; sticky clients keep coming, as HAProxy's "drain") or
   * `maint` (out of rotation, HAProxy's "maint"). Per machine: with workers the supervisor sends
   * each change to every worker (and to workers started later). Lasts until the next reload.
   */
  admin: AdminState = 'ready';
  /** A weight set through the admin API, replacing the configured one until the next reload; per machine as `admin`. */
  weightOverride: number | undefined = undefined;
  /** The active health checker (a lone process's, or the supervisor's; a worker has none). */
  checker: HealthChecker | undefined;
  /** JSON of the health check config the checker runs, to tell whether a reload changed it. */
  checkerKey = '';

  constructor(upstream: string, origin: string, link?: MachineLink) {
    this.upstream = upstream;
    this.origin = origin;
    this.link = link;
    this.linkKey = loadKey.endpoint(upstream, origin);
  }

  /** A request (or connection, or datagram session) to this endpoint starts. */
  begin(): void {
    this.inFlight++;
    if (this.link !== undefined) this.link.inFlightChanged(this.linkKey, this.inFlight);
  }

  /** It is over. */
  end(): void {
    this.inFlight--;
    if (this.link !== undefined) this.link.inFlightChanged(this.linkKey, this.inFlight);
  }

  /** Whether traffic may go here (outside panic mode). */
  get usable(): boolean {
    return this.healthy && !this.ejected && this.admin === 'ready';
  }

  /** Whether a sticky client pinned here may still come: usable, or draining (HAProxy's drain keeps persistent clients). */
  get stickyUsable(): boolean {
    return this.healthy && !this.ejected && this.admin !== 'maint';
  }
}

/** An endpoint's runtime admin state (admin API): in rotation, draining, or out (maintenance). */
export type AdminState = 'ready' | 'drain' | 'maint';

/**
 * A change made at runtime through the admin API, on the endpoint with this origin. Lasts until the
 * next reload (or restart), as HAProxy's runtime API; a supervisor keeps the active ones and sends
 * them to every worker, also to one started later.
 */
export type RuntimeChange =
  | { upstream: string; endpoint: string; action: 'drain' | 'disable' | 'enable' }
  | { upstream: string; endpoint: string; action: 'weight'; weight: number };

/** One endpoint as the admin API shows it (this process's view). */
export interface EndpointView {
  /** Position in the upstream's `endpoints` list (0-based). */
  index: number;
  url: string;
  healthy: boolean;
  ejected: boolean;
  admin: AdminState;
  /** The weight in use before slow start: the runtime one, else the configured one. */
  weight: number;
  configWeight: number;
  /** Share of the weight in use (below 1 during slow start). */
  weightFactor: number;
  /** Requests (connections, sessions) in flight from this process. */
  inFlight: number;
  /** Response-time estimate (peak EWMA), ms; 0 before any sample. */
  latencyMs: number;
  /** Whether the upstream runs active health checks on it. */
  checked: boolean;
}

/** One upstream as the admin API shows it. */
export interface UpstreamView {
  name: string;
  balancer: string;
  endpoints: EndpointView[];
}

/**
 * The lasting state of one upstream: its endpoints' states and health checkers, and the modules
 * that keep the rest (each states its own scope). Composes them and is the one place that tells
 * subscribers, logs and publishes when an endpoint's availability changes.
 */
export class UpstreamState {
  readonly name: string;
  config: UpstreamConfig;
  readonly endpoints = new Map<string, EndpointState>();
  /** Requests in flight to this upstream and the ones waiting for a slot. */
  readonly breaker: CircuitBreaker;
  /** Retries in flight to this upstream, a share of `breaker.active`. */
  readonly retryBudget: RetryBudget;
  readonly #outliers: OutlierDetection<EndpointState>;
  readonly #slowStart: SlowStart<EndpointState>;
  readonly #log: Logger;
  /** Each live generation's Upstream of this process: per worker, always. */
  readonly #subscribers = new Set<() => void>();
  #closed = false;

  /** Health comes from elsewhere (the supervisor's checkers, through `setHealth`): start no checkers here. */
  readonly #externalHealth: ExternalHealth | undefined;

  /** A worker's line to the machine's counters (machine-link.ts); undefined in a lone process. */
  readonly #link: MachineLink | undefined;
  /** True while an ejection another worker decided is applied (it is not passed on again). */
  #fromPeer = false;

  constructor(config: UpstreamConfig, log: Logger, externalHealth?: ExternalHealth, link?: MachineLink) {
    this.#externalHealth = externalHealth;
    this.#link = link;
    this.name = config.name;
    this.config = config;
    this.#log = log;
    this.breaker = new CircuitBreaker(config.circuitBreaker, link === undefined ? undefined : { link, upstream: config.name });
    this.retryBudget = new RetryBudget(config.retries);
    this.#outliers = new OutlierDetection(config.outlier, this.endpoints, {
      ejected: (state, reason) => this.#onEjected(state, reason),
      returned: (state) => this.#onReturned(state),
    });
    // Balancers that precompute from weights (hash tables, schedules) rebuild at each step.
    this.#slowStart = new SlowStart(config.slowStart, this.endpoints, () => this.#changed());
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
  apply(config: UpstreamConfig, warm: boolean, workers = 1): void {
    this.config = config;
    this.breaker.configure(config.circuitBreaker);
    this.retryBudget.configure(config.retries, this.#link === undefined ? 1 : workers);
    // Requests in flight are shared only where the balancer reads them.
    const link = this.#link !== undefined && LOAD_AWARE_BALANCERS.has(config.balancer) ? this.#link : undefined;
    this.#outliers.configure(config.outlier);
    this.#slowStart.configure(config.slowStart);
    const hc = config.healthCheck;
    const key = hc ? JSON.stringify(hc) + connectionKey(config) : '';
    for (const e of config.endpoints) {
      let state = this.endpoints.get(e.origin);
      const fresh = state === undefined;
      if (state === undefined) {
        state = new EndpointState(this.name, e.origin, link);
        this.endpoints.set(e.origin, state);
        const known = this.#externalHealth?.get(state.linkKey);
        if (known !== undefined) state.healthy = known;
        else if (hc?.initialState === 'unhealthy') state.healthy = false;
        if (warm && state.usable) this.#slowStart.start(state);
      }
      if (state.link !== link) {
        // The balancer changed on reload: start or stop sharing this endpoint's count.
        state.link?.inFlightChanged(state.linkKey, 0);
        state.link = link;
        if (link === undefined) state.othersInFlight = 0;
        else if (state.inFlight > 0) link.inFlightChanged(state.linkKey, state.inFlight);
      }
      if (state.checkerKey === key) continue;
      const previous = state.checker;
      previous?.stop();
      state.checker = undefined;
      state.checkerKey = key;
      if (hc && this.#externalHealth !== undefined) {
        // The supervisor checks for the whole machine and sends the results (setHealth).
      } else if (hc) {
        const s = state;
        // An endpoint that gains checks on reload keeps its current state until they decide.
        const initial = fresh ? hc : { ...hc, initialState: state.healthy ? ('healthy' as const) : ('unhealthy' as const) };
        const checker = new HealthChecker(
          { origin: e.scheme === 'tcp' || e.scheme === 'udp' ? `http://${e.host}` : e.origin, host: e.host, tls: endpointTls(config, e), protocol: config.protocol },
          initial,
          (healthy, reason) => this.#onHealth(s, healthy, reason),
        );
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
      this.#outliers.forget(state);
      this.endpoints.delete(origin);
    }
  }

  close(): void {
    this.#closed = true;
    for (const state of this.endpoints.values()) state.checker?.stop();
    this.#outliers.close();
    this.#slowStart.stop();
    this.breaker.close();
    this.#subscribers.clear();
  }

  /**
   * Applies a runtime change (admin API) to the endpoint with `origin`; false when there is none.
   * Balancers hear of it as of any availability or weight change.
   */
  change(origin: string, c: RuntimeChange): boolean {
    const state = this.endpoints.get(origin);
    if (state === undefined) return false;
    if (c.action === 'weight') state.weightOverride = c.weight;
    else {
      const wasUsable = state.usable;
      state.admin = c.action === 'drain' ? 'drain' : c.action === 'disable' ? 'maint' : 'ready';
      if (!wasUsable && state.usable) this.#slowStart.start(state);
      this.#publish(state, `admin: ${c.action}`);
    }
    this.#changed();
    return true;
  }

  /** Drops every runtime change (a reload): endpoints back in rotation at their configured weight. */
  clearRuntime(): void {
    let changed = false;
    for (const state of this.endpoints.values()) {
      if (state.admin === 'ready' && state.weightOverride === undefined) continue;
      state.admin = 'ready';
      state.weightOverride = undefined;
      changed = true;
    }
    if (changed) this.#changed();
  }

  /** This process's view of the endpoints, in config order. */
  view(now: number): UpstreamView {
    const checked = this.config.healthCheck !== undefined;
    const endpoints: EndpointView[] = [];
    this.config.endpoints.forEach((e, index) => {
      const s = this.endpoints.get(e.origin);
      if (s === undefined) return;
      endpoints.push({
        index,
        url: e.origin,
        healthy: s.healthy,
        ejected: s.ejected,
        admin: s.admin,
        weight: s.weightOverride ?? e.weight,
        configWeight: e.weight,
        weightFactor: s.weightFactor,
        inFlight: s.inFlight,
        latencyMs: s.latency.cost(now),
        checked,
      });
    });
    return { name: this.name, balancer: this.config.balancer, endpoints };
  }

  /** Health decided elsewhere (a worker hears it from the supervisor's checker); unknown endpoints are ignored. */
  setHealth(origin: string, healthy: boolean, reason: string): void {
    const state = this.endpoints.get(origin);
    if (state !== undefined) this.#onHealth(state, healthy, reason);
  }

  #onHealth(state: EndpointState, healthy: boolean, reason: string): void {
    if (this.#closed || state.healthy === healthy) return;
    state.healthy = healthy;
    if (healthy) this.#log.info({ upstream: this.name, endpoint: state.origin, reason }, 'endpoint healthy');
    else this.#log.warn({ upstream: this.name, endpoint: state.origin, reason }, 'endpoint unhealthy');
    if (healthy && state.usable) this.#slowStart.start(state);
    this.#publish(state, reason);
    this.#changed();
  }

  /**
   * Outlier detection: records the outcome of one try at `state` (outlier-detection.ts). `failed`
   * means a 5xx response, a connect failure, a reset or a timeout. Called on every try.
   */
  record(state: EndpointState, failed: boolean): void {
    this.#outliers.record(state, failed);
  }

  /** Another worker of the machine ejected this endpoint (its supervisor passed it on). */
  ejectFromPeer(origin: string, duration: number, reason: string): void {
    const state = this.endpoints.get(origin);
    if (state === undefined) return;
    this.#fromPeer = true;
    try {
      this.#outliers.ejectFor(state, duration, `another worker ejected it: ${reason}`);
    } finally {
      this.#fromPeer = false;
    }
  }

  #onEjected(state: EndpointState, reason: string): void {
    this.#log.warn({ upstream: this.name, endpoint: state.origin, reason }, 'endpoint ejected');
    if (!this.#fromPeer) this.#link?.ejected(this.name, state.origin, state.ejectedUntil - state.lastEjectedAt, reason);
    this.#publish(state, reason);
    this.#changed();
  }

  #onReturned(state: EndpointState): void {
    this.#log.info({ upstream: this.name, endpoint: state.origin }, 'endpoint returned from ejection');
    if (state.usable) this.#slowStart.start(state);
    this.#publish(state, 'ejection time over');
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
        peer: this.#fromPeer,
      } satisfies EndpointStateEvent);
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
  /** The change was another worker's decision passed on (an ejection it made), not this process's own. */
  peer: boolean;
}

/**
 * The health a supervisor's checkers reported, by `loadKey.endpoint(upstream, origin)`: what an
 * endpoint of a worker starts with. Its presence means the process runs no checkers itself.
 */
export type ExternalHealth = ReadonlyMap<string, boolean>;

/** Every upstream's lasting state, by name. One per Gateway. */
export class StateStore {
  readonly upstreams = new Map<string, UpstreamState>();
  readonly #log: Logger;
  readonly #externalHealth: ExternalHealth | undefined;
  #warm = false;
  readonly #link: MachineLink | undefined;

  /**
   * `externalHealth`: this process runs no health checkers; `setHealth` brings their results, and
   * an endpoint starts with the health the map knows for it (a worker, whose supervisor checks
   * each endpoint once for the whole machine). `link`: the machine's counters (a worker).
   */
  constructor(log: Logger, opts: { externalHealth?: ExternalHealth; link?: MachineLink } = {}) {
    this.#log = log;
    this.#externalHealth = opts.externalHealth;
    this.#link = opts.link;
    opts.link?.onOthers((key, n) => this.#others(key, n));
    opts.link?.onPeerEjection((upstream, origin, duration, reason) => this.upstreams.get(upstream)?.ejectFromPeer(origin, duration, reason));
  }

  /** The other workers' count for a load key (machine-link.ts) changed. */
  #others(key: string, n: number): void {
    const [kind, upstream, origin] = key.split(' ');
    const u = this.upstreams.get(upstream!);
    if (u === undefined) return;
    if (kind === 'e') {
      const e = u.endpoints.get(origin!);
      if (e !== undefined) e.othersInFlight = n;
    }
  }

  /** Sets an endpoint's active health from a checker elsewhere (the supervisor's). */
  setHealth(upstream: string, origin: string, healthy: boolean, reason: string): void {
    this.upstreams.get(upstream)?.setHealth(origin, healthy, reason);
  }

  /** Every endpoint's active health now, for a worker that starts (the supervisor sends it). */
  health(): Array<{ upstream: string; endpoint: string; healthy: boolean }> {
    const out: Array<{ upstream: string; endpoint: string; healthy: boolean }> = [];
    for (const u of this.upstreams.values()) for (const e of u.endpoints.values()) out.push({ upstream: u.name, endpoint: e.origin, healthy: e.healthy });
    return out;
  }

  /** Brings the states up to `config` (new upstreams, endpoints, checkers); nothing is removed yet. */
  apply(config: GatewayConfig): void {
    for (const [name, u] of config.upstreams) {
      let state = this.upstreams.get(name);
      if (state === undefined) {
        state = new UpstreamState(u, this.#log, this.#externalHealth, this.#link);
        this.upstreams.set(name, state);
      }
      state.apply(u, this.#warm, config.workers);
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

  /** Applies a runtime change (admin API): `upstream` or `endpoint` when there is no such one, else `ok`. */
  change(c: RuntimeChange): 'ok' | 'upstream' | 'endpoint' {
    const u = this.upstreams.get(c.upstream);
    if (u === undefined) return 'upstream';
    return u.change(c.endpoint, c) ? 'ok' : 'endpoint';
  }

  /** Drops every runtime change (after a successful reload). */
  clearRuntime(): void {
    for (const u of this.upstreams.values()) u.clearRuntime();
  }

  /** Every upstream as this process sees it, in name order. */
  view(): UpstreamView[] {
    const now = performance.now();
    return [...this.upstreams.values()].map((u) => u.view(now)).sort((a, b) => a.name.localeCompare(b.name));
  }

  close(): void {
    for (const s of this.upstreams.values()) s.close();
    this.upstreams.clear();
  }
}
