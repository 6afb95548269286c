/**
 * Active health checks of parent proxies (issue 15 §3, `forward.parent[i].healthCheck`) through the
 * real gateway: tiny HTTP CONNECT parents (helpers/parent-proxies.ts) on 127.0.0.1 count the
 * connections they accept (a TCP check only opens one). A parent whose server closes is marked
 * down after `fall` checks and tunnels go to the other without a failed try; restarted on its
 * port it is back after `rise`. A reload that drops the healthCheck stops the probes. With
 * `workers: 2` the supervisor checks once per interval for the machine and both workers skip a
 * parent it marked down. Waits are on events, connections and log lines, each bounded.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Client } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { ParentHealth } from '../../src/forward/parent-health.ts';
import type { ForwardParentEvent } from '../../src/observability/events.ts';
import { guard } from './helpers/guard.ts';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startEchoOrigin, startHttpParent, type TestParent } from './helpers/parent-proxies.ts';

const allowLoopback = [{ action: 'allow', destinations: ['127.0.0.0/8'] }];
const FAST = { interval: '50ms', jitter: '0s', timeout: '1s', rise: 2, fall: 2 };

const parents: TestParent[] = [];
const gateways: Gateway[] = [];
const cleanups: Array<() => unknown> = [];
after(async () => {
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 1000 })));
  await Promise.all(parents.map((p) => p.close()));
  for (const c of cleanups) await c();
});

async function parent(port?: number): Promise<TestParent> {
  const p = await startHttpParent({ port });
  parents.push(p);
  return p;
}

async function gateway(config: object): Promise<Gateway> {
  const gw = await startGateway({ config, accessLog: 'off', logLevel: 'silent', metrics: true });
  gateways.push(gw);
  return gw;
}

/** One CONNECT through the forward listener on `port` to 127.0.0.1:`to`: the status line. */
function tunnel(port: number, to: number): Promise<string> {
  return guard(
    new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port }, () => s.write(`CONNECT localhost:${to} HTTP/1.1\r\nHost: localhost:${to}\r\n\r\n`));
      let head = '';
      s.setEncoding('latin1').on('data', (d: string) => {
        head += d;
        if (!head.includes('\r\n')) return;
        s.destroy();
        resolve(head.slice(0, head.indexOf('\r\n')));
      });
      s.on('error', reject);
    }),
    'a CONNECT answer',
    5000,
  );
}

/** Records forwardParentState events; `when` waits for one that passes a test. */
function parentEvents(): { list: ForwardParentEvent[]; when(test: (e: ForwardParentEvent) => boolean, what: string): Promise<ForwardParentEvent> } {
  const list: ForwardParentEvent[] = [];
  let waiters: Array<() => void> = [];
  const on = (m: unknown): void => {
    list.push(m as ForwardParentEvent);
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  diagnostics.subscribe('switchboard:forward:parent', on);
  cleanups.push(() => void diagnostics.unsubscribe('switchboard:forward:parent', on));
  return {
    list,
    when(test, what) {
      return guard(
        new Promise<ForwardParentEvent>((resolve) => {
          const check = (): void => {
            const e = list.find(test);
            if (e === undefined) waiters.push(check);
            else resolve(e);
          };
          check();
        }),
        what,
        10_000,
      );
    },
  };
}

function metric(body: string, name: string, p: TestParent): string | undefined {
  return new RegExp(`^${name}\\{listener="proxy",parent="http://127\\.0\\.0\\.1:${p.port}"\\} (\\S+)$`, 'm').exec(body)?.[1];
}

test('a parent that fails fall checks is marked down and tunnels go to the other without a failed try; it is back after rise checks', async () => {
  const origin = await startEchoOrigin('origin');
  cleanups.push(() => origin.close());
  const a = await parent();
  const b = await parent();
  const events = parentEvents();
  const gw = await gateway({
    listeners: {
      proxy: { address: '127.0.0.1:0', protocol: 'forward', forward: { rules: allowLoopback, parent: { url: [a.url(), b.url()], healthCheck: FAST } } },
    },
  });
  const port = gw.address('proxy').port;
  for (let i = 0; i < 4; i++) assert.match(await tunnel(port, origin.port), /^HTTP\/1\.1 200/);
  assert.deepEqual([a.asks.length, b.asks.length], [2, 2], 'both up: round robin');

  await b.close();
  const down = await events.when((e) => e.parent === b.url() && !e.up, 'b marked down');
  assert.match(down.reason, /^health check: 2 consecutive failures, last: connect ECONNREFUSED/);
  for (let i = 0; i < 6; i++) assert.match(await tunnel(port, origin.port), /^HTTP\/1\.1 200/);
  assert.equal(a.asks.length, 8, 'every tunnel went to a');
  assert.deepEqual(
    events.list.filter((e) => e.parent === b.url()).map((e) => [e.up, e.reason.slice(0, 13)]),
    [[false, 'health check:']],
    'no tunnel tried b and failed (a failed try would mark it down passively: ECONNREFUSED)',
  );
  let body = (await gw.metrics!.render(undefined)).body;
  assert.equal(metric(body, 'switchboard_forward_parent_up', b), '0');
  assert.equal(metric(body, 'switchboard_forward_parent_down_total', b), '1');

  const again = await parent(b.port);
  await events.when((e) => e.parent === b.url() && e.up, 'b up again');
  for (let i = 0; i < 4; i++) assert.match(await tunnel(port, origin.port), /^HTTP\/1\.1 200/);
  assert.equal(again.asks.length, 2, 'b takes its share again');
  body = (await gw.metrics!.render(undefined)).body;
  assert.equal(metric(body, 'switchboard_forward_parent_up', b), '1');
});

test('a reload that removes a healthCheck stops its probes; stopping the gateway stops the rest', async () => {
  const dropped = await parent();
  const kept = await parent();
  const config = (checked: boolean): object => ({
    listeners: {
      proxy: {
        address: '127.0.0.1:0',
        protocol: 'forward',
        forward: {
          rules: allowLoopback,
          parent: [
            { url: dropped.url(), domains: ['one.example'], ...(checked ? { healthCheck: FAST } : {}) },
            { url: kept.url(), healthCheck: FAST },
          ],
        },
      },
    },
  });
  const gw = await gateway(config(true));
  await Promise.all([dropped.connected(2), kept.connected(2)]);
  const r = await gw.reload(config(false));
  assert.ok(r.ok, JSON.stringify(r.errors));
  // A connect begun before the reload may still land: count from the kept parent's next check on.
  await kept.connected(kept.connections + 1);
  const at = dropped.connections;
  await kept.connected(kept.connections + 4);
  assert.equal(dropped.connections, at, 'four intervals of the kept checks, no probe of the dropped one');

  await gw.stop({ drainTimeout: 1000 });
  gateways.splice(gateways.indexOf(gw), 1);
  const stoppedAt = kept.connections;
  // A checker of our own on the same schedule is the clock.
  const clock = await parent();
  const checks = new ParentHealth(createLogger('silent'));
  cleanups.push(() => checks.close());
  const loaded = (await import('../../src/config/load.ts')).loadConfigObject({
    listeners: { proxy: { address: '127.0.0.1:0', protocol: 'forward', forward: { parent: { url: clock.url(), healthCheck: FAST } } } },
  });
  assert.ok(loaded.ok);
  checks.apply(loaded.config);
  await clock.connected(5);
  assert.ok(kept.connections <= stoppedAt + 1, `no probe after stop (${kept.connections - stoppedAt} more)`);
});

test('workers: 2: the supervisor checks each parent once per interval for the machine, and both workers skip one it marked down', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-parent-health-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  // Every answer closes its connection: each proxied request needs a new tunnel through a parent.
  const origin: Origin = await startOrigin('o', (req, res) => {
    req.resume();
    res.writeHead(200, { connection: 'close' }).end('o');
  });
  cleanups.push(() => origin.close());
  const a = await parent();
  const b = await parent();
  // A check timeout far above the interval: with fall 1 and rise 1000, one check of a that a loaded
  // machine delayed past a short timeout would take a out for good. b, closed, refuses at once.
  const { inst } = await Instance.startWith(
    dir,
    'switchboard',
    `workers: 2
listeners:
  proxy:
    address: "127.0.0.1:0"
    protocol: forward
    forward:
      rules: [{ action: allow, destinations: [127.0.0.0/8] }]
      parent:
        url: ["${a.url()}", "${b.url()}"]
        domains: [localhost]
        healthCheck: { interval: 200ms, jitter: 0s, timeout: 10s, rise: 1000, fall: 1 }
`,
  );
  cleanups.push(() => inst.kill());
  // Ten checks of a after the first: a checker per worker (or per worker and supervisor) would take half the time or less.
  const times: number[] = [];
  const first = a.connections + 1;
  for (let n = first; n <= first + 10; n++) {
    await a.connected(n);
    times.push(performance.now());
  }
  const span = times[10]! - times[0]!;
  assert.ok(span >= 10 * 200 * 0.8, `10 intervals took ${span.toFixed(0)} ms: one checker for the machine, not one per worker`);

  await b.close();
  await inst.next((l) => l.msg === 'parent proxy unhealthy' && l.worker === undefined);
  // Back on its port, b accepts again, but the checks want 1000 passes in a row: it stays down.
  const back = await parent(b.port);
  const proxy = inst.url('proxy');
  const port = new URL(origin.url).port;
  const byWorker = new Map<string, Client>();
  for (let i = 0; i < 100 && byWorker.size < 2; i++) {
    const c = new Client(proxy, { pipelining: 1, keepAliveTimeout: 60_000 });
    cleanups.push(() => c.destroy());
    const res = await c.request({ method: 'GET', path: `http://localhost:${port}/`, headers: { host: `localhost:${port}` } });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    const worker = String(res.headers['x-request-id']).slice(0, 24);
    if (!byWorker.has(worker)) byWorker.set(worker, c);
  }
  assert.equal(byWorker.size, 2, 'connections reached both workers');
  for (const c of byWorker.values()) {
    for (let i = 0; i < 4; i++) {
      const res = await c.request({ method: 'GET', path: `http://localhost:${port}/`, headers: { host: `localhost:${port}` } });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
    }
  }
  assert.equal(back.asks.length, 0, 'no worker sent a tunnel to the parent the supervisor marked down');
  assert.ok(a.asks.length >= 8, `a took every tunnel (${a.asks.length})`);
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});
