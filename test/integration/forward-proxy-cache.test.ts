/**
 * The cache policy on a forward listener (issue 15 §5): plain-HTTP absolute-form requests are
 * cached, keyed by the absolute URL (scheme, destination host and port, path: two destinations
 * with the same path never share an entry), `private` responses never stored, and nothing inside
 * a CONNECT tunnel is seen, so nothing there is cached.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { ProxyAgent, request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { forwardConfig } from './helpers/forward.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

/** An origin answering every path with its name and a count, cacheable unless the path says private. */
function countingOrigin(name: string): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  let n = 0;
  return (req, res) => {
    n++;
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': req.url?.startsWith('/private') ? 'private, max-age=60' : 'max-age=60' });
    res.end(`${name} ${n}`);
  };
}

describe('forward proxy: caching', () => {
  let a: Origin;
  let b: Origin;
  let gw: TestGateway;
  let absolute: ProxyAgent;
  let tunnelling: ProxyAgent;

  before(async () => {
    a = await startOrigin('a', countingOrigin('a'));
    b = await startOrigin('b', countingOrigin('b'));
    gw = await startTestGateway(forwardConfig({}, { policies: ['proxy-cache'] }, { policies: { 'proxy-cache': { type: 'cache', store: { memory: '1MiB' } } } }), 'proxy');
    absolute = new ProxyAgent({ uri: `http://127.0.0.1:${gw.port}` });
    tunnelling = new ProxyAgent({ uri: `http://127.0.0.1:${gw.port}`, proxyTunnel: true });
  });
  after(async () => {
    await absolute?.close();
    await tunnelling?.close();
    await gw?.stop();
    await a?.close();
    await b?.close();
  });

  async function get(url: string, dispatcher: ProxyAgent): Promise<{ body: string; cache: string | undefined }> {
    const res = await request(url, { dispatcher });
    const cache = res.headers['cache-status'];
    return { body: await res.body.text(), cache: Array.isArray(cache) ? cache.join() : cache };
  }

  test('keyed by the absolute URL: a hit for the same destination, a miss for another with the same path', async () => {
    const first = await get(`${a.url}/same`, absolute);
    assert.equal(first.body, 'a 1');
    assert.match(first.cache ?? '', /fwd=miss/);
    const again = await get(`${a.url}/same`, absolute);
    assert.equal(again.body, 'a 1');
    assert.match(again.cache ?? '', /hit/);
    const other = await get(`${b.url}/same`, absolute);
    assert.equal(other.body, 'b 1', 'another destination, its own entry');
    assert.equal(a.seen.length, 1);
  });

  test('private responses are never stored', async () => {
    assert.equal((await get(`${a.url}/private/x`, absolute)).body, 'a 2');
    assert.equal((await get(`${a.url}/private/x`, absolute)).body, 'a 3');
  });

  test('inside a CONNECT tunnel nothing is cached (the proxy sees only bytes)', async () => {
    const before = b.seen.length;
    const first = await get(`${b.url}/tunnelled`, tunnelling);
    const second = await get(`${b.url}/tunnelled`, tunnelling);
    assert.notEqual(first.body, second.body);
    assert.equal(first.cache, undefined);
    assert.equal(b.seen.length, before + 2);
  });
});
