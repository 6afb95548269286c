/**
 * Bodies through the pipeline: a response-body filter on a 200 MB streamed response keeps memory
 * flat (backpressure holds through the filter), and a retry replays a small request body kept in
 * memory but refuses to replay one too large to keep (EDGE-CASES 28-29).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { request } from 'undici';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { counted, registerProbe } from './helpers/probe-policy.ts';

registerProbe();

const MiB = 1024 * 1024;

/** A full garbage collection, so that RSS shows what is alive rather than what awaits collection. */
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

test('a response-body filter on a 200 MB streamed response: every byte passes, memory stays flat', async (t) => {
  const total = 200 * MiB;
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const origin = await startOrigin('big', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    policies: { count: { type: 'probe', tag: 'big', count: true } },
    routes: { big: { match: { path: '/' }, upstream: 'app', policies: ['count'] } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
  });
  try {
    const res = await request(`${gw.url}/big`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(total), 'a filter that leaves the bytes alone keeps the length');
    gc();
    const start = process.memoryUsage().rss;
    let peak = start;
    let received = 0;
    let n = 0;
    for await (const c of res.body) {
      received += (c as Buffer).length;
      // Every ~8 MiB: collect, then look (origin, gateway and client all live in this process).
      if (++n % 128 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    }
    assert.equal(received, total);
    assert.equal(counted.get('big'), total, 'the filter saw every byte');
    const growth = (peak - start) / MiB;
    t.diagnostic(`RSS growth while 200 MiB streamed through the filter: ${growth.toFixed(1)} MiB`);
    // Buffering the response anywhere would grow the process by at least its 200 MB.
    assert.ok(growth < 100, `RSS grew by ${growth.toFixed(1)} MiB while 200 MiB streamed`);
  } finally {
    await gw.stop();
    await origin.close();
  }
});

/** Reads the whole request body, then resets the connection instead of answering. */
function resetAfterBody(name: string): Promise<Origin> {
  return startOrigin(name, (req) => {
    req.resume();
    req.on('end', () => req.socket.destroy());
  });
}

async function withRetryGateway(retries: object, fn: (gw: TestGateway, cut: Origin, good: Origin) => Promise<void>): Promise<void> {
  const cut = await resetAfterBody('cut');
  const good = await startOrigin('good');
  const gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { all: { match: { path: '/' }, upstream: 'app' } },
    upstreams: {
      app: {
        balancer: 'weighted-round-robin',
        // The first try goes to `cut`; the retry can only go to `good`.
        endpoints: [
          { url: cut.url, weight: 1000 },
          { url: good.url, weight: 1 },
        ],
        retries,
      },
    },
  });
  try {
    await fn(gw, cut, good);
  } finally {
    await gw.stop();
    await cut.close();
    await good.close();
  }
}

async function send(url: string, method: string, body: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'content-length': body.length, 'content-type': 'application/octet-stream' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('a retry replays a small POST body kept in memory (nonIdempotent on): the second endpoint gets it whole', async () => {
  await withRetryGateway({ retryOn: ['reset'], nonIdempotent: true }, async (gw, cut, good) => {
    const body = Buffer.from('order=42;'.repeat(100));
    const r = await send(`${gw.url}/orders`, 'POST', body);
    assert.equal(r.status, 200, r.body);
    const echoed = JSON.parse(r.body) as { origin: string; method: string; body: string };
    assert.equal(echoed.origin, 'good');
    assert.equal(echoed.body, body.toString());
    assert.equal(cut.seen.length, 1, 'the first try reached the endpoint that reset it');
    assert.equal(good.seen.length, 1);
  });
});

test('a retry refuses to replay a body larger than bodyBuffer once it was sent: 502, the second endpoint never asked', async () => {
  await withRetryGateway({ retryOn: ['reset'], nonIdempotent: true, bodyBuffer: '16KiB' }, async (gw, cut, good) => {
    const body = Buffer.alloc(200_000, 'y');
    const r = await send(`${gw.url}/orders`, 'POST', body);
    assert.equal(r.status, 502, r.body);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'UPSTREAM_RESET');
    assert.equal(cut.seen.length, 1);
    assert.equal(good.seen.length, 0);
  });
});

test('an idempotent PUT with a small body is replayed without nonIdempotent; a POST is not', async () => {
  await withRetryGateway({ retryOn: ['reset'] }, async (gw, cut, good) => {
    const body = Buffer.from('{"name":"x"}');
    const put = await send(`${gw.url}/items/1`, 'PUT', body);
    assert.equal(put.status, 200, put.body);
    assert.equal((JSON.parse(put.body) as { body: string }).body, body.toString());
    assert.equal(good.seen.length, 1);
    const post = await send(`${gw.url}/items`, 'POST', body);
    assert.equal(post.status, 502, 'a POST that reached an endpoint is never sent twice by default');
    assert.equal(good.seen.length, 1);
    assert.equal(cut.seen.length, 2);
  });
});
