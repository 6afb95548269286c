/**
 * Switchboard's own HTTP/1.1 server side (src/http/h1-server.ts) through a real listener, with raw
 * sockets: keep-alive and its timeout, the connection fields of every response, max requests per
 * connection, expectations, HTTP/1.0 framing, chunked request bodies, and the hand-over of a
 * WebSocket upgrade (out of HTTP/1.1, into a tunnel) on a connection that already served a request.
 * (Malformed requests: strict-http.test.ts; pipelining: pipelining.test.ts; timeouts of slow clients:
 * slow-clients.test.ts; the parser against llhttp: src/http/h1-server-differential.test.ts.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { connect, rawRequest, readUntil, untilClosed } from './helpers/raw.ts';
import { startWsOrigin, type WsOrigin } from './helpers/websocket.ts';

const GUARD_MS = 10_000; // a hang guard: no test waits for it

function headerOf(head: string, name: string): string | undefined {
  return new RegExp(`\\r\\n${name}: ([^\\r]*)(?:\\r\\n|$)`, 'i').exec(head)?.[1];
}

const statuses = (text: string): number[] => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

describe('own HTTP/1.1 server', () => {
  let echo: Origin;
  let fixed: Origin;
  let ws: WsOrigin;
  let gate: Origin;
  let gw: TestGateway;
  /** Releases the held request of the `gate` origin. */
  let release: () => void = () => undefined;
  let held: Promise<void>;

  before(async () => {
    echo = await startOrigin('echo');
    // A response with a Content-Length (the echo origin answers chunked).
    fixed = await startOrigin('fixed', (req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-length': '2' });
        res.end('ok');
      });
    });
    ws = await startWsOrigin('ws');
    // Holds `/gate/hold` until released; answers everything else at once.
    let onHeld: () => void = () => undefined;
    held = new Promise<void>((resolve) => (onHeld = resolve));
    gate = await startOrigin('gate', (req, res) => {
      req.resume();
      const answer = (): void => {
        res.writeHead(200, { 'content-length': '2' });
        res.end('ok');
      };
      if (req.url !== '/gate/hold') return answer();
      release = answer;
      onHeld();
    });
    gw = await startTestGateway({
      listeners: {
        web: { address: '127.0.0.1:0', protocol: 'http', keepAliveTimeout: '1s', maxRequestsPerConnection: 3 },
        open: { address: '127.0.0.1:0', protocol: 'http' },
      },
      routes: {
        gate: { match: { path: '/gate/' }, upstream: 'gate' },
        ws: { match: { path: '/ws' }, upstream: 'ws' },
        fixed: { match: { path: '/fixed' }, upstream: 'fixed' },
        api: { match: { path: '/api/' }, upstream: 'echo' },
      },
      upstreams: {
        gate: { endpoints: [{ url: gate.url }] },
        echo: { endpoints: [{ url: echo.url }] },
        fixed: { endpoints: [{ url: fixed.url }] },
        ws: { endpoints: [{ url: ws.url }] },
      },
    });
  });
  after(async () => {
    await gw.stop();
    await echo.close();
    await fixed.close();
    await ws.close();
    await gate.close();
  });

  test('more than 64 KiB pipelined behind a held response (past the point where the server stops reading): nothing behind it is forwarded until it is answered, then every request is answered in order', async () => {
    const seen = gate.seen.length;
    const n = 2000;
    const paths = Array.from({ length: n }, (_, i) => `/gate/${i}`);
    const bytes = `GET /gate/hold HTTP/1.1\r\nHost: x\r\n\r\n${paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join('')}GET /gate/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
    assert.ok(bytes.length > 64 * 1024);
    const socket = await connect(gw.gw.address('open').port);
    try {
      socket.write(bytes);
      await held;
      // Nothing behind the held request was forwarded meanwhile.
      assert.deepEqual(
        gate.seen.slice(seen).map((q) => q.url),
        ['/gate/hold'],
      );
      release();
      const text = await untilClosed(socket);
      assert.equal(statuses(text).length, n + 2);
      assert.ok(
        statuses(text).every((st) => st === 200),
        'every answer is a 200',
      );
    } finally {
      socket.destroy();
    }
    assert.deepEqual(
      gate.seen.slice(seen).map((q) => q.url),
      ['/gate/hold', ...paths, '/gate/last'],
    );
  });

  test('keep-alive: each response says Connection: keep-alive, Keep-Alive with the timeout and the limit, and a Date; the idle connection is closed at keepAliveTimeout with nothing written', async () => {
    const socket = await connect(gw.port);
    try {
      socket.write('GET /fixed/one HTTP/1.1\r\nHost: x\r\n\r\n');
      const one = await readUntil(socket, /\r\n\r\nok$/);
      assert.match(one, /^HTTP\/1\.1 200 OK\r\n/);
      assert.equal(headerOf(one, 'connection'), 'keep-alive');
      assert.equal(headerOf(one, 'keep-alive'), 'timeout=1, max=3');
      assert.ok(!Number.isNaN(Date.parse(headerOf(one, 'date') ?? '')), one);
      socket.write('GET /fixed/two HTTP/1.1\r\nHost: x\r\n\r\n');
      const two = await readUntil(socket, /\r\n\r\nok$/);
      assert.match(two, /^HTTP\/1\.1 200 OK\r\n/);
      // Nothing more is sent: the gateway closes the idle connection by itself.
      assert.equal(await untilClosed(socket), '');
    } finally {
      socket.destroy();
    }
  });

  test('maxRequestsPerConnection: the last allowed response says Connection: close, and a request pipelined after it is never forwarded', async () => {
    const seen = fixed.seen.length;
    const r = await rawRequest(gw.port, ['a', 'b', 'c', 'd'].map((p) => `GET /fixed/${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''), GUARD_MS);
    assert.deepEqual(statuses(r.text), [200, 200, 200], r.text);
    const heads = r.text.split(/\r\n\r\nok/);
    assert.equal(headerOf(heads[1], 'connection'), 'keep-alive');
    assert.equal(headerOf(heads[2], 'connection'), 'close');
    assert.ok(r.closedByServer);
    assert.deepEqual(
      fixed.seen.slice(seen).map((q) => q.url),
      ['/fixed/a', '/fixed/b', '/fixed/c'],
    );
  });

  test('an expectation other than 100-continue: 417, closed, not forwarded', async () => {
    const seen = echo.seen.length;
    const r = await rawRequest(gw.port, 'PUT /api/e HTTP/1.1\r\nHost: x\r\nExpect: fancy\r\nContent-Length: 2\r\n\r\nhi', GUARD_MS);
    assert.equal(r.status, 417, r.text);
    assert.ok(r.closedByServer);
    assert.equal(echo.seen.length, seen);
  });

  test('HTTP/1.0: a response of unknown length ends with the connection; with Connection: keep-alive and a known length the connection stays', async () => {
    const r = await rawRequest(gw.port, 'GET /api/old HTTP/1.0\r\n\r\n', GUARD_MS);
    assert.equal(r.status, 200, r.text);
    const [head, body] = r.text.split('\r\n\r\n');
    assert.equal(headerOf(head, 'transfer-encoding'), undefined, 'no chunked framing for an HTTP/1.0 client');
    assert.equal(headerOf(head, 'connection'), 'close');
    assert.equal((JSON.parse(body) as { url: string }).url, '/api/old');
    assert.ok(r.closedByServer);

    const socket = await connect(gw.port);
    try {
      socket.write('GET /fixed/old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
      const one = await readUntil(socket, /\r\n\r\nok$/);
      assert.equal(headerOf(one, 'connection'), 'keep-alive');
      socket.write('GET /fixed/old2 HTTP/1.0\r\n\r\n');
      const two = await untilClosed(socket);
      assert.match(two, /^HTTP\/1\.1 200 /);
      assert.equal(headerOf(two, 'connection'), 'close');
    } finally {
      socket.destroy();
    }
  });

  test('a chunked request body with extensions and trailers arrives whole; a bad chunk size is a 400 that closes the connection', async () => {
    const good = await rawRequest(
      gw.port,
      'POST /api/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n6;name=value\r\nhello \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n',
      GUARD_MS,
    );
    assert.equal(good.status, 200, good.text);
    assert.match(good.text, /"body":"hello world"/);

    const bad = await rawRequest(gw.port, 'POST /api/up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n', GUARD_MS);
    // The head was fine, so the request started; the body's framing fails before any response could.
    assert.deepEqual(statuses(bad.text), [400], bad.text);
    assert.match(bad.text, /"code":"BAD_REQUEST"/);
    assert.ok(bad.closedByServer);
  });

  test('a WebSocket upgrade on a connection that already served a request leaves HTTP/1.1 and tunnels', async () => {
    const socket = await connect(gw.port);
    try {
      socket.write('GET /ws/plain HTTP/1.1\r\nHost: x\r\n\r\n');
      const plain = await readUntil(socket, /\r\n\r\nws$|\r\n0\r\n\r\n$/);
      assert.match(plain, /^HTTP\/1\.1 200 /);
      const key = 'dGhlIHNhbXBsZSBub25jZQ==';
      socket.write(`GET /ws/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      const head = await readUntil(socket, /\r\n\r\n/);
      assert.match(head, /^HTTP\/1\.1 101 /);
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      assert.equal(headerOf(head, 'sec-websocket-accept'), accept);
      // A masked text frame "hi"; the origin echoes it unmasked.
      const mask = [1, 2, 3, 4];
      const payload = Buffer.from('hi').map((b, i) => b ^ mask[i % 4]);
      const echoed = new Promise<Buffer>((resolve) => socket.once('data', resolve));
      socket.write(Buffer.concat([Buffer.from([0x81, 0x82, ...mask]), payload]));
      assert.deepEqual([...(await echoed)], [0x81, 0x02, 0x68, 0x69]);
      assert.equal(ws.upgrades.length, 1);
    } finally {
      socket.destroy();
    }
  });
});
