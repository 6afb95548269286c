/**
 * The `cache` policy's storage keys end to end, through a real gateway and origin (HTTP/1.1):
 * `storeSetCookie` (stored without the cookie; off: not stored), `defaultTtl` (responses without
 * freshness information stored only when set) and `key.headers` (request headers in the cache key).
 * Each key is compared with a cache without it, on the same origin. Also the response directives
 * that forbid stale reuse whatever else allows it (RFC 9111 §4.2.4): `no-cache` and `s-maxage`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { Agent, request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;
const handlers = new Map<string, Handler>();
const counts = new Map<string, number>();
let origin: Origin;
let gw: TestGateway;
const agent = new Agent();

before(async () => {
  origin = await startOrigin('o', (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    req.resume();
    const h = handlers.get(path) ?? handlers.get(`/${path.split('/')[2]}`);
    if (h === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    h(req, res, n);
  });
  gw = await startTestGateway({
    policies: {
      plain: { type: 'cache', store: { memory: '1MiB' } },
      cookies: { type: 'cache', store: { memory: '1MiB' }, storeSetCookie: true },
      ttl: { type: 'cache', store: { memory: '1MiB' }, defaultTtl: '2m' },
      keyed: { type: 'cache', store: { memory: '1MiB' }, key: { headers: ['X-Tenant', 'accept-language'] } },
    },
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: {
      cookies: { match: { path: '/cookies/' }, upstream: 'web', policies: ['cookies'] },
      ttl: { match: { path: '/ttl/' }, upstream: 'web', policies: ['ttl'] },
      keyed: { match: { path: '/keyed/' }, upstream: 'web', policies: ['keyed'] },
      plain: { match: { path: '/plain/' }, upstream: 'web', policies: ['plain'] },
    },
    upstreams: { web: { endpoints: [{ url: origin.url }] } },
  });
});

after(async () => {
  await gw.stop();
  await origin.close();
  await agent.close();
});

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function get(path: string, headers: Record<string, string> = {}): Promise<Got> {
  const res = await request(gw.url + path, { headers, dispatcher: agent });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

const seen = (path: string): number => counts.get(path) ?? 0;
const hit = (g: Got): boolean => /; hit/.test(String(g.headers['cache-status']));

test('storeSetCookie: the response is stored and a hit is served without its Set-Cookie; without the key it is not stored', async () => {
  handlers.set('/cookie', (_req, res, n) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', 'set-cookie': [`session=s${n}; HttpOnly`, 'theme=dark'] });
    res.end(`body ${n}`);
  });
  const first = await get('/cookies/cookie');
  assert.deepEqual(first.headers['set-cookie'], ['session=s1; HttpOnly', 'theme=dark'], 'the miss passes the cookies on');
  const again = await get('/cookies/cookie');
  assert.ok(hit(again), String(again.headers['cache-status']));
  assert.equal(again.body, 'body 1');
  assert.equal(again.headers['set-cookie'], undefined, 'the stored copy carries no Set-Cookie');
  assert.equal(seen('/cookies/cookie'), 1);

  await get('/plain/cookie');
  const notStored = await get('/plain/cookie');
  assert.ok(!hit(notStored));
  assert.equal(notStored.body, 'body 2');
  assert.deepEqual(notStored.headers['set-cookie'], ['session=s2; HttpOnly', 'theme=dark']);
  assert.equal(seen('/plain/cookie'), 2);
});

test('defaultTtl: a response without freshness information is stored for it; an explicit lifetime wins; without the key nothing is stored', async () => {
  handlers.set('/bare', (_req, res, n) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`bare ${n}`);
  });
  handlers.set('/short', (_req, res, n) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=5' });
    res.end(`short ${n}`);
  });
  handlers.set('/nostore', (_req, res, n) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
    res.end(`nostore ${n}`);
  });
  const first = await get('/ttl/bare');
  assert.match(String(first.headers['cache-status']), /fwd=miss; fwd-status=200; (stored; )?ttl=(119|120)$/);
  const again = await get('/ttl/bare');
  assert.ok(hit(again));
  assert.equal(again.body, 'bare 1');
  assert.equal(again.headers['cache-control'], undefined, 'the stored headers are the origin’s');
  assert.equal(seen('/ttl/bare'), 1);

  await get('/ttl/short');
  assert.match(String((await get('/ttl/short')).headers['cache-status']), /; hit; ttl=[45]$/, 'max-age, not defaultTtl');
  await get('/ttl/nostore');
  await get('/ttl/nostore');
  assert.equal(seen('/ttl/nostore'), 2, 'defaultTtl does not make no-store storable');

  await get('/plain/bare');
  const plain = await get('/plain/bare');
  assert.ok(!hit(plain));
  assert.equal(seen('/plain/bare'), 2);
});

test('key.headers: different values of a key header are different objects; the same value (any case of the name) the same object', async () => {
  handlers.set('/tenant', (req, res, n) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
    res.end(`${req.headers['x-tenant'] ?? '-'} ${n}`);
  });
  assert.equal((await get('/keyed/tenant', { 'x-tenant': 'a' })).body, 'a 1');
  assert.equal((await get('/keyed/tenant', { 'x-tenant': 'b' })).body, 'b 2');
  assert.equal((await get('/keyed/tenant')).body, '- 3');
  const a = await get('/keyed/tenant', { 'X-Tenant': 'a' });
  assert.ok(hit(a));
  assert.equal(a.body, 'a 1');
  assert.equal((await get('/keyed/tenant', { 'x-tenant': 'b' })).body, 'b 2');
  assert.equal((await get('/keyed/tenant')).body, '- 3');
  // The second key header counts too.
  assert.equal((await get('/keyed/tenant', { 'x-tenant': 'a', 'accept-language': 'de' })).body, 'a 4');
  assert.equal((await get('/keyed/tenant', { 'x-tenant': 'a', 'accept-language': 'de' })).body, 'a 4');
  assert.equal(seen('/keyed/tenant'), 4);

  // Without key.headers (and no Vary from the origin) the header is not part of the key.
  assert.equal((await get('/plain/tenant', { 'x-tenant': 'a' })).body, 'a 1');
  assert.equal((await get('/plain/tenant', { 'x-tenant': 'b' })).body, 'a 1');
  assert.equal(seen('/plain/tenant'), 1);
});

test('no-cache and s-maxage objects are never served stale: not within stale-while-revalidate, not for a request’s max-stale', async () => {
  // Found by cache-property.test.ts: a no-cache object was served stale without validation.
  for (const [path, cc] of [
    ['/nc-swr', 'no-cache, stale-while-revalidate=600'],
    ['/ncf-swr', 'no-cache="x-a", stale-while-revalidate=600'],
    ['/sm-swr', 's-maxage=1, stale-while-revalidate=600'],
    ['/nc-ms', 'max-age=60, no-cache'],
    ['/sm-ms', 's-maxage=1'],
  ] as const) {
    handlers.set(path, (_req, res, n) => {
      // Age past every lifetime: stale at once.
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': cc, age: '5', etag: `"${n}"` });
      res.end(`${path} ${n}`);
    });
    await get(`/plain${path}`);
    const again = await get(`/plain${path}`, path.endsWith('-ms') ? { 'cache-control': 'max-stale' } : {});
    assert.doesNotMatch(String(again.headers['cache-status']), /; hit|detail=stale-while-revalidate/, `${cc}: ${again.headers['cache-status']}`);
    assert.equal(again.body, `${path} 2`, `${cc}: validated in the foreground`);
  }
  // The same with max-age: served stale, as the directives allow (then refreshed in the background).
  let refreshed!: () => void;
  const background = new Promise<void>((r) => {
    refreshed = r;
  });
  handlers.set('/ma-swr', (_req, res, n) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=1, stale-while-revalidate=600', age: '5' });
    res.end(`swr ${n}`, () => n === 2 && refreshed());
  });
  await get('/plain/ma-swr');
  assert.match(String((await get('/plain/ma-swr')).headers['cache-status']), /detail=stale-while-revalidate/);
  await background;
});
