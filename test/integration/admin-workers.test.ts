/**
 * The admin listener with workers (issue 12, §3): `switchboard start` with `workers: 2` serves the
 * admin in the supervisor only; reads merge both workers' views; runtime changes reach every
 * worker, and a worker started later (after a crash) gets them too; reload, readiness and rejected
 * reloads work as in one process.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { named, Traffic } from './helpers/traffic.ts';
import { guard } from './helpers/guard.ts';

const TOKEN = 'workers-admin-token';
const dir = await mkdtemp(join(tmpdir(), 'switchboard-admin-workers-'));
const instances: Instance[] = [];
const origins: Origin[] = [];
after(async () => {
  for (const i of instances) i.kill();
  await Promise.all(origins.map((o) => o.close()));
  await rm(dir, { recursive: true, force: true });
});

function config(urls: string[], upstream = ''): string {
  return `workers: 2
drainTimeout: 2s
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app:
    balancer: weighted-round-robin
    endpoints: [${urls.map((u) => `{ url: "${u}" }`).join(', ')}]
${upstream}
routes:
  all: { match: { path: / }, upstream: app }
admin: { address: "127.0.0.1:0", token: "${TOKEN}" }
`;
}

async function start(name: string, text: string): Promise<{ inst: Instance; file: string; admin: string }> {
  const { inst, file } = await Instance.startWith(dir, name, text);
  instances.push(inst);
  const started = inst.lines.find((l) => l.msg === 'switchboard started' && l.worker === undefined)!;
  assert.equal(typeof started.admin, 'string', 'the supervisor says where the admin listens');
  return { inst, file, admin: started.admin as string };
}

async function origin(name: string): Promise<Origin> {
  const o = await startOrigin(name, named(name));
  origins.push(o);
  return o;
}

async function call(admin: string, path: string, init: RequestInit & { token?: string | null } = {}): Promise<{ status: number; body: unknown }> {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? TOKEN}`);
  const res = await fetch(admin + path, { ...init, headers });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** Who answered `n` requests over fresh connections (so both workers take some), by origin name. */
async function shares(url: string, n: number): Promise<Record<string, number>> {
  const traffic = new Traffic(url, 8);
  const out: Record<string, number> = {};
  try {
    for (const r of await traffic.many(n, 8)) {
      assert.equal(r.status, 200);
      out[r.origin] = (out[r.origin] ?? 0) + 1;
    }
  } finally {
    await traffic.pool.close();
  }
  return out;
}

interface Ep {
  url: string;
  admin: string;
  weight: number;
  inFlight: number;
  workers: Array<{ worker: number; pid: number }>;
}

test('workers: the supervisor serves the admin; reads merge both workers; a drain reaches every worker, and a replacement worker after a crash', async () => {
  const a = await origin('A');
  const b = await origin('B');
  const { inst, admin } = await start('drain', config([a.url, b.url]));
  assert.equal((await call(admin, '/api/workers', { token: null })).status, 401);
  const workers = (await call(admin, '/api/workers')).body as Array<{ id: number; pid: number; state: string }>;
  assert.deepEqual(
    workers.map((w) => [w.id, w.state]),
    [
      [1, 'serving'],
      [2, 'serving'],
    ],
  );
  assert.deepEqual(workers.map((w) => w.pid).sort(), inst.workerPids().sort());
  const before = await shares(inst.url('web'), 40);
  assert.ok((before.A ?? 0) > 0 && (before.B ?? 0) > 0, `both serve: ${JSON.stringify(before)}`);
  // Each endpoint's numbers: one part per worker.
  const up = (await call(admin, '/api/upstreams')).body as Array<{ name: string; endpoints: Ep[] }>;
  assert.deepEqual(
    up[0]!.endpoints[0]!.workers.map((w) => w.worker),
    [1, 2],
  );

  assert.equal((await call(admin, '/api/upstreams/app/endpoints/0/drain', { method: 'POST' })).status, 200);
  const seenA = a.seen.length;
  assert.deepEqual(await shares(inst.url('web'), 40), { B: 40 });
  const drained = (await call(admin, '/api/upstreams')).body as Array<{ endpoints: Ep[] }>;
  assert.equal(drained[0]!.endpoints[0]!.admin, 'drain');

  // A worker that dies is replaced; the replacement starts with the drain in force.
  const victim = inst.workerPids()[0]!;
  process.kill(victim, 'SIGKILL');
  const replaced = await inst.next((l) => l.msg === 'switchboard started' && l.worker !== undefined && l.pid !== victim && !workers.some((w) => w.pid === l.pid));
  assert.deepEqual(await shares(inst.url('web'), 60), { B: 60 });
  assert.equal(a.seen.length, seenA, 'no request reached the drained endpoint, from any worker');
  const after = (await call(admin, '/api/upstreams')).body as Array<{ endpoints: Ep[] }>;
  assert.ok(
    after[0]!.endpoints[0]!.workers.some((w) => w.pid === replaced.pid),
    'the replacement answers reads',
  );

  // Enable: both workers send to A again.
  assert.equal((await call(admin, `/api/upstreams/app/endpoints/${encodeURIComponent(a.url)}/enable`, { method: 'POST' })).status, 200);
  const back = await shares(inst.url('web'), 40);
  assert.ok((back.A ?? 0) > 0, `A serves again: ${JSON.stringify(back)}`);
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});

test('workers: weight shifts the share on every worker; reload through the API clears it; readyz and config-errors', async () => {
  const a = await origin('A');
  const b = await origin('B');
  // A 2 s check timeout: with fall 1, one slow check on a loaded machine would take B out and
  // skew the shares (it failed so once); closed origins below still fail their checks at once.
  const healthCheck = '    healthCheck: { type: http, path: /, interval: 50ms, timeout: 2s, rise: 1, fall: 1, jitter: 0 }';
  const { inst, file, admin } = await start('weight', config([a.url, b.url], healthCheck));
  const set = await call(admin, '/api/upstreams/app/endpoints/1/weight', { method: 'PUT', body: '{"weight": 4}' });
  assert.equal(set.status, 200);
  // Weighted round robin runs in each worker: per worker, A takes one pick in five.
  const weighted = await shares(inst.url('web'), 100);
  assert.ok((weighted.A ?? 0) <= 24 && (weighted.B ?? 0) >= 76, `B takes about 4/5: ${JSON.stringify(weighted)}`);

  const gen = ((await call(admin, '/api/generation')).body as { number: number }).number;
  const reloaded = await call(admin, '/api/reload', { method: 'POST' });
  assert.equal(reloaded.status, 200);
  assert.equal(((await call(admin, '/api/generation')).body as { number: number }).number, gen + 1);
  const even = await shares(inst.url('web'), 100);
  assert.ok((even.A ?? 0) >= 40 && (even.B ?? 0) >= 40, `even again after the reload: ${JSON.stringify(even)}`);
  const up = (await call(admin, '/api/upstreams')).body as Array<{ endpoints: Ep[] }>;
  assert.deepEqual(
    up[0]!.endpoints.map((e) => e.weight),
    [1, 1],
  );

  // A rejected reload is listed.
  await writeFile(file, `${config([a.url, b.url], healthCheck)}\nbogus: 1\n`);
  assert.equal((await call(admin, '/api/reload', { method: 'POST' })).status, 422);
  const errors = ((await call(admin, '/api/config-errors')).body as { errors: Array<{ errors: string[] }> }).errors;
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.errors.join('\n'), /bogus/);

  // Readiness follows the supervisor's health checks.
  assert.equal((await call(admin, '/readyz', { token: null })).status, 200);
  await a.close();
  await b.close();
  let ready = await call(admin, '/readyz', { token: null });
  await guard(
    (async () => {
      while (ready.status === 200) ready = await call(admin, '/readyz', { token: null });
    })(),
    'readyz to turn 503',
    5000,
  );
  assert.equal(ready.status, 503);
  assert.deepEqual((ready.body as { upstreamsWithoutHealthyEndpoint: string[] }).upstreamsWithoutHealthyEndpoint, ['app']);
  inst.signal('SIGTERM');
  assert.equal(await inst.exited(), 0);
});
