/**
 * A config generation: the runtime graph built from one GatewayConfig (upstreams with their pools,
 * policies built into filters, one router per listener with each route's compiled filter chain).
 * Requests count themselves in and out; a retired generation releases its pools once its last
 * request is over.
 */
import type { GatewayConfig, ListenerConfig, RouteConfig } from './config/types.ts';
import { compileChain, type NamedFilter } from './http/chain.ts';
import type { GenerationTracker, ListenerGeneration, ListenerRoute } from './http/listener-generation.ts';
import type { TcpGeneration } from './listeners/tcp-forward.ts';
import type { UdpGeneration } from './listeners/udp-listener.ts';
import { withParents } from './forward/parents.ts';
import type { ParentHealth } from './forward/parent-health.ts';
import { compileForwardRules } from './forward/rules.ts';
import type { PasswordCheck, SocksGeneration } from './forward/socks5-generation.ts';
import type { OwnRequest, OwnResponse, PolicyDeps } from './policies/filter.ts';
import type { ConnectionRecord } from './observability/access-log.ts';
import { Router } from './routing/router.ts';
import { Tunnels } from './transport/tunnel.ts';
import type { PoolRegistry } from './transport/pools.ts';
import type { StateStore } from './upstream/state.ts';
import { mergeTimeouts, Upstream } from './upstream/upstream.ts';
import { StaticSite } from './http/static-site.ts';
import { type FetchRoute, fetchThrough } from './http/own-fetch.ts';
import { AddressSet } from './util/cidr.ts';
import { type BoundAddress, createForwardRoute, type ForwardRoute } from './forward/forward-route.ts';

const noop = (): void => undefined;

/** What a generation reports to the gateway: finished requests, and failures while handling one. */
export type GenerationHooks = Pick<ListenerGeneration, 'onRequestEnd' | 'onInternalError' | 'tracing'> & {
  readonly log: PolicyDeps['log'];
  /** The process's shared state (a `StateGuard`), handed to policies that count (rate limits, quotas). */
  readonly state: PolicyDeps['state'];
  /** A layer 4 connection or UDP session ended; undefined when nobody logs them (no record is built then). */
  readonly onConnectionEnd?: (c: ConnectionRecord) => void;
  /** Every address the gateway listens on now (port 0 resolved): a forward listener refuses them as destinations (a loop). */
  readonly boundAddresses?: () => readonly BoundAddress[];
  /** The parents' active health, kept across generations (forward/parent-health.ts); absent: passive checks only. */
  readonly parentHealth?: ParentHealth;
};

const noAddresses = (): readonly BoundAddress[] => [];

export class Generation implements GenerationTracker {
  readonly config: GatewayConfig;
  readonly upstreams = new Map<string, Upstream>();
  readonly listeners = new Map<string, ListenerGeneration>();
  /** The generations of tcp listeners (layer 4: an upstream, no routes). */
  readonly tcp = new Map<string, TcpGeneration>();
  /** The generations of udp listeners (datagram sessions: an upstream, no routes). */
  readonly udp = new Map<string, UdpGeneration>();
  /** The generations of socks5 listeners (their rules compiled, their basic-auth policies' password checks). */
  readonly socks = new Map<string, SocksGeneration>();
  /** Every policy of the config, built once for this generation. */
  readonly filters = new Map<string, NamedFilter>();
  /** Query parameters some filter reads credentials from: redacted in the access log (per generation). */
  readonly #secretQueryParams = new Set<string>();
  readonly #registry: PoolRegistry;
  /** Forward listeners' routes: their pools to destinations close with this generation. */
  readonly #forwardRoutes: ForwardRoute[] = [];
  #inFlight = 0;
  /** Routes with an upstream, for requests of the policies' own (`PolicyDeps.fetch`); built on first use. */
  #fetchRoutes: Map<string, FetchRoute> | undefined;
  #retired: (() => void) | undefined;
  #retiring: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #deadline = Infinity;

  /** @param states the lasting upstream states, already brought up to `config` (StateStore.apply). */
  constructor(config: GatewayConfig, registry: PoolRegistry, states: StateStore, hooks: GenerationHooks) {
    this.config = config;
    this.#registry = registry;
    for (const [name, u] of config.upstreams) {
      const connectOverrides = new Set<number>();
      for (const r of config.routes) if (r.upstream === name && r.timeouts.connect !== undefined) connectOverrides.add(r.timeouts.connect);
      const state = states.get(name);
      if (state === undefined) throw new Error(`no state for upstream ${name}`);
      this.upstreams.set(name, new Upstream(u, registry, state, connectOverrides));
    }
    for (const [name, p] of config.policies) {
      const routes = new Map<string, Array<{ name: string; type: string }>>();
      for (const r of config.routes) {
        if (r.policies.includes(name))
          routes.set(
            r.name,
            r.policies.map((n) => ({ name: n, type: config.policies.get(n)!.type.type })),
          );
      }
      const filter = p.type.create(p.config, {
        name,
        type: p.type.type,
        log: hooks.log,
        state: hooks.state,
        consumers: config.consumers,
        routes,
        fetch: this.#fetch,
        redis: config.state.redis,
      });
      this.filters.set(name, { policy: name, filter });
      for (const q of filter.secretQueryParams ?? []) this.#secretQueryParams.add(q);
    }
    for (const l of config.listeners) {
      if (l.protocol === 'udp') {
        this.udp.set(l.name, {
          name: l.name,
          upstream: this.upstreams.get(l.upstream!)!,
          generation: this,
          drainTimeout: config.drainTimeout,
          onSessionEnd: hooks.onConnectionEnd,
        });
        continue;
      }
      if (l.protocol === 'socks5') {
        this.socks.set(l.name, {
          name: l.name,
          guard: withParents(compileForwardRules(l.forward!), l.forward!.parents, { listener: l.name, health: hooks.parentHealth }),
          forward: l.forward!,
          // config/resolve-policies.ts allows only basic-auth policies here, which all check passwords.
          passwords: l.policies.map((name) => this.filters.get(name)!.filter.checkPassword).filter((c): c is PasswordCheck => c !== undefined),
          generation: this,
          drainTimeout: config.drainTimeout,
          tunnels: new Tunnels(),
          associations: new Set(),
          onConnectionEnd: hooks.onConnectionEnd,
        });
        continue;
      }
      if (l.protocol === 'tcp' || l.protocol === 'tls' || l.protocol === 'tls-passthrough') {
        const upstream = l.upstream === undefined ? undefined : this.upstreams.get(l.upstream)!;
        const sni = l.sni && new Map([...l.sni].map(([name, u]) => [name, this.upstreams.get(u)!]));
        this.tcp.set(l.name, {
          name: l.name,
          upstream,
          sni,
          generation: this,
          drainTimeout: config.drainTimeout,
          tunnels: new Tunnels(),
          onConnectionEnd: hooks.onConnectionEnd,
        });
        continue;
      }
      this.listeners.set(l.name, this.#listenerGeneration(l, hooks));
    }
  }

  /** A listener's filters, in order (the shorthand keys' first: config/resolve-policies.ts put them there). */
  #listenerFilters(l: ListenerConfig): NamedFilter[] {
    return l.policies.map((name) => this.filters.get(name)!);
  }

  #route(r: RouteConfig, listenerFilters: NamedFilter[]): ListenerRoute {
    const upstream = r.upstream === undefined ? undefined : this.upstreams.get(r.upstream)!;
    return {
      name: r.name,
      config: r,
      upstream,
      static: r.static === undefined ? undefined : new StaticSite(r.static, r),
      timeouts: upstream === undefined ? { connect: 0, responseHeaders: 0, bodyIdle: 0, request: 0, tunnelIdle: 0 } : mergeTimeouts(upstream.config.timeouts, r.timeouts),
      maxBodySize: r.maxBodySize,
      chain: compileChain(
        listenerFilters,
        r.policies.map((name) => this.filters.get(name)!),
      ),
    };
  }

  #listenerGeneration(l: ListenerConfig, hooks: GenerationHooks): ListenerGeneration {
    const filters = this.#listenerFilters(l);
    const forward = l.protocol === 'forward';
    // A forward listener has no routes: its one route takes every request (forward/forward-route.ts).
    const routes = forward ? [] : this.config.routes.filter((r) => r.listeners === undefined || r.listeners.includes(l.name)).map((r) => this.#route(r, filters));
    let forwardRoute: ForwardRoute | undefined;
    if (forward) {
      forwardRoute = createForwardRoute(l, filters, hooks.boundAddresses ?? noAddresses, hooks.parentHealth);
      this.#forwardRoutes.push(forwardRoute);
    }
    return {
      name: l.name,
      router: new Router(routes),
      trusted: new AddressSet(l.trustedProxies),
      settings: {
        scheme: l.protocol === 'https' ? 'https' : 'http',
        underscores: l.headersWithUnderscores,
        sendTimeout: l.sendTimeout,
        policyTimeout: l.policyTimeout,
        clientCertHeaders: l.tls?.clientCertificate ? [l.tls.clientCertificate.subjectHeader, l.tls.clientCertificate.fingerprintHeader] : undefined,
        maxHeaderSize: l.maxHeaderSize,
        draining: false,
        forwardProxy: forward,
      },
      generation: this,
      chain: compileChain(filters, undefined),
      forwardRoute,
      tracing: hooks.tracing,
      secretQueryParams: this.#secretQueryParams,
      onRequestEnd: hooks.onRequestEnd,
      onInternalError: hooks.onInternalError,
    };
  }

  /** `PolicyDeps.fetch`: a request of a policy's own through a route's upstream (http/own-fetch.ts). */
  readonly #fetch = (route: string, request: OwnRequest, maxBodySize: number): Promise<OwnResponse | undefined> => {
    if (this.#retiring !== undefined) return Promise.resolve(undefined);
    if (this.#fetchRoutes === undefined) {
      this.#fetchRoutes = new Map();
      for (const r of this.config.routes) {
        const upstream = r.upstream === undefined ? undefined : this.upstreams.get(r.upstream);
        if (upstream !== undefined) this.#fetchRoutes.set(r.name, { upstream, timeouts: mergeTimeouts(upstream.config.timeouts, r.timeouts), rewrite: r.rewrite });
      }
    }
    const found = this.#fetchRoutes.get(route);
    return found === undefined ? Promise.resolve(undefined) : fetchThrough(found, request, maxBodySize, this);
  };

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
    this.#retiring = new Promise<void>((resolve) => {
      const done = (): void => {
        if (this.#timer) clearTimeout(this.#timer);
        this.#retired = noop;
        for (const u of this.upstreams.values()) {
          u.close();
          this.#registry.release(u.pools);
        }
        for (const f of this.#forwardRoutes) void f.close();
        resolve();
      };
      if (this.#inFlight === 0) return done();
      this.#retired = done;
      this.#arm(deadline);
    });
    return this.#retiring;
  }

  #arm(deadline: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#deadline = deadline;
    this.#timer = setTimeout(() => this.#retired?.(), Math.max(0, deadline - performance.now()));
    this.#timer.unref();
  }
}
