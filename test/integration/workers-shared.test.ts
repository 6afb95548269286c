/**
 * What the workers of one machine share (issue 11): health checks run once per endpoint for the
 * machine and every worker sees the result; least-connections and the circuit breaker count the
 * machine's requests, not one worker's; TLS sessions resume on any worker.
 *
 * Which worker served a request is told by its request id: each process draws its own random
 * prefix (http/session.ts), and the id comes back in `x-request-id`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Client } from 'undici';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { createPki, type TestPki } from './helpers/certs.ts';
import { guard } from './helpers/guard.ts';
import { named } from './helpers/traffic.ts';

let dir: string;
let pki: TestPki;
const instances: Instance[] = [];
const origins: Origin[] = [];
const clients: Client[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-shared-'));
  pki = await createPki();
});
after(async () => {
  for (const i of instances) i.kill();
  await Promise.all(clients.map((c) => c.destroy()));
  await Promise.all(origins.map((o) => o.close()));
  await pki.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function start(name: string, text: string, global: string[] = []): Promise<Instance> {
  const { inst } = await Instance.startWith(dir, name, text, { global });
  instances.push(inst);
  return inst;
}

/** An origin that holds each request until `release(name)`; counts what it holds and what it answered. */
interface Holding extends Origin {
  held: http.ServerResponse[];
  arrived(n: number): Promise<void>;
  releaseAll(): void;
}

/** Calls each `when` once its condition holds, checked after every event `tick` reports. */
class Conditions {
  #list: Array<{ test: () => boolean; resolve: () => void }> = [];
  tick(): void {
    this.#list = this.#list.filter((c) => {
      if (!c.test()) return true;
      c.resolve();
      return false;
    });
  }
  when(test: () => boolean, what: string, ms = 10_000): Promise<void> {
    if (test()) return Promise.resolve();
    return guard(new Promise<void>((resolve) => this.#list.push({ test, resolve })), what, ms);
  }
}

/** Every origin's arrivals and health checks tick this. */
const events = new Conditions();

async function holdingOrigin(name: string, opts: { healthy?: () => boolean; checks?: number[] } = {}): Promise<Holding> {
  const held: http.ServerResponse[] = [];
  let waiters: Array<{ n: number; resolve: () => void }> = [];
  const o = await startOrigin(name, (req, res) => {
    req.resume();
    if (req.url === '/healthz') {
      opts.checks?.push(performance.now());
      events.tick();
      res.writeHead(opts.healthy?.() === false ? 500 : 200).end();
      return;
    }
    if (req.url === '/fast') {
      res.writeHead(200, { 'x-origin': name }).end(name);
      return;
    }
    held.push(res);
    events.tick();
    waiters = waiters.filter((w) => {
      if (held.length < w.n) return true;
      w.resolve();
      return false;
    });
  });
  origins.push(o);
  return Object.assign(o, {
    held,
    arrived: (n: number) =>
      held.length >= n ? Promise.resolve() : guard(new Promise<void>((resolve) => waiters.push({ n, resolve })), `${n} requests at ${name}`, 10_000),
    releaseAll: () => {
      for (const res of held.splice(0)) res.writeHead(200, { 'x-origin': name }).end(name);
    },
  });
}

/** Two workers, one https listener (HTTP/1.1) with one certificate, one upstream. */
function httpsConfig(certFile: string, keyFile: string, origin: string): string {
  return `workers: 2
listeners:
  secure:
    address: "127.0.0.1:0"
    protocol: https
    tls: { certificates: [{ cert: "${certFile}", key: "${keyFile}" }], alpn: [http/1.1] }
upstreams:
  app: { endpoints: [{ url: "${origin}" }] }
routes:
  all: { match: { path: / }, upstream: app }
`;
}

/** The worker a request id came from: each process draws its own random prefix (http/session.ts). */
function workerOf(requestId: string): string {
  return requestId.slice(0, 24);
}

/** One TLS connection to the listener on `port`, one request: the worker that answered, the session and the certificate. */
interface TlsVisit {
  worker: string;
  reused: boolean;
  session: Buffer | undefined;
  fingerprint: string;
}

function tlsVisit(port: number, opts: tls.ConnectionOptions = {}): Promise<TlsVisit> {
  return guard(
    new Promise((resolve, reject) => {
      let session: Buffer | undefined;
      let fingerprint = '';
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca.cert, ...opts }, () => {
        session = socket.getSession();
        fingerprint = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
        socket.write('GET /fast HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      let text = '';
      socket.setEncoding('utf8').on('data', (d: string) => (text += d));
      socket.on('end', () => resolve({ worker: workerOf(/x-request-id: (\S+)/i.exec(text)?.[1] ?? ''), reused: socket.isSessionReused(), session, fingerprint }));
      socket.on('error', reject);
    }),
    'a TLS visit',
    5000,
  );
}

/**
 * Keep-alive connections to `url`, sorted by the worker that serves each (by request id prefix),
 * `per` for each of the 2 workers. The workers share one listening socket (SCHED_NONE, docs/
 * architecture.md "Workers"): each new connection goes to whichever worker is waiting in accept.
 * Both listen once the instance has started (the supervisor's line follows each worker's `ready`),
 * but a worker can be busy for a while (its memory-reducing collection after start-up, src/util/
 * heap.ts, took 60-80 ms on an idle machine and 200-350 ms beside 4 busy processes; it now runs
 * before the worker listens, but a loaded machine can still hold one worker back), and the other
 * then takes every connection opened meanwhile (200 in a row once). So connections are
 * opened until both workers have `per`, within a deadline, not for a fixed count; one beyond
 * `per` for its worker is closed at once.
 */
async function connectionsByWorker(url: string, per: number, path = '/fast'): Promise<Client[][]> {
  const byWorker = new Map<string, Client[]>();
  const enough = (): boolean => byWorker.size === 2 && [...byWorker.values()].every((l) => l.length >= per);
  let opened = 0;
  let stop = false;
  try {
    await guard(
      (async () => {
        while (!stop && !enough()) {
          const c = new Client(url, { pipelining: 1, keepAliveTimeout: 60_000 });
          opened++;
          const res = await c.request({ method: 'GET', path });
          await res.body.dump();
          const worker = workerOf(String(res.headers['x-request-id']));
          const list = byWorker.get(worker) ?? [];
          if (list.length >= per) {
            await c.close();
            continue;
          }
          clients.push(c);
          list.push(c);
          byWorker.set(worker, list);
          assert.ok(byWorker.size <= 2, `request ids of ${byWorker.size} processes from 2 workers`);
        }
      })(),
      'connections to both workers',
      15_000,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${opened} connections opened, per worker ${JSON.stringify([...byWorker.values()].map((l) => l.length))}`);
  } finally {
    stop = true;
  }
  assert.equal(byWorker.size, 2, 'connections reached both workers');
  return [...byWorker.values()];
}

test('health checks run once per interval for the machine, and every worker sees the result', async () => {
  const checksA: number[] = [];
  const checksB: number[] = [];
  let bHealthy = true;
  const a = await holdingOrigin('A', { checks: checksA });
  const b = await holdingOrigin('B', { checks: checksB, healthy: () => bHealthy });
  // A check timeout far above the interval: with fall 1, one check of A that a loaded machine delayed
  // past a short timeout would take A out (B down too: panic, traffic to B). B fails with a 500 at once.
  const inst = await start(
    'health',
    `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app:
    endpoints: [{ url: "${a.url}" }, { url: "${b.url}" }]
    healthCheck: { type: http, path: /healthz, interval: 200ms, timeout: 10s, rise: 1, fall: 1 }
routes:
  all: { match: { path: / }, upstream: app }
`,
  );
  // Ten checks of A after the first: two workers checking would take half the time.
  await events.when(() => checksA.length >= 11, '11 checks of A');
  const span = checksA[10]! - checksA[0]!;
  assert.ok(span >= 10 * 200 * 0.8, `10 intervals took ${span.toFixed(0)} ms: one checker for the machine, not one per worker`);

  bHealthy = false;
  await inst.next((l) => l.msg === 'endpoint unhealthy' && l.worker === undefined);
  const [w1, w2] = await connectionsByWorker(inst.url('web'), 1);
  for (const c of [...w1!, ...w2!]) {
    for (let i = 0; i < 5; i++) {
      const res = await c.request({ method: 'GET', path: '/fast' });
      await res.body.dump();
      assert.equal(res.headers['x-origin'], 'A', 'every worker keeps traffic off the endpoint the supervisor saw fail');
    }
  }
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('least-connections across 2 workers sends a new request to the endpoint with fewer requests in flight machine-wide', async () => {
  const a = await holdingOrigin('A');
  const b = await holdingOrigin('B');
  const inst = await start(
    'least',
    `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http, keepAliveTimeout: 60s }
upstreams:
  app:
    balancer: least-connections
    endpoints: [{ url: "${a.url}" }, { url: "${b.url}" }]
routes:
  all: { match: { path: / }, upstream: app }
`,
    ['--log-level', 'trace'],
  );
  const [first, second] = await connectionsByWorker(inst.url('web'), 6);
  // Worker 1 sends six held requests: least-connections spreads them 3 and 3. B answers its three.
  const pending: Promise<unknown>[] = [];
  let answered = 0;
  const answer = (r: { body: { dump(): Promise<void> } }): Promise<void> =>
    r.body.dump().then(() => {
      answered++;
      events.tick();
    });
  for (let i = 0; i < 6; i++) {
    pending.push(first![i]!.request({ method: 'GET', path: '/hold' }).then(answer));
    await events.when(() => a.held.length + b.held.length >= i + 1, 'the held request to arrive');
  }
  assert.deepEqual([a.held.length, b.held.length], [3, 3]);
  const from = inst.lines.length;
  b.releaseAll();
  await events.when(() => answered === 3, "B's three answers");
  // The other worker hears of worker 1's counts through the supervisor, one IPC hop later: wait
  // for that news (a trace line) rather than race it.
  const keyB = `e app ${b.url}`;
  await inst.next((l) => l.msg === 'machine load' && (l.inFlight as Record<string, number>)[keyB] === 0, 5000, from);
  // Now A holds 3 of worker 1's requests and B none. Worker 2, which holds nothing itself, must
  // see the machine's load and send all three of its requests to B.
  for (let i = 0; i < 3; i++) {
    pending.push(second![i]!.request({ method: 'GET', path: '/hold' }).then(answer));
    await b.arrived(i + 1);
  }
  assert.equal(a.held.length, 3, 'A got none of worker 2 requests');
  assert.equal(b.held.length, 3);
  a.releaseAll();
  b.releaseAll();
  await guard(Promise.all(pending), 'every held request answered', 5000);
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('circuit breaker maxRequests: 2 means 2 in flight for the machine, whichever workers the requests reach', async () => {
  const a = await holdingOrigin('A');
  const inst = await start(
    'breaker',
    `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http, keepAliveTimeout: 60s }
upstreams:
  app:
    endpoints: [{ url: "${a.url}" }]
    circuitBreaker: { maxRequests: 2, maxQueued: 1, queueTimeout: 10s }
routes:
  all: { match: { path: / }, upstream: app }
`,
  );
  const [first, second] = await connectionsByWorker(inst.url('web'), 2);
  // Two held requests through worker 1 take both slots. Worker 2's first waits in the machine's
  // queue (maxQueued: 1), its second is refused at once.
  const held = [first![0]!, first![1]!].map((c) => c.request({ method: 'GET', path: '/hold' }));
  await a.arrived(2);
  const queued = second![0]!.request({ method: 'GET', path: '/hold' });
  const refused = await second![1]!.request({ method: 'GET', path: '/hold' });
  assert.equal(refused.statusCode, 503);
  assert.match(await refused.body.text(), /UPSTREAM_OVERLOADED/);
  assert.equal(a.held.length, 2, 'the origin has 2 in flight, not 2 per worker');
  // Worker 1's requests end: the queued one (worker 2's) gets a slot and reaches the origin.
  a.releaseAll();
  for (const r of await Promise.all(held)) await r.body.dump();
  await a.arrived(1);
  a.releaseAll();
  const res = await queued;
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('TLS sessions resume on any worker: the ticket keys are the machine’s', async () => {
  const a = await holdingOrigin('A');
  const cert = await pki.issue({ names: ['localhost', '127.0.0.1'], stem: 'workers-site' });
  const inst = await start('tickets', httpsConfig(cert.certFile, cert.keyFile, a.url));
  const { port } = new URL(inst.url('secure'));
  /** One TLS connection, one request; which worker answered and whether the session was resumed. */
  const visit = (session?: Buffer): Promise<TlsVisit> => tlsVisit(Number(port), { session, maxVersion: 'TLSv1.2' });
  const first = await visit();
  assert.ok(first.session, 'a session ticket was issued');
  let other: { worker: string; reused: boolean } | undefined;
  for (let i = 0; i < 100 && other === undefined; i++) {
    const v = await visit(first.session);
    assert.ok(v.reused, `visit ${i} resumed the session (worker ${v.worker})`);
    if (v.worker !== first.worker) other = v;
  }
  assert.ok(other, 'a resumed visit reached the other worker');
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('certificate files are watched by the supervisor once; every worker serves the new certificate', async () => {
  const a = await holdingOrigin('A');
  const first = await pki.issue({ names: ['localhost', '127.0.0.1'], stem: 'workers-rotate-1' });
  const certFile = join(dir, 'rotate.pem');
  const keyFile = join(dir, 'rotate-key.pem');
  await copyFile(first.certFile, certFile);
  await copyFile(first.keyFile, keyFile);
  const inst = await start('rotate', httpsConfig(certFile, keyFile, a.url));
  const { port } = new URL(inst.url('secure'));
  /** A new TLS connection: the certificate it got and the worker that answered its request. */
  const visit = (): Promise<TlsVisit> => tlsVisit(Number(port));
  assert.equal((await visit()).fingerprint, new X509Certificate(first.cert).fingerprint256);

  const next = await pki.issue({ names: ['localhost', '127.0.0.1'], stem: 'workers-rotate-2' });
  const from = inst.lines.length;
  await copyFile(next.keyFile, keyFile);
  await copyFile(next.certFile, certFile);
  await inst.next((l) => l.msg === 'certificate files changed; the workers read them again' && l.worker === undefined, 10_000, from);
  // Each worker reads them on the supervisor's word, and says so.
  const reloaded = new Set<number>();
  for (let i = 0; i < 2; i++) reloaded.add((await inst.next((l) => l.msg === 'certificate reloaded' && !reloaded.has(l.pid as number), 10_000, from)).pid as number);
  assert.equal(reloaded.size, 2);
  const fingerprint = new X509Certificate(next.cert).fingerprint256;
  const workers = new Set<string>();
  for (let i = 0; i < 100 && workers.size < 2; i++) {
    const v = await visit();
    assert.equal(v.fingerprint, fingerprint, `worker ${v.worker} serves the new certificate`);
    workers.add(v.worker);
  }
  assert.equal(workers.size, 2, 'both workers were visited');
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('an endpoint one worker ejects (outlier detection) is ejected by every worker', async () => {
  const bad = await startOrigin('BAD', (req, res) => {
    req.resume();
    res.writeHead(500, { 'x-origin': 'BAD' }).end('no');
  });
  origins.push(bad);
  const good = await startOrigin('GOOD', named('GOOD'));
  origins.push(good);
  const inst = await start(
    'eject',
    `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http, keepAliveTimeout: 60s }
upstreams:
  app:
    endpoints: [{ url: "${bad.url}" }, { url: "${good.url}" }]
    outlierDetection: { consecutiveFailures: 3, baseEjectionTime: 60s }
  probe: { endpoints: [{ url: "${good.url}" }] }
routes:
  all: { match: { path: / }, upstream: app }
  probe: { match: { path: /probe }, upstream: probe }
`,
  );
  // Probes go to another upstream, so that no worker has seen BAD fail before worker 1 does.
  const [first, second] = await connectionsByWorker(inst.url('web'), 1, '/probe');
  const from = 0;
  const own = inst.next((l) => l.msg === 'endpoint ejected' && !String(l.reason).startsWith('another worker'), 10_000, from);
  for (let i = 0; i < 12; i++) {
    const res = await first![0]!.request({ method: 'GET', path: '/fast' });
    await res.body.dump();
  }
  const decided = await own;
  // The other worker hears of it from the supervisor and ejects it too.
  const peer = await inst.next((l) => l.msg === 'endpoint ejected' && String(l.reason).startsWith('another worker') && l.pid !== decided.pid, 10_000, from);
  assert.equal(peer.endpoint, bad.url);
  // Both workers now send everything to GOOD.
  for (const c of [first![0]!, second![0]!]) {
    for (let i = 0; i < 6; i++) {
      const res = await c.request({ method: 'GET', path: '/fast' });
      await res.body.dump();
      assert.equal(res.headers['x-origin'], 'GOOD');
    }
  }
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});
