/**
 * Outlier detection: passive health from the outcome of real tries. After `consecutiveFailures`
 * failed tries in a row (a 5xx, a connect failure, a reset, a timeout) an endpoint is ejected,
 * taken out of rotation, for one base ejection time per ejection so far (capped at
 * `maxEjectionTime`); the count decays by one for each base time the endpoint goes without an
 * ejection. At most `maxEjectedPercent` of the endpoints are ejected at once, but always one may be.
 *
 * Source: Envoy's outlier detection, consecutive 5xx
 * (envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/outlier, `consecutive_5xx`,
 * `base_ejection_time`, `max_ejection_time`, `max_ejection_percent`), also followed by gRPC's
 * outlier detection balancer (gRFC A50). Envoy's success-rate and failure-percentage detectors,
 * which run on an interval, are not implemented.
 *
 * State scope: per machine for the ejections, per worker for the streaks. Each worker counts the
 * failures of the traffic it sends; when one ejects an endpoint, its supervisor tells the other
 * workers, which eject it for the same time (`ejectFor`), as Envoy runs detection on its main
 * thread for all workers. `maxEjectedPercent` is checked by the worker that decides. Not per fleet: an instance judges an
 * endpoint by its own traffic and its own network path, as Envoy does; one instance's bad path
 * should not eject the endpoint for every instance.
 */
import type { OutlierConfig } from '../config/types.ts';

/** What outlier detection keeps on each endpoint (`EndpointState` carries these fields). */
export interface OutlierRecord {
  /** Out of rotation until `ejectedUntil`. */
  ejected: boolean;
  ejectedUntil: number;
  /** Ejections so far (the next one lasts one base time more), decaying while it behaves. */
  ejections: number;
  lastEjectedAt: number;
  consecutiveFailures: number;
  ejectionTimer: NodeJS.Timeout | undefined;
}

/**
 * Told when an endpoint leaves or rejoins the rotation, after the record is updated; the owner
 * (UpstreamState) logs, publishes the change and tells its subscribers.
 */
export interface OutlierEvents<E> {
  ejected(endpoint: E, reason: string): void;
  returned(endpoint: E): void;
}

/** How long the `ejections`-th ejection lasts: one base time per ejection, at most the maximum. */
export function ejectionDuration(config: OutlierConfig, ejections: number): number {
  return Math.min(config.baseEjectionTime * ejections, config.maxEjectionTime);
}

/** The ejection count after the calm since `ejectedUntil`: one less per whole base time. */
export function decayedEjections(ejections: number, ejectedUntil: number, now: number, baseEjectionTime: number): number {
  if (ejections === 0) return 0;
  const calm = Math.floor((now - ejectedUntil) / baseEjectionTime);
  return calm > 0 ? Math.max(0, ejections - calm) : ejections;
}

/** How many of `endpoints` may be ejected at once: `percent` of them, rounded down, but at least one. */
export function maxEjected(endpoints: number, percent: number): number {
  return Math.max(1, Math.floor((endpoints * percent) / 100));
}

/**
 * The ejection decisions for one upstream's endpoints. `endpoints` is the live map the upstream
 * keeps (read for the count of ejections); `now` is injectable for tests, timers are not.
 */
export class OutlierDetection<E extends OutlierRecord> {
  #config: OutlierConfig;
  readonly #endpoints: ReadonlyMap<string, E>;
  readonly #events: OutlierEvents<E>;
  readonly #now: () => number;
  #closed = false;

  constructor(config: OutlierConfig, endpoints: ReadonlyMap<string, E>, events: OutlierEvents<E>, now: () => number = Date.now) {
    this.#config = config;
    this.#endpoints = endpoints;
    this.#events = events;
    this.#now = now;
  }

  /** Adopts a reloaded config; ejections in progress keep their end time. */
  configure(config: OutlierConfig): void {
    this.#config = config;
  }

  /**
   * Records the outcome of one try at `endpoint`. `failed` means a 5xx response, a connect
   * failure, a reset or a timeout. Called on every try, so the success path is one test.
   */
  record(endpoint: E, failed: boolean): void {
    if (!failed) {
      if (endpoint.consecutiveFailures !== 0) endpoint.consecutiveFailures = 0;
      return;
    }
    const od = this.#config;
    if (od.consecutiveFailures === 0 || endpoint.ejected || ++endpoint.consecutiveFailures < od.consecutiveFailures) return;
    endpoint.consecutiveFailures = 0;
    let ejected = 0;
    for (const s of this.#endpoints.values()) if (s.ejected) ejected++;
    if (ejected >= maxEjected(this.#endpoints.size, od.maxEjectedPercent)) return;
    const now = this.#now();
    endpoint.ejections = decayedEjections(endpoint.ejections, endpoint.ejectedUntil, now, od.baseEjectionTime) + 1;
    const duration = ejectionDuration(od, endpoint.ejections);
    endpoint.ejected = true;
    endpoint.lastEjectedAt = now;
    endpoint.ejectedUntil = now + duration;
    endpoint.ejectionTimer = setTimeout(() => this.#unEject(endpoint), duration);
    endpoint.ejectionTimer.unref();
    this.#events.ejected(endpoint, `${od.consecutiveFailures} consecutive failures; ejected for ${duration} ms (ejection ${endpoint.ejections})`);
  }

  /**
   * Ejects `endpoint` for `duration` ms because another worker of the machine ejected it (its
   * supervisor passed the news on): the machine's workers keep one view of which endpoints are out.
   * An endpoint ejected already keeps the later end time. No event to the link: the news does not
   * echo back.
   */
  ejectFor(endpoint: E, duration: number, reason: string): void {
    if (this.#closed) return;
    const now = this.#now();
    const until = now + duration;
    if (endpoint.ejected && endpoint.ejectedUntil >= until) return;
    if (endpoint.ejectionTimer) clearTimeout(endpoint.ejectionTimer);
    const fresh = !endpoint.ejected;
    endpoint.ejected = true;
    endpoint.lastEjectedAt = now;
    endpoint.ejectedUntil = until;
    endpoint.consecutiveFailures = 0;
    endpoint.ejectionTimer = setTimeout(() => this.#unEject(endpoint), duration);
    endpoint.ejectionTimer.unref();
    if (fresh) this.#events.ejected(endpoint, reason);
  }

  /** Stops `endpoint`'s ejection timer; for an endpoint the upstream no longer has. */
  forget(endpoint: E): void {
    if (endpoint.ejectionTimer) clearTimeout(endpoint.ejectionTimer);
    endpoint.ejectionTimer = undefined;
  }

  /** Stops every timer; no endpoint returns from ejection afterwards. */
  close(): void {
    this.#closed = true;
    for (const s of this.#endpoints.values()) this.forget(s);
  }

  #unEject(endpoint: E): void {
    endpoint.ejectionTimer = undefined;
    if (this.#closed || !endpoint.ejected) return;
    endpoint.ejected = false;
    this.#events.returned(endpoint);
  }
}
