/**
 * Slow and greedy clients (EDGE-CASES 26): a slow upload is cut by the listener's requestTimeout, a
 * client that never reads its response is cut after sendTimeout (undici's body timeout does not run
 * while we hold the upstream paused for backpressure, so it cannot be the guard).
 * Either way the upstream request is aborted and the connection closed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startOrigin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { simpleConfig, startTestGateway } from './helpers/gateway.ts';
import { connect } from './helpers/raw.ts';

test('a slow upload is answered 408 and closed after requestTimeout; the upstream request is aborted', async () => {
  let originAborted!: () => void;
  const aborted = new Promise<void>((resolve) => (originAborted = resolve));
  const origin = await startOrigin('upload', (req, res) => {
    req.on('data', () => undefined);
    req.on('close', () => {
      if (!req.complete) originAborted();
    });
    req.on('end', () => res.end('complete'));
  });
  const gw = await startTestGateway(simpleConfig([origin.url], { listener: { headerTimeout: '300ms', requestTimeout: '500ms' } }));
  try {
    const socket = await connect(gw.port);
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789');
    await guard(once(socket, 'close'), 'the gateway to close the slow upload', 5000);
    const text = Buffer.concat(received).toString();
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.match(text, /"code":"REQUEST_TIMEOUT"/);
    await guard(aborted, 'the upstream request to be aborted', 5000);
    assert.equal(origin.seen.length, 1);
  } finally {
    await gw.stop();
    await origin.close();
  }
});

test("a client that never reads its response is cut after the listener's sendTimeout", async () => {
  let originClosed!: (finished: boolean) => void;
  const closed = new Promise<boolean>((resolve) => (originClosed = resolve));
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const origin = await startOrigin('big', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let sent = 0;
    const pump = (): void => {
      while (sent < 512 && res.write(chunk)) sent++;
      if (sent >= 512) res.end();
      else res.once('drain', pump);
    };
    res.on('close', () => originClosed(res.writableFinished));
    pump();
  });
  const gw = await startTestGateway(simpleConfig([origin.url], { listener: { sendTimeout: '500ms' } }));
  try {
    const socket = await connect(gw.port);
    socket.pause(); // never read
    socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    const finished = await guard(closed, "the origin's response to be cut", 8000);
    assert.equal(finished, false, 'the 32 MiB response must not have completed into a client that reads nothing');
    socket.resume();
    socket.on('data', () => undefined);
    await guard(once(socket, 'close'), 'the client connection to be closed', 8000);
  } finally {
    await gw.stop();
    await origin.close();
  }
});
