/**
 * The dashboard (issue 12, §4) and the access log's live tail it reads:
 * - the tail over server-sent events, read with fetch as the page does: a request made shows up,
 *   the filters (route, status class, text) hold, the token is needed, and `requestEnd` has a
 *   subscriber only while someone tails;
 * - the same tail through `workers: 2` (the supervisor serves the admin; the workers send lines);
 * - the page in Debian's Chromium (playwright-core): it loads under its CSP, its numbers move
 *   under load, the tail shows a request the test made, and draining an endpoint with its button
 *   stops the endpoint's traffic (counted at the origin). Screenshots go to test-results/.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { type Chromium, launchChromium, skipWithoutChromium } from './helpers/browser.ts';
import { startGateway, type Gateway } from '../../src/index.ts';
import { guard } from './helpers/guard.ts';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { ROOT } from './helpers/paths.ts';
import { named, Traffic } from './helpers/traffic.ts';

const TOKEN = 'dashboard-test-token-42';
const RESULTS = join(ROOT, 'test-results');

const dir = await mkdtemp(join(tmpdir(), 'switchboard-dashboard-'));
const gateways: Gateway[] = [];
const origins: Origin[] = [];
const instances: Instance[] = [];
after(async () => {
  for (const i of instances) i.kill();
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 500 })));
  await Promise.all(origins.map((o) => o.close()));
  await rm(dir, { recursive: true, force: true });
});

async function origin(name: string): Promise<Origin> {
  const o = await startOrigin(name, (req, res) => {
    if (req.url?.startsWith('/fail')) {
      req.resume();
      res.writeHead(503, { 'x-origin': name });
      res.end('failing');
      return;
    }
    named(name)(req, res);
  });
  origins.push(o);
  return o;
}

function config(urls: string[], extra: { admin?: object; top?: object } = {}): Record<string, unknown> {
  return {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { balancer: 'round-robin', endpoints: urls.map((url) => ({ url })) } },
    routes: {
      api: { match: { path: '/api/' }, upstream: 'app' },
      all: { match: { path: '/' }, upstream: 'app' },
    },
    admin: { address: '127.0.0.1:0', token: TOKEN, ...extra.admin },
    ...extra.top,
  };
}

async function start(cfg: object): Promise<{ gw: Gateway; admin: string; traffic: Traffic }> {
  const gw = await startGateway({ config: cfg, accessLog: 'off', logLevel: 'silent' });
  gateways.push(gw);
  return { gw, admin: gw.adminUrl()!, traffic: new Traffic(gw.url('web'), 8) };
}

interface TailEvent {
  event: string;
  data: string;
}

/** An open tail: its events as they come, and waits on them. */
class Tail {
  readonly events: TailEvent[] = [];
  readonly abort = new AbortController();
  status = 0;
  #buffer = '';
  #wake: (() => void) | undefined;
  ended = false;

  static async open(admin: string, query = '', token: string | null = TOKEN): Promise<Tail> {
    const t = new Tail();
    const res = await fetch(`${admin}/api/access-log/stream${query}`, {
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
      signal: t.abort.signal,
    });
    t.status = res.status;
    if (!res.ok) {
      await res.text();
      return t;
    }
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    void t.#read(res.body!.pipeThrough(new TextDecoderStream()).getReader());
    await t.next((e) => e.event === 'ready', 'the ready event');
    return t;
  }

  async #read(reader: ReadableStreamDefaultReader<string>): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.#buffer += value;
        let end = this.#buffer.indexOf('\n\n');
        while (end !== -1) {
          const frame = this.#buffer.slice(0, end);
          this.#buffer = this.#buffer.slice(end + 2);
          end = this.#buffer.indexOf('\n\n');
          let event = 'message';
          let data = '';
          for (const l of frame.split('\n')) {
            if (l.startsWith('event: ')) event = l.slice(7);
            else if (l.startsWith('data: ')) data += l.slice(6);
          }
          if (data !== '') this.events.push({ event, data });
        }
        this.#wake?.();
      }
    } catch {
      // aborted
    }
    this.ended = true;
    this.#wake?.();
  }

  /** Lines (parsed) of the access log received so far. */
  lines(): Array<{ path: string; status: number; route: string | null; endpoint: string | null }> {
    return this.events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data));
  }

  next(test: (e: TailEvent) => boolean, what: string, ms = 5000): Promise<TailEvent> {
    return guard(
      new Promise<TailEvent>((resolve) => {
        const check = (): void => {
          const found = this.events.find(test);
          if (found !== undefined) resolve(found);
          else if (!this.ended) this.#wake = check;
        };
        check();
      }),
      what,
      ms,
    );
  }

  close(): void {
    this.abort.abort();
  }
}

const requestEnd = diagnostics.channel('switchboard:request:end');

test('the access log tail: a request shows up; route, status and text filters; the token; subscribed only while tailing', async () => {
  const a = await origin('A');
  // Metrics off and no access log: nothing else listens to requestEnd.
  const { gw, admin, traffic } = await start(config([a.url], { top: { metrics: { enabled: false } } }));
  try {
    assert.equal(requestEnd.hasSubscribers, false, 'nobody listens before a tail opens');
    assert.equal((await Tail.open(admin, '', null)).status, 401, 'the stream needs the token');
    assert.equal((await Tail.open(admin, '?status=7xx')).status, 400, 'a bad status class is refused');

    const all = await Tail.open(admin);
    assert.equal(requestEnd.hasSubscribers, true, 'a tail subscribes');
    const failing = await Tail.open(admin, '?status=5xx');
    const api = await Tail.open(admin, '?route=api&q=MARKER');
    assert.equal((await traffic.send({ path: '/plain-1' })).status, 200);
    assert.equal((await traffic.send({ path: '/api/other' })).status, 200);
    assert.equal((await traffic.send({ path: '/api/marker-2' })).status, 200);
    assert.equal((await traffic.send({ path: '/fail-3' })).status, 503);
    assert.equal((await traffic.send({ path: '/api/Marker-end' })).status, 200);

    await all.next((e) => e.data.includes('/api/Marker-end'), 'the last request on the unfiltered tail');
    const seen = await all.next((e) => e.data.includes('/fail-3'), 'the 503 on the unfiltered tail');
    const line = JSON.parse(seen.data) as Record<string, unknown>;
    assert.equal(line.status, 503);
    assert.equal(line.route, 'all');
    assert.equal(line.endpoint, a.url);
    assert.deepEqual(
      all.lines().map((l) => l.path),
      ['/plain-1', '/api/other', '/api/marker-2', '/fail-3', '/api/Marker-end'],
    );
    await api.next((e) => e.data.includes('/api/Marker-end'), 'the last api line on the api tail');
    await failing.next((e) => e.data.includes('/fail-3'), 'the 503 on the 5xx tail');
    assert.deepEqual(
      failing.lines().map((l) => l.path),
      ['/fail-3'],
      'the 5xx tail shows only the 5xx',
    );
    // Lines come in order: the api tail has had every line before its last offered to it.
    assert.deepEqual(
      api.lines().map((l) => l.path),
      ['/api/marker-2', '/api/Marker-end'],
      'route api and the text "MARKER" (any case)',
    );

    for (const t of [all, failing, api]) t.close();
    await guardUntil(() => !requestEnd.hasSubscribers, 'the tap unsubscribed once the last tail closed');
    // The gateway still serves, and the tail can open again.
    const again = await Tail.open(admin);
    await traffic.send({ path: '/after' });
    await again.next((e) => e.data.includes('/after'), 'a line on a reopened tail');
    again.close();
  } finally {
    await traffic.close();
    void gw;
  }
});

async function guardUntil(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  let over = false;
  await guard(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (over) return;
        if (cond()) resolve();
        else setTimeout(check, 10);
      };
      check();
    }),
    what,
    ms,
  ).finally(() => {
    over = true;
  });
}

test('workers: 2: the supervisor streams the lines both workers send, filtered', async () => {
  const a = await origin('W');
  const { inst } = await Instance.startWith(
    dir,
    'workers',
    `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${a.url}" }] }
routes:
  all: { match: { path: / }, upstream: app }
admin: { address: "127.0.0.1:0", token: "${TOKEN}" }
`,
  );
  instances.push(inst);
  const admin = inst.lines.find((l) => l.msg === 'switchboard started' && l.worker === undefined)!.admin as string;
  const all = await Tail.open(admin);
  const filtered = await Tail.open(admin, '?q=keep');
  // The workers start sending once the supervisor's message reaches them: send until a line comes.
  const traffic = new Traffic(inst.url('web'), 4);
  try {
    let i = 0;
    await guard(
      (async () => {
        while (!all.events.some((e) => e.data.includes('/probe-'))) {
          await traffic.send({ path: `/probe-${i++}` });
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
      'a line from a worker',
      10_000,
    );
    // Over fresh connections, so that both workers answer some.
    const fresh = new Traffic(inst.url('web'), 8);
    const replies = await fresh.many(20, 8, (n) => ({ path: n % 2 === 0 ? `/keep-${n}` : `/skip-${n}`, headers: { connection: 'close' } }));
    await fresh.close();
    assert.ok(replies.every((r) => r.status === 200));
    await guardUntil(() => filtered.lines().length === 10, 'the ten /keep lines on the filtered tail', 10_000);
    assert.ok(
      filtered.lines().every((l) => l.path.startsWith('/keep-')),
      'only the lines with the text',
    );
    await guardUntil(() => all.lines().filter((l) => /^\/(keep|skip)-/.test(l.path)).length === 20, 'all twenty lines on the unfiltered tail', 10_000);
  } finally {
    all.close();
    filtered.close();
    await traffic.close();
  }
});

// ---- the page in a browser ----

let chrome: Chromium | undefined;
before(async () => {
  await mkdir(RESULTS, { recursive: true });
  chrome = await launchChromium({ viewport: { width: 1440, height: 900 } });
});
after(async () => {
  await chrome?.close();
});

async function attr(page: Page, selector: string, name: string): Promise<string | null> {
  return page.locator(selector).first().getAttribute(name, { timeout: 5000 });
}

test('the dashboard in Chromium: loads under its CSP, numbers move under load, the tail shows a request, Drain stops an endpoint', async (t) => {
  if (skipWithoutChromium(t, chrome)) return;
  const a = await origin('A');
  const b = await origin('B');
  const { admin, traffic } = await start(config([a.url, b.url]));
  const page = await chrome.context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  let load: Promise<void> | undefined;
  let loading = true;
  try {
    // `/` sends the browser to /dashboard; the token rides in the fragment (never sent to the server).
    const res = await page.goto(`${admin}/#token=${TOKEN}`, { timeout: 15_000 });
    assert.equal(new URL(page.url()).pathname, '/dashboard');
    assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
    assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    await page.waitForSelector('tr[data-endpoint]', { timeout: 10_000 });
    assert.equal(await page.locator('#upstreams tr[data-endpoint]').count(), 2);
    const before = Number(await attr(page, '[data-metric="requests-total"]', 'data-value'));

    // Under load, the numbers move.
    load = (async () => {
      let i = 0;
      while (loading) await traffic.send({ path: `/load/${i++}` });
    })();
    await page.waitForFunction((n) => Number(document.querySelector('[data-metric="requests-total"]')?.getAttribute('data-value')) > n + 20, before, { timeout: 10_000 });
    await page.waitForFunction(() => Number(document.querySelector('[data-metric="rps"]')?.getAttribute('data-value')) > 0, null, { timeout: 10_000 });
    await page.waitForFunction(() => Number(document.querySelector('tr[data-route="all"]')?.getAttribute('data-rps')) > 0, null, { timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector('[data-metric="p99"]')?.textContent?.endsWith('ms'), null, { timeout: 10_000 });
    for (const o of [a, b]) {
      await page.waitForFunction((url) => Number(document.querySelector(`tr[data-endpoint="${url}"]`)?.getAttribute('data-picks')) > 0, o.url, { timeout: 10_000 });
    }

    // The tail shows a request the test made.
    await page.waitForSelector('#tail[data-live="true"]', { timeout: 10_000 });
    const marker = `/marker-${Date.now()}`;
    await guard(
      (async () => {
        while ((await page.locator(`#tail tr[data-path="${marker}"]`).count()) === 0) {
          await traffic.send({ path: marker });
          await page.waitForTimeout(200);
        }
      })(),
      'the marker request in the tail',
      10_000,
    );
    await page.screenshot({ path: join(RESULTS, 'dashboard-load.png'), fullPage: true });

    // Drain A with its button: from then on, no request reaches A.
    await page.locator(`tr[data-endpoint="${a.url}"] button[data-action="drain"]`).click();
    await page.waitForSelector(`tr[data-endpoint="${a.url}"][data-admin="drain"]`, { timeout: 10_000 });
    loading = false;
    await load;
    const seenA = a.seen.length;
    const replies = await traffic.many(60, 4);
    assert.deepEqual(new Set(replies.map((r) => r.origin)), new Set(['B']), 'every request went to B');
    // Under more load, B's share of the picks (over the page's window) climbs to all of them.
    loading = true;
    load = (async () => {
      let i = 0;
      while (loading) await traffic.send({ path: `/after-drain/${i++}` });
    })();
    await page.waitForFunction((url) => Number(document.querySelector(`tr[data-endpoint="${url}"]`)?.getAttribute('data-share')) > 0.9, b.url, { timeout: 30_000 });
    await page.screenshot({ path: join(RESULTS, 'dashboard-drained.png'), fullPage: true });
    loading = false;
    await load;
    assert.equal(a.seen.length, seenA, 'the drained endpoint got no new request');
    assert.deepEqual(problems, [], 'no script error and no CSP violation on the page');
  } finally {
    loading = false;
    await load?.catch(() => undefined);
    await page.close();
    await traffic.close();
  }
});

test('the dashboard without a token configured (loopback, read-only): reads work; the action buttons say they need the token', async (t) => {
  if (skipWithoutChromium(t, chrome)) return;
  const a = await origin('R');
  const { admin, traffic } = await start(config([a.url], { admin: { token: undefined } }));
  const page = await chrome.context.newPage();
  try {
    await page.goto(`${admin}/dashboard`, { timeout: 15_000 });
    await page.waitForSelector('tr[data-endpoint]', { timeout: 10_000 });
    const drain = page.locator('tr[data-endpoint] button[data-action="drain"]');
    assert.equal(await drain.isDisabled(), true);
    assert.equal(await drain.getAttribute('title'), 'needs the admin token');
    assert.match((await page.locator('#actions-note').textContent()) ?? '', /need the admin token/);
    assert.equal(await page.locator('#actions-note').isVisible(), true);
    await page.waitForSelector('#tail[data-live="true"]', { timeout: 10_000 });
    await traffic.send({ path: '/read-only' });
    await page.waitForFunction(() => Number(document.querySelector('[data-metric="requests-total"]')?.getAttribute('data-value')) > 0, null, { timeout: 10_000 });
    await page.waitForSelector('#tail tr[data-path="/read-only"]', { timeout: 10_000 });
  } finally {
    await page.close();
    await traffic.close();
  }
});
