/**
 * The cache's Redis store (issue 14): two gateway instances (two `startGateway` in this process,
 * each with its own store and connection) share one Redis that the test starts on a free port. A
 * response stored through A is a hit in B; a purge by tag, URL or prefix in A makes B miss; a
 * body above the store's `maxObjectSize` is not stored; Redis stopped: requests are still answered
 * (misses, the origin asked); Redis back on its port: storing resumes, without a restart, and the
 * memory tiers' purge subscriptions come back on their own. A reload that changes the stores'
 * settings closes the old stores' connections (counted by client name, per store).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { createClient } from 'redis';
import { request } from 'undici';
import { loadConfigObject, startGateway, type Gateway } from '../../src/index.ts';
import { guard } from './helpers/guard.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const gateways: Gateway[] = [];
const servers: RedisServer[] = [];
const counts = new Map<string, number>();
const origin: Origin = await startOrigin('o', (req, res) => {
  const path = req.url ?? '/';
  const n = (counts.get(path) ?? 0) + 1;
  counts.set(path, n);
  req.resume();
  const big = path.startsWith('/big');
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600', 'surrogate-key': `all ${path.slice(1).split('/')[0]}` });
  res.end(big ? 'x'.repeat(2048) : `${path} ${n}`);
});
let redis = await startRedis();
servers.push(redis);
const prefix = `t${process.pid}:`;
const watcher = createClient({ url: redis.url });
watcher.on('error', () => {});
await watcher.connect();
after(async () => {
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 0 })));
  watcher.destroy();
  await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
  await origin.close();
});

/** The instances' config; `maxObjectSize` of both Redis stores (a reload that changes it replaces the stores). */
function config(maxObjectSize = '1KiB', address = '127.0.0.1:0'): object {
  return {
    listeners: { web: { address, protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    policies: {
      shared: { type: 'cache', store: { redis: { maxObjectSize } } },
      tiered: { type: 'cache', store: { memory: '1MiB', redis: { maxObjectSize } } },
    },
    routes: {
      all: { match: { path: '/' }, upstream: 'app', policies: ['shared'] },
      tier: { match: { path: '/tier/' }, upstream: 'app', policies: ['tiered'] },
    },
    // A command timeout far above a loaded machine's stalls: a reply it read late is not an outage (a
    // fallback answer would change the counts). A stopped Redis closes the connection: answered at once.
    state: { backend: 'redis', redis: { url: redis.url, prefix, commandTimeout: '30s', connectTimeout: '1s' } },
  };
}

async function instance(): Promise<Gateway> {
  const gw = await startGateway({ logLevel: 'silent', accessLog: 'off', config: config() });
  gateways.push(gw);
  return gw;
}

async function get(gw: Gateway, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; cacheStatus: string }> {
  // One Host for both instances: the key holds the authority.
  const res = await request(`${gw.url('web')}${path}`, { headers: { host: 'site.test', ...headers } });
  return { status: res.statusCode, body: await res.body.text(), cacheStatus: String(res.headers['cache-status'] ?? '') };
}

/** The stored objects' keys in Redis (of the policy `policy`). */
async function objects(policy = 'shared'): Promise<string[]> {
  return watcher.keys(`${prefix}cache:${policy}:o:*`);
}

/** Waits until Redis holds `n` objects (the store writes after the response has been sent). */
async function stored(n: number, policy = 'shared'): Promise<void> {
  await until(async () => (await objects(policy)).length >= n, `${n} objects in Redis`);
}

/** Polls `done` until it holds, for at most `ms`. */
async function until(done: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  let stop = false;
  try {
    await guard(
      (async () => {
        while (!stop && !(await done())) await tick();
      })(),
      what,
      ms,
    );
  } finally {
    stop = true;
  }
}

/** How many connections to the purge channel of `policy` are subscribed. */
async function subscribed(policy: string): Promise<number> {
  const reply = (await watcher.sendCommand(['PUBSUB', 'NUMSUB', `${prefix}cache:${policy}:purge`])) as [string, number];
  return Number(reply[1]);
}

/**
 * The cache stores' connections on the Redis server, per store: client name
 * (`switchboard:cache:<store id>`, see redis-store.ts) → how many connections. Other clients (the
 * gateways' state connections, this test's watcher) are not counted.
 */
async function storeConnections(): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const line of String(await watcher.sendCommand(['CLIENT', 'LIST']))
    .trim()
    .split('\n')) {
    const name = / name=(\S*)/.exec(line)?.[1];
    if (name?.startsWith('switchboard:cache:')) m.set(name, (m.get(name) ?? 0) + 1);
  }
  return m;
}

/** The connection counts of `names` in `m`, sorted: '1,2' is a store without front tier and one with (its client and subscription). */
function shape(m: ReadonlyMap<string, number>, names: Iterable<string> = m.keys()): string {
  return [...names]
    .map((n) => m.get(n) ?? 0)
    .sort()
    .join(',');
}

const [a, b] = await Promise.all([instance(), instance()]);

test('stored through A, a hit in B; purges by tag, URL and prefix in A make B miss', async () => {
  assert.match((await get(a, '/t/one')).cacheStatus, /fwd=miss; fwd-status=200/);
  await stored(1);
  const hit = await get(b, '/t/one');
  assert.equal(hit.body, '/t/one 1');
  assert.match(hit.cacheStatus, /^Switchboard; hit/);
  assert.equal(counts.get('/t/one'), 1);

  assert.equal(await a.purge('shared', { tag: 't' }), 1);
  assert.equal((await objects()).length, 0);
  const again = await get(b, '/t/one');
  assert.equal(again.body, '/t/one 2');
  assert.match(again.cacheStatus, /fwd=miss/);

  await get(a, '/u/two');
  await stored(2);
  assert.equal(await a.purge('shared', { url: 'http://site.test/u/two' }), 1);
  assert.match((await get(b, '/u/two')).cacheStatus, /fwd=miss/);
  await stored(2);
  await get(a, '/p/x');
  await get(a, '/p/y');
  await stored(4);
  assert.equal(await a.purge('shared', { prefix: 'http://site.test/p/' }), 2);
  assert.equal((await objects()).length, 2);
  assert.match((await get(b, '/p/x')).cacheStatus, /fwd=miss/);
});

test('memory in front of Redis: B hits from its memory; a purge in A reaches B’s memory (published on Redis), also by URL and prefix', async () => {
  for (const [path, purge] of [
    ['/tier/t/one', { tag: 'tier' }],
    ['/tier/u', { url: 'http://site.test/tier/u' }],
    ['/tier/p/x', { prefix: 'http://site.test/tier/p/' }],
  ] as const) {
    await get(a, path);
    await stored(1, 'tiered');
    // B: from Redis, then promoted to its memory tier; the origin was asked once.
    assert.match((await get(b, path)).cacheStatus, /^Switchboard; hit/);
    assert.match((await get(b, path)).cacheStatus, /^Switchboard; hit/);
    assert.equal(counts.get(path), 1);
    assert.equal(await a.purge('tiered', purge), 1);
    assert.equal((await objects('tiered')).length, 0);
    // B drops its memory copy when the purge message arrives: only-if-cached asks without
    // filling anything (504 once nothing is stored for it).
    await guard(
      (async () => {
        while ((await get(b, path, { 'cache-control': 'only-if-cached' })).status !== 504) await tick();
      })(),
      `B's memory tier purged of ${path}`,
      5000,
    );
    const again = await get(b, path);
    assert.match(again.cacheStatus, /fwd=miss/);
    assert.equal(counts.get(path), 2);
    await stored(1, 'tiered');
    assert.equal(await a.purge('tiered', purge), 1);
  }
});

test('memory in front of Redis: an object replaced through A (a new response) is published once: B drops its memory copy, hits publish nothing', async () => {
  const channel = `${prefix}cache:tiered:purge`;
  const messages: string[] = [];
  const listener = watcher.duplicate();
  listener.on('error', () => {});
  await listener.connect();
  await listener.subscribe(channel, (m) => messages.push(m));
  try {
    const path = '/tier/replaced';
    assert.equal((await get(a, path)).body, `${path} 1`);
    await stored(1, 'tiered');
    // B: from Redis, promoted to its memory tier, then from memory.
    assert.equal((await get(b, path)).body, `${path} 1`);
    assert.match((await get(b, path)).cacheStatus, /^Switchboard; hit/);
    await guard(
      (async () => {
        while (messages.length < 1) await tick();
      })(),
      'the first store published',
      5000,
    );
    // A asks the origin again (request no-cache) and stores the new response in its memory and Redis.
    const replaced = await get(a, path, { 'cache-control': 'no-cache' });
    assert.equal(replaced.body, `${path} 2`);
    // B drops its memory copy when the message arrives, and reads the new object from Redis.
    await guard(
      (async () => {
        while ((await get(b, path)).body !== `${path} 2`) await tick();
      })(),
      `B's memory tier dropped the replaced ${path}`,
      5000,
    );
    assert.equal(counts.get(path), 2);
    // Hits (A from its own memory: the publisher keeps its copy; B from memory) publish nothing: one message per store.
    for (let i = 0; i < 5; i++) {
      assert.equal((await get(a, path)).body, `${path} 2`);
      assert.match((await get(b, path)).cacheStatus, /^Switchboard; hit/);
    }
    await listener.ping();
    assert.equal(messages.length, 2, messages.join('\n'));
    assert.deepEqual(
      messages.map((m) => JSON.parse(m).key),
      ['http://site.test/tier/replaced', 'http://site.test/tier/replaced'],
    );
  } finally {
    listener.destroy();
    assert.equal(await a.purge('tiered', { prefix: 'http://site.test/tier/replaced' }), 1);
  }
});

test('a body above the Redis store’s maxObjectSize is not stored', async () => {
  await get(a, '/big');
  const second = await get(b, '/big');
  assert.match(second.cacheStatus, /fwd=miss/);
  assert.equal(counts.get('/big'), 2);
});

test('Redis stopped: requests answered (misses, the origin asked); restarted: stored and shared again, no restart', async () => {
  const port = redis.port;
  await redis.stop('SIGKILL');
  const first = await get(a, '/down');
  assert.equal(first.body, '/down 1');
  const second = await get(b, '/down');
  assert.equal(second.body, '/down 2');
  assert.match(second.cacheStatus, /fwd=miss/);

  redis = await startRedis(port);
  servers.push(redis);
  // Each store reconnects when requests need it, with a bounded backoff between attempts: A's
  // requests are retried (each a miss, not stored) until one is stored; then B's until B, back
  // too, hits it.
  const retried = async (gw: Gateway, done: (cacheStatus: string) => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 200; i++) {
      if (await done((await get(gw, '/back')).cacheStatus)) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.fail('the store did not come back');
  };
  await retried(a, async () => (await objects().catch(() => [])).length > 0);
  await retried(b, async (cacheStatus) => /^Switchboard; hit/.test(cacheStatus));
  assert.ok((counts.get('/back') ?? 0) >= 1);

  // The tiered stores' purge subscriptions, lost with Redis, are taken up again by the stores
  // themselves: no request has reached A's or B's tiered store since (a front that answers hits
  // never asks Redis, so an instance waiting for a request to subscribe could stay deaf).
  await until(async () => (await subscribed('tiered')) === 2, 'both tiered stores subscribed again after the restart', 10_000);
  // And purges are heard again: B's memory holds /tier/back, A purges it, B's memory drops it.
  assert.match((await get(b, '/tier/back')).cacheStatus, /fwd=miss/);
  await stored(1, 'tiered');
  assert.equal((await get(b, '/tier/back', { 'cache-control': 'only-if-cached' })).status, 200, 'in B’s memory');
  assert.equal(await a.purge('tiered', { url: 'http://site.test/tier/back' }), 1);
  await until(async () => (await get(b, '/tier/back', { 'cache-control': 'only-if-cached' })).status === 504, 'B’s memory tier purged of /tier/back by A’s message');
});

test('config: redis beside disk is refused at store.redis; maxObjectSize above the Redis store’s is refused', async () => {
  const base = {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['c'] } },
  };
  const disk = loadConfigObject({ ...base, policies: { c: { type: 'cache', store: { disk: { path: '/tmp/x', size: '1MiB' }, redis: {} } } } });
  assert.equal(disk.ok, false);
  assert.match(JSON.stringify(disk.ok ? [] : disk.errors), /store\.redis.*not with disk/);
  assert.equal(loadConfigObject({ ...base, policies: { c: { type: 'cache', store: { memory: '1MiB', redis: {} } } } }).ok, true);
  const big = loadConfigObject({ ...base, policies: { c: { type: 'cache', store: { redis: {} }, maxObjectSize: '1MiB' } } });
  assert.equal(big.ok, false);
  assert.match(JSON.stringify(big.ok ? [] : big.errors), /maxObjectSize.*65536/);
  assert.equal(loadConfigObject({ ...base, policies: { c: { type: 'cache', store: { redis: {} } } } }).ok, true);
});

test('a reload that changes the Redis store’s settings closes the old store’s connections once the new config serves', async () => {
  // Every store connected: A's and B's shared stores (a client each), and their tiered stores (a
  // client and a subscription each, taken up again on their own after the restart above).
  await get(a, '/conn');
  await get(a, '/tier/conn');
  let before = new Map<string, number>();
  await until(async () => {
    before = await storeConnections();
    return shape(before) === '1,1,2,2';
  }, 'the four stores connected');
  // A reload that fails after building its filters (B's port is taken) leaves the serving stores open.
  const failed = await a.reload(config('2KiB', b.url('web').replace('http://', '')));
  assert.equal(failed.ok, false);
  // The failed reload's tiered store connected when it was built (its client and subscription).
  // Its settings are the next reload's: that reload serves with it (storeFor keeps a store whose
  // settings did not change) and retires the old ones.
  let failedStore = '';
  await until(async () => {
    const now = await storeConnections();
    const added = [...now.keys()].filter((n) => !before.has(n));
    failedStore = added[0] ?? '';
    return added.length === 1 && now.get(failedStore) === 2;
  }, 'the failed reload’s tiered store connected');
  assert.match((await get(a, '/tier/conn')).cacheStatus, /^Switchboard; hit/);
  assert.match((await get(a, '/conn')).cacheStatus, /^Switchboard; hit/, 'the shared store (Redis only) still answers');
  const reloaded = await a.reload(config('2KiB'));
  assert.equal(reloaded.ok, true, JSON.stringify(reloaded.errors));
  // Requests through the new config: the new stores connect (the failed reload's tiered store is
  // one of them), the old ones close; B's stores keep their connections.
  await get(a, '/conn');
  await get(a, '/tier/conn');
  let state = '';
  await until(
    async () => {
      const now = await storeConnections();
      const gone = [...before.keys()].filter((n) => !now.has(n));
      const added = [...now.keys()].filter((n) => !before.has(n));
      const kept = [...before.keys()].filter((n) => now.has(n));
      state = `gone ${shape(before, gone)}, new ${shape(now, added)}, kept ${shape(now, kept)} of ${shape(before, kept)}, failed reload's ${now.get(failedStore) ?? 0}`;
      return state === "gone 1,2, new 1,2, kept 1,2 of 1,2, failed reload's 2";
    },
    `A's old stores' connections closed, the new stores' open (${shape(before)} before the reload)`,
  ).catch((error: Error) => {
    throw new Error(`${error.message}: ${state}`);
  });
  // Another reload to the same settings keeps the stores (and their connections).
  const after = await storeConnections();
  assert.equal((await a.reload(config('2KiB'))).ok, true);
  await get(a, '/conn');
  await get(a, '/tier/conn');
  assert.deepEqual(await storeConnections(), after);
});
