import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { HealthChecker, type HealthCheckConfig, type HealthTarget } from './active.ts';

/** Guard for every wait: a test never hangs, it fails. */
const GUARD_MS = 5000;

const base: HealthCheckConfig = {
  type: 'http',
  method: 'GET',
  path: '/health',
  host: undefined,
  statuses: [[200, 399]],
  bodyContains: undefined,
  interval: 50,
  // Far above the interval and the guard: a check the loaded machine answers late is never a
  // spurious timeout (with fall 1 that would flip a healthy origin). Tests of the timeout set their own.
  timeout: 10_000,
  jitter: 0,
  rise: 2,
  fall: 3,
  initialState: 'healthy',
};

function config(overrides: Partial<HealthCheckConfig>): HealthCheckConfig {
  return { ...base, ...overrides };
}

/** Resolves with p, or rejects when it takes longer than the guard. */
function guard<T>(p: Promise<T>, what: string, ms = GUARD_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

interface Seen {
  method: string;
  url: string;
  host: string | undefined;
  userAgent: string | undefined;
  status: number;
  at: number;
}

/** A real HTTP origin on 127.0.0.1 whose answer can be switched; records every request it receives. */
interface Origin {
  target: HealthTarget;
  port: number;
  status: number;
  /** Statuses to answer with, in order, before falling back to `status`. */
  script: number[];
  body: string;
  /** When true, requests are received but never answered. */
  silent: boolean;
  requests: Seen[];
  connections: number;
  sockets: Set<net.Socket>;
  /** Resolves when the origin has received at least n requests in total. */
  waitForRequests(n: number): Promise<void>;
}

async function httpOrigin(t: TestContext): Promise<Origin> {
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const server = http.createServer((req, res) => {
    const status = origin.script.shift() ?? origin.status;
    origin.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      host: req.headers.host,
      userAgent: req.headers['user-agent'],
      status,
      at: performance.now(),
    });
    for (const w of waiters.filter((w) => origin.requests.length >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    if (origin.silent) return;
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(origin.body);
  });
  server.on('connection', (socket) => {
    origin.connections++;
    origin.sockets.add(socket);
    socket.on('close', () => origin.sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const origin: Origin = {
    target: { origin: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}` },
    port,
    status: 200,
    script: [],
    body: 'OK',
    silent: false,
    requests: [],
    connections: 0,
    sockets: new Set(),
    waitForRequests(n) {
      if (origin.requests.length >= n) return Promise.resolve();
      return guard(new Promise<void>((resolve) => waiters.push({ n, resolve })), `${n} requests`);
    },
  };
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return origin;
}

/** A raw TCP server (for garbage responses and never-ending bodies). */
async function tcpServer(
  t: TestContext,
  onSocket: (socket: net.Socket) => void,
): Promise<{ port: number; accepted: () => number; waitForAccepted: (n: number) => Promise<void> }> {
  let accepted = 0;
  let waiter: { n: number; resolve: () => void } | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted++;
    if (waiter && accepted >= waiter.n) waiter.resolve();
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    waitForAccepted: (n) => (accepted >= n ? Promise.resolve() : guard(new Promise<void>((resolve) => (waiter = { n, resolve })), `${n} connections`)),
  };
}

/** A port on 127.0.0.1 that nothing listens on: bind a server, note its port, close it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function targetFor(port: number, host = '127.0.0.1'): HealthTarget {
  return { origin: `http://${host}:${port}`, host: `${host}:${port}` };
}

interface Change {
  healthy: boolean;
  reason: string;
  at: number;
}

/** Records onChange calls; next() waits (guarded) for the next one. */
function recorder() {
  const events: Change[] = [];
  let consumed = 0;
  let wake: (() => void) | undefined;
  return {
    events,
    onChange(healthy: boolean, reason: string): void {
      events.push({ healthy, reason, at: performance.now() });
      wake?.();
    },
    async next(what = 'a state change'): Promise<Change> {
      while (consumed >= events.length) {
        await guard(new Promise<void>((resolve) => (wake = resolve)), what);
      }
      return events[consumed++];
    },
  };
}

/** Creates a checker that is stopped when the test ends. */
function checker(
  t: TestContext,
  target: HealthTarget,
  cfg: HealthCheckConfig,
  onChange: (healthy: boolean, reason: string) => void,
  options?: { random?: () => number },
): HealthChecker {
  const c = new HealthChecker(target, cfg, onChange, options);
  t.after(() => c.stop());
  return c;
}

test('http: a healthy origin stays healthy; fall failures turn it unhealthy, rise successes back', async (t) => {
  const origin = await httpOrigin(t);
  const changes = recorder();
  const c = checker(t, origin.target, config({ interval: 50, fall: 3, rise: 2 }), changes.onChange);
  c.start();

  await origin.waitForRequests(3);
  assert.equal(c.healthy, true);
  assert.equal(changes.events.length, 0, 'no callback while nothing flips');

  origin.status = 503;
  const down = await changes.next('the down flip');
  assert.equal(down.healthy, false);
  assert.equal(down.reason, '3 consecutive failures, last: status 503');
  assert.equal(origin.requests.filter((r) => r.status === 503).length, 3, 'exactly fall failing checks');
  assert.equal(c.healthy, false);
  assert.equal(c.lastResult, 'status 503');

  origin.status = 200;
  const servedBefore = origin.requests.length;
  const up = await changes.next('the up flip');
  assert.equal(up.healthy, true);
  assert.equal(up.reason, '2 consecutive successes, last: ok');
  assert.equal(origin.requests.slice(servedBefore).filter((r) => r.status === 200).length, 2, 'exactly rise passing checks');
  assert.equal(c.lastResult, 'ok');
  assert.equal(changes.events.length, 2);
  assert.ok(c.checks >= 8);
});

test('streaks: a success resets the failure streak and a failure resets the success streak', async (t) => {
  const origin = await httpOrigin(t);
  origin.script = [503, 503, 200, 503, 503, 200, 503, 503, 503];
  const changes = recorder();
  const c = checker(t, origin.target, config({ interval: 5, fall: 3, rise: 2 }), changes.onChange);
  c.start();
  const down = await changes.next();
  assert.equal(down.healthy, false);
  assert.equal(origin.requests.length, 9, 'only three failures in a row flip it');
  assert.equal(down.reason, '3 consecutive failures, last: status 503');

  origin.script = [200, 503, 200, 503, 200, 200];
  const up = await changes.next();
  assert.equal(up.healthy, true);
  assert.equal(origin.requests.length, 15, 'only two successes in a row flip it back');
  assert.equal(changes.events.length, 2);
});

test('http: method, path and Host header are sent as configured (Host defaults to host:port)', async (t) => {
  const origin = await httpOrigin(t);
  const custom = checker(t, origin.target, config({ method: 'HEAD', path: '/status?deep=1', host: 'health.example' }), () => undefined);
  custom.start();
  await origin.waitForRequests(1);
  custom.stop();
  const first = origin.requests[0];
  assert.equal(first.method, 'HEAD');
  assert.equal(first.url, '/status?deep=1');
  assert.equal(first.host, 'health.example');
  assert.equal(first.userAgent, 'switchboard-health-check');

  const plain = checker(t, origin.target, config({}), () => undefined);
  plain.start();
  await origin.waitForRequests(2);
  const second = origin.requests[1];
  assert.equal(second.method, 'GET');
  assert.equal(second.url, '/health');
  assert.equal(second.host, `127.0.0.1:${origin.port}`);
});

test('http: status ranges are inclusive and a status outside them fails', async (t) => {
  const origin = await httpOrigin(t);
  origin.status = 302;
  const changes = recorder();
  const strict = checker(t, origin.target, config({ statuses: [[200, 299]], fall: 1 }), changes.onChange);
  strict.start();
  const down = await changes.next();
  assert.equal(down.healthy, false);
  assert.equal(strict.lastResult, 'status 302');
  strict.stop();

  const upChanges = recorder();
  const ranged = checker(
    t,
    origin.target,
    config({
      statuses: [
        [200, 200],
        [300, 302],
      ],
      rise: 1,
      initialState: 'unhealthy',
    }),
    upChanges.onChange,
  );
  ranged.start();
  assert.equal((await upChanges.next()).healthy, true, '302 is inside [300, 302]');
});

test('http: bodyContains passes when the body has the text and fails when it does not', async (t) => {
  const origin = await httpOrigin(t);
  origin.body = '{"status":"UP","checks":[]}';

  const pass = recorder();
  const good = checker(t, origin.target, config({ bodyContains: '"UP"', rise: 1, initialState: 'unhealthy' }), pass.onChange);
  good.start();
  assert.equal((await pass.next()).healthy, true);
  assert.equal(good.lastResult, 'ok');

  const fail = recorder();
  const bad = checker(t, origin.target, config({ bodyContains: 'DOWN', fall: 1 }), fail.onChange);
  bad.start();
  const down = await fail.next();
  assert.equal(down.healthy, false);
  assert.equal(bad.lastResult, 'body does not contain "DOWN"');
});

test('http: bodyContains against a never-ending body fails after 64 KiB, without waiting for the timeout', async (t) => {
  const server = await tcpServer(t, (socket) => {
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
      const chunk = 'x'.repeat(16 * 1024);
      const pump = (): void => {
        while (!socket.destroyed && socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`));
      };
      socket.on('drain', pump);
      pump();
    });
  });
  const changes = recorder();
  // A timeout far above the guard of changes.next(): waiting for it fails the test (and would say
  // 'timeout after …', not what the body lacks).
  const c = checker(t, targetFor(server.port), config({ bodyContains: 'needle', fall: 1, timeout: 30_000 }), changes.onChange);
  c.start();
  const down = await changes.next();
  assert.equal(down.healthy, false);
  assert.equal(c.lastResult, 'body does not contain "needle"', 'decided by the 64 KiB cap, not the timeout');
});

test('http: one keep-alive connection is reused; a failed check closes it and the next opens a fresh one', async (t) => {
  const origin = await httpOrigin(t);
  const changes = recorder();
  const c = checker(t, origin.target, config({ interval: 10, fall: 1 }), changes.onChange);
  c.start();
  await origin.waitForRequests(4);
  assert.equal(origin.connections, 1, 'four checks over one connection');

  origin.status = 503;
  assert.equal((await changes.next()).healthy, false);
  origin.status = 200;
  await origin.waitForRequests(origin.requests.length + 1);
  assert.equal(origin.connections, 2, 'a fresh connection after the failure');
});

test('http: an origin that never answers fails at exactly the timeout and its connection is closed', async (t) => {
  const origin = await httpOrigin(t);
  origin.silent = true;
  const changes = recorder();
  const c = checker(t, origin.target, config({ timeout: 200, fall: 1 }), changes.onChange);
  const started = performance.now();
  c.start();
  await origin.waitForRequests(1);
  const [socket] = origin.sockets;
  assert.ok(socket);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  const down = await changes.next();
  const elapsed = down.at - started;
  assert.equal(down.healthy, false);
  assert.equal(c.lastResult, 'timeout after 200ms');
  assert.equal(down.reason, '1 consecutive failures, last: timeout after 200ms');
  // Not before the timeout; a hang (or a timer far longer than configured) fails changes.next()'s guard.
  assert.ok(elapsed >= 195, `timed out after ${Math.round(elapsed)}ms`);
  await guard(closed, 'the timed-out connection to close');
});

test('http: refused connections, garbage responses and DNS failures are failed checks, not crashes', async (t) => {
  const refusedPort = await closedPort();
  const refused = recorder();
  const a = checker(t, targetFor(refusedPort), config({ fall: 1 }), refused.onChange);
  a.start();
  assert.equal((await refused.next()).healthy, false);
  assert.equal(a.lastResult, 'connect ECONNREFUSED');

  const garbageServer = await tcpServer(t, (socket) => socket.once('data', () => socket.end('garbage\r\n\r\n')));
  const garbage = recorder();
  const b = checker(t, targetFor(garbageServer.port), config({ fall: 2, interval: 10 }), garbage.onChange);
  b.start();
  assert.equal((await garbage.next()).healthy, false);
  assert.notEqual(b.lastResult, 'ok');
  assert.ok(garbageServer.accepted() >= 2, 'each failed check used a fresh connection');

  const dns = recorder();
  // A resolver that does not answer is a timeout: one well under the guard.
  const d = checker(t, { origin: 'http://health-check.invalid:80', host: 'health-check.invalid' }, config({ fall: 1, timeout: 500 }), dns.onChange);
  d.start();
  assert.equal((await dns.next()).healthy, false);
  assert.match(d.lastResult, /^(dns E|timeout)/);
});

test('tcp: a listening port is healthy, a closed port is unhealthy', async (t) => {
  const server = await tcpServer(t, () => undefined);
  const up = recorder();
  const open = checker(t, targetFor(server.port), config({ type: 'tcp', rise: 2, initialState: 'unhealthy' }), up.onChange);
  open.start();
  const change = await up.next();
  assert.equal(change.healthy, true);
  assert.equal(change.reason, '2 consecutive successes, last: ok');
  assert.equal(open.checks, 2, 'flipped on the second success');
  await server.waitForAccepted(2);
  assert.equal(server.accepted(), 2, 'one connection per check');

  const port = await closedPort();
  const down = recorder();
  const closed = checker(t, targetFor(port), config({ type: 'tcp', fall: 1 }), down.onChange);
  closed.start();
  assert.equal((await down.next()).healthy, false);
  assert.equal(closed.lastResult, 'connect ECONNREFUSED');
});

test('initialState unhealthy: healthy after exactly rise successes, onChange called once', async (t) => {
  const origin = await httpOrigin(t);
  const changes = recorder();
  const c = checker(t, origin.target, config({ interval: 10, rise: 3, initialState: 'unhealthy' }), changes.onChange);
  assert.equal(c.healthy, false);
  c.start();
  const up = await changes.next();
  assert.equal(up.healthy, true);
  assert.equal(origin.requests.length, 3, 'flipped on the third success');
  await origin.waitForRequests(6);
  assert.equal(changes.events.length, 1, 'further successes do not call onChange');
  assert.equal(c.healthy, true);
});

test('stop(): no more checks reach the origin, no callback, idempotent; a check in flight is aborted', async (t) => {
  const first = await httpOrigin(t);
  const changes = recorder();
  const a = checker(t, first.target, config({ interval: 5, fall: 1 }), changes.onChange);
  a.start();
  await first.waitForRequests(2);
  a.stop();
  a.stop();
  const seen = first.requests.length;
  const checks = a.checks;
  first.status = 503; // would flip it if it were still checking

  // A second checker's three checks are our clock: plenty of a's 5 ms intervals would have passed.
  const second = await httpOrigin(t);
  const b = checker(t, second.target, config({ interval: 5 }), () => undefined);
  b.start();
  await second.waitForRequests(3);
  assert.equal(first.requests.length, seen, 'no checks after stop');
  assert.equal(a.checks, checks);
  assert.equal(changes.events.length, 0);

  // Stopping during a check closes its connection and reports nothing.
  const silent = await httpOrigin(t);
  silent.silent = true;
  const inFlight = recorder();
  const c = checker(t, silent.target, config({ timeout: 300, fall: 1 }), inFlight.onChange);
  c.start();
  await silent.waitForRequests(1);
  const [socket] = silent.sockets;
  assert.ok(socket);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  c.stop();
  await guard(closed, 'the in-flight connection to close');
  // Outlive the check's 300 ms timeout on another checker's clock, then make sure nothing was reported.
  const third = await httpOrigin(t);
  const d = checker(t, third.target, config({ interval: 150 }), () => undefined);
  d.start();
  await third.waitForRequests(3);
  assert.equal(inFlight.events.length, 0);
  assert.equal(c.checks, 0);
});

test('jitter: each interval gets random() × jitter extra, from the injected random source', async (t) => {
  const origin = await httpOrigin(t);
  let calls = 0;
  const random = (): number => {
    calls++;
    return 0.5;
  };
  const c = checker(t, origin.target, config({ interval: 0, jitter: 200 }), () => undefined, { random });
  c.start();
  await origin.waitForRequests(3);
  c.stop();
  const [r1, r2, r3] = origin.requests;
  // interval 0 + 0.5 × 200 = 100 ms between the end of one check and the start of the next.
  assert.ok(r2.at - r1.at >= 95, `gap ${Math.round(r2.at - r1.at)}ms`);
  assert.ok(r3.at - r2.at >= 95, `gap ${Math.round(r3.at - r2.at)}ms`);
  assert.equal(calls, 2, 'one random draw per scheduled check');
});

test('adopt(): a new checker carries over the unhealthy state and streaks of the previous one', async (t) => {
  const origin = await httpOrigin(t);
  origin.status = 503;
  const oldChanges = recorder();
  const previous = checker(t, origin.target, config({ fall: 2 }), oldChanges.onChange);
  previous.start();
  assert.equal((await oldChanges.next()).healthy, false);
  previous.stop();
  assert.equal(previous.consecutiveFailures, 2);

  origin.status = 200;
  const served = origin.requests.length;
  const changes = recorder();
  const next = checker(t, origin.target, config({ rise: 2, initialState: 'healthy' }), changes.onChange);
  next.adopt(previous);
  assert.equal(next.healthy, false, 'not reset to the configured initial state');
  assert.equal(next.consecutiveFailures, 2);
  next.start();
  const up = await changes.next();
  assert.equal(up.healthy, true);
  assert.equal(origin.requests.length - served, 2, 'healthy after rise successes');
  assert.equal(changes.events.length, 1);
});
