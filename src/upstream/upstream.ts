/**
 * An Upstream in one config generation: its endpoints, its balancer, and the list of endpoints
 * traffic may go to, recomputed only when health, ejection or the config change, so a pick on the
 * common path is one balancer call with no filtering.
 *
 * Panic mode (as Envoy's panic threshold): when fewer than `panicThreshold` % of the endpoints are
 * usable, every endpoint is a candidate again, since overloading the few healthy ones would take
 * them down too.
 */
import type { StickyConfig, Timeouts, UpstreamConfig } from '../config/types.ts';
import type { Balancer, PickContext } from './balancers/balancer.ts';
import { balancers } from './balancers/index.ts';
import { Endpoint } from './endpoint.ts';
import type { UpstreamState } from './state.ts';
import type { PoolOptions, PoolRegistry, UpstreamPool } from '../transport/pools.ts';
import { connectionKey, endpointTls } from '../transport/upstream-tls.ts';

export class Upstream {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly endpoints: readonly Endpoint[];
  readonly balancer: Balancer;
  readonly state: UpstreamState;
  /** Whether the balancer hashes a request key (ip-hash, consistent-hash). */
  readonly hashes: boolean;
  readonly sticky: StickyConfig | undefined;
  /** Every pool this upstream acquired, released when its config generation retires. */
  readonly pools: UpstreamPool[] = [];
  #available: Endpoint[] = [];
  #panic = false;
  readonly #byId = new Map<string, Endpoint>();
  readonly #cookies = new Map<Endpoint, string>();
  readonly #pick: PickContext = { hashKey: undefined, now: 0 };
  readonly #unsubscribe: () => void;

  /**
   * @param connectTimeouts connect timeouts that routes override to; each gets its own pool per
   *   endpoint, because a pool has one connect timeout.
   */
  constructor(config: UpstreamConfig, registry: PoolRegistry, state: UpstreamState, connectTimeouts: Iterable<number> = []) {
    this.name = config.name;
    this.config = config;
    this.state = state;
    this.balancer = balancers[config.balancer]({ random: Math.random, hashTable: config.hashTable });
    this.hashes = config.balancer === 'ip-hash' || config.balancer === 'consistent-hash';
    this.sticky = config.sticky;
    const settingsKey = connectionKey(config);
    this.endpoints = config.endpoints.map((e) => {
      const s = state.endpoints.get(e.origin);
      if (s === undefined) throw new Error(`no state for endpoint ${e.origin} of upstream ${config.name}`);
      const tls = endpointTls(config, e);
      const acquire = (connectTimeout: number): UpstreamPool => {
        const pool = registry.acquire(e.origin, { ...poolOptions(config, connectTimeout), tls, settingsKey });
        this.pools.push(pool);
        return pool;
      };
      // tcp:// and udp:// endpoints (layer 4 listeners) are dialled directly: no HTTP pool.
      const tcp = e.scheme === 'tcp' || e.scheme === 'udp';
      const endpoint = new Endpoint(config.name, e, s, tcp ? undefined : acquire(config.timeouts.connect), tls);
      if (!tcp) {
        for (const t of connectTimeouts) {
          if (t !== config.timeouts.connect) endpoint.dispatchers.set(t, acquire(t));
        }
      }
      this.#byId.set(endpoint.id, endpoint);
      if (config.sticky) this.#cookies.set(endpoint, stickyCookie(config.sticky, endpoint.id));
      return endpoint;
    });
    this.refresh();
    this.#unsubscribe = state.subscribe(() => this.refresh());
  }

  /** Endpoints that may be picked now: the usable ones, or all of them in panic mode. */
  get available(): readonly Endpoint[] {
    return this.#available;
  }

  /** Whether too few endpoints are usable and all of them take traffic. */
  get panic(): boolean {
    return this.#panic;
  }

  /**
   * Recomputes the available list; runs when an endpoint's health, ejection, admin state or weight
   * changes. Endpoints drained or disabled through the admin API take no traffic even in panic mode.
   */
  refresh(): void {
    const usable = this.endpoints.filter((e) => e.state.usable);
    const threshold = this.config.panicThreshold;
    this.#panic = threshold > 0 && usable.length * 100 < threshold * this.endpoints.length;
    this.#available = this.#panic ? this.endpoints.filter((e) => e.state.admin === 'ready') : usable;
    this.balancer.update(this.#available);
  }

  /** The endpoint with this id when it may take traffic now (for sticky sessions). */
  availableById(id: string): Endpoint | undefined {
    const e = this.#byId.get(id);
    return e !== undefined && ((this.#panic && e.state.admin === 'ready') || e.state.stickyUsable) ? e : undefined;
  }

  /**
   * Chooses the endpoint for one try: among the available ones not in `tried`. Returns undefined
   * when none is available, or every available one was tried.
   */
  pick(hashKey: string | undefined, tried: readonly Endpoint[] | undefined): Endpoint | undefined {
    const ctx = this.#pick;
    ctx.hashKey = hashKey;
    ctx.now = performance.now();
    const available = this.#available;
    if (tried === undefined) return this.balancer.pick(available, ctx);
    const fresh = available.filter((e) => !tried.includes(e));
    return fresh.length === 0 ? undefined : this.balancer.pick(fresh, ctx);
  }

  /** The Set-Cookie value that pins a client to `endpoint` (sticky sessions). */
  cookieFor(endpoint: Endpoint): string | undefined {
    return this.#cookies.get(endpoint);
  }

  /** Whether some available endpoint is not in `tried`. */
  hasUntried(tried: readonly Endpoint[]): boolean {
    for (const e of this.#available) if (!tried.includes(e)) return true;
    return false;
  }

  /** Stops following state changes; called when the generation retires. */
  close(): void {
    this.#unsubscribe();
  }
}

function stickyCookie(s: StickyConfig, id: string): string {
  let cookie = `${s.cookie}=${id}; Path=${s.path}; HttpOnly; SameSite=${s.sameSite}`;
  if (s.ttl > 0) cookie += `; Max-Age=${Math.round(s.ttl / 1000)}`;
  if (s.secure || s.sameSite === 'None') cookie += '; Secure';
  return cookie;
}

function poolOptions(config: UpstreamConfig, connectTimeout: number): Omit<PoolOptions, 'tls' | 'settingsKey'> {
  return { connections: config.connectionsPerEndpoint, keepAliveTimeout: config.keepAliveTimeout, connectTimeout, protocol: config.protocol };
}

/** Effective timeouts of a route: the upstream's, with the route's overrides. */
export function mergeTimeouts(upstream: Timeouts, route: Partial<Timeouts>): Timeouts {
  return {
    connect: route.connect ?? upstream.connect,
    responseHeaders: route.responseHeaders ?? upstream.responseHeaders,
    bodyIdle: route.bodyIdle ?? upstream.bodyIdle,
    request: route.request ?? upstream.request,
    tunnelIdle: route.tunnelIdle ?? upstream.tunnelIdle,
  };
}
