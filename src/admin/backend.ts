/**
 * What the admin HTTP layer (server.ts) asks of the process it runs in, whatever that is: a lone
 * gateway (local.ts, `Gateway` in this process) or a supervisor (process/supervisor.ts, which asks
 * its workers over IPC and merges their answers). The HTTP layer sees only this.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/types.ts';
import type { ConfigErrorRecord } from '../observability/config-errors.ts';
import type { TapBatch } from '../observability/access-tap.ts';
import type { EndpointView, RuntimeChange, UpstreamView } from '../upstream/state.ts';
import type { PurgeQuery } from '../policies/filter.ts';

/** One worker's own part of an endpoint's numbers (with workers only). */
export interface WorkerEndpointPart {
  worker: number;
  pid: number;
  inFlight: number;
  latencyMs: number;
  ejected: boolean;
  weightFactor: number;
}

/** An endpoint as `/api/upstreams` shows it: with workers, in flight summed and each worker's part under `workers`. */
export interface AdminEndpoint extends EndpointView {
  workers?: WorkerEndpointPart[];
}

export interface AdminUpstream extends Omit<UpstreamView, 'endpoints'> {
  endpoints: AdminEndpoint[];
}

/** One process serving traffic: the gateway itself, or each worker. */
export interface WorkerView {
  /** 0 for a lone process; 1-based worker number otherwise. */
  id: number;
  pid: number;
  state: 'starting' | 'serving' | 'draining';
  /** Resident memory, bytes (last report, with workers). */
  rss: number;
}

/** Health of one endpoint as the process's health checkers (the supervisor's, with workers) see it. */
export interface HealthEntry {
  upstream: string;
  endpoint: string;
  healthy: boolean;
}

export type ChangeOutcome = 'ok' | 'upstream' | 'endpoint';

export interface AdminBackend {
  readonly log: Logger;
  /** The config serving now. */
  config(): GatewayConfig;
  generation(): { number: number; loadedAt: Date };
  /** Each listener's bound URL, by name. */
  listenerUrls(): Record<string, string>;
  /** Whether the listeners are bound and serve (with workers: at least one worker serves). */
  serving(): boolean;
  /** Active health of every endpoint. */
  health(): HealthEntry[];
  upstreams(): Promise<AdminUpstream[]>;
  workers(): Promise<WorkerView[]>;
  configErrors(): ConfigErrorRecord[];
  /** Applies a runtime change (the endpoint named by its origin) wherever traffic is served. */
  change(c: RuntimeChange): Promise<ChangeOutcome>;
  /** Reads and applies the config file (or source) again. */
  reload(): Promise<{ ok: boolean; errors: string[] }>;
  /**
   * Removes stored responses from the cache policy `policy` (every cache policy when undefined)
   * wherever traffic is served (with workers: by one worker, since their stores are shared by the
   * machine or the fleet); resolves with the objects removed and how many processes applied it
   * (1; 0 when no worker answered). The caller checked that such a policy exists.
   */
  purge(policy: string | undefined, query: PurgeQuery): Promise<{ purged: number; processes: number }>;
  /**
   * Starts sending the access log's JSON lines of finished requests (wherever traffic is served)
   * to `deliver`, in batches; returns how to stop. Called while someone tails, never otherwise.
   */
  tail(deliver: (batch: TapBatch) => void): () => void;
}

/**
 * Merges the workers' views of the upstreams into one: requests in flight summed, ejected when any
 * worker ejected it, the latency estimate the mean of the workers that have one; each worker's
 * own numbers kept under `workers`.
 */
export function mergeUpstreams(parts: Array<{ worker: number; pid: number; upstreams: UpstreamView[] }>): AdminUpstream[] {
  const byName = new Map<string, AdminUpstream>();
  for (const part of parts) {
    for (const u of part.upstreams) {
      let merged = byName.get(u.name);
      if (merged === undefined) {
        merged = { name: u.name, balancer: u.balancer, endpoints: u.endpoints.map((e) => ({ ...e, inFlight: 0, latencyMs: 0, ejected: false, workers: [] })) };
        byName.set(u.name, merged);
      }
      for (const e of u.endpoints) {
        const m = merged.endpoints.find((x) => x.url === e.url);
        if (m === undefined) continue;
        m.inFlight += e.inFlight;
        m.ejected ||= e.ejected;
        m.workers!.push({ worker: part.worker, pid: part.pid, inFlight: e.inFlight, latencyMs: e.latencyMs, ejected: e.ejected, weightFactor: e.weightFactor });
      }
    }
  }
  for (const u of byName.values()) {
    for (const e of u.endpoints) {
      const sampled = e.workers!.filter((w) => w.latencyMs > 0);
      e.latencyMs = sampled.length === 0 ? 0 : sampled.reduce((a, w) => a + w.latencyMs, 0) / sampled.length;
      e.weightFactor = Math.min(...e.workers!.map((w) => w.weightFactor), 1);
    }
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** What `/readyz` answers: ready, or why not. */
export interface Readiness {
  ready: boolean;
  /** Present when the listeners do not serve. */
  listeners?: 'not bound';
  /** Upstreams with health checks and no healthy endpoint. */
  upstreamsWithoutHealthyEndpoint?: string[];
}

/**
 * Ready when the listeners serve and every upstream with health checks has at least one endpoint
 * its checks call healthy (upstreams without checks count as ready: nothing says otherwise).
 */
export function readiness(backend: AdminBackend): Readiness {
  const out: Readiness = { ready: true };
  if (!backend.serving()) {
    out.ready = false;
    out.listeners = 'not bound';
  }
  const checked = [...backend.config().upstreams.values()].filter((u) => u.healthCheck !== undefined && u.endpoints.length > 0);
  if (checked.length > 0) {
    const healthy = new Set(
      backend
        .health()
        .filter((h) => h.healthy)
        .map((h) => h.upstream),
    );
    const none = checked.map((u) => u.name).filter((n) => !healthy.has(n));
    if (none.length > 0) {
      out.ready = false;
      out.upstreamsWithoutHealthyEndpoint = none.sort();
    }
  }
  return out;
}

/**
 * The origin of the endpoint an admin URL names: its position in the upstream's `endpoints` list
 * (`0`, `1`, …) or its URL, percent-encoded (`http%3A%2F%2F10.0.0.5%3A8080`; the origin as
 * `/api/upstreams` shows it). Undefined when the upstream has no such endpoint.
 */
export function endpointOrigin(config: GatewayConfig, upstream: string, id: string): string | undefined {
  const u = config.upstreams.get(upstream);
  if (u === undefined) return undefined;
  if (/^\d{1,6}$/.test(id)) return u.endpoints[Number(id)]?.origin;
  const exact = u.endpoints.find((e) => e.origin === id);
  if (exact !== undefined) return exact.origin;
  let origin: string;
  try {
    origin = new URL(id).origin;
  } catch {
    return undefined;
  }
  return u.endpoints.find((e) => e.origin === origin)?.origin;
}
