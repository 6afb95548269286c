/** Forwarding through the real gateway: balancing, header hygiene, forwarding headers, rewrites. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { simpleConfig, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { rawRequest } from './helpers/raw.ts';

interface Echo {
  origin: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  rawHeaders: string[];
  body: string;
}

let a: Origin, b: Origin, c: Origin;
let gw: TestGateway;

before(async () => {
  [a, b, c] = await Promise.all([startOrigin('a'), startOrigin('b'), startOrigin('c')]);
  gw = await startTestGateway({
    listeners: {
      web: { address: '127.0.0.1:0', protocol: 'http' },
      edge: { address: '127.0.0.1:0', protocol: 'http', trustedProxies: ['127.0.0.0/8', '::1'] },
    },
    routes: {
      all: { match: { path: '/' }, upstream: 'abc' },
      strip: { match: { path: '/api/' }, rewrite: { stripPrefix: '/api' }, upstream: 'abc' },
      replace: { match: { path: '/v1/' }, rewrite: { replacePrefix: { from: '/v1/', to: '/v2/' } }, upstream: 'abc' },
      endpointHost: { match: { path: '/eh/' }, upstream: 'byEndpoint' },
    },
    upstreams: {
      abc: { balancer: 'round-robin', endpoints: [{ url: a.url }, { url: b.url }, { url: c.url }] },
      byEndpoint: { hostHeader: 'endpoint', endpoints: [{ url: a.url }] },
    },
  });
});

after(async () => {
  await gw.stop();
  await Promise.all([a.close(), b.close(), c.close()]);
});

async function get(path: string, headers: Record<string, string> = {}, base = gw.url): Promise<{ status: number; echo: Echo; headers: Record<string, unknown> }> {
  const res = await request(base + path, { headers });
  return { status: res.statusCode, echo: (await res.body.json()) as Echo, headers: res.headers };
}

test('round robin rotates across the three origins in turn', async () => {
  const seen: string[] = [];
  for (let i = 0; i < 9; i++) seen.push((await get('/rr')).echo.origin);
  const first = seen.indexOf('a');
  const cycle = seen.slice(first, first + 3);
  assert.deepEqual([...cycle].sort(), ['a', 'b', 'c']);
  for (let i = 0; i < seen.length; i++) assert.equal(seen[i], seen[i % 3], `request ${i} broke the rotation: ${seen.join(',')}`);
});

test('hop-by-hop headers and every header named in Connection are removed', async () => {
  const r = await rawRequest(
    gw.port,
    'GET /hop HTTP/1.1\r\nHost: example.test\r\nConnection: close, X-Secret, X-Other\r\nKeep-Alive: timeout=5\r\nX-Secret: s\r\nX-Other: o\r\nTE: trailers\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nUpgrade: something\r\nX-Kept: yes\r\n\r\n',
    1000,
  );
  assert.equal(r.status, 200);
  const echo = JSON.parse(
    r.text
      .slice(r.text.indexOf('\r\n\r\n') + 4)
      .split('\r\n')
      .find((l) => l.startsWith('{'))!,
  ) as Echo;
  for (const h of ['x-secret', 'x-other', 'keep-alive', 'te', 'proxy-authorization', 'upgrade']) assert.equal(echo.headers[h], undefined, h);
  assert.equal(echo.headers['x-kept'], 'yes');
  assert.notEqual(echo.headers.connection, 'close, X-Secret, X-Other');
});

test('hop-by-hop response headers are removed on the way back', async () => {
  const origin = await startOrigin('hop', (_req, res) => {
    res.writeHead(200, { connection: 'keep-alive, x-internal', 'x-internal': 'secret', 'keep-alive': 'timeout=9', 'x-public': 'ok', 'content-length': '2' });
    res.end('ok');
  });
  const t = await startTestGateway(simpleConfig([origin.url]));
  try {
    const res = await request(`${t.url}/`);
    await res.body.text();
    assert.equal(res.headers['x-internal'], undefined);
    assert.equal(res.headers['x-public'], 'ok');
    assert.notEqual(res.headers['keep-alive'], 'timeout=9');
  } finally {
    await t.stop();
    await origin.close();
  }
});

test('forwarding headers from an untrusted peer are replaced, not appended', async () => {
  const { echo } = await get('/fwd', { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.test', forwarded: 'for=6.6.6.6' });
  assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(echo.headers['x-forwarded-proto'], 'http');
  assert.match(echo.headers['x-forwarded-host'], /^127\.0\.0\.1:\d+$/);
  assert.match(echo.headers.forwarded, /^for=127\.0\.0\.1;host="127\.0\.0\.1:\d+";proto=http$/);
  const xff = echo.rawHeaders.filter((_, i) => i % 2 === 0 && echo.rawHeaders[i].toLowerCase() === 'x-forwarded-for');
  assert.equal(xff.length, 1, 'exactly one X-Forwarded-For');
});

test('forwarding headers from a trusted proxy are extended', async () => {
  const { echo } = await get(
    '/fwd',
    { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example', forwarded: 'for=203.0.113.9' },
    gw.gw.url('edge'),
  );
  assert.equal(echo.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  assert.equal(echo.headers['x-forwarded-proto'], 'https');
  assert.equal(echo.headers['x-forwarded-host'], 'shop.example');
  assert.match(echo.headers.forwarded, /^for=203\.0\.113\.9, for=127\.0\.0\.1;host="127\.0\.0\.1:\d+";proto=http$/);
});

test('Host is preserved by default, and is the endpoint host when asked', async () => {
  const preserved = await get('/h', { host: 'shop.example' });
  assert.equal(preserved.echo.headers.host, 'shop.example');
  const endpoint = await get('/eh/x', { host: 'shop.example' });
  assert.equal(endpoint.echo.headers.host, `127.0.0.1:${a.port}`);
});

test('X-Request-Id is generated when absent and passed on when present, both ways', async () => {
  const generated = await get('/id');
  assert.match(generated.echo.headers['x-request-id'], /^[0-9a-f-]{36}$/);
  assert.equal(generated.headers['x-request-id'], generated.echo.headers['x-request-id']);
  const given = await get('/id', { 'x-request-id': 'trace-abc-123' });
  assert.equal(given.echo.headers['x-request-id'], 'trace-abc-123');
  assert.equal(given.headers['x-request-id'], 'trace-abc-123');
});

test('rewrites: strip a prefix, replace a prefix, query kept', async () => {
  assert.equal((await get('/api/users?id=7')).echo.url, '/users?id=7');
  assert.equal((await get('/api')).echo.url, '/api');
  assert.equal((await get('/v1/orders?x=1&y=2')).echo.url, '/v2/orders?x=1&y=2');
  assert.equal((await get('/other/path')).echo.url, '/other/path');
});

test('request bodies arrive intact, with content-length or chunked', async () => {
  const sized = await request(`${gw.url}/post`, { method: 'POST', body: 'x'.repeat(1000) });
  assert.equal(((await sized.body.json()) as Echo).body, 'x'.repeat(1000));
  async function* parts(): AsyncGenerator<Buffer> {
    yield Buffer.from('hello ');
    yield Buffer.from('chunked ');
    yield Buffer.from('world');
  }
  const chunked = await request(`${gw.url}/post`, { method: 'POST', body: Readable.from(parts()) });
  const echo = (await chunked.body.json()) as Echo;
  assert.equal(echo.body, 'hello chunked world');
  // Streamed on as chunked, or with an exact length when the whole body had already arrived.
  assert.ok(echo.headers['transfer-encoding'] === 'chunked' || echo.headers['content-length'] === '19', JSON.stringify(echo.headers));
});

test('status, reason-independent headers and multi-value headers come back as the origin sent them', async () => {
  const origin = await startOrigin('multi', (_req, res) => {
    res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.writeHead(418, { 'content-type': 'text/plain' });
    res.end('teapot');
  });
  const t = await startTestGateway(simpleConfig([origin.url]));
  try {
    const res = await request(`${t.url}/`);
    assert.equal(res.statusCode, 418);
    assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
    assert.equal(await res.body.text(), 'teapot');
  } finally {
    await t.stop();
    await origin.close();
  }
});

test('routing through the gateway: host, wildcard host, header, query, method and priority choose the upstream', async () => {
  const t = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: {
      fallback: { upstream: 'A' },
      apiHost: { match: { host: 'api.example.com' }, upstream: 'B' },
      wildcard: { match: { host: '*.example.com' }, upstream: 'C' },
      canary: { match: { host: 'api.example.com', headers: { 'x-canary': 'yes' } }, upstream: 'C' },
      v2: { match: { path: { prefix: '/items' }, query: { version: '2' } }, upstream: 'B' },
      deletes: { match: { path: { regex: '^/items/[0-9]+$' }, methods: ['DELETE'] }, upstream: 'C' },
      forced: { match: { path: '/forced' }, priority: 5, upstream: 'C' },
      forcedLoser: { match: { host: 'api.example.com', path: { exact: '/forced/x' } }, upstream: 'A' },
    },
    upstreams: { A: { endpoints: [{ url: a.url }] }, B: { endpoints: [{ url: b.url }] }, C: { endpoints: [{ url: c.url }] } },
  });
  try {
    const who = async (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<string> => {
      const res = await request(t.url + path, { headers, method });
      return ((await res.body.json()) as Echo).origin;
    };
    assert.equal(await who('/x'), 'a', 'no condition: the fallback');
    assert.equal(await who('/x', { host: 'api.example.com' }), 'b', 'exact host');
    assert.equal(await who('/x', { host: 'API.Example.com:8080' }), 'b', 'host is case-insensitive and matches with any port');
    assert.equal(await who('/x', { host: 'www.example.com' }), 'c', 'wildcard host');
    assert.equal(await who('/x', { host: 'api.example.com', 'x-canary': 'yes' }), 'c', 'a header condition is more specific');
    assert.equal(await who('/items?version=2'), 'b', 'query parameter');
    assert.equal(await who('/items/7', {}, 'DELETE'), 'c', 'regex path and method');
    assert.equal(await who('/items/7'), 'a', 'method condition not met');
    assert.equal(await who('/forced/x', { host: 'api.example.com' }), 'c', 'priority beats specificity');
  } finally {
    await t.stop();
  }
});
