/**
 * A config generation: the runtime graph built from one GatewayConfig (upstreams with their pools,
 * routes with their compiled chains, one router per listener). Requests count themselves in and
 * out; a retired generation releases its pools once its last request is over.
 */
import type { GatewayConfig, ListenerConfig } from './config/types.ts';
import type { ListenerRuntime, GenerationTracker } from './listeners/http-handler.ts';
import type { TcpRuntime } from './listeners/tcp-listener.ts';
import type { UdpRuntime } from './listeners/udp-listener.ts';
import { Tunnels } from './transport/tunnel.ts';
import type { Middleware, RequestContext } from './middleware/context.ts';
import { compose } from './middleware/compose.ts';
import { Router } from './routing/router.ts';
import type { RuntimeRoute } from './routing/route.ts';
import { proxy } from './upstream/proxy.ts';
import { mergeTimeouts, Upstream } from './upstream/upstream.ts';
import type { PoolRegistry } from './transport/pools.ts';
import type { StateStore } from './upstream/state.ts';
import { AddressSet } from './util/cidr.ts';

const noop = (): void => undefined;

function buildRoute(config: GatewayConfig['routes'][number], upstream: Upstream): RuntimeRoute {
  const partial = {
    name: config.name,
    config,
    upstream,
    timeouts: mergeTimeouts(upstream.config.timeouts, config.timeouts),
    maxBodySize: config.maxBodySize,
  };
  // Middleware policies (auth, rate limits, caching…) are built here from the route's config when
  // they exist; with none, the proxy step is called directly and no promise is made per request.
  const middlewares: Middleware[] = [];
  const handle =
    middlewares.length === 0
      ? (ctx: RequestContext): void => proxy(ctx, partial, noop)
      : compose(middlewares, (ctx) => new Promise<void>((resolve) => proxy(ctx, partial, () => resolve())));
  return { ...partial, handle };
}

export class Generation implements GenerationTracker {
  readonly config: GatewayConfig;
  readonly upstreams = new Map<string, Upstream>();
  readonly listeners = new Map<string, ListenerRuntime>();
  /** The runtimes of tcp listeners (layer 4: an upstream, no routes). */
  readonly tcp = new Map<string, TcpRuntime>();
  /** The runtimes of udp listeners (datagram sessions: an upstream, no routes). */
  readonly udp = new Map<string, UdpRuntime>();
  readonly #registry: PoolRegistry;
  #inFlight = 0;
  #retired: (() => void) | undefined;
  #retiring: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #deadline = Infinity;

  /** @param states the lasting upstream states, already brought up to `config` (StateStore.apply). */
  constructor(config: GatewayConfig, registry: PoolRegistry, states: StateStore, hooks: Pick<ListenerRuntime, 'onRequestEnd' | 'onInternalError'>) {
    this.config = config;
    this.#registry = registry;
    for (const [name, u] of config.upstreams) {
      const connectOverrides = new Set<number>();
      for (const r of config.routes) if (r.upstream === name && r.timeouts.connect !== undefined) connectOverrides.add(r.timeouts.connect);
      const state = states.get(name);
      if (state === undefined) throw new Error(`no state for upstream ${name}`);
      this.upstreams.set(name, new Upstream(u, registry, state, connectOverrides));
    }
    const routes = config.routes.map((r) => buildRoute(r, this.upstreams.get(r.upstream)!));
    for (const l of config.listeners) {
      if (l.protocol === 'udp') {
        this.udp.set(l.name, { name: l.name, upstream: this.upstreams.get(l.upstream!)!, generation: this, drainTimeout: config.drainTimeout });
        continue;
      }
      if (l.protocol === 'tcp' || l.protocol === 'tls' || l.protocol === 'tls-passthrough') {
        const upstream = l.upstream === undefined ? undefined : this.upstreams.get(l.upstream)!;
        const sni = l.sni && new Map([...l.sni].map(([name, u]) => [name, this.upstreams.get(u)!]));
        this.tcp.set(l.name, { name: l.name, upstream, sni, generation: this, drainTimeout: config.drainTimeout, tunnels: new Tunnels() });
        continue;
      }
      this.listeners.set(l.name, this.#listenerRuntime(l, routes, hooks));
    }
  }

  #listenerRuntime(l: ListenerConfig, routes: RuntimeRoute[], hooks: Pick<ListenerRuntime, 'onRequestEnd' | 'onInternalError'>): ListenerRuntime {
    const mine = routes.filter((r) => r.config.listeners === undefined || r.config.listeners.includes(l.name));
    return {
      name: l.name,
      router: new Router(mine),
      trusted: new AddressSet(l.trustedProxies),
      policy: {
        proto: l.protocol,
        underscores: l.headersWithUnderscores,
        sendTimeout: l.sendTimeout,
        hsts: l.hsts,
        clientCertHeaders: l.tls?.clientCertificate ? [l.tls.clientCertificate.subjectHeader, l.tls.clientCertificate.fingerprintHeader] : undefined,
        httpsRedirect: l.httpsRedirect?.port,
        draining: false,
      },
      generation: this,
      onRequestEnd: hooks.onRequestEnd,
      onInternalError: hooks.onInternalError,
    };
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  enter(): void {
    this.#inFlight++;
  }

  leave(): void {
    if (--this.#inFlight === 0 && this.#retired) this.#retired();
  }

  /**
   * Called when a newer generation took over: resolves once the last in-flight request of this one
   * is over (or after `drainTimeout` ms), then releases its pools.
   */
  retire(drainTimeout: number): Promise<void> {
    const deadline = performance.now() + drainTimeout;
    if (this.#retiring !== undefined) {
      // Retiring already (a reload): a later, shorter deadline (a stop) takes over.
      if (this.#retired !== noop && deadline < this.#deadline) this.#arm(deadline);
      return this.#retiring;
    }
    return (this.#retiring = new Promise<void>((resolve) => {
      const done = (): void => {
        if (this.#timer) clearTimeout(this.#timer);
        this.#retired = noop;
        for (const u of this.upstreams.values()) {
          u.close();
          this.#registry.release(u.pools);
        }
        resolve();
      };
      if (this.#inFlight === 0) return done();
      this.#retired = done;
      this.#arm(deadline);
    }));
  }

  #arm(deadline: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#deadline = deadline;
    this.#timer = setTimeout(() => this.#retired?.(), Math.max(0, deadline - performance.now()));
    this.#timer.unref();
  }
}
