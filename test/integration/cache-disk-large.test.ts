/**
 * The `cache` policy's disk store and objects larger than what it holds in memory (issue 14): a
 * 64 MiB response is written to its file as it arrives and a hit is read from the file as the
 * client takes it, so the memory the process retains grows far less than the object, with and
 * without Content-Length, for the whole object and for a range of it; a body cut off mid-way by
 * the origin leaves nothing servable (the next request goes to the origin).
 *
 * The gateway, the origin and the client share this process (as in cache-large.test.ts): the
 * origin writes one 64 KiB block over and over, honouring backpressure, and the client hashes and
 * drops what it reads; growth of the retained memory (JS heap and live buffers after a full
 * collection, helpers/big-body.ts) past the warm-up is the gateway's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { drainBody, retainedMemory } from './helpers/big-body.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const MiB = 1024 * 1024;
const SIZE = 64 * MiB;
const BLOCK = randomBytes(64 * 1024);
/** Retained memory growth allowed over the baseline: a few chunks and socket buffers in flight, well below the 64 MiB object. */
const FLAT = 24 * MiB;

let origin: Origin;
let gw: TestGateway;
let dir: string;
const agent = new Agent({ pipelining: 0 });
const originRequests = new Map<string, number>();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sb-disk-large-'));
  origin = await startOrigin('o', async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://o');
    originRequests.set(url.pathname, (originRequests.get(url.pathname) ?? 0) + 1);
    req.resume();
    const size = Number(url.searchParams.get('size'));
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'cache-control': 'max-age=600' };
    if (url.searchParams.get('length') === 'yes') headers['content-length'] = size;
    res.writeHead(200, headers);
    const cutAt = url.searchParams.has('cut') ? size / 2 : Infinity;
    for (let sent = 0; sent < size; sent += BLOCK.length) {
      if (res.destroyed) return;
      if (sent >= cutAt) {
        // Cut off mid-body: the connection goes without the rest.
        res.socket?.destroy();
        return;
      }
      if (!res.write(BLOCK)) await once(res, 'drain');
    }
    res.end();
  });
  gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    // 1 GiB of disk: the default maxObjectSize is an eighth of it (128 MiB).
    policies: { big: { type: 'cache', store: { disk: { path: dir, size: '1GiB' } } } },
    routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['big'] } },
  });
});

after(async () => {
  await gw.stop();
  await origin.close();
  await agent.close();
  await rm(dir, { recursive: true, force: true });
});

interface Got {
  status: number;
  bytes: number;
  sha1: string;
  cacheStatus: string;
  contentRange: string | undefined;
  peakRetained: number;
}

/** GETs `path`, hashing and dropping the body; the most memory retained while reading. */
async function fetchBig(path: string, headers: Record<string, string> = {}): Promise<Got> {
  const res = await request(`${gw.url}${path}`, { dispatcher: agent, headers });
  const { bytes, sha1, peakRetained } = await drainBody(res.body as AsyncIterable<Buffer>, 16 * MiB);
  const cr = res.headers['content-range'];
  return {
    status: res.statusCode,
    bytes,
    sha1,
    cacheStatus: String(res.headers['cache-status'] ?? ''),
    contentRange: typeof cr === 'string' ? cr : undefined,
    peakRetained,
  };
}

function sha1Of(start: number, end: number): string {
  const hash = createHash('sha1');
  for (let n = Math.floor(start / BLOCK.length) * BLOCK.length; n < end; n += BLOCK.length) {
    const from = Math.max(start - n, 0);
    const to = Math.min(end - n, BLOCK.length);
    hash.update(BLOCK.subarray(from, to));
  }
  return hash.digest('hex');
}

test('disk: a 64 MiB object is stored as it streams and served from its file (whole and a range) with retained memory growth far below its size', async (t) => {
  // Warm-up: one stored and served object (buffers, JIT, undici pools), then the baseline.
  await fetchBig(`/warm?size=${SIZE}&length=yes`);
  await fetchBig(`/warm?size=${SIZE}&length=yes`);
  const baseline = retainedMemory();
  const whole = sha1Of(0, SIZE);
  for (const length of ['yes', 'no']) {
    const path = `/big-${length}?size=${SIZE}&length=${length}`;
    const miss = await fetchBig(path);
    assert.equal(miss.status, 200);
    assert.equal(miss.bytes, SIZE);
    assert.equal(miss.sha1, whole);
    assert.match(miss.cacheStatus, /fwd=miss/);
    const hit = await fetchBig(path);
    assert.equal(hit.status, 200);
    assert.match(hit.cacheStatus, /^Switchboard; hit/, `stored (Content-Length ${length}): the second request is a hit`);
    assert.equal(hit.bytes, SIZE);
    assert.equal(hit.sha1, whole, 'the stored bytes are the origin’s');
    const start = 10 * MiB + 7;
    const end = 50 * MiB;
    const part = await fetchBig(path, { range: `bytes=${start}-${end - 1}` });
    assert.equal(part.status, 206);
    assert.equal(part.contentRange, `bytes ${start}-${end - 1}/${SIZE}`);
    assert.equal(part.sha1, sha1Of(start, end));
    assert.equal(originRequests.get(`/big-${length}`), 1, 'the hit and the range come from the store');
    for (const got of [miss, hit, part]) {
      const growth = got.peakRetained - baseline;
      t.diagnostic(`retained memory growth ${(growth / MiB).toFixed(1)} MiB (status ${got.status}, Content-Length ${length})`);
      assert.ok(growth < FLAT, `retained memory grew by ${Math.round(growth / MiB)} MiB for a 64 MiB object (Content-Length ${length}); allowed ${FLAT / MiB} MiB`);
    }
  }
});

test('disk: a large body cut off mid-way by the origin is never served: the next request goes to the origin, no temp file stays', async () => {
  for (const length of ['yes', 'no']) {
    const path = `/cut-${length}?size=${SIZE}&length=${length}&cut=1`;
    await assert.rejects(fetchBig(path), 'the client sees the response cut');
    const again = await fetchBig(path).catch(() => undefined);
    assert.equal(originRequests.get(`/cut-${length}`), 2, 'nothing was stored: the origin is asked again');
    assert.equal(again, undefined);
  }
  // The cut writes' temp files are removed (asynchronously, once the write chain settles).
  const temps = async (): Promise<string[]> => {
    const found: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else if (e.name.startsWith('.tmp-')) found.push(e.name);
      }
    };
    await walk(dir);
    return found;
  };
  for (let i = 0; (await temps()).length > 0; i++) {
    assert.ok(i < 200, `temp files left: ${(await temps()).join(', ')}`);
    await new Promise((r) => setImmediate(r));
  }
});
