/**
 * The pipeline's last line of defence: an exception thrown by a route's handler (a matcher,
 * middleware or the proxy step) becomes a 500 for that request only, and the listener keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleRequest, type ListenerRuntime } from './http-handler.ts';
import { Router } from '../routing/router.ts';
import type { RuntimeRoute } from '../routing/route.ts';
import type { RouteConfig } from '../config/types.ts';
import { AddressSet } from '../util/cidr.ts';

function routeConfig(name: string, path: string): RouteConfig {
  return {
    name,
    listeners: undefined,
    match: { hosts: [], path: { kind: 'prefix', value: path }, methods: undefined, headers: [], query: [] },
    upstream: 'none',
    priority: 0,
    rewrite: undefined,
    timeouts: {},
    maxBodySize: 0,
    order: 0,
  };
}

test('an exception in a route handler is a 500 for that request only', async () => {
  const route = (name: string, path: string, handle: RuntimeRoute['handle']): RuntimeRoute =>
    ({ name, config: routeConfig(name, path), handle, maxBodySize: 0 }) as unknown as RuntimeRoute;
  let ended = 0;
  const internal: string[] = [];
  const rt: ListenerRuntime = {
    name: 'test',
    router: new Router([
      route('sync-throw', '/sync', () => {
        throw new Error('boom');
      }),
      route('async-throw', '/async', async () => {
        throw new Error('async boom');
      }),
      route('ok', '/ok', (ctx) => {
        ctx.status = 200;
        ctx.res.end('fine');
      }),
    ]),
    trusted: new AddressSet([]),
    policy: { proto: 'http', underscores: 'drop', sendTimeout: 0, draining: false },
    generation: { enter: () => undefined, leave: () => ended++ },
    onRequestEnd: () => undefined,
    onInternalError: (_ctx, err) => internal.push((err as Error).message),
  };
  const server = http.createServer((req, res) => handleRequest(rt, req, res, false));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    for (const path of ['/sync', '/async']) {
      const res = await fetch(base + path);
      assert.equal(res.status, 500);
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'INTERNAL_ERROR');
    }
    const ok = await fetch(base + '/ok');
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), 'fine');
    assert.equal(ended, 3);
    assert.deepEqual(internal, ['boom', 'async boom']);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
