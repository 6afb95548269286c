/**
 * The rate-limit policy against the real gateway and a real origin (issue 13, §4): exactness under
 * 1,000 concurrent requests in one process, the 429 answer with Retry-After and the IETF fields,
 * keys by header and by address, two limits on one route, and mode delay.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const origins: Origin[] = [];
const gateways: TestGateway[] = [];
const agent = new Agent({ connections: 128, pipelining: 0 });
after(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await Promise.all(origins.map((o) => o.close()));
  await agent.close();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function send(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(url, { headers, dispatcher: agent });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** Counts answers by status. */
function byStatus(answers: Answer[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const a of answers) out[a.status] = (out[a.status] ?? 0) + 1;
  return out;
}

async function gateway(policies: Record<string, object>, route: string[]): Promise<TestGateway> {
  const origin = await startOrigin('A');
  origins.push(origin);
  const gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    policies,
    routes: { limited: { match: { path: '/limited' }, upstream: 'app', policies: route }, free: { match: { path: '/' }, upstream: 'app' } },
  });
  gateways.push(gw);
  return gw;
}

test('1,000 concurrent requests against limit 100: exactly 100 reach the origin, the rest get 429 RATE_LIMITED with Retry-After', async () => {
  const gw = await gateway({ hundred: { type: 'rate-limit', key: 'ip', limit: 100, window: '1d' } }, ['hundred']);
  const answers = await Promise.all(Array.from({ length: 1000 }, () => send(`${gw.url}/limited`)));
  assert.deepEqual(byStatus(answers), { 200: 100, 429: 900 });
  const refused = answers.find((a) => a.status === 429)!;
  assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'RATE_LIMITED');
  // One token comes back every 864 s (100 a day).
  assert.ok(Number(refused.headers['retry-after']) > 800, `Retry-After ${refused.headers['retry-after']}`);
  assert.equal(refused.headers['ratelimit-policy'], '"hundred";q=100;w=86400');
  assert.match(String(refused.headers.ratelimit), /^"hundred";r=0;t=\d+$/);
  // The remaining counts of the 100 that passed are 99..0, each once.
  const remaining = answers.filter((a) => a.status === 200).map((a) => Number(/;r=(\d+);/.exec(String(a.headers.ratelimit))![1]));
  assert.deepEqual(
    remaining.sort((x, y) => x - y),
    Array.from({ length: 100 }, (_, i) => i),
  );
  // A route without the policy is not limited and gets no fields.
  const free = await send(`${gw.url}/other`);
  assert.equal(free.status, 200);
  assert.equal(free.headers.ratelimit, undefined);
});

test('key by header: each value has its own count; legacy fields on request', async () => {
  const gw = await gateway({ perTenant: { type: 'rate-limit', key: 'header:x-tenant', limit: 2, window: '1h', headers: 'legacy' } }, ['perTenant']);
  const a = [
    await send(`${gw.url}/limited`, { 'x-tenant': 'a' }),
    await send(`${gw.url}/limited`, { 'x-tenant': 'a' }),
    await send(`${gw.url}/limited`, { 'x-tenant': 'a' }),
  ];
  assert.deepEqual(
    a.map((x) => x.status),
    [200, 200, 429],
  );
  assert.deepEqual([a[0]!.headers['x-ratelimit-limit'], a[0]!.headers['x-ratelimit-remaining'], a[1]!.headers['x-ratelimit-remaining']], ['2', '1', '0']);
  assert.equal(a[0]!.headers.ratelimit, undefined, 'legacy only');
  assert.equal((await send(`${gw.url}/limited`, { 'x-tenant': 'b' })).status, 200, 'another tenant has its own count');
});

test('key by ip (after trusted proxies): two client addresses, two counts; two limits on one route both apply', async () => {
  const origin = await startOrigin('A');
  origins.push(origin);
  const gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http', trustedProxies: ['127.0.0.1/32'] } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    policies: {
      perSecond: { type: 'rate-limit', key: 'ip', limit: 3, window: '1h' },
      perDay: { type: 'rate-limit', key: 'ip', limit: 2, window: '1d' },
    },
    routes: { limited: { match: { path: '/' }, upstream: 'app', policies: ['perSecond', 'perDay'] } },
  });
  gateways.push(gw);
  const from = (ip: string) => send(`${gw.url}/`, { 'x-forwarded-for': ip });
  const one = [await from('198.51.100.1'), await from('198.51.100.1'), await from('198.51.100.1')];
  assert.deepEqual(
    one.map((x) => x.status),
    [200, 200, 429],
  );
  // Both policies' items, in one field each.
  assert.match(String(one[0]!.headers['ratelimit-policy']), /"perDay";q=2;w=86400, ?"perSecond";q=3;w=3600/);
  assert.match(String(one[1]!.headers.ratelimit), /"perSecond";r=1;t=\d+/);
  assert.match(String(one[1]!.headers.ratelimit), /"perDay";r=0;t=\d+/);
  // The third was refused by perDay (perSecond had a token left): its reply carries both items.
  assert.match(String(one[2]!.headers.ratelimit), /"perDay";r=0/);
  assert.equal((await from('198.51.100.2')).status, 200, 'another address has its own counts');
});

test('EDGE-CASES 42: the key cannot be forged: X-Forwarded-For from an untrusted peer and a client-sent consumer header change nothing', async () => {
  // No trustedProxies: the peer (127.0.0.1) is the client, whatever X-Forwarded-For says; no
  // authentication policy: `consumer` counts by that address, whatever X-Consumer-Name says.
  const gw = await gateway({ byIp: { type: 'rate-limit', key: 'ip', limit: 2, window: '1h' } }, ['byIp']);
  const ip: number[] = [];
  for (const forged of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) ip.push((await send(`${gw.url}/limited`, { 'x-forwarded-for': forged })).status);
  assert.deepEqual(ip, [200, 200, 429], 'one count for the real peer, not one per forged address');

  const gw2 = await gateway({ byConsumer: { type: 'rate-limit', key: 'consumer', limit: 2, window: '1h' } }, ['byConsumer']);
  const named: number[] = [];
  for (const forged of ['alice', 'bob', 'carol']) named.push((await send(`${gw2.url}/limited`, { 'x-consumer-name': forged })).status);
  assert.deepEqual(named, [200, 200, 429], 'a client-sent consumer header is no identity: one count for the address');
});

test('mode delay: requests over the rate wait their turn (up to burst per key), beyond it 429', async () => {
  // 20 a second: one every 50 ms; 3 may wait.
  const gw = await gateway({ slow: { type: 'rate-limit', key: 'ip', limit: 20, window: '1s', mode: 'delay', burst: 3 } }, ['slow']);
  const answers = await Promise.all(Array.from({ length: 6 }, () => send(`${gw.url}/limited`)));
  // One passes at once, three wait for their token and pass, two find the queue full.
  assert.deepEqual(byStatus(answers), { 200: 4, 429: 2 });
});
