/**
 * WebSocket (HTTP/1.1 Upgrade) proxying through the real gateway, with `ws` origins and clients:
 * echo, balancing, non-101 answers (EDGE-CASES 14), close codes, backpressure, many sockets, the
 * idle timeout, least-connections, connect retries, and tunnels through a reload and a stop (40).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import type { WebSocket } from 'ws';
import type { RequestSession as RequestContext } from '../../src/http/session.ts';
import { createPki } from './helpers/certs.ts';
import { closedPort, startOrigin, type Origin } from './helpers/origin.ts';
import { simpleConfig, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { guard } from './helpers/guard.ts';
import { rawRequest } from './helpers/raw.ts';
import { countByOrigin } from './helpers/traffic.ts';
import { closedWs, nextMessage, openWs, refusedWs, startRawOrigin, startWsOrigin, until, wsUrl, type WsOrigin } from './helpers/websocket.ts';

let a: WsOrigin, b: WsOrigin, quiet: WsOrigin, denier: WsOrigin;
let plain: Origin;
let garbage: { url: string; close(): Promise<void> };
let wrong101: { url: string; close(): Promise<void> };
let deadUrl: string;
let gw: TestGateway;

function config(extraRoutes: object = {}): object {
  return {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: {
      ws: { match: { path: '/ws' }, upstream: 'pair' },
      solo: { match: { path: '/solo' }, upstream: 'solo' },
      quiet: { match: { path: '/quiet' }, upstream: 'quiet' },
      idle: { match: { path: '/idle' }, upstream: 'pair', timeouts: { tunnelIdle: '300ms' } },
      deny: { match: { path: '/deny' }, upstream: 'denier' },
      plain: { match: { path: '/plain' }, upstream: 'plain' },
      garbage: { match: { path: '/garbage' }, upstream: 'garbage' },
      wrong: { match: { path: '/wrong' }, upstream: 'wrong101' },
      retry: { match: { path: '/retry' }, upstream: 'halfDead' },
      dead: { match: { path: '/dead' }, upstream: 'allDead' },
      lc: { match: { path: '/lc' }, upstream: 'lc' },
      ...extraRoutes,
    },
    upstreams: {
      pair: { balancer: 'round-robin', endpoints: [{ url: a.url }, { url: b.url }] },
      solo: { endpoints: [{ url: a.url }] },
      quiet: { endpoints: [{ url: quiet.url }] },
      denier: { endpoints: [{ url: denier.url }] },
      plain: { endpoints: [{ url: plain.url }] },
      garbage: { endpoints: [{ url: garbage.url }] },
      wrong101: { endpoints: [{ url: wrong101.url }] },
      halfDead: { balancer: 'round-robin', endpoints: [{ url: deadUrl }, { url: a.url }] },
      allDead: { endpoints: [{ url: deadUrl }] },
      lc: { balancer: 'least-connections', sticky: { cookie: 'sb' }, endpoints: [{ url: a.url }, { url: b.url }] },
    },
  };
}

before(async () => {
  [a, b, quiet, plain] = await Promise.all([startWsOrigin('a'), startWsOrigin('b'), startWsOrigin('quiet', { echo: false }), startOrigin('plain')]);
  denier = await startWsOrigin('denier', { ws: { verifyClient: (_info, cb) => cb(false, 403, 'Forbidden', { 'x-why': 'not-you' }) } });
  garbage = await startRawOrigin('SSH-2.0-OpenSSH_9.6\r\n\r\n');
  wrong101 = await startRawOrigin('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n');
  deadUrl = `http://127.0.0.1:${await closedPort()}`;
  gw = await startTestGateway(config());
});

after(async () => {
  await gw.stop();
  await Promise.all([a.close(), b.close(), quiet.close(), denier.close(), plain.close(), garbage.close(), wrong101.close()]);
});

const originNamed = (name: string): WsOrigin => (name === 'a' ? a : name === 'b' ? b : assert.fail(`unexpected origin ${name}`));

async function closeAll(sockets: readonly WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map((ws) => {
      const c = closedWs(ws);
      ws.close();
      return c;
    }),
  );
}

/** The payload of a chunked body (no extensions, no trailers). */
function dechunk(body: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', at);
    const size = parseInt(body.slice(at, eol), 16);
    if (size === 0) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

function sha256(chunks: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  return h.digest('hex');
}

/** Resolves once `ws` has received `size` bytes in messages. */
function receive(ws: WebSocket, size: number): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  let got = 0;
  return guard(
    new Promise((resolve) => {
      ws.on('message', (data) => {
        chunks.push(data as Buffer);
        got += (data as Buffer).length;
        if (got >= size) resolve(chunks);
      });
    }),
    `${size} bytes`,
    20_000,
  );
}

/** The sender's bufferedAmount once it stopped changing (the path is full): what backpressure holds back. */
async function held(ws: WebSocket): Promise<number> {
  let last = -1;
  let same = 0;
  await until(
    () => {
      const now = ws.bufferedAmount;
      same = now === last ? same + 1 : 0;
      last = now;
      return same >= 10;
    },
    'the sender to stall',
    10_000,
  );
  return last;
}

test('a WebSocket echoes text and binary; the handshake passes through with forwarding headers', async () => {
  const { ws, origin, headers } = await openWs(wsUrl(gw.url, '/ws/echo?x=1'), { headers: { 'x-forwarded-for': '6.6.6.6', 'x-request-id': 'echo-1' } });
  assert.equal(headers['x-request-id'], 'echo-1');
  ws.send('hello');
  const text = await nextMessage(ws);
  assert.equal(text.data.toString(), 'hello');
  assert.equal(text.binary, false);
  const payload = randomBytes(200_000);
  ws.send(payload);
  const binary = await nextMessage(ws);
  assert.equal(binary.binary, true);
  assert.ok(binary.data.equals(payload));
  const req = originNamed(origin).upgrades.at(-1)!;
  assert.equal(req.url, '/ws/echo?x=1');
  assert.equal(req.headers['x-forwarded-for'], '127.0.0.1', 'an untrusted client X-Forwarded-For is replaced');
  assert.equal(req.headers.upgrade, 'websocket');
  assert.equal(req.headers.connection, 'Upgrade');
  assert.equal(req.headers['sec-websocket-version'], '13');
  assert.ok(req.headers['sec-websocket-key']);
  await closeAll([ws]);
});

test('upgrades are balanced round robin across two origins', async () => {
  const opened = [];
  for (let i = 0; i < 6; i++) opened.push(await openWs(wsUrl(gw.url, '/ws')));
  const seen = opened.map((o) => o.origin);
  for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], `rotation broken: ${seen.join(',')}`);
  assert.deepEqual(countByOrigin(seen, ['a', 'b']), { a: 3, b: 3 });
  await closeAll(opened.map((o) => o.ws));
});

test('a 403 to the upgrade reaches the client as a 403, then the connection closes', async () => {
  const r = await refusedWs(wsUrl(gw.url, '/deny'));
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-why'], 'not-you');
  assert.equal(r.headers.connection, 'close');
  assert.equal(r.body, 'Forbidden');
});

test('a non-101 answer is relayed with its body, no tunnel starts, and bytes after the request are not parsed', async () => {
  const before = plain.seen.length;
  const r = await rawRequest(
    gw.port,
    'GET /plain/first HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade, X-Secret\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Secret: s\r\n\r\nGET /plain/second HTTP/1.1\r\nHost: gw.test\r\n\r\n',
  );
  assert.equal(r.status, 200);
  assert.ok(r.closedByServer, 'the gateway closes after a non-101 answer');
  assert.equal(r.text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, 'one response only');
  assert.match(r.text, /\r\nconnection: close\r\n/i);
  // The origin's body was chunked: it is relayed chunked, up to and including the last chunk.
  assert.match(r.text, /\r\ntransfer-encoding: chunked\r\n/i);
  assert.ok(r.text.endsWith('\r\n0\r\n\r\n'));
  const echo = JSON.parse(dechunk(r.text.slice(r.text.indexOf('\r\n\r\n') + 4))) as { url: string; headers: Record<string, string> };
  assert.equal(echo.url, '/plain/first');
  assert.equal(echo.headers.upgrade, 'websocket');
  assert.equal(echo.headers['x-secret'], undefined, 'a header named in Connection is dropped');
  assert.equal(echo.headers['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
  assert.equal(plain.seen.length, before + 1, 'the bytes after the upgrade request never reached the origin');
});

test('an upgrade with no route is a 404 error and closes', async () => {
  const r = await refusedWs(wsUrl(gw.url, '/nowhere'));
  assert.equal(r.status, 404);
  assert.equal(r.headers.connection, 'close');
  assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'ROUTE_NOT_FOUND');
});

test('an endpoint that answers garbage, or switches to another protocol, is a 502', async () => {
  for (const path of ['/garbage', '/wrong']) {
    const r = await refusedWs(wsUrl(gw.url, path));
    assert.equal(r.status, 502, path);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'UPSTREAM_BAD_RESPONSE', path);
  }
});

test('another Upgrade (h2c) is a plain request: answered, its Upgrade dropped', async () => {
  const body = await guard(
    new Promise<string>((resolve, reject) => {
      const req = http.get(
        `${gw.url}/plain/h2c`,
        { headers: { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA' } },
        (res) => {
          assert.equal(res.statusCode, 200);
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve(text));
        },
      );
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('error', reject);
    }),
    'the h2c request',
  );
  const echo = JSON.parse(body) as { headers: Record<string, string> };
  assert.equal(echo.headers.upgrade, undefined);
  assert.equal(echo.headers['http2-settings'], undefined);
});

test('close frames keep their codes and reasons both ways', async () => {
  const first = await openWs(wsUrl(gw.url, '/solo'), { headers: { 'x-request-id': 'close-client' } });
  const atOrigin = await a.socketFor('close-client');
  const originSaw = closedWs(atOrigin);
  first.ws.close(4001, 'bye');
  assert.deepEqual(await originSaw, { code: 4001, reason: 'bye' });

  const second = await openWs(wsUrl(gw.url, '/solo'), { headers: { 'x-request-id': 'close-origin' } });
  const clientSaw = closedWs(second.ws);
  (await a.socketFor('close-origin')).close(4002, 'server-bye');
  assert.deepEqual(await clientSaw, { code: 4002, reason: 'server-bye' });
});

test('backpressure both ways: a paused receiver holds the sender back, and 32 MiB arrive intact', { timeout: 60_000 }, async () => {
  const size = 32 * 1024 * 1024;
  const chunk = 1024 * 1024;
  const up = randomBytes(size);
  const { ws } = await openWs(wsUrl(gw.url, '/quiet'), { headers: { 'x-request-id': 'bp-1' } });
  const origin = await quiet.socketFor('bp-1');

  origin.pause();
  const atOrigin = receive(origin, size);
  for (let i = 0; i < size; i += chunk) ws.send(up.subarray(i, i + chunk));
  const heldUp = await held(ws);
  assert.ok(heldUp > 0, 'the client is held back while the origin does not read');
  origin.resume();
  assert.equal(sha256(await atOrigin), sha256([up]));

  const down = randomBytes(size);
  ws.pause();
  const atClient = receive(ws, size);
  for (let i = 0; i < size; i += chunk) origin.send(down.subarray(i, i + chunk));
  const heldDown = await held(origin);
  assert.ok(heldDown > 0, 'the origin is held back while the client does not read');
  ws.resume();
  assert.equal(sha256(await atClient), sha256([down]));
  await closeAll([ws]);
});

test('200 concurrent WebSockets all echo, each counted in flight at its endpoint', { timeout: 30_000 }, async () => {
  const n = 200;
  const opened = await Promise.all(Array.from({ length: n }, (_, i) => openWs(wsUrl(gw.url, '/ws'), { headers: { 'x-request-id': `many-${i}` } })));
  const replies = await Promise.all(
    opened.map(({ ws }, i) => {
      const reply = nextMessage(ws, 10_000);
      ws.send(`message ${i}`);
      return reply;
    }),
  );
  replies.forEach((m, i) => {
    assert.equal(m.data.toString(), `message ${i}`);
  });
  assert.deepEqual(
    countByOrigin(
      opened.map((o) => o.origin),
      ['a', 'b'],
    ),
    { a: n / 2, b: n / 2 },
  );
  const inFlight = (): number => gw.gw.endpoints('pair')!.reduce((sum, e) => sum + e.inFlight, 0);
  assert.equal(inFlight(), n);
  await closeAll(opened.map((o) => o.ws));
  await until(() => inFlight() === 0, 'every tunnel to be released');
});

test('an idle tunnel is closed after tunnelIdle, but not while traffic flows', async () => {
  const { ws } = await openWs(wsUrl(gw.url, '/idle'));
  const closed = closedWs(ws, 5000);
  let closedEarly = false;
  void closed.then(() => (closedEarly = true));
  // Traffic every 100 ms for 600 ms, twice the idle timeout: the tunnel stays open.
  for (let i = 0; i < 6; i++) {
    await delay(100);
    ws.send(`ping ${i}`);
    assert.equal((await nextMessage(ws)).data.toString(), `ping ${i}`);
  }
  assert.equal(closedEarly, false);
  const lastActivity = performance.now();
  const { code } = await closed;
  assert.equal(code, 1006, 'the tunnel is cut, no close frame');
  assert.ok(performance.now() - lastActivity >= 250, 'not before the idle timeout');
});

test('least-connections counts open tunnels: new requests go to the endpoint with fewer', async () => {
  let cookie: string | undefined;
  for (let i = 0; i < 20 && cookie === undefined; i++) {
    const res = await request(`${gw.url}/lc`);
    await res.body.dump();
    if (res.headers['x-origin'] === 'a') cookie = String(res.headers['set-cookie']).split(';')[0];
  }
  assert.ok(cookie, 'a sticky cookie for origin a');
  const pinned = await Promise.all([1, 2, 3].map(() => openWs(wsUrl(gw.url, '/lc'), { headers: { cookie } })));
  assert.deepEqual(
    pinned.map((p) => p.origin),
    ['a', 'a', 'a'],
  );
  const inFlight = (): Record<string, number> => Object.fromEntries(gw.gw.endpoints('lc')!.map((e) => [e.url, e.inFlight]));
  assert.deepEqual(inFlight(), { [a.url]: 3, [b.url]: 0 });
  for (let i = 0; i < 5; i++) {
    const res = await request(`${gw.url}/lc`);
    await res.body.dump();
    assert.equal(res.headers['x-origin'], 'b', `request ${i} went to the endpoint with three tunnels`);
  }
  assert.equal(pinned[0].headers['set-cookie'], undefined, 'the cookie named the endpoint that answered');
  const fresh = await openWs(wsUrl(gw.url, '/lc'));
  assert.equal(fresh.origin, 'b');
  assert.match(String(fresh.headers['set-cookie']), /^sb=[\w-]+; Path=\//, 'a 101 pins the client like any response');
  await closeAll([...pinned.map((p) => p.ws), fresh.ws]);
  await until(() => inFlight()[a.url] === 0 && inFlight()[b.url] === 0, 'the tunnels to be released');
});

test('a refused endpoint is retried on another; with none left the client gets a 502', async () => {
  const opened = [];
  for (let i = 0; i < 4; i++) opened.push(await openWs(wsUrl(gw.url, '/retry')));
  assert.deepEqual(
    opened.map((o) => o.origin),
    ['a', 'a', 'a', 'a'],
  );
  await closeAll(opened.map((o) => o.ws));
  const r = await refusedWs(wsUrl(gw.url, '/dead'));
  assert.equal(r.status, 502);
  assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'UPSTREAM_CONNECT_REFUSED');
  await until(() => gw.gw.endpoints('halfDead')!.every((e) => e.inFlight === 0), 'failed tries to be released');
});

test('the access log line of a tunnel is written when it closes: 101, bytes both ways, endpoint', async () => {
  const channel = diagnostics.channel('switchboard:request:end');
  let listener: ((m: unknown) => void) | undefined;
  const logged = new Promise<RequestContext>((resolve) => {
    listener = (m) => {
      if ((m as RequestContext).requestId === 'logged-1') resolve(m as RequestContext);
    };
    channel.subscribe(listener);
  });
  try {
    const { ws } = await openWs(wsUrl(gw.url, '/solo'), { headers: { 'x-request-id': 'logged-1' } });
    ws.send('x'.repeat(1000));
    await nextMessage(ws);
    await closeAll([ws]);
    const ctx = await guard(logged, 'the request end of the tunnel');
    assert.equal(ctx.status, 101);
    assert.equal(ctx.route, 'solo');
    assert.equal(ctx.endpoint?.origin, a.url);
    assert.ok(ctx.bytesIn >= 1000 && ctx.bytesOut >= 1000, `bytes in ${ctx.bytesIn}, out ${ctx.bytesOut}`);
  } finally {
    channel.unsubscribe(listener!);
  }
});

test('an open tunnel survives a reload', async () => {
  const { ws } = await openWs(wsUrl(gw.url, '/solo'));
  const reloaded = await gw.gw.reload(config({ extra: { match: { path: '/extra' }, upstream: 'solo' } }));
  assert.equal(reloaded.ok, true);
  ws.send('after reload');
  assert.equal((await nextMessage(ws)).data.toString(), 'after reload');
  const next = await openWs(wsUrl(gw.url, '/extra'));
  assert.equal(next.origin, 'a');
  await closeAll([ws, next.ws]);
});

test('stop lets an open tunnel run until the drain timeout, then cuts it', async () => {
  const g = await startTestGateway(simpleConfig([a.url]));
  const { ws } = await openWs(wsUrl(g.url, '/'));
  const closed = closedWs(ws, 5000);
  const stopAt = performance.now();
  const stopped = g.gw.stop({ drainTimeout: 500 });
  ws.send('while draining');
  assert.equal((await nextMessage(ws)).data.toString(), 'while draining');
  const { code } = await closed;
  assert.equal(code, 1006);
  assert.ok(performance.now() - stopAt >= 450, 'cut at the drain timeout, not before');
  await guard(stopped, 'the stop');
});

test('wss: through an https listener to an https endpoint verified against its CA', async () => {
  const pki = await createPki();
  const [front, back] = await Promise.all([pki.issue({ names: ['localhost', '127.0.0.1'] }), pki.issue({ names: ['127.0.0.1'] })]);
  const secure = await startWsOrigin('secure', { tls: { cert: back.cert, key: back.key } });
  const g = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'https', tls: { certificates: [{ cert: front.certFile, key: front.keyFile }] } } },
    routes: { all: { match: { path: '/' }, upstream: 'secure' } },
    upstreams: { secure: { endpoints: [{ url: secure.url }], tls: { ca: pki.ca.certFile } } },
  });
  try {
    const { ws, origin } = await openWs(`wss://127.0.0.1:${g.port}/tls`, { ca: pki.ca.cert });
    assert.equal(origin, 'secure');
    ws.send('over tls');
    assert.equal((await nextMessage(ws)).data.toString(), 'over tls');
    assert.equal(secure.upgrades.at(-1)?.headers['x-forwarded-proto'], 'https');
    await closeAll([ws]);
  } finally {
    await g.stop();
    await secure.close();
    await pki.cleanup();
  }
});

test('a listener that redirects to https answers an upgrade with the same 308', async () => {
  const g = await startTestGateway(simpleConfig([a.url], { listener: { httpsRedirect: { port: 8443 } } }));
  try {
    const r = await refusedWs(wsUrl(g.url, '/chat?room=1'), { headers: { host: 'chat.example:8080' } });
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, 'https://chat.example:8443/chat?room=1');
    assert.equal(
      a.upgrades.some((u) => u.url === '/chat?room=1'),
      false,
    );
  } finally {
    await g.stop();
  }
});
