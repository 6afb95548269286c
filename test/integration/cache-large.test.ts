/**
 * The `cache` policy and a body far larger than its store (issue 14): a route with a 256 MiB
 * memory store and the default `maxObjectSize` (8 MiB) passes a 1 GiB response through, with and
 * without Content-Length, without holding it: the memory the process retains stays flat, the bytes
 * arrive whole (count and SHA-1), and nothing is stored (the next request goes to the origin).
 *
 * The gateway, the origin and the client share this process: the origin writes one 64 KiB block
 * over and over (generated once, honouring backpressure) and the client hashes and drops what it
 * reads, so neither holds more than a few chunks; growth of the retained memory (JS heap and live
 * buffers after a full collection, helpers/big-body.ts) past the warm-up is the gateway's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent, request } from 'undici';
import { drainBody, retainedMemory } from './helpers/big-body.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BLOCK = randomBytes(64 * 1024);
/** Retained memory growth allowed over the baseline: a few socket buffers and chunks in flight, far below the body (or the store's 256 MiB). */
const FLAT = 64 * MiB;

let origin: Origin;
let gw: TestGateway;
const agent = new Agent({ pipelining: 0 });
let originRequests = 0;

before(async () => {
  origin = await startOrigin('o', async (req, res) => {
    originRequests++;
    req.resume();
    const url = new URL(req.url ?? '/', 'http://o');
    const size = Number(url.searchParams.get('size'));
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=600' };
    if (url.searchParams.get('length') === 'yes') headers['content-length'] = size;
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    for (let sent = 0; sent < size; sent += BLOCK.length) {
      if (res.destroyed) return;
      if (!res.write(BLOCK)) await once(res, 'drain');
    }
    res.end();
  });
  gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    policies: { big: { type: 'cache', store: { memory: '256MiB' } } },
    routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['big'] } },
  });
});

after(async () => {
  await gw.stop();
  await origin.close();
  await agent.close();
});

/** GETs `size` bytes, hashing and dropping them; returns the count, the digest, Cache-Status and the most memory retained while reading. */
async function fetchBig(size: number, length: boolean): Promise<{ bytes: number; sha1: string; cacheStatus: string; peakRetained: number }> {
  const res = await request(`${gw.url}/big?size=${size}&length=${length ? 'yes' : 'no'}`, { dispatcher: agent });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-length'], length ? String(size) : undefined);
  const { bytes, sha1, peakRetained } = await drainBody(res.body as AsyncIterable<Buffer>, 64 * MiB);
  return { bytes, sha1, cacheStatus: String(res.headers['cache-status'] ?? ''), peakRetained };
}

function expectedSha1(size: number): string {
  const hash = createHash('sha1');
  for (let n = 0; n < size; n += BLOCK.length) hash.update(BLOCK);
  return hash.digest('hex');
}

test('a 1 GiB object streamed past a 256 MiB store (default maxObjectSize) with flat retained memory, with and without Content-Length; nothing stored', async (t) => {
  const sha1 = expectedSha1(GiB);
  // Warm-up: both paths once at 64 MiB (buffers, JIT, undici pools), then the baseline.
  for (const length of [true, false]) await fetchBig(64 * MiB, length);
  const baseline = retainedMemory();
  for (const length of [true, false]) {
    const before = originRequests;
    const got = await fetchBig(GiB, length);
    assert.equal(got.bytes, GiB, `every byte arrives (Content-Length ${length ? 'sent' : 'absent'})`);
    assert.equal(got.sha1, sha1, 'the bytes arrive unchanged');
    assert.match(got.cacheStatus, /fwd=miss/);
    // With a Content-Length the cache knows before the head goes out that it will not store; without one it does not
    // know yet, so it claims nothing either (the HEAD below shows nothing was stored).
    assert.doesNotMatch(got.cacheStatus, /stored/);
    const growth = got.peakRetained - baseline;
    t.diagnostic(`retained memory growth ${(growth / MiB).toFixed(1)} MiB (Content-Length ${length ? 'sent' : 'absent'})`);
    assert.ok(
      growth < FLAT,
      `retained memory grew by ${Math.round(growth / MiB)} MiB while streaming 1 GiB (Content-Length ${length ? 'sent' : 'absent'}); allowed ${FLAT / MiB} MiB`,
    );
    // Nothing stored: the same URL again (a HEAD, which a stored GET would answer) is a miss and reaches the origin.
    const head = await request(`${gw.url}/big?size=${GiB}&length=${length ? 'yes' : 'no'}`, { method: 'HEAD', dispatcher: agent });
    await head.body.dump();
    assert.match(String(head.headers['cache-status']), /fwd=miss/);
    assert.equal(originRequests, before + 2);
  }
});
