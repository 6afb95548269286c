/**
 * Rate limits exact across processes (issue 13, §4): `switchboard start` with `workers: 2` (the
 * supervisor's memory state), and two instances sharing a real Redis that the test starts on a free
 * port, stops mid-test (failOpen true and false both shown) and restarts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';

const dir = await mkdtemp(join(tmpdir(), 'switchboard-rate-limit-'));
const instances: Instance[] = [];
const gateways: Gateway[] = [];
const servers: RedisServer[] = [];
const origins: Origin[] = [];
const agent = new Agent({ connections: 128, pipelining: 0 });
after(async () => {
  for (const i of instances) i.kill();
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 0 })));
  await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
  await Promise.all(origins.map((o) => o.close()));
  await agent.close();
  await rm(dir, { recursive: true, force: true });
});

async function status(url: string): Promise<number> {
  const res = await request(url, { dispatcher: agent, reset: true });
  await res.body.dump();
  return res.statusCode;
}

function count(statuses: number[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const s of statuses) out[s] = (out[s] ?? 0) + 1;
  return out;
}

async function origin(): Promise<Origin> {
  const o = await startOrigin('A');
  origins.push(o);
  return o;
}

test('workers: 2 (memory state in the supervisor): 1,000 concurrent requests against limit 100 let exactly 100 through', async () => {
  const o = await origin();
  const { inst } = await Instance.startWith(
    dir,
    'workers',
    `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${o.url}" }] }
policies:
  hundred: { type: rate-limit, key: ip, limit: 100, window: 1d }
routes:
  all: { match: { path: / }, upstream: app, policies: [hundred] }
`,
  );
  instances.push(inst);
  const url = inst.url('web');
  // Fresh connections (reset: true), so that both workers take a share.
  const statuses = await Promise.all(Array.from({ length: 1000 }, () => status(`${url}/x`)));
  assert.deepEqual(count(statuses), { 200: 100, 429: 900 });
});

async function instance(o: Origin, redisUrl: string): Promise<Gateway> {
  const gw = await startGateway({
    logLevel: 'silent',
    accessLog: 'off',
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      upstreams: { app: { endpoints: [{ url: o.url }] } },
      // A command timeout far above a loaded machine's stalls: a reply it read late is not an outage (a
      // fallback answer would change the counts). A stopped Redis closes the connection: answered at once.
      state: { backend: 'redis', redis: { url: redisUrl, prefix: `rl${process.pid}:`, commandTimeout: '30s', connectTimeout: '1s' } },
      policies: {
        shared: { type: 'rate-limit', key: 'ip', limit: 100, window: '1d' },
        open: { type: 'rate-limit', key: 'ip', limit: 1000, window: '1d', failOpen: true },
        closed: { type: 'rate-limit', key: 'ip', limit: 1000, window: '1d', failOpen: false },
      },
      routes: {
        shared: { match: { path: '/shared' }, upstream: 'app', policies: ['shared'] },
        open: { match: { path: '/open' }, upstream: 'app', policies: ['open'] },
        closed: { match: { path: '/closed' }, upstream: 'app', policies: ['closed'] },
      },
    },
  });
  gateways.push(gw);
  return gw;
}

test('two instances on one Redis share one limit exactly; Redis stopped: failOpen true lets through, false refuses; restarted: counted again', async () => {
  const o = await origin();
  let redis = await startRedis();
  servers.push(redis);
  const [one, two] = await Promise.all([instance(o, redis.url), instance(o, redis.url)]);
  const urls = [one.url('web'), two.url('web')];
  const statuses = await Promise.all(Array.from({ length: 1000 }, (_, i) => status(`${urls[i % 2]}/shared`)));
  assert.deepEqual(count(statuses), { 200: 100, 429: 900 });

  assert.equal(await status(`${urls[0]}/open`), 200);
  assert.equal(await status(`${urls[0]}/closed`), 200);
  const port = redis.port;
  await redis.stop('SIGKILL');
  assert.equal(await status(`${urls[0]}/open`), 200, 'failOpen: true lets requests through while Redis is down');
  assert.equal(await status(`${urls[0]}/closed`), 429, 'failOpen: false refuses them');
  assert.equal(one.state.available, false);

  redis = await startRedis(port);
  servers.push(redis);
  // The client reconnects with a bounded backoff; poll (bounded) until the closed route passes again.
  let back = 0;
  for (let i = 0; i < 100 && back !== 200; i++) {
    back = await status(`${urls[0]}/closed`);
    if (back !== 200) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(back, 200, 'counted again once Redis is back');
});
