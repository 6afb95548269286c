/**
 * The proxy step with no endpoint available: 503 NO_ENDPOINT at once, with Retry-After. Health
 * checks are what mark endpoints down; here the test marks the only one down by hand, with the
 * panic threshold off (in panic mode a down endpoint would still get traffic).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoolRegistry } from '../transport/pools.ts';
import { listenerGeneration, listenerRoute, routeConfig, serve, upstreamConfig, upstreamState } from '../../test/helpers/pipeline.ts';
import { Upstream } from '../upstream/upstream.ts';

test('no available endpoint: 503 NO_ENDPOINT with Retry-After, nothing dispatched', async () => {
  const registry = new PoolRegistry();
  const config = upstreamConfig('down', { endpoints: [{ url: 'http://127.0.0.1:1' }], panicThreshold: 0 });
  const { state, close: closeState } = upstreamState(config);
  const upstream = new Upstream(config, registry, state);
  upstream.endpoints[0].state.healthy = false;
  upstream.refresh();
  const route = listenerRoute(routeConfig('r'), { upstream, timeouts: upstream.config.timeouts });
  const ended: string[] = [];
  const { base, close } = await serve(listenerGeneration([route], { onRequestEnd: (s) => ended.push(`${s.status} ${s.error} ${s.upstream}`) }));
  try {
    const res = await fetch(`${base}/x`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    const body = (await res.json()) as { error: { code: string; requestId: string } };
    assert.equal(body.error.code, 'NO_ENDPOINT');
    assert.equal(body.error.requestId, res.headers.get('x-request-id'));
    assert.equal(upstream.endpoints[0].inFlight, 0);
    assert.deepEqual(ended, ['503 NO_ENDPOINT down']);
  } finally {
    await close();
    closeState();
    await registry.closeAll();
  }
});
