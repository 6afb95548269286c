/**
 * The `headers` and `respond` policies through real listeners: request changes reaching the origin
 * (HTTP/1.1, h2c, HTTP/2 over TLS, WebSocket upgrades), response changes reaching the client, the
 * templates, a listener's policy stamping the gateway's own errors and other policies' answers,
 * `respond` on a route without upstream and on a whole listener (a maintenance page).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { createPki, type IssuedCert, type TestPki } from './helpers/certs.ts';
import { h1Client, h2Client, type Client } from './helpers/clients.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { closedPort, echo, startOrigin, type Origin } from './helpers/origin.ts';
import { rawRequest } from './helpers/raw.ts';
import { openWs, refusedWs, startWsOrigin, wsUrl, type WsOrigin } from './helpers/websocket.ts';

let pki: TestPki;
let site: IssuedCert;
let origin: Origin;
let wsOrigin: WsOrigin;
let deadUrl: string;

/** What the echo origin reports. */
interface Echo {
  url: string;
  method: string;
  headers: http.IncomingHttpHeaders;
}

before(async () => {
  pki = await createPki();
  site = await pki.issue({ names: ['localhost', '127.0.0.1'] });
  // An origin that names itself in Server and X-Powered-By, and sets a CORS header of its own.
  const reply = echo('o');
  origin = await startOrigin('o', (req, res) => {
    res.setHeader('server', 'origin-server/1.0');
    res.setHeader('x-powered-by', 'tests');
    reply(req, res);
  });
  wsOrigin = await startWsOrigin('w');
  deadUrl = `http://127.0.0.1:${await closedPort()}`;
});

after(async () => {
  await origin.close();
  await wsOrigin.close();
  await pki.cleanup();
});

/** The issue's example, with a route-level `headers` policy using every operation and template. */
function config(): object {
  return {
    policies: {
      stamp: {
        type: 'headers',
        request: { set: { 'x-via-listener': 'web' } },
        response: { set: { 'x-served-by': 'switchboard', 'x-seen-route': '${route}' }, remove: ['server'] },
      },
      rewrite: {
        type: 'headers',
        request: {
          remove: ['x-secret'],
          rename: { 'x-old': 'x-new' },
          set: {
            'x-client-ip': '${client.ip}',
            'x-id-copy': '${request.id}',
            'x-route': '${route}',
            'x-tenant-copy': 'tenant=${header.x-tenant}',
            'x-literal': 'cost $${price}',
            'x-emptied': '${header.x-absent}',
            'x-host-copy': '${header.host}',
          },
          add: { 'x-tag': ['one', 'two'] },
        },
        response: {
          remove: ['x-powered-by'],
          rename: { 'x-origin': 'x-upstream' },
          set: { 'x-response-id': '${request.id}', 'x-echo-tenant': '${header.x-tenant}' },
          add: { 'x-extra': ['a', 'b'] },
        },
      },
      healthz: { type: 'respond', status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok\n' },
    },
    listeners: {
      web: { address: '127.0.0.1:0', protocol: 'http', h2c: true, policies: ['stamp'] },
      secure: { address: '127.0.0.1:0', protocol: 'https', tls: { certificates: [{ cert: site.certFile, key: site.keyFile }] }, policies: ['stamp'] },
    },
    routes: {
      health: { match: { path: { exact: '/healthz' } }, policies: ['healthz'] },
      echo: { match: { path: '/echo/' }, upstream: 'app', policies: ['rewrite'] },
      ws: { match: { path: '/ws' }, upstream: 'ws', policies: ['rewrite'] },
      down: { match: { path: '/down/' }, upstream: 'dead' },
    },
    upstreams: {
      app: { endpoints: [{ url: origin.url }] },
      ws: { endpoints: [{ url: wsOrigin.url }] },
      dead: { endpoints: [{ url: deadUrl }] },
    },
  };
}

describe('headers and respond through every protocol', () => {
  let gw: TestGateway;
  const clients: Array<() => Promise<Client>> = [];

  before(async () => {
    gw = await startTestGateway(config());
    const tls = { ca: pki.ca.cert, servername: 'localhost' };
    const secure = gw.gw.url('secure');
    clients.push(
      async () => h1Client(gw.url),
      async () => h2Client(gw.url),
      async () => h1Client(secure, tls),
      async () => h2Client(secure, tls),
    );
  });
  after(() => gw.stop());

  /** Runs `check` with a client of each protocol, closing it after. */
  async function eachProtocol(check: (c: Client) => Promise<void>): Promise<void> {
    for (const make of clients) {
      const c = await make();
      try {
        await check(c);
      } finally {
        await c.close();
      }
    }
  }

  test('request changes reach the origin: remove, rename, set with templates, add', () =>
    eachProtocol(async (c) => {
      const r = await c.send('/echo/a?q=1', { headers: { 'x-secret': 's3cret', 'x-old': 'renamed value', 'x-tenant': 'acme', 'x-tag': 'zero' } });
      assert.equal(r.status, 200, c.name);
      const seen = (JSON.parse(r.body) as Echo).headers;
      assert.equal(seen['x-secret'], undefined, `${c.name}: removed`);
      assert.equal(seen['x-old'], undefined, `${c.name}: renamed away`);
      assert.equal(seen['x-new'], 'renamed value', c.name);
      assert.equal(seen['x-client-ip'], '127.0.0.1', c.name);
      assert.ok(r.headers['x-request-id'], `${c.name}: the client sees an X-Request-Id`);
      assert.equal(seen['x-id-copy'], r.headers['x-request-id'], `${c.name}: \${request.id} is the X-Request-Id the client sees`);
      assert.equal(seen['x-request-id'], r.headers['x-request-id'], c.name);
      assert.equal(seen['x-route'], 'echo', c.name);
      assert.equal(seen['x-tenant-copy'], 'tenant=acme', c.name);
      assert.equal(seen['x-literal'], 'cost ${price}', `${c.name}: $\${ is a literal \${`);
      assert.equal(seen['x-emptied'], undefined, `${c.name}: a value that comes out empty sends no header`);
      assert.match(String(seen.host), /^(localhost|127\.0\.0\.1):\d+$/, c.name);
      assert.equal(seen['x-host-copy'], seen.host, `${c.name}: \${header.host} is the Host (HTTP/2: :authority)`);
      assert.equal(seen['x-tag'], 'zero, one, two', `${c.name}: add keeps the client's field`);
      assert.equal(seen['x-via-listener'], 'web', `${c.name}: the listener's request changes apply too`);
    }));

  test('response changes reach the client: remove, rename, set with templates, add', () =>
    eachProtocol(async (c) => {
      const r = await c.send('/echo/b', { headers: { 'x-tenant': 'acme' } });
      assert.equal(r.status, 200, c.name);
      assert.equal(r.headers.server, undefined, `${c.name}: the listener's remove`);
      assert.equal(r.headers['x-powered-by'], undefined, c.name);
      assert.equal(r.headers['x-origin'], undefined, c.name);
      assert.equal(r.headers['x-upstream'], 'o', `${c.name}: renamed`);
      assert.equal(r.headers['x-response-id'], r.headers['x-request-id'], c.name);
      assert.equal(r.headers['x-echo-tenant'], 'acme', c.name);
      assert.equal(r.headers['x-extra'], 'a, b', c.name);
      assert.equal(r.headers['x-served-by'], 'switchboard', c.name);
      assert.equal(r.headers['x-seen-route'], 'echo', `${c.name}: \${route} in a listener policy is the matched route`);
      assert.equal(r.headers['content-type'], 'application/json', c.name);
    }));

  test("a listener's headers policy stamps the gateway's own errors and a respond reply", () =>
    eachProtocol(async (c) => {
      const missing = await c.send('/nowhere');
      assert.equal(missing.status, 404, c.name);
      assert.equal(missing.headers['x-served-by'], 'switchboard', `${c.name}: 404`);
      assert.equal(missing.headers['x-seen-route'], undefined, `${c.name}: no route, \${route} empty, header left out`);
      assert.equal((JSON.parse(missing.body) as { error: { code: string } }).error.code, 'ROUTE_NOT_FOUND', c.name);

      const refused = await c.send('/down/x');
      assert.equal(refused.status, 502, c.name);
      assert.equal(refused.headers['x-served-by'], 'switchboard', `${c.name}: 502`);
      assert.equal(refused.headers['x-seen-route'], 'down', c.name);
      const err = JSON.parse(refused.body) as { error: { code: string; requestId: string } };
      assert.match(err.error.code, /^UPSTREAM_/, c.name);
      assert.equal(err.error.requestId, refused.headers['x-request-id'], c.name);

      const health = await c.send('/healthz');
      assert.equal(health.status, 200, c.name);
      assert.equal(health.body, 'ok\n', c.name);
      assert.equal(health.headers['x-served-by'], 'switchboard', `${c.name}: respond reply`);
      assert.equal(health.headers['x-seen-route'], 'health', c.name);
    }));

  test('respond: fixed status, headers and body on a route without upstream; HEAD gets no body', () =>
    eachProtocol(async (c) => {
      const seen = origin.seen.length;
      const get = await c.send('/healthz');
      assert.equal(get.status, 200, c.name);
      assert.equal(get.headers['content-type'], 'text/plain', c.name);
      assert.equal(get.headers['content-length'], '3', c.name);
      assert.ok(get.headers['x-request-id'], c.name);
      assert.equal(get.body, 'ok\n', c.name);
      const head = await c.send('/healthz', { method: 'HEAD' });
      assert.equal(head.status, 200, c.name);
      assert.equal(head.headers['content-type'], 'text/plain', c.name);
      assert.equal(head.body, '', `${c.name}: HEAD has no body`);
      const post = await c.send('/healthz', { method: 'POST', body: 'ignored' });
      assert.equal(post.status, 200, c.name);
      assert.equal(post.body, 'ok\n', c.name);
      assert.equal(origin.seen.length, seen, `${c.name}: nothing reached an origin`);
    }));

  test('the request changes apply to a WebSocket upgrade; refused upgrades are stamped', async () => {
    const before = wsOrigin.upgrades.length;
    const { ws } = await openWs(wsUrl(gw.url, '/ws'), { headers: { 'x-secret': 's', 'x-old': 'v', 'x-tenant': 'acme' } });
    try {
      assert.equal(wsOrigin.upgrades.length, before + 1);
      const seen = wsOrigin.upgrades[before].headers;
      assert.equal(seen['x-secret'], undefined);
      assert.equal(seen['x-new'], 'v');
      assert.equal(seen['x-client-ip'], '127.0.0.1');
      assert.equal(seen['x-id-copy'], seen['x-request-id']);
      assert.equal(seen['x-route'], 'ws');
      assert.equal(seen['x-tenant-copy'], 'tenant=acme');
      assert.equal(seen['x-tag'], 'one, two');
      assert.equal(seen['x-via-listener'], 'web');
      assert.equal(seen['x-host-copy'], seen.host);
    } finally {
      ws.close();
    }
    const missing = await refusedWs(wsUrl(gw.url, '/nowhere'));
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-served-by'], 'switchboard');
    const refused = await refusedWs(wsUrl(gw.url, '/down/ws'));
    assert.equal(refused.status, 502);
    assert.equal(refused.headers['x-served-by'], 'switchboard');
  });
});

test('respond on a listener answers every request (a maintenance page); nothing reaches an origin', async () => {
  const gw = await startTestGateway({
    policies: {
      maintenance: { type: 'respond', status: 503, headers: { 'content-type': 'text/html; charset=utf-8', 'retry-after': '120' }, body: '<h1>Back soon</h1>\n' },
    },
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http', h2c: true, policies: ['maintenance'] } },
    routes: { all: { match: { path: '/' }, upstream: 'app' }, ws: { match: { path: '/ws' }, upstream: 'ws' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] }, ws: { endpoints: [{ url: wsOrigin.url }] } },
  });
  const seen = origin.seen.length;
  const upgrades = wsOrigin.upgrades.length;
  const clients = [h1Client(gw.url), await h2Client(gw.url)];
  try {
    for (const c of clients) {
      for (const [path, method] of [
        ['/', 'GET'],
        ['/api/orders?id=1', 'POST'],
        ['/ws', 'GET'],
        ['/anything/else', 'DELETE'],
      ] as const) {
        const r = await c.send(path, { method, body: method === 'POST' ? '{"a":1}' : undefined });
        assert.equal(r.status, 503, `${c.name} ${method} ${path}`);
        assert.equal(r.body, '<h1>Back soon</h1>\n', `${c.name} ${method} ${path}`);
        assert.equal(r.headers['retry-after'], '120');
        assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
      }
    }
    const ws = await refusedWs(wsUrl(gw.url, '/ws'));
    assert.equal(ws.status, 503);
    assert.equal(ws.body, '<h1>Back soon</h1>\n');
    const raw = await rawRequest(
      gw.port,
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.equal(raw.status, 503);
    assert.match(raw.text, /\r\nconnection: close\r\n/i);
    assert.ok(raw.closedByServer, 'an upgrade answered by a policy closes the connection');
    assert.equal(origin.seen.length, seen, 'no request reached the origin');
    assert.equal(wsOrigin.upgrades.length, upgrades, 'no upgrade reached the WebSocket origin');
  } finally {
    for (const c of clients) await c.close();
    await gw.stop();
  }
});

test('a route without upstream whose policies do not answer: 500 NO_UPSTREAM at run time, still stamped', async () => {
  const gw = await startTestGateway({
    policies: { stamp: { type: 'headers', response: { set: { 'x-served-by': 'switchboard' } } } },
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http', policies: ['stamp'] } },
    routes: { only: { match: { path: '/' }, policies: ['stamp'] } },
  });
  const c = h1Client(gw.url);
  try {
    const r = await c.send('/x');
    assert.equal(r.status, 500);
    assert.equal(r.headers['x-served-by'], 'switchboard');
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'NO_UPSTREAM');
  } finally {
    await c.close();
    await gw.stop();
  }
});
