/**
 * `https-redirect` and `hsts` as policies by name, on listeners and routes (the listener keys
 * `httpsRedirect` and `hsts` are covered by tls.test.ts): the redirect answers everything, a
 * WebSocket upgrade included, and forwards nothing; HSTS goes on responses over TLS only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPki, type IssuedCert, type TestPki } from './helpers/certs.ts';
import { h1Client, h2Client, type Client } from './helpers/clients.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { rawRequest } from './helpers/raw.ts';

let pki: TestPki;
let site: IssuedCert;
let origin: Origin;
let gw: TestGateway;

const HSTS = 'max-age=3600; includeSubDomains; preload';

before(async () => {
  pki = await createPki();
  site = await pki.issue({ names: ['localhost', '127.0.0.1'] });
  origin = await startOrigin('o', (req, res) => {
    req.resume();
    // An upstream that sets its own HSTS keeps it.
    if (req.url?.endsWith('/own-hsts')) res.setHeader('strict-transport-security', 'max-age=5');
    res.end('from origin');
  });
  const tls = { certificates: [{ cert: site.certFile, key: site.keyFile }] };
  gw = await startTestGateway({
    policies: {
      'to-https': { type: 'https-redirect', port: 8443 },
      'to-https-temporarily': { type: 'https-redirect', status: 307 },
      hsts: { type: 'hsts', maxAge: '1h', includeSubDomains: true, preload: true },
    },
    listeners: {
      web: { address: '127.0.0.1:0', protocol: 'http', h2c: true, policies: ['to-https'] },
      mixed: { address: '127.0.0.1:0', protocol: 'http', policies: ['hsts'] },
      secure: { address: '127.0.0.1:0', protocol: 'https', tls, policies: ['hsts'] },
    },
    routes: {
      legacy: { match: { path: '/legacy/' }, listeners: ['mixed'], upstream: 'app', policies: ['to-https-temporarily'] },
      app: { match: { path: '/app/' }, listeners: ['secure'], upstream: 'app' },
      all: { match: { path: '/' }, listeners: ['web', 'mixed'], upstream: 'app' },
    },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
  });
});

after(async () => {
  await gw.stop();
  await origin.close();
  await pki.cleanup();
});

async function eachProtocol(clients: Array<() => Client | Promise<Client>>, check: (c: Client) => Promise<void>): Promise<void> {
  for (const make of clients) {
    const c = await make();
    try {
      await check(c);
    } finally {
      await c.close();
    }
  }
}

test('an https-redirect policy on an http listener answers 308 to the same host, path and query; nothing is forwarded', () =>
  eachProtocol([() => h1Client(gw.url), () => h2Client(gw.url)], async (c) => {
    const seen = origin.seen.length;
    const get = await c.send('/a/b?c=d&e');
    assert.equal(get.status, 308, c.name);
    assert.equal(get.headers.location, `https://127.0.0.1:8443/a/b?c=d&e`, c.name);
    assert.equal(get.body, '', c.name);
    const post = await c.send('/orders', { method: 'POST', body: '{"id":1}' });
    assert.equal(post.status, 308, `${c.name}: POST`);
    const missing = await c.send('/no/route/needed');
    assert.equal(missing.status, 308, `${c.name}: before routing`);
    assert.equal(origin.seen.length, seen, `${c.name}: nothing reached the origin`);
  }));

test('the redirect keeps the Host the client asked for; without a Host (HTTP/1.0) it is 400', async () => {
  const r = await rawRequest(gw.port, 'GET /x?y=1 HTTP/1.1\r\nHost: Shop.Example:80\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 308);
  assert.match(r.text, /\r\nlocation: https:\/\/shop\.example:8443\/x\?y=1\r\n/i);
  // HTTP/1.0 may leave Host out: no URL to redirect to, never `Location: https:///`.
  const noHost = await rawRequest(gw.port, 'GET /x HTTP/1.0\r\n\r\n');
  assert.equal(noHost.status, 400);
  assert.doesNotMatch(noHost.text, /\r\nlocation:/i);
  assert.match(noHost.text, /"code":"INVALID_HOST"/);
});

test('a WebSocket upgrade gets the raw 308 and the connection is closed', async () => {
  const seen = origin.seen.length;
  const upgrade =
    'GET /chat?room=1 HTTP/1.1\r\nHost: chat.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
  const r = await rawRequest(gw.port, upgrade);
  assert.equal(r.status, 308);
  assert.match(r.text, /\r\nlocation: https:\/\/chat\.example:8443\/chat\?room=1\r\n/i);
  assert.match(r.text, /\r\nconnection: close\r\n/i);
  assert.doesNotMatch(r.text, /\r\nupgrade:/i);
  assert.ok(r.closedByServer, 'the gateway closed the connection');
  assert.equal(origin.seen.length, seen);
});

test('an https-redirect policy on a route redirects that route only, with its status', async () => {
  const c = h1Client(gw.gw.url('mixed'));
  try {
    const seen = origin.seen.length;
    const legacy = await c.send('/legacy/page', { headers: { host: 'old.example' } });
    assert.equal(legacy.status, 307);
    assert.equal(legacy.headers.location, 'https://old.example/legacy/page', 'port 443 is left out');
    assert.equal(origin.seen.length, seen);
    const other = await c.send('/other');
    assert.equal(other.status, 200);
    assert.equal(other.body, 'from origin');
    assert.equal(origin.seen.length, seen + 1);
  } finally {
    await c.close();
  }
});

test("an hsts policy adds Strict-Transport-Security over TLS (HTTP/1.1 and HTTP/2), the gateway's own errors included", () => {
  const tls = { ca: pki.ca.cert, servername: 'localhost' };
  const secure = gw.gw.url('secure');
  return eachProtocol([() => h1Client(secure, tls), () => h2Client(secure, tls)], async (c) => {
    const ok = await c.send('/app/page');
    assert.equal(ok.status, 200, c.name);
    assert.equal(ok.headers['strict-transport-security'], HSTS, c.name);
    const own = await c.send('/app/own-hsts');
    assert.equal(own.headers['strict-transport-security'], 'max-age=5', `${c.name}: the upstream's own is kept`);
    const missing = await c.send('/nowhere');
    assert.equal(missing.status, 404, c.name);
    assert.equal(missing.headers['strict-transport-security'], HSTS, `${c.name}: 404`);
  });
});

test('the same hsts policy on a plain http listener adds nothing', async () => {
  const c = h1Client(gw.gw.url('mixed'));
  try {
    const r = await c.send('/page');
    assert.equal(r.status, 200);
    assert.equal(r.headers['strict-transport-security'], undefined);
    const redirect = await c.send('/legacy/x');
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers['strict-transport-security'], undefined);
  } finally {
    await c.close();
  }
});
