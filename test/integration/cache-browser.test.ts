/**
 * The `cache` policy as a browser sees it (issue 14): a page served through the gateway fetches a
 * resource the origin marks cacheable for shared caches only (`s-maxage=600, max-age=0`, so
 * Chromium's own cache does not answer the second fetch); the first response's `Cache-Status`
 * says it was a miss and stored, the second's that the gateway answered it (a hit), and the origin
 * saw the resource once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, skipWithoutChromium } from './helpers/browser.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

let origin: Origin;
let gw: TestGateway;
let dataRequests = 0;

before(async () => {
  origin = await startOrigin('o', (req, res) => {
    req.resume();
    if (req.url === '/data') {
      dataRequests++;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 's-maxage=600, max-age=0' });
      res.end(JSON.stringify({ n: dataRequests }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'no-store' });
    res.end('<!doctype html><title>cache</title><p>page</p>');
  });
  gw = await startTestGateway({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
    policies: { edge: { type: 'cache', store: { memory: '1MiB' } } },
    routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['edge'] } },
  });
});

after(async () => {
  await gw.stop();
  await origin.close();
});

test("Chromium: a page's second fetch of a shared-cacheable resource is a gateway hit (Cache-Status read by the page and seen by the browser)", async (t) => {
  const chrome = await launchChromium();
  if (skipWithoutChromium(t, chrome)) return;
  try {
    const page = await chrome.context.newPage();
    const seen: string[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname === '/data') seen.push(r.headers()['cache-status'] ?? '');
    });
    await page.goto(`${gw.url}/`);
    const got = await page.evaluate(async () => {
      const out: { status: string; body: string }[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await fetch('/data');
        out.push({ status: res.headers.get('cache-status') ?? '', body: await res.text() });
      }
      return out;
    });
    assert.match(got[0]!.status, /^Switchboard; fwd=miss; fwd-status=200/);
    assert.match(got[1]!.status, /^Switchboard; hit/);
    assert.equal(got[1]!.body, got[0]!.body, 'the stored body');
    assert.equal(dataRequests, 1, 'the origin saw the resource once');
    assert.equal(seen.length, 2);
    assert.match(seen[1]!, /^Switchboard; hit/);
  } finally {
    await chrome.close();
  }
});
