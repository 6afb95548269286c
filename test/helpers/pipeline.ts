/**
 * For unit tests of the request pipeline below the gateway: a RouteConfig with defaults, a
 * ListenerRuntime around a set of routes, and a real node:http server on 127.0.0.1:0 serving it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MatchConfig, RouteConfig, UpstreamConfig } from '../../src/config/types.ts';
import { resolve } from '../../src/config/resolve.ts';
import type { RawUpstream } from '../../src/config/schema.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { StateStore, type UpstreamState } from '../../src/upstream/state.ts';
import { handleRequest, type ListenerRuntime } from '../../src/listeners/http-handler.ts';
import { Router } from '../../src/routing/router.ts';
import type { RuntimeRoute } from '../../src/routing/route.ts';
import { AddressSet } from '../../src/util/cidr.ts';

let order = 0;

/** A route config matching `match` (nothing else set), later ones ordered after earlier ones. */
export function routeConfig(name: string, match: Partial<MatchConfig> = {}, priority = 0): RouteConfig {
  return {
    name,
    listeners: undefined,
    match: { hosts: [], path: undefined, methods: undefined, headers: [], query: [], ...match },
    upstream: 'u',
    priority,
    rewrite: undefined,
    timeouts: {},
    maxBodySize: 0,
    order: order++,
  };
}

/** A listener runtime over `routes`, with defaults for everything else. */
export function listenerRuntime(routes: RuntimeRoute[], overrides: Partial<ListenerRuntime> = {}): ListenerRuntime {
  return {
    name: 'test',
    router: new Router(routes),
    trusted: new AddressSet([]),
    policy: { proto: 'http', hsts: undefined, clientCertHeaders: undefined, httpsRedirect: undefined, underscores: 'drop', sendTimeout: 0, draining: false },
    generation: { enter: () => undefined, leave: () => undefined },
    onRequestEnd: () => undefined,
    onInternalError: () => undefined,
    ...overrides,
  };
}

/** Serves `rt` on 127.0.0.1:0 through the real pipeline; returns its base URL and a closer. */
export async function serve(rt: ListenerRuntime): Promise<{ base: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => handleRequest(rt, req, res, false));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
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

/** The lasting state for `config`, as the gateway's StateStore keeps it (health checkers started when configured). */
export function upstreamState(config: UpstreamConfig): { state: UpstreamState; close: () => void } {
  const store = new StateStore(createLogger('silent'));
  store.apply({ listeners: [], routes: [], upstreams: new Map([[config.name, config]]), drainTimeout: 0 });
  return { state: store.get(config.name)!, close: () => store.close() };
}
