/**
 * ParentHealth over real sockets on 127.0.0.1: the checkers connect to small TCP servers that
 * count connections. Waits are on connections and flips, each bounded; nothing sleeps.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { loadConfigObject } from '../config/load.ts';
import type { GatewayConfig } from '../config/types.ts';
import type { ForwardParentEvent } from '../observability/events.ts';
import { createLogger } from '../observability/logger.ts';
import { type ParentHealthNews, ParentHealth, parentKey } from './parent-health.ts';

const log = createLogger('silent');
const bound = (p: Promise<void>, what: string, ms = 10_000): Promise<void> => {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
};

/** A TCP server that counts the connections it accepts and can close and listen again on its port. */
class Counting {
  connections = 0;
  port = 0;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #waiters: Array<{ n: number; resolve: () => void }> = [];

  async listen(): Promise<this> {
    const server = createServer((s) => {
      this.connections++;
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s)).on('error', () => undefined);
      this.#waiters = this.#waiters.filter((w) => (this.connections >= w.n ? void w.resolve() : true));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  reached(n: number): Promise<void> {
    if (this.connections >= n) return Promise.resolve();
    return bound(new Promise((resolve) => this.#waiters.push({ n, resolve })), `${n} connections at ${this.url}`);
  }

  close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  }
}

const servers: Counting[] = [];
const healths: ParentHealth[] = [];
after(async () => {
  for (const h of healths) h.close();
  await Promise.all(servers.map((s) => s.close()));
});

async function server(): Promise<Counting> {
  const s = await new Counting().listen();
  servers.push(s);
  return s;
}

function health(opts: ConstructorParameters<typeof ParentHealth>[1] = {}): ParentHealth {
  const h = new ParentHealth(log, opts);
  healths.push(h);
  return h;
}

const FAST = { interval: '30ms', jitter: '0s', timeout: '1s', rise: 2, fall: 2 };

/** A config with forward listener `proxy` and these parent entries. */
function config(parent: unknown[]): GatewayConfig {
  const r = loadConfigObject({ listeners: { proxy: { address: '127.0.0.1:0', protocol: 'forward', forward: { parent } } } });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
  return r.config;
}

/** Resolves with the first flip `news` gets for `parent` to `healthy`. */
function flip(news: ParentHealthNews[], waiters: Array<() => void>, parent: string, healthy: boolean): Promise<ParentHealthNews> {
  const find = (): ParentHealthNews | undefined => news.find((n) => n.parent === parent && n.healthy === healthy);
  return bound(
    new Promise<void>((resolve) => {
      const check = (): void => (find() === undefined ? void waiters.push(check) : resolve());
      check();
    }),
    `${parent} ${healthy ? 'up' : 'down'}`,
  ).then(() => find()!);
}

test('fall failed checks mark a parent down (news, event), rise passing ones up again; an entry without healthCheck is not checked', async () => {
  const a = await server();
  const unchecked = await server();
  const news: ParentHealthNews[] = [];
  const waiters: Array<() => void> = [];
  const events: ForwardParentEvent[] = [];
  const onEvent = (m: unknown): void => void events.push(m as ForwardParentEvent);
  diagnostics.subscribe('switchboard:forward:parent', onEvent);
  try {
    const h = health({
      onChange: (n) => {
        news.push(n);
        for (const w of waiters.splice(0)) w();
      },
    });
    h.apply(config([{ url: a.url, domains: ['a.example'], healthCheck: FAST }, { url: unchecked.url }]));
    assert.equal(h.get('proxy', 0, a.url)?.healthy, true);
    assert.equal(h.get('proxy', 1, unchecked.url), undefined, 'no healthCheck: not here, passive checks only');
    await a.reached(3);
    assert.equal(unchecked.connections, 0, 'the entry without a healthCheck is never probed');

    await a.close();
    const down = await flip(news, waiters, a.url, false);
    assert.deepEqual({ ...down, reason: '' }, { key: parentKey('proxy', 0, a.url), listener: 'proxy', parent: a.url, healthy: false, reason: '' });
    assert.match(down.reason, /^2 consecutive failures, last: connect ECONNREFUSED/);
    assert.equal(h.get('proxy', 0, a.url)?.healthy, false);
    const event = events.find((e) => e.parent === a.url && !e.up);
    assert.ok(event, 'a forwardParentState event for the flip');
    assert.match(event.reason, /^health check: 2 consecutive failures/);
    assert.equal(event.peer, false, 'decided here: counted here');

    await a.listen(); // the same port
    const up = await flip(news, waiters, a.url, true);
    assert.match(up.reason, /^2 consecutive successes/);
    assert.equal(h.get('proxy', 0, a.url)?.healthy, true);
    assert.equal(news.length, 2, 'one news per flip, never for checks that change nothing');
  } finally {
    diagnostics.unsubscribe('switchboard:forward:parent', onEvent);
  }
});

test('a config that drops a healthCheck stops its probes (prune); one that keeps it keeps the checker and its state', async () => {
  const dropped = await server();
  const kept = await server();
  const h = health();
  const both = config([
    { url: dropped.url, domains: ['a.example'], healthCheck: FAST },
    { url: kept.url, healthCheck: FAST },
  ]);
  h.apply(both);
  await Promise.all([dropped.reached(2), kept.reached(2)]);
  const keptState = h.get('proxy', 1, kept.url);
  const next = config([
    { url: dropped.url, domains: ['a.example'] },
    { url: kept.url, healthCheck: FAST },
  ]);
  h.apply(next);
  h.prune(next);
  assert.equal(h.get('proxy', 0, dropped.url), undefined);
  assert.equal(h.get('proxy', 1, kept.url), keptState, 'the same checked parent: its checker and streaks carry on');
  // A connect begun before the prune may still land: count from the kept parent's next check on.
  await kept.reached(kept.connections + 1);
  const at = dropped.connections;
  await kept.reached(kept.connections + 4);
  assert.equal(dropped.connections, at, 'four intervals of the kept checker, none of the dropped one');
  h.close();
  const closedAt = kept.connections;
  // After close nothing is checked: a fresh checker on the same schedule is the clock.
  const control = health();
  const clock = await server();
  control.apply(config([{ url: clock.url, healthCheck: FAST }]));
  await clock.reached(4);
  assert.ok(kept.connections <= closedAt + 1, 'close stopped the checks');
});

test('a worker runs no checker: it starts with the health the supervisor sent and follows its news (peer events)', async () => {
  const p = await server();
  const clock = await server();
  const key = parentKey('proxy', 0, p.url);
  const events: ForwardParentEvent[] = [];
  const onEvent = (m: unknown): void => void events.push(m as ForwardParentEvent);
  diagnostics.subscribe('switchboard:forward:parent', onEvent);
  try {
    const worker = health({ external: new Map([[key, false]]) });
    const cfg = config([{ url: p.url, healthCheck: FAST }]);
    worker.apply(cfg);
    assert.equal(worker.get('proxy', 0, p.url)?.healthy, false, 'as the supervisor said');
    worker.setHealth(key, true, '2 consecutive successes');
    assert.equal(worker.get('proxy', 0, p.url)?.healthy, true);
    assert.deepEqual(events.at(-1), { listener: 'proxy', parent: p.url, up: true, reason: '', peer: true });
    // News for a parent a later config adds is kept for it.
    const later = `http://127.0.0.1:${clock.port}`;
    worker.setHealth(parentKey('proxy', 1, later), false, 'x');
    const cfg2 = config([
      { url: p.url, domains: ['a.example'], healthCheck: FAST },
      { url: later, healthCheck: FAST },
    ]);
    worker.apply(cfg2);
    assert.equal(worker.get('proxy', 1, later)?.healthy, false);
    // A checking process on the same schedule is the clock: the worker's parent gets no probe meanwhile.
    const checking = health();
    checking.apply(config([{ url: clock.url, healthCheck: FAST }]));
    await clock.reached(4);
    assert.equal(p.connections, 0, 'a worker never probes');
  } finally {
    diagnostics.unsubscribe('switchboard:forward:parent', onEvent);
  }
});
