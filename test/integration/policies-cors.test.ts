/**
 * The `cors` policy through real listeners, without a browser (policies-browser.test.ts has the
 * Chromium one): preflights answered and never forwarded, refused ones without CORS headers, the
 * headers on the origin's responses, on the gateway's own errors and on other policies' answers,
 * over HTTP/1.1 and h2c.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { h1Client, h2Client, type Answer, type Client } from './helpers/clients.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { closedPort, startOrigin, type Origin } from './helpers/origin.ts';

let origin: Origin;
let gw: TestGateway;

before(async () => {
  // The origin sets CORS headers of its own: the policy is their one source.
  origin = await startOrigin('o', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'access-control-allow-origin': '*', 'access-control-max-age': '99999', vary: 'Accept-Encoding', 'x-total': '42' });
    res.end('hello');
  });
  const dead = `http://127.0.0.1:${await closedPort()}`;
  gw = await startTestGateway({
    policies: {
      'web-app': {
        type: 'cors',
        origins: ['https://app.example.com', 'https://*.example.org'],
        methods: ['GET', 'POST'],
        credentials: true,
        maxAge: '10m',
        exposedHeaders: ['x-total'],
      },
      strict: { type: 'cors', origins: ['https://app.example.com'], requestHeaders: ['content-type'] },
      deny: { type: 'respond', status: 401, headers: { 'www-authenticate': 'Bearer realm="api"' }, body: 'sign in\n' },
    },
    listeners: {
      web: { address: '127.0.0.1:0', protocol: 'http', h2c: true },
      site: { address: '127.0.0.1:0', protocol: 'http', h2c: true, policies: ['web-app'] },
    },
    routes: {
      api: { match: { path: '/api/' }, upstream: 'api', policies: ['web-app'] },
      strict: { match: { path: '/strict/' }, upstream: 'api', policies: ['strict'] },
      locked: { match: { path: '/locked/' }, upstream: 'api', policies: ['web-app', 'deny'] },
      down: { match: { path: '/down/' }, upstream: 'dead', policies: ['web-app'] },
    },
    upstreams: { api: { endpoints: [{ url: origin.url }] }, dead: { endpoints: [{ url: dead }] } },
  });
});

after(async () => {
  await gw.stop();
  await origin.close();
});

const APP = 'https://app.example.com';

async function eachProtocol(base: () => string, check: (c: Client) => Promise<void>): Promise<void> {
  for (const c of [h1Client(base()), await h2Client(base())]) {
    try {
      await check(c);
    } finally {
      await c.close();
    }
  }
}

function corsHeaders(r: Answer): Record<string, string> {
  return Object.fromEntries(Object.entries(r.headers).filter(([name]) => name.startsWith('access-control-')));
}

function preflight(c: Client, path: string, origin: string, method: string, headers?: string): Promise<Answer> {
  const h: Record<string, string> = { origin, 'access-control-request-method': method };
  if (headers !== undefined) h['access-control-request-headers'] = headers;
  return c.send(path, { method: 'OPTIONS', headers: h });
}

test('an allowed preflight is answered 204 with the Allow-* headers, and nothing is forwarded', () =>
  eachProtocol(
    () => gw.url,
    async (c) => {
      const seen = origin.seen.length;
      const r = await preflight(c, '/api/orders', APP, 'POST', 'content-type, x-client-version');
      assert.equal(r.status, 204, c.name);
      assert.deepEqual(
        corsHeaders(r),
        {
          'access-control-allow-origin': APP,
          'access-control-allow-credentials': 'true',
          'access-control-allow-methods': 'GET, POST',
          'access-control-allow-headers': 'content-type, x-client-version',
          'access-control-max-age': '600',
        },
        c.name,
      );
      assert.equal(r.headers.vary, 'Origin', c.name);
      assert.equal(r.body, '', c.name);
      const wildcard = await preflight(c, '/api/orders', 'https://eu.shop.example.org', 'GET');
      assert.equal(wildcard.status, 204, `${c.name}: *.example.org`);
      assert.equal(wildcard.headers['access-control-allow-origin'], 'https://eu.shop.example.org', c.name);
      assert.equal(origin.seen.length, seen, `${c.name}: no preflight reached the origin`);
    },
  ));

test('a refused preflight (origin, method, request header) is not forwarded and carries no CORS header', () =>
  eachProtocol(
    () => gw.url,
    async (c) => {
      const seen = origin.seen.length;
      const refusals: Array<[string, Answer]> = [
        ['origin', await preflight(c, '/api/orders', 'https://evil.example', 'POST')],
        ['apex of a wildcard', await preflight(c, '/api/orders', 'https://example.org', 'GET')],
        ['scheme', await preflight(c, '/api/orders', 'http://app.example.com', 'GET')],
        ['method', await preflight(c, '/api/orders', APP, 'DELETE')],
        ['request header', await preflight(c, '/strict/x', APP, 'GET', 'content-type, authorization')],
      ];
      for (const [what, r] of refusals) {
        assert.equal(r.status, 403, `${c.name}: ${what}`);
        assert.deepEqual(corsHeaders(r), {}, `${c.name}: ${what}`);
        assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'CORS_FORBIDDEN', `${c.name}: ${what}`);
      }
      assert.equal(origin.seen.length, seen, `${c.name}: no refused preflight reached the origin`);
    },
  ));

test("an allowed origin's request reaches the origin; its response gets Allow-Origin, credentials, exposed headers and Vary", () =>
  eachProtocol(
    () => gw.url,
    async (c) => {
      const seen = origin.seen.length;
      const r = await c.send('/api/orders', { method: 'POST', headers: { origin: APP, 'content-type': 'text/plain' }, body: 'x' });
      assert.equal(r.status, 200, c.name);
      assert.equal(r.body, 'hello', c.name);
      assert.equal(origin.seen.length, seen + 1, c.name);
      assert.deepEqual(
        corsHeaders(r),
        { 'access-control-allow-origin': APP, 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-total' },
        `${c.name}: the origin's own Access-Control-* replaced`,
      );
      assert.equal(r.headers.vary, 'Accept-Encoding, Origin', c.name);

      const other = await c.send('/api/orders', { headers: { origin: 'https://evil.example' } });
      assert.equal(other.status, 200, `${c.name}: a refused origin's simple request still goes through (the browser hides the answer)`);
      assert.deepEqual(corsHeaders(other), {}, c.name);
      assert.equal(other.headers.vary, 'Accept-Encoding, Origin', c.name);
      const none = await c.send('/api/orders');
      assert.deepEqual(corsHeaders(none), {}, `${c.name}: no Origin`);
      assert.equal(none.headers.vary, 'Accept-Encoding, Origin', `${c.name}: Vary without an Origin too`);
    },
  ));

test("the gateway's own errors and another policy's answer carry the CORS headers for an allowed origin", () =>
  eachProtocol(
    () => gw.url,
    async (c) => {
      const want = { 'access-control-allow-origin': APP, 'access-control-allow-credentials': 'true', 'access-control-expose-headers': 'x-total' };
      const locked = await c.send('/locked/x', { headers: { origin: APP } });
      assert.equal(locked.status, 401, c.name);
      assert.equal(locked.headers['www-authenticate'], 'Bearer realm="api"', c.name);
      assert.deepEqual(corsHeaders(locked), want, `${c.name}: 401 of a respond policy after cors`);
      assert.equal(locked.headers.vary, 'Origin', c.name);
      const down = await c.send('/down/x', { headers: { origin: APP } });
      assert.equal(down.status, 502, c.name);
      assert.deepEqual(corsHeaders(down), want, `${c.name}: 502`);
      const evil = await c.send('/locked/x', { headers: { origin: 'https://evil.example' } });
      assert.equal(evil.status, 401, c.name);
      assert.deepEqual(corsHeaders(evil), {}, c.name);
    },
  ));

test("a listener's cors policy: 404 ROUTE_NOT_FOUND carries the CORS headers, preflights are answered before routing", () =>
  eachProtocol(
    () => gw.gw.url('site'),
    async (c) => {
      const seen = origin.seen.length;
      const missing = await c.send('/nowhere', { headers: { origin: APP } });
      assert.equal(missing.status, 404, c.name);
      assert.equal((JSON.parse(missing.body) as { error: { code: string } }).error.code, 'ROUTE_NOT_FOUND', c.name);
      assert.equal(missing.headers['access-control-allow-origin'], APP, c.name);
      assert.equal(missing.headers['access-control-allow-credentials'], 'true', c.name);
      assert.equal(missing.headers.vary, 'Origin', c.name);
      const pre = await preflight(c, '/api/x', 'https://a.example.org', 'POST');
      assert.equal(pre.status, 204, c.name);
      assert.equal(pre.headers['access-control-allow-origin'], 'https://a.example.org', c.name);
      assert.equal(origin.seen.length, seen, c.name);
    },
  ));

test('a refused preflight varies by Origin like every other answer of the policy', () =>
  eachProtocol(
    () => gw.url,
    async (c) => {
      const r = await preflight(c, '/api/orders', 'https://evil.example', 'POST');
      assert.equal(r.status, 403, c.name);
      assert.equal(r.headers.vary, 'Origin', `${c.name}: the cors policy's 403 Reply has headers { vary: Origin }`);
    },
  ));
