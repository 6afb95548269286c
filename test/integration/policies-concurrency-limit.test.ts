/**
 * The concurrency-limit policy against the real gateway and an origin that holds requests until the
 * test lets them go (issue 13, §4): at most `limit` in flight per key; a place is returned when the
 * request ends, whether it was answered or the client went away.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type http from 'node:http';
import { Agent, request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';

const origins: Origin[] = [];
const gateways: TestGateway[] = [];
const agent = new Agent({ connections: 16, pipelining: 0 });
after(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await Promise.all(origins.map((o) => o.close()));
  await agent.close();
});

/** An origin that holds every request until `releaseAll`, and tells when one arrives. */
function holdingOrigin(): {
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  held: http.ServerResponse[];
  arrived: () => Promise<void>;
  releaseAll: () => void;
} {
  const held: http.ServerResponse[] = [];
  let waiters: Array<() => void> = [];
  return {
    held,
    handler: (_req, res) => {
      held.push(res);
      for (const w of waiters) w();
      waiters = [];
    },
    arrived: () => new Promise<void>((resolve) => waiters.push(resolve)),
    releaseAll: () => {
      for (const res of held.splice(0)) res.end('done');
    },
  };
}

async function send(url: string, headers: Record<string, string> = {}): Promise<{ status: number; code?: string; retryAfter?: string }> {
  const res = await request(url, { headers, dispatcher: agent });
  const text = await res.body.text();
  const code = res.statusCode === 200 ? undefined : (JSON.parse(text) as { error: { code: string } }).error.code;
  return { status: res.statusCode, code, retryAfter: res.headers['retry-after'] as string | undefined };
}

test('at most limit requests of one key in flight: one more gets 429 CONCURRENCY_LIMITED; places come back when requests end', async () => {
  const hold = holdingOrigin();
  const origin = await startOrigin('A', hold.handler);
  origins.push(origin);
  const gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    policies: { two: { type: 'concurrency-limit', key: 'header:x-user', limit: 2 } },
    routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['two'] } },
  });
  gateways.push(gw);

  // Two requests of user a reach the origin and stay there.
  const firstTwo = [send(`${gw.url}/`, { 'x-user': 'a' }), send(`${gw.url}/`, { 'x-user': 'a' })];
  while (hold.held.length < 2) await guard(hold.arrived(), 'two held requests', 5000);
  // A third of a is refused at once; b has its own places.
  assert.deepEqual(await send(`${gw.url}/`, { 'x-user': 'a' }), { status: 429, code: 'CONCURRENCY_LIMITED', retryAfter: '1' });
  const ofB = send(`${gw.url}/`, { 'x-user': 'b' });
  while (hold.held.length < 3) await guard(hold.arrived(), 'b reaching the origin', 5000);

  hold.releaseAll();
  assert.deepEqual(
    (await Promise.all([...firstTwo, ofB])).map((a) => a.status),
    [200, 200, 200],
  );
  // The places were returned (onLog): two more of a reach the origin. The release is sent when the
  // request is over, so poll (bounded) until a request of a is not refused.
  let next = send(`${gw.url}/`, { 'x-user': 'a' });
  for (let i = 0; i < 50 && hold.held.length === 0; i++) {
    const raced = await Promise.race([next, hold.arrived().then(() => undefined)]);
    if (raced !== undefined) next = send(`${gw.url}/`, { 'x-user': 'a' });
  }
  assert.equal(hold.held.length, 1, 'a request of a reached the origin again');
  hold.releaseAll();
  assert.equal((await next).status, 200);
});

test('a client that goes away returns its place', async () => {
  const hold = holdingOrigin();
  const origin = await startOrigin('B', hold.handler);
  origins.push(origin);
  const gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    policies: { one: { type: 'concurrency-limit', key: 'ip', limit: 1, status: 503 } },
    routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['one'] } },
  });
  gateways.push(gw);
  const ac = new AbortController();
  const gone = request(`${gw.url}/`, { dispatcher: agent, signal: ac.signal }).catch(() => undefined);
  await guard(hold.arrived(), 'the first request held', 5000);
  assert.equal((await send(`${gw.url}/`)).status, 503, 'status 503 when asked');
  const closed = once(hold.held[0]!, 'close');
  ac.abort();
  await gone;
  await guard(closed, 'the origin seeing the request go', 5000);
  hold.held.length = 0;
  let answered: { status: number } | undefined;
  for (let i = 0; i < 50; i++) {
    const arrived = hold.arrived();
    const r = await Promise.race([send(`${gw.url}/`), arrived.then(() => undefined)]);
    if (r === undefined) {
      hold.releaseAll();
      answered = { status: 200 };
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(answered, { status: 200 }, 'a later request reached the origin');
});
