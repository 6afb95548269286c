/**
 * The machine-shared memory store (`workers: 2`, `store: { memory }`: a file store in
 * /dev/shm/switchboard-cache-<supervisor pid>) across an upgrade (SIGUSR2) and a stop: the new
 * process tree serves from a store of its own (the design does not keep the store across an
 * upgrade: the new supervisor has another pid, so another directory), the old supervisor removes
 * its directory when it exits, and the new one removes its own when it stops. A supervisor killed
 * without stopping leaves its directory until the next gateway's memory store starts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { request } from 'undici';
import { guard } from './helpers/guard.ts';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const SHM = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const shmDir = (supervisor: number): string => join(SHM, `switchboard-cache-${supervisor}`);

const dir = await mkdtemp(join(tmpdir(), 'switchboard-cache-upgrade-'));
const instances: Instance[] = [];
let asked = 0;
const origin: Origin = await startOrigin('o', (req, res) => {
  asked++;
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=600' });
  res.end(`body ${asked}`);
});
after(async () => {
  for (const i of instances) i.kill();
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

async function start(name: string): Promise<Instance> {
  const { inst } = await Instance.startWith(
    dir,
    name,
    `workers: 2
drainTimeout: 5s
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
policies:
  edge: { type: cache, store: { memory: 1MiB } }
routes:
  all: { match: { path: / }, upstream: app, policies: [edge] }
`,
  );
  instances.push(inst);
  return inst;
}

/** GET on a fresh connection (any worker may answer). */
async function get(url: string): Promise<{ body: string; cache: string }> {
  const res = await request(url, { headers: { connection: 'close' }, reset: true });
  return { body: await res.body.text(), cache: String(res.headers['cache-status'] ?? '') };
}

/**
 * Waits until the store of the tree under `supervisor` holds `n` objects: files under
 * `<shm dir>/edge/v1/o/` other than `meta` and writes in progress (`.tmp-*`; an object is renamed
 * into place whole, after its `meta`: see file-store.ts). A worker stores a miss after it sent the
 * response, so a request before that is answered by a second miss (the other worker, or the same),
 * which stores a newer body: wait for this before `hitOf` when the hit must serve the first miss's body.
 */
async function stored(supervisor: number, n = 1): Promise<void> {
  const objects = join(shmDir(supervisor), 'edge', 'v1', 'o');
  const count = async (): Promise<number> => {
    const files = await readdir(objects, { recursive: true, withFileTypes: true }).catch(() => []);
    return files.filter((f) => f.isFile() && f.name !== 'meta' && !f.name.startsWith('.tmp-')).length;
  };
  await guard(
    (async () => {
      while ((await count()) < n) await tick();
    })(),
    `${n} object(s) in ${objects}`,
    10_000,
  );
}

/** GETs `url` until the answer is a hit (after `stored`: the first request is one); returns it. */
async function hitOf(url: string): Promise<{ body: string; cache: string }> {
  return guard(
    (async () => {
      for (;;) {
        const r = await get(url);
        if (/; hit/.test(r.cache)) return r;
        await tick();
      }
    })(),
    `a hit for ${url}`,
    10_000,
  );
}

test('upgrade (SIGUSR2): the new tree serves from its own /dev/shm store; the old directory is removed with the old supervisor, the new one at its stop', async () => {
  const inst = await start('upgrade');
  const old = inst.child.pid!;
  const url = `${inst.url('web')}/obj`;
  const first = await get(url);
  assert.match(first.cache, /fwd=miss/);
  await stored(old);
  assert.equal((await hitOf(url)).body, first.body);
  assert.ok(existsSync(shmDir(old)), `the old tree's store is in ${shmDir(old)}`);
  const askedBefore = asked;

  inst.signal('SIGUSR2');
  const handed = await inst.next((l) => l.msg === 'upgrade: the new Switchboard serves; this one drains', 60_000);
  const successor = handed.pid!;
  assert.notEqual(successor, old);
  assert.equal(await inst.exited(30_000), 0, 'the old supervisor drained and exited 0');
  assert.ok(!existsSync(shmDir(old)), 'the old supervisor removed its /dev/shm directory');

  // The new tree: a store of its own, so a miss first, then hits.
  const after = await get(url);
  assert.match(after.cache, /fwd=miss/, 'the store is not kept across the upgrade');
  assert.equal(asked, askedBefore + 1);
  await stored(successor);
  assert.equal((await hitOf(url)).body, after.body);
  assert.ok(existsSync(shmDir(successor)), `the new tree's store is in ${shmDir(successor)}`);

  const from = inst.lines.length;
  process.kill(successor, 'SIGTERM');
  // The supervisor's line (no worker field); the old one said its own before `from`.
  await inst.next((l) => l.msg === 'switchboard stopped' && l.worker === undefined, 30_000, from);
  assert.ok(!existsSync(shmDir(successor)), 'the new supervisor removed its directory when it stopped');
});

test('a supervisor killed (SIGKILL) leaves its directory; the next gateway with a shared memory store removes it', async () => {
  const killed = await start('killed');
  const pid = killed.child.pid!;
  await get(`${killed.url('web')}/k`);
  await stored(pid);
  await hitOf(`${killed.url('web')}/k`);
  assert.ok(existsSync(shmDir(pid)));
  const gone = once(killed.child, 'exit');
  killed.kill();
  await gone;
  assert.ok(existsSync(shmDir(pid)), 'nothing ran to remove it');

  const next = await start('next');
  assert.ok(!existsSync(shmDir(pid)), 'removed by the next gateway’s store as the directory of a dead supervisor');
  const from = next.lines.length;
  next.signal('SIGTERM');
  await next.next((l) => l.msg === 'switchboard stopped' && l.worker === undefined, 30_000, from);
  assert.ok(!existsSync(shmDir(next.child.pid!)));
});
