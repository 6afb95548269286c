/**
 * Keeping requests away from unhealthy endpoints: active health checks (down after fall failed checks,
 * up after rise passing ones, no request to a down endpoint), outlier ejection and return, the panic
 * threshold, and circuit breaking, all through the real gateway with real origins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import net from 'node:net';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { simpleConfig, startTestGateway } from './helpers/gateway.ts';
import { startGateway } from '../../src/index.ts';
import { endpointEvent } from './helpers/endpoint-events.ts';

/** An origin whose /healthz answers `state.status`, and whose other paths echo its name. */
async function checkedOrigin(name: string): Promise<Origin & { health: { status: number; answered: Map<number, number> }; traffic: () => number }> {
  /** `answered`: how many health checks it answered with each status. */
  const health = { status: 200, answered: new Map<number, number>() };
  let traffic = 0;
  const origin = await startOrigin(name, (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.url === '/healthz') {
      health.answered.set(health.status, (health.answered.get(health.status) ?? 0) + 1);
      res.writeHead(health.status).end();
      return;
    }
    traffic++;
    res.writeHead(200, { 'x-origin': name }).end(name);
  });
  return Object.assign(origin, { health, traffic: () => traffic });
}

async function originOf(url: string, init?: RequestInit): Promise<string> {
  const res = await fetch(url, init);
  assert.equal(res.status, 200);
  return res.text();
}

/** The status of one GET, its body read to the end. */
async function fetchStatus(url: string): Promise<number> {
  const res = await fetch(url);
  await res.text();
  return res.status;
}

test('health checks: down after fall failed checks, up after rise passing ones, no request reaches a down endpoint', async () => {
  const a = await checkedOrigin('a');
  const b = await checkedOrigin('b');
  // A timeout far above the interval: on a loaded machine an 80 ms timeout failed checks the origin
  // did answer with 200 (late), which marked endpoints down early, or both down (panic: traffic to all).
  const gw = await startTestGateway(
    simpleConfig([a.url, b.url], {
      upstream: { healthCheck: { type: 'http', path: '/healthz', interval: '100ms', timeout: '2s', jitter: 0, rise: 2, fall: 2 } },
    }),
  );
  try {
    // Both serve at first.
    const first = new Set([await originOf(`${gw.url}/`), await originOf(`${gw.url}/`)]);
    assert.deepEqual([...first].sort(), ['a', 'b']);

    // Counted in checks, not milliseconds (a loaded machine stretches the intervals): marked down
    // on the fall-th (2nd) failed check, before a third could be answered. The checks are
    // sequential, an interval apart, and the event comes with the second answer's result.
    const down = endpointEvent((e) => e.endpoint === b.url && !e.healthy, 'b marked down');
    b.health.status = 503;
    await down;
    assert.equal(b.health.answered.get(503), 2, 'marked down on the second failed check');

    const before = b.traffic();
    for (let i = 0; i < 20; i++) assert.equal(await originOf(`${gw.url}/`), 'a');
    assert.equal(b.traffic(), before, 'no request reached the down endpoint');
    assert.deepEqual(
      gw.gw.endpoints('app')?.map((e) => [e.url, e.healthy]),
      [
        [a.url, true],
        [b.url, false],
      ],
    );

    const up = endpointEvent((e) => e.endpoint === b.url && e.healthy, 'b marked up');
    const passedBefore = b.health.answered.get(200) ?? 0;
    b.health.status = 200;
    await up;
    assert.equal((b.health.answered.get(200) ?? 0) - passedBefore, 2, 'marked up on the second passing check');
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add(await originOf(`${gw.url}/`));
    assert.ok(seen.has('b'), 'the recovered endpoint takes traffic again');
  } finally {
    await gw.stop();
    await a.close();
    await b.close();
  }
});

test('health checks: tcp checks, initialState unhealthy, and a checker that survives a reload', async () => {
  const a = await checkedOrigin('a');
  const b = await checkedOrigin('b');
  const config = (extra: object): object =>
    simpleConfig([a.url, b.url], {
      // Timeouts far above the interval: with fall 1, one check that a loaded machine delays past a
      // short timeout would mark a up endpoint down.
      upstream: { healthCheck: { type: 'tcp', interval: '50ms', timeout: '2s', jitter: 0, rise: 1, fall: 1, initialState: 'unhealthy', ...extra } },
    });
  // Both start unhealthy until their first check (panic mode would still balance over them).
  const bothUp = Promise.all([endpointEvent((e) => e.endpoint === a.url && e.healthy, 'a up'), endpointEvent((e) => e.endpoint === b.url && e.healthy, 'b up')]);
  const gw = await startTestGateway(config({}));
  try {
    await bothUp;
    const down = endpointEvent((e) => e.endpoint === b.url && !e.healthy, 'b down (tcp)');
    await b.close();
    await down;
    // A reload that keeps the endpoint keeps its state: b stays down, with no flap to up.
    let flapped = false;
    const watch = endpointEvent((e) => e.endpoint === b.url && e.healthy, 'no flap', 400).then(
      () => (flapped = true),
      () => undefined,
    );
    const r = await gw.gw.reload(config({ timeout: '3s' }));
    assert.equal(r.ok, true);
    for (let i = 0; i < 6; i++) assert.equal(await originOf(`${gw.url}/`), 'a');
    await watch;
    assert.equal(flapped, false, 'b did not come back up across the reload');
    assert.equal(gw.gw.endpoints('app')?.find((e) => e.url === b.url)?.healthy, false);
  } finally {
    await gw.stop();
    await a.close();
  }
});

test('a gateway whose first config fails to start (its port taken) keeps nothing: no health checks afterwards, no access log file open', async () => {
  // One origin, checked on two paths: /failed by the gateway that fails to start, /live by one that starts.
  const seen = new Map<string, number>();
  let onCheck: (() => void) | undefined;
  const origin = await startOrigin('o', (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.set(req.url ?? '', (seen.get(req.url ?? '') ?? 0) + 1);
    onCheck?.();
    res.writeHead(200).end('o');
  });
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  const check = (path: string): object => ({ healthCheck: { type: 'http', path, interval: '50ms', timeout: '2s', jitter: 0, rise: 1, fall: 1 } });
  let live: Awaited<ReturnType<typeof startTestGateway>> | undefined;
  try {
    const logDir = await mkdtemp(join(tmpdir(), 'switchboard-failed-start-'));
    const accessLog = join(logDir, 'access.log');
    await assert.rejects(
      startGateway({
        config: simpleConfig([origin.url], { listener: { address: `127.0.0.1:${port}` }, upstream: check('/failed') }),
        accessLog,
        logLevel: 'silent',
      }),
      /EADDRINUSE|in use/,
    );
    // The access log was opened with the gateway: a failed start closes it.
    const open = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === accessLog;
      } catch {
        return false; // closed meanwhile (readdir's own descriptor)
      }
    });
    assert.deepEqual(open, [], 'no descriptor of the access log left open');
    await rm(logDir, { recursive: true, force: true });
    const failedChecks = seen.get('/failed') ?? 0;
    // Five checks of the live gateway (50 ms apart) are time enough for the failed one's to show.
    const fiveLive = guard(new Promise<void>((resolve) => (onCheck = () => (seen.get('/live') ?? 0) >= 5 && resolve())), 'five checks of the live gateway', 10_000);
    live = await startTestGateway(simpleConfig([origin.url], { upstream: check('/live') }));
    await fiveLive;
    // At most one that was on its way when the start failed.
    assert.ok((seen.get('/failed') ?? 0) <= failedChecks + 1, `the failed gateway checked on: ${seen.get('/failed')} after ${failedChecks}`);
  } finally {
    onCheck = undefined;
    await live?.stop();
    taken.close();
    await origin.close();
  }
});

test('outlier detection ejects an endpoint after consecutive failures, and it returns after the ejection time', async () => {
  let failing = true;
  const bad = await startOrigin('bad', (_req, res) => {
    if (failing) res.writeHead(500).end('boom');
    else res.writeHead(200, { 'x-origin': 'bad' }).end('bad');
  });
  const good = await startOrigin('good', (_req, res) => res.writeHead(200).end('good'));
  const gw = await startTestGateway(
    simpleConfig([bad.url, good.url], {
      upstream: { outlierDetection: { consecutiveFailures: 3, baseEjectionTime: '1s', maxEjectedPercent: 50 }, retries: { attempts: 1 } },
    }),
  );
  try {
    const ejected = endpointEvent((e) => e.endpoint === bad.url && e.ejected, 'bad ejected');
    const statuses: number[] = [];
    // Round robin alternates: three 500s from `bad` within six requests eject it.
    for (let i = 0; i < 6; i++) statuses.push(await fetchStatus(`${gw.url}/`));
    assert.deepEqual(statuses.filter((s) => s === 500).length, 3);
    const event = await ejected;
    assert.match(event.reason, /3 consecutive failures/);
    // Listened for from now: on a loaded machine the ejection may end while the checks below run.
    const returns = endpointEvent((e) => e.endpoint === bad.url && !e.ejected, 'bad returns');
    returns.catch(() => undefined); // awaited below; a timeout meanwhile is not an unhandled rejection
    const seenWhileEjected = bad.seen.length;
    for (let i = 0; i < 10; i++) assert.equal(await originOf(`${gw.url}/`), 'good');
    assert.equal(bad.seen.length, seenWhileEjected, 'no request reached the ejected endpoint');

    failing = false;
    await returns;
    const after = new Set<string>();
    for (let i = 0; i < 4; i++) after.add(await originOf(`${gw.url}/`));
    assert.deepEqual([...after].sort(), ['bad', 'good']);
  } finally {
    await gw.stop();
    await bad.close();
    await good.close();
  }
});

test('outlier detection: at most maxEjectedPercent of the endpoints are ejected at once', async () => {
  const origins = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startOrigin(n, (_req, res) => res.writeHead(502).end(n))));
  const gw = await startTestGateway(
    simpleConfig(
      origins.map((o) => o.url),
      { upstream: { outlierDetection: { consecutiveFailures: 1, baseEjectionTime: '30s', maxEjectedPercent: 50 }, retries: { attempts: 1 }, panicThreshold: 0 } },
    ),
  );
  try {
    for (let i = 0; i < 12; i++) assert.equal(await fetchStatus(`${gw.url}/`), 502);
    const ejected = gw.gw.endpoints('app')!.filter((e) => e.ejected).length;
    assert.equal(ejected, 2, 'half of four endpoints, never more');
  } finally {
    await gw.stop();
    for (const o of origins) await o.close();
  }
});

test('panic threshold: below it, traffic goes to every endpoint; with panic off, only to the healthy one', async () => {
  const origins = await Promise.all(['a', 'b', 'c', 'd'].map((n) => checkedOrigin(n)));
  // The healthy endpoint must not fail a check by being slow on a loaded machine (one failure, fall 1,
  // takes it out, and with panic off the request gets 503): a timeout well above the interval.
  const hc = { path: '/healthz', interval: '50ms', timeout: '2s', jitter: 0, rise: 1, fall: 1 };
  const run = async (panicThreshold: number): Promise<Set<string>> => {
    for (const o of origins) o.health.status = 200;
    const gw = await startTestGateway(
      simpleConfig(
        origins.map((o) => o.url),
        { upstream: { healthCheck: hc, panicThreshold } },
      ),
    );
    try {
      // Three of four go down: 25% healthy, below a 50% threshold.
      const downs = origins.slice(1).map((o) => endpointEvent((e) => e.endpoint === o.url && !e.healthy, `${o.name} down`));
      for (const o of origins.slice(1)) o.health.status = 503;
      await Promise.all(downs);
      const seen = new Set<string>();
      for (let i = 0; i < 16; i++) seen.add(await originOf(`${gw.url}/`));
      return seen;
    } finally {
      await gw.stop();
    }
  };
  try {
    assert.deepEqual([...(await run(50))].sort(), ['a', 'b', 'c', 'd'], 'panic: all four share the load');
    assert.deepEqual([...(await run(0))].sort(), ['a'], 'no panic: only the healthy one');
  } finally {
    for (const o of origins) await o.close();
  }
});

test('no endpoint available (all down, panic off): 503 NO_ENDPOINT at once with Retry-After', async () => {
  const a = await checkedOrigin('a');
  a.health.status = 500;
  const down = endpointEvent((e) => e.endpoint === a.url && !e.healthy, 'a down');
  const gw = await startTestGateway(
    simpleConfig([a.url], { upstream: { panicThreshold: 0, healthCheck: { path: '/healthz', interval: '50ms', timeout: '50ms', rise: 1, fall: 1 } } }),
  );
  try {
    await down;
    const res = await fetch(`${gw.url}/`);
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'NO_ENDPOINT');
    assert.equal(a.traffic(), 0);
  } finally {
    await gw.stop();
    await a.close();
  }
});

test('circuit breaker: past maxRequests requests queue, past maxQueued they get 503 at once, and a queued one times out with 503', async () => {
  const held: http.ServerResponse[] = [];
  const waiters: Array<[number, () => void]> = [];
  const slow = await startOrigin('slow', (_req, res) => {
    held.push(res);
    for (const [n, resolve] of waiters) if (held.length >= n) resolve();
  });
  /** Resolves once `n` requests are being held at the origin. */
  const holding = (n: number): Promise<void> =>
    guard(new Promise<void>((resolve) => (held.length >= n ? resolve() : waiters.push([n, resolve]))), `${n} requests held at the origin`);
  const gw = await startTestGateway(simpleConfig([slow.url], { upstream: { circuitBreaker: { maxRequests: 2, maxQueued: 1, queueTimeout: '300ms' } } }));
  const agent = new Agent({ connections: 10 });
  const get = (path: string): Promise<{ status: number; code?: string; body: string }> =>
    undiciFetch(`${gw.url}${path}`, { dispatcher: agent }).then(async (r) => {
      const body = await r.text();
      return { status: r.status, body, code: r.status >= 500 ? (JSON.parse(body) as { error: { code: string } }).error.code : undefined };
    });
  try {
    const inFlight = [get('/1'), get('/2')];
    await holding(2);
    // Two more: one takes the only queue place, the other is refused at once.
    const extra = [get('/3'), get('/4')];
    const refused = await Promise.race(extra);
    assert.equal(refused.status, 503);
    assert.equal(refused.code, 'UPSTREAM_OVERLOADED');
    assert.equal(held.length, 2, 'nothing past maxRequests reached the origin');
    // A slot frees up: the queued one goes through.
    held.shift()!.end('one');
    assert.equal((await inFlight[0]).body, 'one');
    await holding(2);
    for (const r of held.splice(0)) r.end('later');
    const results = (await Promise.all(extra)).map((r) => r.status).sort();
    assert.deepEqual(results, [200, 503]);
    assert.equal((await inFlight[1]).status, 200);

    // Two held again, one queued: it gives up after queueTimeout with 503.
    const again = [get('/5'), get('/6')];
    await holding(2);
    const waited = await get('/7');
    assert.equal(waited.status, 503);
    assert.equal(waited.code, 'UPSTREAM_OVERLOADED');
    assert.match(waited.body, /queueTimeout/);
    for (const r of held.splice(0)) r.end('done');
    await Promise.all(again);
  } finally {
    for (const r of held) r.end();
    await gw.stop();
    await agent.close();
    await slow.close();
  }
});
