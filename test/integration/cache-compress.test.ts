/**
 * The cache and compress policies on one route, `[edge-cache, compress]` as docs/policies.md says:
 * compress works on the origin's response, the cache stores the compressed variant under
 * `Vary: Accept-Encoding`, and a hit is served as stored (compress leaves an encoded body alone).
 * One compressed variant is made once and reused; clients accepting another coding, or none,
 * get their own variant.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const BODY = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) });
let served = 0;
let origin: Origin;
let gw: TestGateway;
const agent = new Agent();

before(async () => {
  origin = await startOrigin('o', (req, res) => {
    req.resume();
    served++;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
  gw = await startTestGateway({
    policies: {
      'edge-cache': { type: 'cache', store: { memory: '1MiB' } },
      compress: { type: 'compress' },
    },
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { site: { match: { path: '/' }, upstream: 'web', policies: ['edge-cache', 'compress'] } },
    upstreams: { web: { endpoints: [{ url: origin.url }] } },
  });
});

after(async () => {
  await gw.stop();
  await origin.close();
  await agent.close();
});

async function get(acceptEncoding: string | undefined): Promise<{ headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const res = await request(`${gw.url}/items`, { headers: acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }, dispatcher: agent });
  return { headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

test('a compressed variant is stored once and reused; another coding and identity are variants of their own', async () => {
  const first = await get('gzip');
  assert.equal(first.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(first.body).toString(), BODY);
  assert.match(String(first.headers.vary), /accept-encoding/i);
  assert.match(String(first.headers['cache-status']), /fwd=miss; fwd-status=200/);
  assert.equal(served, 1);

  const again = await get('gzip');
  assert.equal(again.headers['content-encoding'], 'gzip');
  assert.match(String(again.headers['cache-status']), /; hit/);
  assert.deepEqual(again.body, first.body, 'the stored compressed bytes, not compressed again');
  assert.equal(served, 1, 'served from the cache');

  const br = await get('br');
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(brotliDecompressSync(br.body).toString(), BODY);
  assert.equal(served, 2, 'another coding is another variant');
  assert.match(String((await get('br')).headers['cache-status']), /; hit/);

  const plain = await get(undefined);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body.toString(), BODY);
  assert.equal(served, 3, 'no coding is a variant of its own');
  assert.match(String((await get(undefined)).headers['cache-status']), /; hit/);
  assert.equal(served, 3);
});
