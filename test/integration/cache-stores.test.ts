/**
 * The cache's stores through `switchboard start` (issue 14): with `workers: 2`, `memory:` is one
 * copy per machine (a response stored through one worker is a hit in the other, and a purge by an
 * unsafe method in one reaches the other); `disk:` survives a restart.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { setImmediate as tick } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const dir = await mkdtemp(join(tmpdir(), 'switchboard-cache-stores-'));
const instances: Instance[] = [];
const agent = new Agent({ pipelining: 0 });
const counts = new Map<string, number>();
const origin: Origin = await startOrigin('o', (req, res) => {
  const path = req.url ?? '/';
  const n = (counts.get(path) ?? 0) + 1;
  counts.set(path, n);
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
  res.end(`${path} ${n}`);
});
after(async () => {
  for (const i of instances) i.kill();
  await origin.close();
  await agent.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(name: string, workers: number, store: string): Promise<Instance> {
  const { inst } = await Instance.startWith(
    dir,
    name,
    `workers: ${workers}
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
policies:
  edge-cache: { type: cache, store: ${store} }
routes:
  site: { match: { path: / }, upstream: app, policies: [edge-cache] }
`,
  );
  instances.push(inst);
  return inst;
}

/** A request on a fresh connection (so that both workers take a share); the answering worker's pid is not visible, the origin count is. */
async function get(url: string, method = 'GET'): Promise<{ body: string; cacheStatus: string }> {
  // One Host for every instance: the cache key holds the authority, and a restarted gateway listens on another port.
  const res = await request(url, { method: method as 'GET', headers: { host: 'site.test' }, dispatcher: agent, reset: true });
  return { body: await res.body.text(), cacheStatus: String(res.headers['cache-status'] ?? '') };
}

/**
 * Waits until an object file (`v1/o/<xx>/<url>/<key>`, 32 hex digits) exists under `root`: the
 * store's write finishes after the response it copies has been sent, so a test that wants a hit
 * next waits for the file, not for a time.
 */
async function stored(root: string, count = 1): Promise<void> {
  for (;;) {
    const files = await readdir(root, { recursive: true }).catch(() => [] as string[]);
    if (files.filter((f) => /v1\/o\/[0-9a-f]{2}\/[0-9a-f]{32}\/[0-9a-f]{32}$/.test(String(f))).length >= count) return;
    await tick();
  }
}

test('workers: 2 with memory: one copy per machine: stored through one worker, a hit in every worker; a POST in one invalidates for all', async () => {
  const inst = await start('shared', 2, '{ memory: 1MiB }');
  assert.equal(inst.workerPids().length, 2);
  const url = `${inst.url('web')}/shared`;
  const first = await get(url);
  assert.equal(first.body, '/shared 1');
  assert.match(first.cacheStatus, /fwd=miss; fwd-status=200/);
  // The machine's copy is in tmpfs, named after the supervisor.
  await stored(`/dev/shm/switchboard-cache-${inst.child.pid}`);
  // Fresh connections land on both workers (the kernel spreads them): 40 requests, none reaching the origin.
  const rest = await Promise.all(Array.from({ length: 40 }, () => get(url)));
  for (const r of rest) {
    assert.equal(r.body, '/shared 1');
    assert.match(r.cacheStatus, /^Switchboard; hit/);
  }
  assert.equal(counts.get('/shared'), 1, 'one origin request for the machine, not one per worker');
  // An unsafe method through either worker removes the one copy.
  await get(url, 'POST');
  const after = await Promise.all(Array.from({ length: 10 }, () => get(url)));
  assert.ok(
    after.every((r) => r.body.startsWith('/shared ') && r.body !== '/shared 1'),
    'no worker serves the invalidated copy',
  );
  inst.kill();
});

test('disk: survives a restart (a new gateway on the same path serves the stored object as a hit)', async () => {
  const store = `{ disk: { path: "${join(dir, 'disk')}", size: 10MiB } }`;
  const one = await start('disk1', 1, store);
  assert.equal((await get(`${one.url('web')}/kept`)).body, '/kept 1');
  await stored(join(dir, 'disk'));
  assert.match((await get(`${one.url('web')}/kept`)).cacheStatus, /^Switchboard; hit/);
  one.signal('SIGTERM');
  await one.exited();
  const two = await start('disk2', 2, store);
  const again = await get(`${two.url('web')}/kept`);
  assert.equal(again.body, '/kept 1');
  assert.match(again.cacheStatus, /^Switchboard; hit/);
  assert.equal(counts.get('/kept'), 1);
});

test('workers: 2: the machine metrics count the shared store once (store objects and bytes are the real ones, not one per worker)', async () => {
  const { inst } = await Instance.startWith(
    dir,
    'metrics',
    `workers: 2
admin: { address: 127.0.0.1:0, token: metrics-test-token-0123456789 }
listeners: { web: { address: 127.0.0.1:0, protocol: http } }
policies: { counted: { type: cache, store: { memory: 1MiB } } }
routes: { all: { match: { path: / }, upstream: app, policies: [counted] } }
upstreams: { app: { endpoints: [{ url: ${origin.url} }] } }
`,
  );
  instances.push(inst);
  const started = inst.lines.find((l) => l.msg === 'switchboard started' && l.worker === undefined)!;
  const adminUrl = started.admin as string;
  const root = `/dev/shm/switchboard-cache-${inst.child.pid}`;
  // Six objects, on fresh connections (both workers store some), then read through both workers (each opens the store).
  for (let i = 0; i < 6; i++) await get(`${inst.url('web')}/m${i}`);
  await stored(root, 6);
  await Promise.all(Array.from({ length: 20 }, (_, i) => get(`${inst.url('web')}/m${i % 6}`)));
  const files = (await readdir(root, { recursive: true })).filter((f) => /v1\/o\/[0-9a-f]{2}\/[0-9a-f]{32}\/[0-9a-f]{32}$/.test(String(f)));
  assert.equal(files.length, 6);
  const scrape = async (): Promise<{ objects: number; bytes: number }> => {
    const text = await (await fetch(`${adminUrl}/metrics`, { headers: { authorization: 'Bearer metrics-test-token-0123456789' } })).text();
    const value = (name: string): number => Number(new RegExp(`^${name}\\{policy="counted",store="memory-shared"\\} (\\S+)$`, 'm').exec(text)?.[1]);
    return { objects: value('switchboard_cache_store_objects'), bytes: value('switchboard_cache_store_bytes') };
  };
  // A scrape starts each worker's recount of the shared store; wait until the machine's value is the real one…
  while ((await scrape()).objects !== 6);
  // …and it stays so once every worker has recounted (summed per worker it would become 12).
  for (let i = 0; i < 5; i++) {
    const m = await scrape();
    assert.equal(m.objects, 6, 'one count for the machine');
    assert.ok(m.bytes > 0);
  }
  inst.kill();
});

test("workers: 2 with memory: SIGTERM of the supervisor removes the machine's /dev/shm directory", async () => {
  const inst = await start('shm-gone', 2, '{ memory: 1MiB }');
  const root = `/dev/shm/switchboard-cache-${inst.child.pid}`;
  await get(`${inst.url('web')}/gone`);
  await stored(root);
  inst.signal('SIGTERM');
  await inst.exited();
  assert.equal(await stat(root).catch(() => undefined), undefined, `${root} removed`);
});
