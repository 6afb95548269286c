/**
 * Edge checks on the client side of an HTTP/1.1 listener (shared EDGE-CASES 1-13, 17, 18, 25):
 * every malformed or hostile request shape is sent as raw bytes, and each test asserts the status,
 * that the gateway closed the connection, and (where the request could have been forwarded) that
 * the origin never saw it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { connect, rawRequest, readUntil, untilClosed, type RawResult } from './helpers/raw.ts';

const GUARD_MS = 10_000; // a hang guard: no test waits for it (the answers come in ms), a loaded CI machine may take seconds

/** Status, lower-cased headers and (de-chunked) body of the first response in `text`. */
function parseResponse(text: string): { status: number; headers: Record<string, string>; body: string; rest: string } {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end !== -1, `no complete response head in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const c = line.indexOf(':');
    headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
  }
  let rest = text.slice(end + 4);
  let body = '';
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    body = rest.slice(0, n);
    rest = rest.slice(n);
  } else if (headers['transfer-encoding'] === 'chunked') {
    for (;;) {
      const eol = rest.indexOf('\r\n');
      const size = parseInt(rest.slice(0, eol), 16);
      if (size === 0) {
        rest = rest.slice(rest.indexOf('\r\n\r\n', eol - 2) + 4);
        break;
      }
      body += rest.slice(eol + 2, eol + 2 + size);
      rest = rest.slice(eol + 2 + size + 2);
    }
  } else {
    body = rest;
    rest = '';
  }
  return { status, headers, body, rest };
}

/** Asserts a JSON error answer: status, code, requestId matching `x-request-id` when present. */
function assertError(r: RawResult, status: number, code?: string): void {
  assert.equal(r.status, status, r.text.slice(0, 300));
  assert.ok(r.closedByServer, `the gateway should close the connection after ${status}`);
  const { headers, body } = parseResponse(r.text);
  assert.match(headers['content-type'] ?? '', /application\/json/);
  const err = (JSON.parse(body) as { error: { code: string; status: number; requestId?: string } }).error;
  assert.equal(err.status, status);
  if (code !== undefined) assert.equal(err.code, code);
  if (headers['x-request-id'] !== undefined) assert.equal(err.requestId, headers['x-request-id']);
  // Exactly one response: nothing was parsed and answered after it.
  assert.equal(r.text.match(/HTTP\/1\.1 \d{3}/g)?.length, 1, 'exactly one response');
}

describe('strict HTTP/1.1 edge', () => {
  let app: Origin;
  let admin: Origin;
  let gw: TestGateway;
  let rejectPort: number;
  let allowPort: number;
  /** A listener whose header timeout is far beyond the guard: an answer within it was not a timeout. */
  let patientPort: number;
  /** A listener with h2c on: the first bytes of a connection are read in JavaScript before node:http gets them. */
  let h2cPort: number;

  before(async () => {
    app = await startOrigin('app');
    admin = await startOrigin('admin');
    gw = await startTestGateway({
      listeners: {
        web: { address: '127.0.0.1:0', protocol: 'http', headerTimeout: '300ms', maxHeaderSize: 2048 },
        rejecting: { address: '127.0.0.1:0', protocol: 'http', headersWithUnderscores: 'reject' },
        allowing: { address: '127.0.0.1:0', protocol: 'http', headersWithUnderscores: 'allow' },
        patient: { address: '127.0.0.1:0', protocol: 'http', headerTimeout: '20s', requestTimeout: '20s' },
        h2c: { address: '127.0.0.1:0', protocol: 'http', h2c: true, headerTimeout: '20s', requestTimeout: '20s' },
      },
      routes: {
        app: { match: { path: '/app' }, upstream: 'app' },
        admin: { match: { path: '/admin' }, upstream: 'admin' },
        upload: { match: { path: '/upload' }, upstream: 'app', maxBodySize: 100 },
      },
      upstreams: {
        app: { endpoints: [{ url: app.url }] },
        admin: { endpoints: [{ url: admin.url }] },
      },
    });
    rejectPort = gw.gw.address('rejecting').port;
    allowPort = gw.gw.address('allowing').port;
    patientPort = gw.gw.address('patient').port;
    h2cPort = gw.gw.address('h2c').port;
  });

  after(async () => {
    await gw.stop();
    await app.close();
    await admin.close();
  });

  /**
   * Asserts the origins saw nothing since `mark` but a sentinel sent afterwards (the sentinel's
   * round trip is the barrier: a request forwarded earlier would have arrived before it).
   */
  async function assertOriginsUntouched(mark: { app: number; admin: number }): Promise<void> {
    const res = await fetch(`${gw.url}/app/__sentinel`);
    await res.arrayBuffer();
    assert.equal(res.status, 200);
    assert.deepEqual(
      app.seen.slice(mark.app).map((r) => r.url),
      ['/app/__sentinel'],
    );
    assert.deepEqual(
      admin.seen.slice(mark.admin).map((r) => r.url),
      [],
    );
  }

  function mark(): { app: number; admin: number } {
    return { app: app.seen.length, admin: admin.seen.length };
  }

  /** Sends `bytes`, expects `status` (and `code`) with a close, and nothing reaching an origin. */
  async function rejects(bytes: string, status: number, code?: string): Promise<RawResult> {
    return rejectsOn(gw.port, bytes, status, code);
  }

  async function rejectsOn(port: number, bytes: string, status: number, code?: string): Promise<RawResult> {
    const m = mark();
    const r = await rawRequest(port, bytes, GUARD_MS);
    assertError(r, status, code);
    await assertOriginsUntouched(m);
    return r;
  }

  test('two Host headers → 400 DUPLICATE_HOST', async () => {
    await rejects('GET /app/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n', 400, 'DUPLICATE_HOST');
  });

  test('Transfer-Encoding: ,chunked → 400', async () => {
    await rejects('POST /app/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n', 400, 'INVALID_TRANSFER_ENCODING');
  });

  test('Transfer-Encoding: chunked in HTTP/1.0 → 400', async () => {
    await rejects('POST /app/x HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400, 'INVALID_TRANSFER_ENCODING');
  });

  test('obfuscated Transfer-Encoding (chunked, identity / xchunked) → 400 or 501', async () => {
    for (const te of ['chunked, identity', 'xchunked', 'identity', 'gzip, chunked']) {
      const m = mark();
      const r = await rawRequest(gw.port, `POST /app/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`, GUARD_MS);
      assert.ok(r.status === 400 || r.status === 501, `TE ${te}: ${r.status}`);
      assertError(r, r.status);
      await assertOriginsUntouched(m);
    }
  });

  test('a request with a rejected Transfer-Encoding gets exactly one answer, and what follows is never parsed', async () => {
    // llhttp emits the request and then fails on it: the gateway's 400 must be the only response.
    for (const te of ['xchunked', 'identity', 'gzip']) {
      const m = mark();
      const r = await rawRequest(gw.port, `POST /app/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\nGET /app/smuggled HTTP/1.1\r\nHost: x\r\n\r\n`, GUARD_MS);
      assertError(r, 400);
      await assertOriginsUntouched(m);
    }
  });

  test('bad chunk framing → 400 and close', async () => {
    for (const body of ['zz\r\nhello\r\n0\r\n\r\n', '5\r\nhelloXX0\r\n\r\n', '5 \r\nhello\r\n0\r\n\r\n', 'fffffffffffffffffff\r\n', '5\nhello\r\n0\r\n\r\n']) {
      const m = mark();
      const r = await rawRequest(gw.port, `POST /app/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`, GUARD_MS);
      assertError(r, 400);
      // The request may have been dispatched before the bad chunk was parsed; it must not complete.
      assert.ok(
        app.seen.slice(m.app).every((q) => !q.complete),
        `${JSON.stringify(body)} never reaches the origin whole`,
      );
    }
  });

  test('Transfer-Encoding and Content-Length together → 400', async () => {
    await rejects('POST /app/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n', 400);
  });

  test('two Content-Length headers, a list, or a signed value → 400', async () => {
    await rejects('POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 400);
    await rejects('POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello', 400);
    await rejects('POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello', 400);
    await rejects('POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nhello', 400);
  });

  test('Content-Length beyond 2^53 − 1 → 400 INVALID_CONTENT_LENGTH and close, never forwarded rounded', async () => {
    // llhttp takes any value up to 2^64 − 1; Number() rounds everything past 2^53 − 1.
    for (const cl of ['9007199254740992', '9007199254740993', '18446744073709551615']) {
      await rejects(`POST /app/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${cl}\r\n\r\nhello`, 400, 'INVALID_CONTENT_LENGTH');
      // The route's maxBodySize comparison never sees such a value either.
      await rejects(`POST /upload/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${cl}\r\n\r\nhello`, 400, 'INVALID_CONTENT_LENGTH');
    }
    // The largest value Number() holds exactly is compared exactly: over the limit, 413.
    await rejects('POST /upload/x HTTP/1.1\r\nHost: x\r\nContent-Length: 9007199254740991\r\n\r\nhello', 413, 'BODY_TOO_LARGE');
    // Leading zeros are the same number (llhttp accepts them): 101 > 100.
    await rejects(`POST /upload/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${'0'.repeat(30)}101\r\n\r\nhello`, 413, 'BODY_TOO_LARGE');
  });

  test('target with # → 400 INVALID_TARGET', async () => {
    await rejects('GET /app/x#frag HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_TARGET');
  });

  test('HTTP versions other than 1.0 and 1.1 → 400', async () => {
    await rejects('GET /app/x HTTP/1.2\r\nHost: x\r\n\r\n', 400);
    await rejects('GET /app/x HTTP/2.0\r\nHost: x\r\n\r\n', 400, 'UNSUPPORTED_HTTP_VERSION');
    await rejects('GET /app/x HTTP/0.9\r\nHost: x\r\n\r\n', 400);
    // HTTP/0.9 style: no version at all.
    await rejects('GET /app/x\r\n\r\n', 400);
  });

  describe('request line (RFC 9112 §3: method SP request-target SP HTTP-version, single spaces)', () => {
    /** Sends `first`, reads its whole response, then sends `second` on the same connection. */
    async function afterKeepAlive(port: number, first: string, second: string): Promise<{ first: string; second: string }> {
      const socket = await connect(port);
      try {
        socket.write(first);
        const one = await readUntil(socket, /\r\n0\r\n\r\n$/); // the echo's chunked answer, whole
        socket.write(second);
        return { first: one, second: await untilClosed(socket) };
      } finally {
        socket.destroy();
      }
    }

    test('HTTP/0.9 (no version): 400 at once, not at the header timeout; first request and keep-alive', async () => {
      // llhttp takes `GET /` + CRLF as HTTP/0.9 and then waits for header lines that never come.
      for (const port of [patientPort, h2cPort]) {
        await rejectsOn(port, 'GET /app/x\r\n', 400, 'UNSUPPORTED_HTTP_VERSION');
        const m = mark();
        const r = await afterKeepAlive(port, 'GET /app/first HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /app/second\r\n');
        assert.match(r.first, /^HTTP\/1\.1 200 /);
        assert.match(r.second, /^HTTP\/1\.1 400 /);
        assert.match(r.second, /"code":"UNSUPPORTED_HTTP_VERSION"/);
        assert.deepEqual(
          app.seen.slice(m.app).map((q) => q.url),
          ['/app/first'],
        );
      }
    });

    test("HTTP/0.9 pipelined behind a request: its 400 comes after that request's answer", async () => {
      const m = mark();
      const r = await rawRequest(patientPort, 'GET /app/first HTTP/1.1\r\nHost: x\r\n\r\nGET /app/second\r\n', GUARD_MS);
      const one = parseResponse(r.text);
      assert.equal(one.status, 200, r.text.slice(0, 200));
      const two = parseResponse(one.rest);
      assert.equal(two.status, 400);
      assert.match(two.body, /"code":"UNSUPPORTED_HTTP_VERSION"/);
      assert.ok(r.closedByServer);
      assert.deepEqual(
        app.seen.slice(m.app).map((q) => q.url),
        ['/app/first'],
      );
    });

    test('a line split across reads after the answer to the request before it: still checked', async () => {
      // node:http resets parser.incoming once a request and its response are done: that must not
      // make the half-read line of the next request look like a finished one.
      const m = mark();
      const socket = await connect(patientPort);
      try {
        socket.write('GET /app/first HTTP/1.1\r\nHost: x\r\n\r\nGET /app/second ');
        await readUntil(socket, /\r\n0\r\n\r\n$/);
        socket.write(' HTTP/1.1\r\n');
        const text = await untilClosed(socket);
        assert.match(text, /^HTTP\/1\.1 400 /);
        assert.match(text, /"code":"INVALID_REQUEST_LINE"/);
      } finally {
        socket.destroy();
      }
      assert.deepEqual(
        app.seen.slice(m.app).map((q) => q.url),
        ['/app/first'],
      );
    });

    test('HTTP/0.9 whose line arrives in pieces: 400 once its CRLF is in', async () => {
      const m = mark();
      const socket = await connect(patientPort);
      try {
        for (const piece of ['GE', 'T /app', '/x', '\r', '\n'])
          await new Promise<void>((resolve, reject) => socket.write(piece, (err) => (err ? reject(err) : resolve())));
        const text = await untilClosed(socket);
        assert.match(text, /^HTTP\/1\.1 400 /);
        assert.match(text, /"code":"UNSUPPORTED_HTTP_VERSION"/);
      } finally {
        socket.destroy();
      }
      await assertOriginsUntouched(m);
    });

    test('a double space before or after the target: 400 INVALID_REQUEST_LINE and close', async () => {
      for (const port of [gw.port, h2cPort]) {
        await rejectsOn(port, 'GET  /app/x HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_REQUEST_LINE');
        await rejectsOn(port, 'GET /app/x  HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_REQUEST_LINE');
        await rejectsOn(port, 'GET   /app/x   HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_REQUEST_LINE');
      }
    });

    test('a double space on a later request of a keep-alive connection: 400 INVALID_REQUEST_LINE', async () => {
      const m = mark();
      const r = await afterKeepAlive(gw.port, 'GET /app/first HTTP/1.1\r\nHost: x\r\n\r\n', 'GET  /app/second HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match(r.first, /^HTTP\/1\.1 200 /);
      assert.match(r.second, /^HTTP\/1\.1 400 /);
      assert.match(r.second, /"code":"INVALID_REQUEST_LINE"/);
      assert.deepEqual(
        app.seen.slice(m.app).map((q) => q.url),
        ['/app/first'],
      );
    });

    test('pipelined behind a request without a body, with a Content-Length body, or with a chunked one', async () => {
      const bad = 'GET /app/bad  HTTP/1.1\r\nHost: x\r\n\r\n';
      for (const first of [
        'GET /app/p1 HTTP/1.1\r\nHost: x\r\n\r\n',
        'POST /app/p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n\r\nGET  /app/in-body HTTP/1.1',
        'POST /app/p3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nGET  /app/in-body HTTP/1.1\r\n0\r\n\r\n',
        '\r\nGET /app/p4 HTTP/1.1\r\nHost: x\r\n\r\n\r\n',
      ]) {
        const m = mark();
        const r = await rawRequest(gw.port, first + bad, GUARD_MS);
        const one = parseResponse(r.text);
        assert.equal(one.status, 200, `${JSON.stringify(first)}: ${r.text.slice(0, 200)}`);
        const two = parseResponse(one.rest);
        assert.equal(two.status, 400, `${JSON.stringify(first)}: ${one.rest.slice(0, 200)}`);
        assert.match(two.body, /"code":"INVALID_REQUEST_LINE"/);
        assert.ok(r.closedByServer);
        assert.deepEqual(
          app.seen
            .slice(m.app)
            .map((q) => q.url)
            .filter((u) => u !== '/app/bad'),
          [/\/app\/p\d/.exec(first)![0]],
        );
        assert.ok(!app.seen.slice(m.app).some((q) => q.url === '/app/bad'), 'the bad request never reached the origin');
      }
    });

    test('a WebSocket upgrade with a double space: 400 INVALID_REQUEST_LINE, no tunnel', async () => {
      await rejects(
        'GET  /app/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        400,
        'INVALID_REQUEST_LINE',
      );
    });

    test('behind a chunked body that spanned reads: a pipelined request is checked and served, as is a later one', async () => {
      // The body's first part is read (the request is forwarded) before the rest arrives. node:http
      // kept no chunk sizes for the request-line guard, which refused such a request
      // (UNCHECKED_PIPELINED_REQUEST); Switchboard's own parser reads every byte, so it is served.
      const head = 'POST /app/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n';
      const forwarded = (): Promise<void> => new Promise((resolve) => app.server.once('request', () => resolve()));
      {
        const m = mark();
        const socket = await connect(gw.port);
        try {
          const atOrigin = forwarded();
          socket.write(head);
          await atOrigin;
          socket.write('0\r\n\r\nGET /app/pipelined HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
          const one = parseResponse(await untilClosed(socket));
          assert.equal(one.status, 200);
          const two = parseResponse(one.rest);
          assert.equal(two.status, 200);
        } finally {
          socket.destroy();
        }
        assert.deepEqual(
          app.seen.slice(m.app).map((q) => q.url),
          ['/app/chunked', '/app/pipelined'],
        );
      }
      {
        // Sent after the response: checked as usual.
        const socket = await connect(gw.port);
        try {
          const atOrigin = forwarded();
          socket.write(head);
          await atOrigin;
          socket.write('0\r\n\r\n');
          await readUntil(socket, /\r\n0\r\n\r\n$/);
          socket.write('GET /app/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
          assert.match(await untilClosed(socket), /^HTTP\/1\.1 200 /);
        } finally {
          socket.destroy();
        }
      }
    });

    test('well-formed request lines pass: pipelined, split across writes, after leading CRLFs', async () => {
      const m = mark();
      const r = await rawRequest(gw.port, 'GET /app/a HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET /app/b?q=a%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', GUARD_MS);
      const one = parseResponse(r.text);
      assert.equal(one.status, 200);
      assert.equal(parseResponse(one.rest).status, 200);
      const socket = await connect(gw.port);
      try {
        for (const piece of ['GET /ap', 'p/c HT', 'TP/1.1\r', '\nHost: x\r\nConnection: close\r\n', '\r\n'])
          await new Promise<void>((resolve, reject) => socket.write(piece, (err) => (err ? reject(err) : resolve())));
        assert.match(await untilClosed(socket), /^HTTP\/1\.1 200 /);
      } finally {
        socket.destroy();
      }
      assert.deepEqual(
        app.seen.slice(m.app).map((q) => q.url),
        ['/app/a', '/app/b?q=a%20b', '/app/c'],
      );
    });
  });

  test('absolute-form target: authority must equal Host', async () => {
    await rejects('GET http://other.example/app/x HTTP/1.1\r\nHost: x.example\r\n\r\n', 400, 'HOST_MISMATCH');
    const m = mark();
    const r = await rawRequest(gw.port, 'GET http://x.example/app/abs?q=1 HTTP/1.1\r\nHost: x.example\r\nConnection: close\r\n\r\n', GUARD_MS);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    const echoed = JSON.parse(parseResponse(r.text).body) as { url: string; headers: Record<string, string> };
    assert.equal(echoed.url, '/app/abs?q=1', 'forwarded in origin-form');
    assert.equal(echoed.headers.host, 'x.example');
    assert.deepEqual(
      app.seen.slice(m.app).map((q) => q.url),
      ['/app/abs?q=1'],
    );
  });

  test('GET * → 400', async () => {
    await rejects('GET * HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_TARGET');
  });

  test('Host with @ or / or a bad port → 400 INVALID_HOST', async () => {
    await rejects('GET /app/x HTTP/1.1\r\nHost: user@x.example\r\n\r\n', 400, 'INVALID_HOST');
    await rejects('GET /app/x HTTP/1.1\r\nHost: x.example/evil\r\n\r\n', 400, 'INVALID_HOST');
    await rejects('GET /app/x HTTP/1.1\r\nHost: x.example:80a\r\n\r\n', 400, 'INVALID_HOST');
    await rejects('GET /app/x HTTP/1.1\r\nHost: x.example:99999\r\n\r\n', 400, 'INVALID_HOST');
    await rejects('GET /app/x HTTP/1.1\r\nHost: x.example:\r\n\r\n', 400, 'INVALID_HOST');
  });

  test('header name with a space, a bare LF, or no colon → 400 (Node parser)', async () => {
    await rejects('GET /app/x HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n', 400);
    await rejects('GET /app/x HTTP/1.1\r\nHost: x\r\nX-A: 1\nX-B: 2\r\n\r\n', 400);
    await rejects('GET /app/x HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', 400);
  });

  test('header block over maxHeaderSize → 431 and close', async () => {
    await rejects(`GET /app/x HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE');
  });

  test('slowloris: header block never finished → 408 and close after headerTimeout', async () => {
    const m = mark();
    const started = performance.now();
    // A guard far above the 300 ms header timeout: without the timeout, the connection would wait forever.
    const r = await rawRequest(gw.port, 'GET /app/x HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n', 10_000);
    const elapsed = performance.now() - started;
    assertError(r, 408, 'HEADER_TIMEOUT');
    assert.ok(elapsed >= 250, `408 only after the 300ms header timeout (${elapsed.toFixed(0)}ms)`);
    await assertOriginsUntouched(m);
  });

  test('slowloris: header bytes trickling in do not reset the header timeout', async () => {
    const m = mark();
    const socket = await connect(gw.port);
    const started = performance.now();
    const head = `GET /app/x HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(1000)}`;
    let i = 0;
    // Pacing the attacker, not synchronising the test: one byte every 20ms, until the server closes.
    const ticker = setInterval(() => {
      if (i < head.length && socket.writable) socket.write(head[i++]);
    }, 20);
    try {
      // The trickle lasts 20 s (1000 bytes, 20 ms apart): a server whose header timeout each byte
      // reset would close after it, so the guard (10 s) fails it, and so does the last assertion.
      const text = await untilClosed(socket, '', 10_000);
      const elapsed = performance.now() - started;
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.match(text, /"code":"HEADER_TIMEOUT"/);
      assert.ok(elapsed >= 250, `not before the header timeout: closed ${elapsed.toFixed(0)}ms after connecting`);
      assert.ok(i < head.length, 'the server gave up while bytes were still trickling in');
    } finally {
      clearInterval(ticker);
      socket.destroy();
    }
    await assertOriginsUntouched(m);
  });

  test('Content-Length over the route limit → 413 before any body is sent, origin sees nothing', async () => {
    const m = mark();
    const socket = await connect(gw.port);
    try {
      socket.write('POST /upload/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n');
      const text = await untilClosed(socket, await readUntil(socket, /\r\n\r\n[\s\S]*\}\}/));
      assert.match(text, /^HTTP\/1\.1 413 /);
      assert.match(text, /"code":"BODY_TOO_LARGE"/);
      assert.match(text, /\r\nconnection: close\r\n/i);
    } finally {
      socket.destroy();
    }
    await assertOriginsUntouched(m);
  });

  test('Content-Length within the route limit is forwarded', async () => {
    const r = await rawRequest(gw.port, 'POST /upload/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello', GUARD_MS);
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(parseResponse(r.text).body) as { body: string }).body, 'hello');
  });

  test('chunked body passing the route limit → 413 and close', async () => {
    const chunk = 'b'.repeat(60);
    const frame = `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    const bytes = `POST /upload/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${frame.repeat(3)}0\r\n\r\n`;
    const r = await rawRequest(gw.port, bytes, GUARD_MS);
    assertError(r, 413, 'BODY_TOO_LARGE');
  });

  test('leftover body bytes after an early answer are never parsed as a request', async (t) => {
    const smuggled = 'GET /app/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    await t.test('404 (no route) with a Content-Length body', async () => {
      const m = mark();
      const r = await rawRequest(gw.port, `POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`, GUARD_MS);
      assertError(r, 404, 'ROUTE_NOT_FOUND');
      await assertOriginsUntouched(m);
    });
    await t.test('404 (no route) with a chunked body', async () => {
      const m = mark();
      const r = await rawRequest(
        gw.port,
        `POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
        GUARD_MS,
      );
      assertError(r, 404, 'ROUTE_NOT_FOUND');
      await assertOriginsUntouched(m);
    });
    await t.test('413 (Content-Length) with the declared body starting like a request', async () => {
      const m = mark();
      const r = await rawRequest(gw.port, `POST /upload/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n${smuggled}`, GUARD_MS);
      assertError(r, 413, 'BODY_TOO_LARGE');
      await assertOriginsUntouched(m);
    });
    await t.test('413 (chunked) with the rest of the chunk looking like a request', async () => {
      const m = mark();
      const data = 'p'.repeat(120) + smuggled;
      const r = await rawRequest(
        gw.port,
        `POST /upload/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${data.length.toString(16)}\r\n${data}\r\n0\r\n\r\n`,
        GUARD_MS,
      );
      assertError(r, 413, 'BODY_TOO_LARGE');
      assert.ok(!app.seen.slice(m.app).some((q) => q.url === '/app/smuggled'), 'origin never saw /app/smuggled');
    });
  });

  test('header names with underscores are dropped by default', async () => {
    const r = await rawRequest(gw.port, 'GET /app/u HTTP/1.1\r\nHost: x\r\nX_Secret: 1\r\nX-Fine: 2\r\nConnection: close\r\n\r\n', GUARD_MS);
    assert.equal(r.status, 200);
    const echoed = JSON.parse(parseResponse(r.text).body) as { headers: Record<string, string> };
    assert.equal(echoed.headers.x_secret, undefined);
    assert.equal(echoed.headers['x-fine'], '2');
  });

  test('header names with underscores → 400 when the listener rejects them', async () => {
    const m = mark();
    const r = await rawRequest(rejectPort, 'GET /app/u HTTP/1.1\r\nHost: x\r\nX_Secret: 1\r\n\r\n', GUARD_MS);
    assertError(r, 400, 'INVALID_HEADER_NAME');
    await assertOriginsUntouched(m);
  });

  test('header names with underscores pass when the listener allows them', async () => {
    const r = await rawRequest(allowPort, 'GET /app/u HTTP/1.1\r\nHost: x\r\nX_Secret: 1\r\nConnection: close\r\n\r\n', GUARD_MS);
    assert.equal(r.status, 200);
    const echoed = JSON.parse(parseResponse(r.text).body) as { headers: Record<string, string> };
    assert.equal(echoed.headers.x_secret, '1');
  });

  test('dot segments are normalised once: routed and forwarded as the same path', async () => {
    for (const path of ['/app/../admin', '/app/%2e%2e/admin', '/app/%2E%2E/admin/', '/app//..//admin']) {
      const m = mark();
      const r = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, GUARD_MS);
      assert.equal(r.status, 200, `${path}: ${r.text.slice(0, 200)}`);
      const echoed = JSON.parse(parseResponse(r.text).body) as { origin: string; url: string };
      assert.equal(echoed.origin, 'admin', `${path} is routed by the admin route`);
      assert.match(echoed.url, /^\/admin\/?$/, `${path} reaches the origin normalised`);
      assert.equal(admin.seen.length, m.admin + 1);
      assert.equal(app.seen.length, m.app, `${path} never reaches the app origin`);
    }
  });

  test('paths climbing above the root → 400', async () => {
    await rejects('GET /.. HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_TARGET');
    await rejects('GET /%2e%2e/app/x HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_TARGET');
    await rejects('GET /app/../../admin HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_TARGET');
  });

  test('CONNECT → 405 and close', async () => {
    await rejects('CONNECT x.example:443 HTTP/1.1\r\nHost: x.example:443\r\n\r\n', 405, 'METHOD_NOT_ALLOWED');
    await rejects('CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n', 405, 'METHOD_NOT_ALLOWED');
  });

  test('no route → 404 with the JSON error body and a request id', async () => {
    const m = mark();
    const res = await fetch(`${gw.url}/nowhere`);
    assert.equal(res.status, 404);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const rid = res.headers.get('x-request-id');
    assert.ok(rid, 'x-request-id header');
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body), ['error']);
    assert.equal(body.error.code, 'ROUTE_NOT_FOUND');
    assert.equal(body.error.status, 404);
    assert.equal(typeof body.error.message, 'string');
    assert.equal(body.error.requestId, rid);
    // A client-chosen id is echoed back.
    const own = await fetch(`${gw.url}/nowhere`, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(((await own.json()) as { error: { requestId: string } }).error.requestId, 'abc-123');
    assert.equal(own.headers.get('x-request-id'), 'abc-123');
    await assertOriginsUntouched(m);
  });
});
