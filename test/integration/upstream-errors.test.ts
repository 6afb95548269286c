/**
 * Upstream faults (shared EDGE-CASES 28-31): refused, reset, invalid responses, the three upstream
 * timeouts and route overrides of them, and the connect timeout. Each error is Switchboard's own
 * JSON body with a stable code, and every response carries `x-request-id`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closedPort, startOrigin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { simpleConfig, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { rawRequest } from './helpers/raw.ts';

const GUARD_MS = 10_000; // a hang guard: no test waits for it (the answers come in ms), a loaded CI machine may take seconds

/** Asserts `res` is Switchboard's JSON error with this status and code, with a matching request id. */
async function assertJsonError(res: Response, status: number, code: string): Promise<void> {
  assert.equal(res.status, status);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const rid = res.headers.get('x-request-id');
  assert.ok(rid, 'the error carries x-request-id');
  const body = (await res.json()) as { error: { code: string; status: number; message: string; requestId: string } };
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'requestId', 'status']);
  assert.equal(body.error.code, code);
  assert.equal(body.error.status, status);
  assert.equal(body.error.requestId, rid);
}

/** Runs `fn` with a gateway over `config`, stopping it (and closing `closers`) afterwards. */
async function withGateway(config: object, fn: (gw: TestGateway) => Promise<void>, ...closers: Array<{ close(): Promise<void> | void }>): Promise<void> {
  const gw = await startTestGateway(config);
  try {
    await fn(gw);
  } finally {
    await gw.stop();
    for (const c of closers) await c.close();
  }
}

/** A raw TCP origin that answers every request with `bytes` and leaves the connection open. */
async function rawOrigin(bytes: string | Buffer): Promise<{ url: string; closedByPeer: Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let onPeerClose!: () => void;
  const closedByPeer = new Promise<void>((resolve) => (onPeerClose = resolve));
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('data', () => socket.write(bytes));
    socket.on('error', () => undefined);
    socket.on('end', onPeerClose);
    socket.on('close', () => {
      sockets.delete(socket);
      onPeerClose();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    closedByPeer,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test('502 UPSTREAM_CONNECT_REFUSED when nothing listens', async () => {
  const port = await closedPort();
  await withGateway(simpleConfig([`http://127.0.0.1:${port}`]), async (gw) => {
    await assertJsonError(await fetch(`${gw.url}/x`), 502, 'UPSTREAM_CONNECT_REFUSED');
    // A client-chosen request id is the one in the body and the header.
    const res = await fetch(`${gw.url}/x`, { headers: { 'x-request-id': 'rid-refused' } });
    assert.equal(res.headers.get('x-request-id'), 'rid-refused');
    await assertJsonError(res, 502, 'UPSTREAM_CONNECT_REFUSED');
  });
});

test('502 UPSTREAM_RESET when the origin resets the connection on request', async () => {
  const origin = await startOrigin('reset', (req) => req.socket.destroy());
  await withGateway(
    simpleConfig([origin.url]),
    async (gw) => {
      await assertJsonError(await fetch(`${gw.url}/x`), 502, 'UPSTREAM_RESET');
      await assertJsonError(await fetch(`${gw.url}/x`, { method: 'POST', body: 'payload' }), 502, 'UPSTREAM_RESET');
      assert.equal(origin.seen.length, 2, 'each request reached the origin once (no retry of a reset)');
    },
    origin,
  );
});

test('502 UPSTREAM_BAD_RESPONSE on an invalid response, and that connection is not reused', async (t) => {
  const garbage: Record<string, string | Buffer> = {
    'two Content-Length headers': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'Transfer-Encoding with Content-Length': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'NUL bytes': Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 10, 13, 10]),
    'NUL in a header value': 'HTTP/1.1 200 OK\r\nX-Bad: a\0b\r\nContent-Length: 2\r\n\r\nok',
    'bad status line': 'HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok',
    'not HTTP at all': 'SSH-2.0-OpenSSH_9.6\r\n',
    'bytes beyond Content-Length': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA',
  };
  for (const [name, bytes] of Object.entries(garbage)) {
    await t.test(name, async () => {
      const origin = await rawOrigin(bytes);
      await withGateway(
        simpleConfig([origin.url]),
        async (gw) => {
          await assertJsonError(await fetch(`${gw.url}/x`), 502, 'UPSTREAM_BAD_RESPONSE');
          // The raw origin never closes: the gateway must drop the connection it cannot trust.
          await guard(origin.closedByPeer, 'the gateway closes the upstream connection');
        },
        origin,
      );
    });
  }
});

test('504 UPSTREAM_TIMEOUT when response headers do not arrive in time', async () => {
  const origin = await startOrigin('silent', () => undefined);
  const config = simpleConfig([origin.url], { upstream: { timeouts: { responseHeaders: '200ms' } } });
  await withGateway(
    config,
    async (gw) => {
      const started = performance.now();
      // The configured 200 ms, not the 60 s default: the guard fails long before the default would
      // answer, and only it (undici's header timer is coarse, ~0.5 s, and a loaded machine slower).
      await assertJsonError(await guard(fetch(`${gw.url}/x`), 'the 504 (the 60 s default responseHeaders?)', 10_000), 504, 'UPSTREAM_TIMEOUT');
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 180, `not before the timeout: answered after ${elapsed.toFixed(0)}ms`);
      assert.equal(origin.seen.length, 1);
    },
    origin,
  );
});

test('a route overriding responseHeaders changes the outcome, both ways', async () => {
  // The origin answers after 1.3s; the upstreams allow 100ms and 2.5s, the routes override each.
  // (undici runs header and body timeouts on a ~0.5s-resolution clock, so a 100ms limit fires
  // somewhere between 0.5s and 1s: the origin's delay leaves room for that.)
  const origin = await startOrigin('slow', (_req, res) => {
    const timer = setTimeout(() => res.end('late'), 1300);
    res.on('close', () => clearTimeout(timer));
  });
  const endpoints = [{ url: origin.url }];
  const config = {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: {
      short: { match: { path: '/short' }, upstream: 'short' },
      shortLonger: { match: { path: '/short-longer' }, upstream: 'short', timeouts: { responseHeaders: '2500ms' } },
      long: { match: { path: '/long' }, upstream: 'long' },
      longShorter: { match: { path: '/long-shorter' }, upstream: 'long', timeouts: { responseHeaders: '100ms' } },
    },
    upstreams: {
      short: { endpoints, timeouts: { responseHeaders: '100ms' } },
      long: { endpoints, timeouts: { responseHeaders: '2500ms' } },
    },
  };
  await withGateway(
    config,
    async (gw) => {
      const [short, shortLonger, long, longShorter] = await Promise.all(['/short', '/short-longer', '/long', '/long-shorter'].map((p) => fetch(gw.url + p)));
      await assertJsonError(short, 504, 'UPSTREAM_TIMEOUT');
      assert.equal(shortLonger.status, 200);
      assert.equal(await shortLonger.text(), 'late');
      assert.equal(long.status, 200);
      assert.equal(await long.text(), 'late');
      await assertJsonError(longShorter, 504, 'UPSTREAM_TIMEOUT');
    },
    origin,
  );
});

test('504 UPSTREAM_TIMEOUT when the whole request takes longer than timeouts.request', async () => {
  const origin = await startOrigin('silent', () => undefined);
  // responseHeaders far above the guard: only timeouts.request can answer before it fails.
  const config = simpleConfig([origin.url], { upstream: { timeouts: { responseHeaders: '60s', request: '200ms' } } });
  await withGateway(
    config,
    async (gw) => {
      const started = performance.now();
      await assertJsonError(await guard(fetch(`${gw.url}/x`), 'the 504 of timeouts.request', 10_000), 504, 'UPSTREAM_TIMEOUT');
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 180, `not before the timeout: answered after ${elapsed.toFixed(0)}ms`);
    },
    origin,
  );
});

test('timeouts.request after the headers went out aborts the response', async () => {
  // Headers at once, then a chunk every 50ms forever: only the whole-request limit can end it.
  const origin = await startOrigin('dribble', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('start\n');
    const timer = setInterval(() => res.write('tick\n'), 50);
    res.on('close', () => clearInterval(timer));
  });
  const config = simpleConfig([origin.url], { upstream: { timeouts: { bodyIdle: '1s', request: '300ms' } } });
  await withGateway(
    config,
    async (gw) => {
      const res = await fetch(`${gw.url}/x`);
      assert.equal(res.status, 200);
      assert.ok(res.headers.get('x-request-id'));
      await assert.rejects(guard(res.text(), 'the body read settles'), /terminated|aborted|socket/i);
    },
    origin,
  );
});

test('bodyIdle timeout mid-body: the client sees an aborted response, not a clean end', async () => {
  const origin = await startOrigin('stall', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part\n'); // then silence
  });
  const config = simpleConfig([origin.url], { upstream: { timeouts: { bodyIdle: '200ms' } } });
  await withGateway(
    config,
    async (gw) => {
      // Two clients at once: fetch, and a raw socket to look at the bytes on the wire.
      const [res, raw] = await Promise.all([fetch(`${gw.url}/x`), rawRequest(gw.port, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n', GUARD_MS)]);
      assert.equal(res.status, 200);
      await assert.rejects(guard(res.text(), 'the body read settles'), /terminated|aborted|socket/i);
      // On the wire: the chunked terminator never comes, and the gateway closes the connection.
      assert.equal(raw.status, 200);
      assert.ok(raw.closedByServer, 'the gateway closes the client connection');
      assert.match(raw.text, /first part/);
      assert.doesNotMatch(raw.text, /\r\n0\r\n\r\n$/, 'no chunked terminator');
    },
    origin,
  );
});

/**
 * A listener that never accepts: python binds 127.0.0.1:0 with a backlog of 0 and never calls
 * accept(). Once one connection sits in its accept queue, Linux drops further SYNs, so a connect
 * hangs until the client's timeout.
 */
async function blackholeListener(): Promise<{ port: number; fillers: net.Socket[]; close(): Promise<void> }> {
  const child: ChildProcess = spawn(
    'python3',
    ['-c', "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()"],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const [line] = (await guard(once(child.stdout!, 'data'), 'python prints its port')) as [Buffer];
  const port = Number(line.toString().trim());
  assert.ok(port > 0);
  const fillers: net.Socket[] = [];
  // The first connection completes (it fills the queue); the next ones hang, which is the point.
  const first = net.connect(port, '127.0.0.1');
  first.on('error', () => undefined);
  fillers.push(first);
  await guard(once(first, 'connect'), 'the first filler connects');
  for (let i = 0; i < 2; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    fillers.push(s);
  }
  return {
    port,
    fillers,
    close: async () => {
      for (const s of fillers) s.destroy();
      if (child.exitCode === null) {
        const exited = once(child, 'exit');
        child.stdin!.end();
        child.kill();
        await exited;
      }
    },
  };
}

test('504 UPSTREAM_CONNECT_TIMEOUT when the endpoint never completes the handshake', async () => {
  const hole = await blackholeListener();
  const config = simpleConfig([`http://127.0.0.1:${hole.port}`], { upstream: { timeouts: { connect: '200ms', responseHeaders: '1s' } } });
  await withGateway(
    config,
    async (gw) => {
      const started = performance.now();
      // Had the handshake completed, the request would sit unanswered: UPSTREAM_TIMEOUT, not this.
      // The configured 200 ms, not the 5 s default: the guard (20 × 200 ms) fails before the default.
      await assertJsonError(await guard(fetch(`${gw.url}/x`), 'the 504 (the 5 s default connect timeout?)', 4000), 504, 'UPSTREAM_CONNECT_TIMEOUT');
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 180, `not before the timeout: answered after ${elapsed.toFixed(0)}ms`);
    },
    hole,
  );
});

// 503 NO_ENDPOINT: no config can mark every endpoint down before health checks exist (issue 3);
// src/upstream/proxy.test.ts covers it with an endpoint marked down by hand.
