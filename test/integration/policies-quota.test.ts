/**
 * The quota policy against the real gateway, a real origin and a real Redis the test starts (issue
 * 13, §4): a daily quota per key, 429 QUOTA_EXCEEDED with Retry-After to the period's end, the count
 * read through `gw.usage`, and kept across a restart of Switchboard (it lives in Redis).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../../src/index.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';

const gateways: Gateway[] = [];
const servers: RedisServer[] = [];
const origins: Origin[] = [];
after(async () => {
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 0 })));
  await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
  await Promise.all(origins.map((o) => o.close()));
});

async function instance(origin: Origin, redisUrl: string): Promise<Gateway> {
  const gw = await startGateway({
    logLevel: 'silent',
    accessLog: 'off',
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
      state: { backend: 'redis', redis: { url: redisUrl, prefix: `q${process.pid}:` } },
      policies: { daily: { type: 'quota', key: 'header:x-tenant', limit: 3, period: 'day' } },
      routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['daily'] } },
    },
  });
  gateways.push(gw);
  return gw;
}

async function send(gw: Gateway, tenant: string): Promise<{ status: number; headers: Headers; body: string }> {
  const res = await fetch(`${gw.url('web')}/`, { headers: { 'x-tenant': tenant } });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

test('a daily quota: the 4th request of a tenant is 429 QUOTA_EXCEEDED until midnight UTC; usage reads it; a restart keeps the count (Redis)', async () => {
  const origin = await startOrigin('A');
  origins.push(origin);
  const redis = await startRedis();
  servers.push(redis);
  const gw = await instance(origin, redis.url);
  const answers = [];
  for (let i = 0; i < 4; i++) answers.push(await send(gw, 'acme'));
  assert.deepEqual(
    answers.map((a) => a.status),
    [200, 200, 200, 429],
  );
  assert.equal(answers[0]!.headers.get('ratelimit-policy'), '"daily";q=3;w=86400');
  assert.match(answers[1]!.headers.get('ratelimit')!, /^"daily";r=1;t=\d+$/);
  assert.equal((JSON.parse(answers[3]!.body) as { error: { code: string } }).error.code, 'QUOTA_EXCEEDED');
  const midnight = new Date();
  midnight.setUTCHours(24, 0, 0, 0);
  const retryAfter = Number(answers[3]!.headers.get('retry-after'));
  const expected = (midnight.getTime() - Date.now()) / 1000;
  assert.ok(Math.abs(retryAfter - expected) < 60, `Retry-After ${retryAfter} is the time to midnight UTC (${expected})`);
  assert.equal((await send(gw, 'other')).status, 200, 'another tenant has its own quota');

  const usage = await gw.usage('daily', { headers: { 'X-Tenant': 'acme' } });
  assert.deepEqual({ ...usage, resetAt: undefined }, { limit: 3, used: 3, remaining: 0, resetAt: undefined, period: new Date().toISOString().slice(0, 10) });
  assert.equal(usage!.resetAt, midnight.getTime());
  assert.equal(gw.usage('nope', {}), undefined);

  // Switchboard restarts: the count is in Redis.
  await gw.stop({ drainTimeout: 0 });
  gateways.splice(gateways.indexOf(gw), 1);
  const again = await instance(origin, redis.url);
  assert.equal((await send(again, 'acme')).status, 429);
  assert.equal((await again.usage('daily', { headers: { 'x-tenant': 'other' } }))!.remaining, 2);
});
