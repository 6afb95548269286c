/**
 * CORS checked by a real browser: a page on one origin (`http://127.0.0.1:<page port>`) calls
 * `fetch` on a Switchboard route on another (`http://localhost:<gateway port>`), credentialed and
 * with a non-simple header, so Chromium sends a preflight first. Debian's Chromium driven by
 * playwright-core (no browser download); `.ci/run` installs `chromium` when it is missing, and
 * these tests skip only when /usr/bin/chromium is absent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import type { BrowserContext, Page } from 'playwright-core';
import { type Chromium, launchChromium, skipWithoutChromium } from './helpers/browser.ts';
import type { RequestSession } from '../../src/http/session.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { guard } from './helpers/guard.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { until } from './helpers/websocket.ts';

/** The page: `callApi(url)` makes the credentialed, preflighted fetch and reports what the script could see. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>app</title>
<script>
window.callApi = async (url) => {
  try {
    const r = await fetch(url, {
      method: 'POST',
      mode: 'cors',
      credentials: 'include',
      headers: { 'content-type': 'application/json', 'x-client-version': '7' },
      body: JSON.stringify({ order: 1 }),
    });
    return { ok: true, status: r.status, body: await r.text(), total: r.headers.get('x-total'), hidden: r.headers.get('x-hidden') };
  } catch (e) {
    return { ok: false, error: e.name + ': ' + e.message };
  }
};
</script>
<p>app</p>
`;

interface Outcome {
  ok: boolean;
  status?: number;
  body?: string;
  total?: string | null;
  hidden?: string | null;
  error?: string;
}

let api: Origin;
let site: Origin;
let gw: TestGateway;
let chrome: Chromium | undefined;
let browser: BrowserContext | undefined;
/** Every request the gateway finished: method, path, status. */
const handled: Array<{ method: string; path: string; status: number }> = [];
const ended = diagnostics.channel('switchboard:request:end');
const record = (m: unknown): void => {
  const s = m as RequestSession;
  handled.push({ method: s.down.method, path: s.path, status: s.status });
};

before(async () => {
  api = await startOrigin('api', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-total': '42', 'x-hidden': 'not exposed' });
      res.end(JSON.stringify({ method: req.method, body: Buffer.concat(chunks).toString(), version: req.headers['x-client-version'] }));
    });
  });
  site = await startOrigin('site', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  const pageOrigin = `http://127.0.0.1:${site.port}`;
  gw = await startTestGateway({
    policies: {
      'web-app': { type: 'cors', origins: [pageOrigin], methods: ['GET', 'POST'], credentials: true, maxAge: '10m', exposedHeaders: ['x-total'] },
      partner: { type: 'cors', origins: ['https://partner.example'], methods: ['GET', 'POST'], credentials: true },
    },
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: {
      api: { match: { path: '/api/' }, upstream: 'api', policies: ['web-app'] },
      partner: { match: { path: '/partner/' }, upstream: 'api', policies: ['partner'] },
    },
    upstreams: { api: { endpoints: [{ url: api.url }] } },
  });
  ended.subscribe(record);
  chrome = await launchChromium();
  browser = chrome?.context;
});

after(async () => {
  ended.unsubscribe(record);
  try {
    await chrome?.close();
  } finally {
    await gw.stop();
    await api.close();
    await site.close();
  }
});

/** A fresh page of the page origin, closed after `fn`; CORS errors Chromium logs go into failure messages. */
async function onPage<T>(fn: (page: Page, console: string[]) => Promise<T>): Promise<T> {
  const page = await browser!.newPage();
  const logged: string[] = [];
  page.on('console', (m) => logged.push(m.text()));
  try {
    await page.goto(`${site.url}/`, { timeout: 15_000 });
    return await fn(page, logged);
  } finally {
    await page.close();
  }
}

function call(page: Page, url: string): Promise<Outcome> {
  return guard(
    page.evaluate((u) => (window as unknown as { callApi(u: string): Promise<Outcome> }).callApi(u), url),
    `the page's fetch of ${url}`,
    15_000,
  );
}

test('an allowed origin: the preflight is answered by the gateway, the page reads the body and the exposed header', { timeout: 60_000 }, async (t) => {
  if (skipWithoutChromium(t, chrome)) return;
  const url = `http://localhost:${gw.port}/api/orders`;
  const seen = api.seen.length;
  const outcome = await onPage(async (page, logged) => {
    const o = await call(page, url);
    assert.equal(o.ok, true, `fetch failed: ${o.error}; console: ${logged.join(' | ')}`);
    return o;
  });
  assert.equal(outcome.status, 200);
  assert.deepEqual(JSON.parse(outcome.body!), { method: 'POST', body: '{"order":1}', version: '7' });
  assert.equal(outcome.total, '42', 'an exposed header is readable');
  assert.equal(outcome.hidden, null, 'a header not exposed is hidden from the script');
  assert.deepEqual(
    api.seen.slice(seen).map((r) => `${r.method} ${r.url}`),
    ['POST /api/orders'],
    'the preflight never reached the origin',
  );
  await until(() => handled.some((h) => h.method === 'OPTIONS' && h.path === '/api/orders'), 'the gateway to log the preflight');
  assert.deepEqual(
    handled.filter((h) => h.path === '/api/orders').map((h) => `${h.method} ${h.status}`),
    ['OPTIONS 204', 'POST 200'],
    'Chromium sent a preflight, the gateway answered it',
  );
});

test('a refused origin: the preflight fails, fetch rejects, the request never reaches the origin', { timeout: 60_000 }, async (t) => {
  if (skipWithoutChromium(t, chrome)) return;
  const url = `http://localhost:${gw.port}/partner/orders`;
  const seen = api.seen.length;
  const { outcome, logged } = await onPage(async (page, logged) => ({ outcome: await call(page, url), logged }));
  assert.equal(outcome.ok, false, `the fetch must fail; it got ${JSON.stringify(outcome)}`);
  assert.match(outcome.error!, /^TypeError: /);
  assert.ok(
    logged.some((line) => /blocked by CORS policy: Response to preflight request doesn't pass access control check/.test(line)),
    `Chromium blames the preflight; console: ${logged.join(' | ')}`,
  );
  await until(() => handled.some((h) => h.method === 'OPTIONS' && h.path === '/partner/orders'), 'the gateway to log the preflight');
  assert.deepEqual(
    handled.filter((h) => h.path === '/partner/orders').map((h) => `${h.method} ${h.status}`),
    ['OPTIONS 403'],
    'only the preflight came, and it was refused',
  );
  assert.equal(api.seen.length, seen, 'nothing reached the origin');
});
