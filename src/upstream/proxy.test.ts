/**
 * The proxy step with no endpoint available: 503 NO_ENDPOINT at once, with Retry-After. Health
 * checks (issue 3) are what mark endpoints down; here the test marks the only one down by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleRequest, type ListenerRuntime } from '../listeners/http-handler.ts';
import { Router } from '../routing/router.ts';
import type { RuntimeRoute } from '../routing/route.ts';
import { PoolRegistry } from '../transport/pools.ts';
import { AddressSet } from '../util/cidr.ts';
import { proxy } from './proxy.ts';
import { Upstream } from './upstream.ts';

test('no available endpoint: 503 NO_ENDPOINT with Retry-After, nothing dispatched', async () => {
  const registry = new PoolRegistry();
  const upstream = new Upstream(
    {
      name: 'down',
      balancer: 'round-robin',
      endpoints: [{ url: 'http://127.0.0.1:1', origin: 'http://127.0.0.1:1', host: '127.0.0.1:1', weight: 1 }],
      timeouts: { connect: 1000, responseHeaders: 1000, bodyIdle: 1000, request: 0 },
      hostHeader: 'preserve',
      connectionsPerEndpoint: 1,
      keepAliveTimeout: 1000,
    },
    registry,
  );
  upstream.endpoints[0].healthy = false;
  upstream.refresh();
  const target = { upstream, timeouts: upstream.config.timeouts, maxBodySize: 0 };
  const route = {
    name: 'r',
    config: {
      name: 'r',
      listeners: undefined,
      match: { hosts: [], path: undefined, methods: undefined, headers: [], query: [] },
      upstream: 'down',
      priority: 0,
      rewrite: undefined,
      timeouts: {},
      maxBodySize: 0,
      order: 0,
    },
    ...target,
    handle: (ctx) => proxy(ctx, target, () => undefined),
  } satisfies RuntimeRoute;
  const ended: string[] = [];
  const rt: ListenerRuntime = {
    name: 'test',
    router: new Router([route]),
    trusted: new AddressSet([]),
    policy: { proto: 'http', underscores: 'drop', sendTimeout: 0, draining: false },
    generation: { enter: () => undefined, leave: () => undefined },
    onRequestEnd: (ctx) => ended.push(`${ctx.status} ${ctx.error} ${ctx.upstream}`),
    onInternalError: () => undefined,
  };
  const server = http.createServer((req, res) => handleRequest(rt, req, res, false));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    const body = (await res.json()) as { error: { code: string; requestId: string } };
    assert.equal(body.error.code, 'NO_ENDPOINT');
    assert.equal(body.error.requestId, res.headers.get('x-request-id'));
    assert.equal(upstream.endpoints[0].inFlight, 0);
    assert.deepEqual(ended, ['503 NO_ENDPOINT down']);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await registry.closeAll();
  }
});
