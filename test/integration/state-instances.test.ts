/**
 * The shared state through the programmatic API (`gw.state`), the base the rate-limit and quota
 * policies build on: two Switchboard instances share a counter through a real Redis that the test
 * starts itself on a free port (the machine's own Redis keeps running for others), stops and
 * restarts mid-test; and with `state.backend: memory` one instance's counts are its own.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../../src/index.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';

const gateways: Gateway[] = [];
const servers: RedisServer[] = [];
const origins: Origin[] = [];
after(async () => {
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 0 })));
  await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
  await Promise.all(origins.map((o) => o.close()));
});

async function instance(origin: Origin, state: object): Promise<Gateway> {
  const gw = await startGateway({
    logLevel: 'silent',
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
      routes: { all: { match: { path: '/' }, upstream: 'app' } },
      state,
    },
  });
  gateways.push(gw);
  return gw;
}

test('two instances share a counter through Redis; Redis stopped: each user gets its fail mode at once; restarted: shared again, no restart of Switchboard', async () => {
  const origin = await startOrigin('A');
  origins.push(origin);
  let redis = await startRedis();
  servers.push(redis);
  // A command timeout far above the outage guard below: an operation that waited for it (instead of
  // answering from its fail mode at once) fails the guard; and a loaded machine's slow answer is
  // never taken for an outage.
  const state = { backend: 'redis', redis: { url: redis.url, prefix: `t${process.pid}:`, commandTimeout: '30s', connectTimeout: '1s' } };
  const [one, two] = await Promise.all([instance(origin, state), instance(origin, state)]);
  const a = one.state.user('failClosed');
  const b = two.state.user('failClosed');

  // 200 concurrent increments from the two instances: every value from 1 to 200 exactly once.
  const values = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).increment('hits', 1, 60_000)));
  assert.deepEqual(
    [...values].sort((x, y) => x - y),
    Array.from({ length: 200 }, (_, i) => i + 1),
  );
  assert.equal(await b.get('hits'), 200);

  // Redis goes away: no operation hangs; fail-closed counts as over any limit, fail-open as 0,
  // local counts in the process.
  const port = redis.port;
  await redis.stop('SIGKILL');
  const outage = await guard(
    (async () => [
      await a.increment('hits', 1, 60_000),
      await two.state.user('failOpen').increment('hits', 1, 60_000),
      await one.state.user('local').increment('local-hits', 1, 60_000),
    ])(),
    'answers during the outage (without waiting for the 30 s command timeout)',
    10_000,
  );
  assert.deepEqual(outage, [Number.POSITIVE_INFINITY, 0, 1], 'fail-closed, fail-open, local');
  assert.equal(one.state.available, false);

  // Back on the same port: both reconnect by themselves and share the counter again.
  redis = await startRedis(port);
  servers.push(redis);
  // The Redis client reconnects with a bounded backoff (at most 2 s between tries); an operation
  // answers from the fallback until it has. Retried operations, not sleeps, wait for it.
  const counted = async (view: typeof a, key: string): Promise<number> => {
    for (let i = 0; i < 100; i++) {
      const v = await view.increment(key, 1, 60_000);
      if (v !== Number.POSITIVE_INFINITY) return v;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error('no reconnection within 100 tries');
  };
  assert.equal(await counted(a, 'after'), 1);
  const seen = await counted(b, 'after');
  assert.equal(seen, 2, 'the second instance sees the first one’s count');
});
