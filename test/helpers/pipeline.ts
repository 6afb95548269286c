/**
 * For unit tests of the request pipeline below the gateway: a RouteConfig with defaults, a
 * ListenerGeneration around a set of routes, and a real server on 127.0.0.1:0 serving it (the own
 * HTTP/1.1 server, as listeners run it).
 */
import { Consumers } from '../../src/policies/consumers.ts';
import net, { type AddressInfo } from 'node:net';
import type { GatewayConfig, MatchConfig, RouteConfig, UpstreamConfig } from '../../src/config/types.ts';
import { resolve } from '../../src/config/resolve.ts';
import type { RawUpstream } from '../../src/config/schema.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { StateStore, type UpstreamState } from '../../src/upstream/state.ts';
import { H1Connections, type H1Host } from '../../src/http/h1-server.ts';
import type { ListenerGeneration, ListenerRoute } from '../../src/http/listener-generation.ts';
import { EMPTY_CHAIN } from '../../src/http/chain.ts';
import { runPipeline, type ForwardStep } from '../../src/http/pipeline.ts';
import { proxy } from '../../src/http/proxy.ts';
import { Router } from '../../src/routing/router.ts';
import { AddressSet } from '../../src/util/cidr.ts';

let order = 0;

/** A route config matching `match` (nothing else set), later ones ordered after earlier ones. */
export function routeConfig(name: string, match: Partial<MatchConfig> = {}, priority = 0): RouteConfig {
  return {
    name,
    listeners: undefined,
    match: { hosts: [], path: undefined, methods: undefined, headers: [], query: [], ...match },
    upstream: 'u',
    policies: [],
    priority,
    rewrite: undefined,
    timeouts: {},
    maxBodySize: 0,
    order: order++,
  };
}

/** A listener generation over `routes`, with defaults for everything else. */
export function listenerGeneration(routes: ListenerRoute[], overrides: Partial<ListenerGeneration> = {}): ListenerGeneration {
  return {
    name: 'test',
    router: new Router(routes),
    trusted: new AddressSet([]),
    settings: { scheme: 'http', clientCertHeaders: undefined, underscores: 'drop', sendTimeout: 0, policyTimeout: 0, maxHeaderSize: 16384, draining: false },
    generation: { enter: () => undefined, leave: () => undefined },
    chain: EMPTY_CHAIN,
    tracing: undefined,
    secretQueryParams: new Set(),
    onRequestEnd: () => undefined,
    onInternalError: () => undefined,
    ...overrides,
  };
}

/** A route for `listenerGeneration`: no filters unless `chain` is given. */
export function listenerRoute(config: RouteConfig, more: Partial<ListenerRoute> = {}): ListenerRoute {
  return {
    name: config.name,
    config,
    upstream: undefined,
    timeouts: { connect: 1000, responseHeaders: 1000, bodyIdle: 1000, request: 0, tunnelIdle: 0 },
    maxBodySize: 0,
    chain: EMPTY_CHAIN,
    ...more,
  };
}

/** Serves `gen` on 127.0.0.1:0 through the real pipeline (ending in `forward`, the proxy step by default). */
export async function serve(gen: ListenerGeneration, forward: ForwardStep = proxy): Promise<{ base: string; close: () => Promise<void> }> {
  const own = new H1Connections();
  const host: H1Host = {
    settings: { maxHeaderSize: 16384, headerTimeout: 20_000, requestTimeout: 300_000, keepAliveTimeout: 5000, maxRequestsPerConnection: 0 },
    start: (ex) => runPipeline(gen, ex, ex.req.expect === 1, forward),
    upgrade: (req) => req.socket.destroy(),
  };
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => own.serve(socket, host));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      own.closeAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** An upstream config as the resolver makes it from `raw` (defaults applied). */
export function upstreamConfig(name: string, raw: RawUpstream): UpstreamConfig {
  const { config, problems } = resolve({ listeners: {}, upstreams: { [name]: raw } });
  if (!config) throw new Error(`bad upstream config: ${JSON.stringify(problems)}`);
  return config.upstreams.get(name)!;
}

/** A whole config with only upstream `u` (no listener, route or policy), for the StateStore. */
export function upstreamOnlyConfig(u: UpstreamConfig): GatewayConfig {
  return {
    listeners: [],
    routes: [],
    upstreams: new Map([[u.name, u]]),
    policies: new Map(),
    consumers: new Consumers(),
    drainTimeout: 0,
    workers: 1,
    workerMemoryLimit: 0,
    state: { backend: 'memory', redis: { url: 'redis://127.0.0.1:6379', prefix: 'switchboard:', connectTimeout: 2000, commandTimeout: 500 } },
    metrics: { enabled: false },
    tracing: undefined,
    admin: undefined,
  };
}

/** The lasting state for `config`, as the gateway's StateStore keeps it (health checkers started when configured). */
export function upstreamState(config: UpstreamConfig): { state: UpstreamState; close: () => void } {
  const store = new StateStore(createLogger('silent'));
  store.apply(upstreamOnlyConfig(config));
  return { state: store.get(config.name)!, close: () => store.close() };
}
