/**
 * HTTP/1.1 semantics through the proxy (shared EDGE-CASES 15, 32): 1xx relayed, Expect:
 * 100-continue, bodiless responses (HEAD, 204, 304), trailers, large bodies both ways, and
 * backpressure from a client that does not read.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type http from 'node:http';
import type { Socket } from 'node:net';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { connect, rawRequest } from './helpers/raw.ts';

const GUARD_MS = 10_000; // a hang guard: no test waits for it (the answers come in ms), a loaded CI machine may take seconds

/** Resolves with everything received once `pattern` matches; rejects on close or after the guard. */
function readUntil(socket: Socket, pattern: RegExp, already = ''): Promise<string> {
  return guard(
    new Promise((resolve, reject) => {
      let text = already;
      if (pattern.test(text)) return resolve(text);
      const onData = (c: Buffer): void => {
        text += c.toString('latin1');
        if (pattern.test(text)) {
          socket.off('data', onData);
          socket.off('close', onClose);
          resolve(text);
        }
      };
      const onClose = (): void => reject(new Error(`closed before ${pattern}: ${JSON.stringify(text)}`));
      socket.on('data', onData);
      socket.once('close', onClose);
    }),
    `waiting for ${pattern}`,
  );
}

/** Deterministic pseudo-random bytes (fast to make, not compressible by accident). */
function pattern(size: number, seed: number): Buffer<ArrayBuffer> {
  const buf = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf.writeUInt32LE(x >>> 0, i);
  }
  buf.fill(7, size - (size % 4));
  return buf;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const MB = 1024 * 1024;
const BIG = 20 * MB;
const bigDownload = pattern(BIG, 42);
const bigDownloadHash = sha256(bigDownload);

/** The origin's record of the backpressure test: how its writes went. */
const BP_TOTAL = 64 * MB;
const pressure = { written: 0, falseWrites: 0, drains: 0, blocked: false, finished: false };
let onPressure: (() => void) | undefined;

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  switch (url) {
    case '/hints':
      res.writeEarlyHints({ link: '</a.css>; rel=preload; as=style' });
      res.end('after hints');
      return;
    case '/head':
    case '/length':
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' });
      res.end(req.method === 'HEAD' ? undefined : 'hello world');
      return;
    case '/no-content':
      res.writeHead(204, { 'x-kind': 'no-content' });
      res.end();
      return;
    case '/not-modified':
      res.writeHead(304, { etag: '"v1"', 'x-kind': 'not-modified' });
      res.end();
      return;
    case '/trailers':
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('part one,');
      res.write('part two');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
      return;
    case '/download':
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
      res.end(bigDownload);
      return;
    case '/backpressure': {
      // 64 MiB in 4 KiB writes (well under the 16 KiB high-water mark, so write() returns false
      // only when the socket really cannot flush), honouring drain.
      const chunk = Buffer.alloc(4 * 1024, 1);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BP_TOTAL) });
      const pump = (): void => {
        pressure.blocked = false;
        while (pressure.written < BP_TOTAL) {
          pressure.written += chunk.length;
          if (!res.write(chunk)) {
            pressure.falseWrites++;
            pressure.blocked = true;
            onPressure?.();
            res.once('drain', () => {
              pressure.drains++;
              pump();
            });
            return;
          }
        }
        res.end(() => (pressure.finished = true));
      };
      pump();
      return;
    }
    default: {
      // Echo: method, url, body length and hash.
      const hash = createHash('sha256');
      let length = 0;
      req.on('data', (c: Buffer) => {
        length += c.length;
        hash.update(c);
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, url, length, sha256: hash.digest('hex') }));
      });
    }
  }
}

describe('HTTP/1.1 semantics through the proxy', () => {
  let origin: Origin;
  let gw: TestGateway;

  before(async () => {
    origin = await startOrigin('origin', handler);
    gw = await startTestGateway({
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      routes: {
        all: { match: { path: '/' }, upstream: 'app' },
        limited: { match: { path: '/limited' }, upstream: 'app', maxBodySize: 1000 },
      },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
    });
  });

  after(async () => {
    await gw.stop();
    await origin.close();
  });

  test('103 Early Hints is relayed before the final response', async () => {
    const r = await rawRequest(gw.port, 'GET /hints HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', GUARD_MS);
    assert.match(r.text, /^HTTP\/1\.1 103 Early Hints\r\n/);
    const hints = r.text.slice(0, r.text.indexOf('\r\n\r\n'));
    assert.match(hints, /\r\nlink: <\/a\.css>; rel=preload; as=style/i);
    const final = r.text.slice(hints.length + 4);
    assert.match(final, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(final, /after hints/);
  });

  test('Expect: 100-continue: 100 first, then the body is sent and forwarded', async () => {
    const socket = await connect(gw.port);
    try {
      const body = 'the body, sent only after 100';
      socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
      const first = await readUntil(socket, /\r\n\r\n/);
      assert.match(first, /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
      socket.write(body);
      const rest = await readUntil(socket, /\r\n0\r\n\r\n$/, first);
      assert.match(rest, /HTTP\/1\.1 200 OK\r\n/);
      const echoed = JSON.parse(/\{.*\}/.exec(rest)![0]) as { length: number; sha256: string };
      assert.equal(echoed.length, body.length);
      assert.equal(echoed.sha256, sha256(Buffer.from(body)));
    } finally {
      socket.destroy();
    }
  });

  test('Expect: 100-continue with a body over the route limit → 413 without a 100', async () => {
    const socket = await connect(gw.port);
    try {
      socket.write('POST /limited HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n');
      const text = await readUntil(socket, /\}\}$/);
      assert.match(text, /^HTTP\/1\.1 413 /, 'the final status comes first: no 100');
      assert.doesNotMatch(text, /100 Continue/);
      assert.match(text, /"code":"BODY_TOO_LARGE"/);
      assert.match(text, /\r\nconnection: close\r\n/i);
    } finally {
      socket.destroy();
    }
  });

  test('HEAD: Content-Length kept, no body bytes', async () => {
    const r = await rawRequest(gw.port, 'HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', GUARD_MS);
    assert.equal(r.status, 200);
    assert.ok(r.closedByServer);
    const end = r.text.indexOf('\r\n\r\n');
    assert.match(r.text.slice(0, end), /\r\ncontent-length: 11(\r\n|$)/i);
    assert.doesNotMatch(r.text.slice(0, end), /transfer-encoding/i);
    assert.equal(r.text.slice(end + 4), '', 'no body bytes after the head');
    // The same resource by GET does carry the 11 bytes.
    const get = await fetch(`${gw.url}/length`);
    assert.equal(await get.text(), 'hello world');
  });

  test('HEAD keeps the connection usable: a pipelined GET after it is answered correctly', async () => {
    const r = await rawRequest(gw.port, 'HEAD /head HTTP/1.1\r\nHost: x\r\n\r\nGET /length HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', GUARD_MS);
    const responses = r.text.split(/(?=HTTP\/1\.1 \d{3} )/);
    assert.equal(responses.length, 2, r.text);
    assert.match(responses[0], /\r\n\r\n$/, 'the HEAD response ends with its head');
    assert.match(responses[1], /\r\n\r\nhello world$/);
  });

  for (const [path, status] of [
    ['/no-content', 204],
    ['/not-modified', 304],
  ] as const) {
    test(`${status}: no body and no framing bytes`, async () => {
      const r = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, GUARD_MS);
      assert.equal(r.status, status);
      assert.ok(r.closedByServer);
      const end = r.text.indexOf('\r\n\r\n');
      const head = r.text.slice(0, end);
      assert.doesNotMatch(head, /transfer-encoding/i);
      assert.match(head, /\r\nx-kind: /i, 'the origin headers were relayed');
      assert.equal(r.text.slice(end + 4), '', 'nothing after the head');
    });
  }

  test('trailers are relayed after the last chunk', async () => {
    const r = await rawRequest(gw.port, 'GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n', GUARD_MS);
    assert.equal(r.status, 200);
    const end = r.text.indexOf('\r\n\r\n');
    assert.match(r.text.slice(0, end), /\r\ntransfer-encoding: chunked/i);
    assert.match(r.text.slice(0, end), /\r\ntrailer: x-checksum/i);
    const body = r.text.slice(end + 4);
    assert.match(body, /part one,[\s\S]*part two/);
    assert.match(body, /\r\n0\r\nx-checksum: abc123\r\n\r\n$/i, 'the trailer follows the last chunk');
  });

  test('a 20 MiB body streams up and down intact', async () => {
    const upload = pattern(BIG, 7);
    const [up, down] = await Promise.all([fetch(`${gw.url}/upload`, { method: 'POST', body: upload }), fetch(`${gw.url}/download`)]);
    assert.equal(up.status, 200);
    const echoed = (await up.json()) as { length: number; sha256: string };
    assert.equal(echoed.length, BIG);
    assert.equal(echoed.sha256, sha256(upload));
    assert.equal(down.status, 200);
    assert.equal(down.headers.get('content-length'), String(BIG));
    const got = Buffer.from(await down.arrayBuffer());
    assert.equal(got.length, BIG);
    assert.equal(sha256(got), bigDownloadHash);
  });

  test('a chunked upload of unknown length streams intact', async () => {
    const upload = pattern(4 * MB, 9);
    const parts = [upload.subarray(0, MB), upload.subarray(MB, 3 * MB), upload.subarray(3 * MB)];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = parts.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    const res = await fetch(`${gw.url}/upload-chunked`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    const echoed = (await res.json()) as { length: number; sha256: string };
    assert.equal(echoed.length, upload.length);
    assert.equal(echoed.sha256, sha256(upload));
  });

  test('backpressure: a client that does not read pauses the origin', async () => {
    const socket = await connect(gw.port);
    try {
      // Never read: the client's kernel buffer fills, then the gateway's socket, then the gateway
      // must stop reading the upstream, and the origin's write() returns false and stays blocked.
      socket.pause();
      const stalled = new Promise<void>((resolve) => (onPressure = resolve));
      socket.write('GET /backpressure HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await guard(stalled, "the origin's write() returns false");
      onPressure = undefined;
      // A measurement window, not synchronisation: a proxy that buffered instead of pausing would
      // let the origin push all 64 MiB through loopback well within it; with backpressure the
      // origin stays blocked at the size of the buffers in between (about 10 MiB here).
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.ok(pressure.falseWrites >= 1, 'the origin saw write() return false');
      assert.equal(pressure.finished, false, 'the origin could not finish while the client did not read');
      assert.ok(pressure.blocked, 'the origin is waiting for drain');
      assert.ok(pressure.written < BP_TOTAL / 2, `the origin is held back (${(pressure.written / MB).toFixed(1)} MiB written)`);

      // Now read everything: the origin resumes on drain and the whole body arrives.
      let received = 0;
      let head = Buffer.alloc(0);
      let headDone = false;
      await guard(
        new Promise<void>((resolve, reject) => {
          socket.on('data', (c: Buffer) => {
            if (headDone) {
              received += c.length;
              return;
            }
            head = Buffer.concat([head, c]);
            const end = head.indexOf('\r\n\r\n');
            if (end === -1) return;
            headDone = true;
            received += head.length - end - 4;
          });
          socket.once('close', () => (received === BP_TOTAL ? resolve() : reject(new Error(`only ${received} bytes arrived`))));
          socket.resume();
        }),
        'the whole body arrives once the client reads',
      );
      assert.equal(received, BP_TOTAL);
      assert.ok(pressure.drains >= 1, 'the origin was resumed by drain');
      assert.ok(pressure.finished);
    } finally {
      socket.destroy();
    }
  });
});
