/**
 * Aborts in both directions (shared EDGE-CASES 26, 30): a client that leaves aborts the upstream
 * request, and an upstream that dies mid-body leaves the client with an aborted response, never a
 * clean (truncated) end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import type { Socket } from 'node:net';
import { startOrigin, type Origin, type OriginHandler } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { simpleConfig, startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { connect, rawRequest } from './helpers/raw.ts';

const GUARD_MS = 10_000; // a hang guard: no test waits for it (the answers come in ms), a loaded CI machine may take seconds

/** A promise and its resolver. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves with what arrived once `pattern` matches the bytes received on `socket`. */
function readUntil(socket: Socket, pattern: RegExp): Promise<string> {
  return guard(
    new Promise((resolve, reject) => {
      let text = '';
      const onData = (c: Buffer): void => {
        text += c.toString('latin1');
        if (pattern.test(text)) {
          socket.off('data', onData);
          resolve(text);
        }
      };
      socket.on('data', onData);
      socket.once('close', () => reject(new Error(`closed before ${pattern}: ${JSON.stringify(text)}`)));
    }),
    `waiting for ${pattern}`,
  );
}

async function withOrigin(handler: OriginHandler, fn: (gw: TestGateway, origin: Origin) => Promise<void>): Promise<void> {
  const origin = await startOrigin('origin', handler);
  const gw = await startTestGateway(simpleConfig([origin.url]));
  try {
    await fn(gw, origin);
  } finally {
    await gw.stop();
    await origin.close();
  }
}

test('a client that leaves mid-response aborts the upstream response', async () => {
  const originClosed = deferred<{ finished: boolean; written: number }>();
  const TOTAL = 200;
  await withOrigin(
    (_req, res) => {
      // 200 chunks, one every 10ms: two seconds of response, unless someone stops it.
      res.writeHead(200, { 'content-type': 'text/plain' });
      let written = 0;
      const timer = setInterval(() => {
        res.write(`chunk ${written++}\n`);
        if (written === TOTAL) {
          clearInterval(timer);
          res.end();
        }
      }, 10);
      res.on('close', () => {
        clearInterval(timer);
        originClosed.resolve({ finished: res.writableFinished, written });
      });
    },
    async (gw) => {
      const socket = await connect(gw.port);
      socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      await readUntil(socket, /chunk 1\n/);
      socket.destroy();
      const { finished, written } = await guard(originClosed.promise, "the origin's response closes");
      assert.equal(finished, false, 'the origin response was cut off, not finished');
      assert.ok(written < TOTAL, `origin stopped after ${written} of ${TOTAL} chunks`);
    },
  );
});

test('a client that leaves before the response starts aborts the upstream request', async () => {
  const arrived = deferred();
  const originClosed = deferred<boolean>();
  await withOrigin(
    (req, res) => {
      arrived.resolve();
      res.on('close', () => originClosed.resolve(res.headersSent));
      void req;
    },
    async (gw) => {
      const socket = await connect(gw.port);
      socket.write('GET /wait HTTP/1.1\r\nHost: x\r\n\r\n');
      await guard(arrived.promise, 'the request reaches the origin');
      socket.destroy();
      assert.equal(await guard(originClosed.promise, "the origin's connection closes"), false);
    },
  );
});

/** An origin that records how its request body ended: 'end' (complete) or 'close' without end. */
function uploadRecorder(): { handler: OriginHandler; firstData: Promise<void>; outcome: Promise<{ ended: boolean; aborted: boolean; bytes: number }> } {
  const first = deferred();
  const outcome = deferred<{ ended: boolean; aborted: boolean; bytes: number }>();
  const handler: OriginHandler = (req: http.IncomingMessage) => {
    let bytes = 0;
    let ended = false;
    let aborted = false;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      first.resolve();
    });
    req.on('end', () => (ended = true));
    req.on('aborted', () => (aborted = true));
    req.on('error', () => undefined);
    req.on('close', () => outcome.resolve({ ended, aborted, bytes }));
  };
  return { handler, firstData: first.promise, outcome: outcome.promise };
}

for (const framing of ['content-length', 'chunked'] as const) {
  test(`a client that leaves mid-upload (${framing}) aborts the upstream request`, async () => {
    const rec = uploadRecorder();
    await withOrigin(rec.handler, async (gw) => {
      const socket = await connect(gw.port);
      const part = 'u'.repeat(10_000);
      if (framing === 'content-length') {
        socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n${part}`);
      } else {
        socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${part.length.toString(16)}\r\n${part}\r\n`);
      }
      await guard(rec.firstData, 'the origin receives the first body bytes');
      socket.destroy();
      const { ended, aborted, bytes } = await guard(rec.outcome, "the origin's request closes");
      assert.equal(ended, false, 'the origin never saw the end of the body');
      assert.ok(aborted, "the origin's request was aborted");
      assert.ok(bytes > 0 && bytes < 1_000_000, `origin received ${bytes} bytes`);
    });
  });
}

/** An origin that sends headers and part of the body, then destroys its socket. */
function dyingOrigin(framing: 'content-length' | 'chunked'): OriginHandler {
  return (req, res) => {
    req.resume();
    res.writeHead(200, framing === 'content-length' ? { 'content-length': '100000' } : { 'content-type': 'text/plain' });
    res.write('x'.repeat(1000), () => res.socket?.destroy());
  };
}

for (const framing of ['content-length', 'chunked'] as const) {
  test(`an upstream dying mid-body (${framing}) gives the client an aborted response`, async () => {
    await withOrigin(dyingOrigin(framing), async (gw) => {
      // fetch: the headers arrive, reading the body rejects.
      const res = await fetch(`${gw.url}/body`);
      assert.equal(res.status, 200);
      await assert.rejects(guard(res.arrayBuffer(), 'the body read settles'), /terminated|aborted|socket|other side closed/i);

      // On the wire: fewer bytes than promised, or no chunked terminator, and the connection closed.
      const raw = await rawRequest(gw.port, 'GET /body HTTP/1.1\r\nHost: x\r\n\r\n', GUARD_MS);
      assert.equal(raw.status, 200);
      assert.ok(raw.closedByServer, 'the gateway closes the client connection');
      const head = raw.text.indexOf('\r\n\r\n');
      const body = raw.text.slice(head + 4);
      if (framing === 'content-length') {
        assert.match(raw.text.slice(0, head), /\r\ncontent-length: 100000/i);
        assert.ok(body.length < 100000, `only ${body.length} of 100000 bytes`);
      } else {
        assert.match(raw.text.slice(0, head), /\r\ntransfer-encoding: chunked/i);
        assert.ok(body.includes('x'.repeat(100)), 'part of the body came through');
        assert.doesNotMatch(body, /(^|\r\n)0\r\n\r\n$/, 'no chunked terminator');
      }
    });
  });
}
