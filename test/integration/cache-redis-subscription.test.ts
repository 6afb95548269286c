/**
 * The Redis store with memory in front (issue 14), when an instance's purge subscription is lost:
 * two gateway instances share a Redis the test starts on a free port; A's and B's pub/sub
 * connections are killed (`CLIENT KILL TYPE pubsub`), B purges while A cannot hear it, and A must
 * not serve the purged object from its memory tier afterwards (the tier is emptied when the
 * subscription is lost, and again once A has subscribed anew). Once subscribed again, B's purges
 * reach A's memory as before.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { createClient } from 'redis';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { guard } from './helpers/guard.ts';
import { startRedis } from './helpers/redis-server.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const gateways: Gateway[] = [];
const counts = new Map<string, number>();
const origin: Origin = await startOrigin('o', (req, res) => {
  const path = req.url ?? '/';
  const n = (counts.get(path) ?? 0) + 1;
  counts.set(path, n);
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
  res.end(`${path} ${n}`);
});
const redis = await startRedis();
const prefix = `s${process.pid}:`;
const watcher = createClient({ url: redis.url });
watcher.on('error', () => {});
await watcher.connect();
after(async () => {
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 0 })));
  watcher.destroy();
  await redis.stop();
  await origin.close();
});

async function instance(): Promise<Gateway> {
  const gw = await startGateway({
    logLevel: 'silent',
    accessLog: 'off',
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
      policies: { tiered: { type: 'cache', store: { memory: '1MiB', redis: {} } } },
      routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['tiered'] } },
      // A command timeout far above a loaded machine's stalls: a reply it read late is not an outage (a
      // fallback answer would change the counts). A stopped Redis closes the connection: answered at once.
      state: { backend: 'redis', redis: { url: redis.url, prefix, commandTimeout: '30s', connectTimeout: '1s' } },
    },
  });
  gateways.push(gw);
  return gw;
}

async function get(gw: Gateway, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; cacheStatus: string }> {
  const res = await request(`${gw.url('web')}${path}`, { headers: { host: 'site.test', ...headers } });
  return { status: res.statusCode, body: await res.body.text(), cacheStatus: String(res.headers['cache-status'] ?? '') };
}

const channel = `${prefix}cache:tiered:purge`;

/** Waits until `n` connections are subscribed to the purge channel. */
async function subscribers(n: number): Promise<void> {
  await guard(
    (async () => {
      for (;;) {
        const reply = (await watcher.sendCommand(['PUBSUB', 'NUMSUB', channel])) as [string, number];
        if (Number(reply[1]) === n) return;
        await tick();
      }
    })(),
    `${n} subscribers on ${channel}`,
    5000,
  );
}

/** Waits until Redis holds the object of `path` (the store writes after the response has been sent). */
async function stored(path: string): Promise<void> {
  await guard(
    (async () => {
      while ((await watcher.exists(`${prefix}cache:tiered:u:http://site.test${path}`)) === 0) await tick();
    })(),
    `${path} in Redis`,
    5000,
  );
}

const [a, b] = await Promise.all([instance(), instance()]);

test('a purge made while A’s subscription was lost is not served from A’s memory; once A subscribed again, purges reach it', async () => {
  await subscribers(2);
  await get(a, '/x');
  await stored('/x');
  assert.match((await get(a, '/x')).cacheStatus, /^Switchboard; hit/, 'from A’s memory');
  assert.match((await get(b, '/x')).cacheStatus, /^Switchboard; hit/, 'from Redis, into B’s memory');

  // Both instances deaf; B purges in Redis and publishes to nobody.
  const killed = Number(await watcher.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']));
  assert.equal(killed, 2);
  assert.equal(await b.purge('tiered', { url: 'http://site.test/x' }), 1);
  assert.equal(await watcher.exists(`${prefix}cache:tiered:u:http://site.test/x`), 0);

  // only-if-cached: what A has without asking the origin. Not the purged object.
  const deaf = await get(a, '/x', { 'cache-control': 'only-if-cached' });
  assert.equal(deaf.status, 504, `A served ${deaf.body} (${deaf.cacheStatus}) after it was purged`);
  const again = await get(a, '/x');
  assert.equal(again.body, '/x 2');
  assert.equal(counts.get('/x'), 2);

  // The lookups through Redis subscribed both again; a purge in B reaches A's memory once more.
  await get(b, '/y');
  await stored('/y');
  await subscribers(2);
  assert.match((await get(a, '/y')).cacheStatus, /^Switchboard; hit/);
  assert.match((await get(a, '/y')).cacheStatus, /^Switchboard; hit/);
  assert.equal(await b.purge('tiered', { url: 'http://site.test/y' }), 1);
  await guard(
    (async () => {
      while ((await get(a, '/y', { 'cache-control': 'only-if-cached' })).status !== 504) await tick();
    })(),
    'A’s memory tier purged of /y by B’s message',
    5000,
  );
});
