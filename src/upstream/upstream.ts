/**
 * An Upstream: a named pool of endpoints and the balancer that chooses among them. Keeps the list
 * of available endpoints precomputed, so a pick is one balancer call with no filtering on the common
 * path (first attempt).
 */
import type { Timeouts, UpstreamConfig } from '../config/types.ts';
import type { Balancer, PickContext } from './balancer.ts';
import { balancers } from './balancers/index.ts';
import { Endpoint } from './endpoint.ts';
import type { PoolOptions, PoolRegistry } from '../transport/pools.ts';
import type { Dispatcher } from 'undici';

export class Upstream {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly endpoints: readonly Endpoint[];
  readonly balancer: Balancer;
  /** Every pool this upstream acquired, released when its config generation retires. */
  readonly pools: Dispatcher[] = [];
  #available: Endpoint[];

  /**
   * @param connectTimeouts connect timeouts that routes override to; each gets its own pool per
   *   endpoint, because undici sets the connect timeout per pool.
   */
  constructor(config: UpstreamConfig, registry: PoolRegistry, connectTimeouts: Iterable<number> = []) {
    this.name = config.name;
    this.config = config;
    const factory = balancers[config.balancer];
    if (!factory) throw new Error(`unknown balancer ${config.balancer}`);
    this.balancer = factory();
    const acquire = (origin: string, connectTimeout: number): Dispatcher => {
      const pool = registry.acquire(origin, poolOptions(config, connectTimeout));
      this.pools.push(pool);
      return pool;
    };
    this.endpoints = config.endpoints.map((e) => {
      const endpoint = new Endpoint(config.name, e, acquire(e.origin, config.timeouts.connect));
      for (const t of connectTimeouts) {
        if (t !== config.timeouts.connect) endpoint.dispatchers.set(t, acquire(e.origin, t));
      }
      return endpoint;
    });
    this.#available = [];
    this.refresh();
  }

  /** Endpoints that may be picked now (healthy). */
  get available(): readonly Endpoint[] {
    return this.#available;
  }

  /** Recomputes the available list; call after any endpoint's `healthy` changes. */
  refresh(): void {
    this.#available = this.endpoints.filter((e) => e.healthy);
    this.balancer.update?.(this.#available);
  }

  /**
   * Chooses the endpoint for one attempt, avoiding those already tried while others remain.
   * Returns undefined when no endpoint is available.
   */
  pick(ctx: PickContext): Endpoint | undefined {
    const available = this.#available;
    if (ctx.tried.size === 0 || available.length <= 1) return this.balancer.pick(available, ctx);
    const fresh = available.filter((e) => !ctx.tried.has(e));
    return this.balancer.pick(fresh.length ? fresh : available, ctx);
  }
}

function poolOptions(config: UpstreamConfig, connectTimeout: number): PoolOptions {
  return { connections: config.connectionsPerEndpoint, keepAliveTimeout: config.keepAliveTimeout, connectTimeout };
}

/** Effective timeouts of a route: the upstream's, with the route's overrides. */
export function mergeTimeouts(upstream: Timeouts, route: Partial<Timeouts>): Timeouts {
  return {
    connect: route.connect ?? upstream.connect,
    responseHeaders: route.responseHeaders ?? upstream.responseHeaders,
    bodyIdle: route.bodyIdle ?? upstream.bodyIdle,
    request: route.request ?? upstream.request,
  };
}
