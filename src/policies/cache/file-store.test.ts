import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import CachePolicy from 'http-cache-semantics';
import { FileStore } from './file-store.ts';
import { MemoryStore, type StoredResponse } from './memory-store.ts';
import { TieredStore } from './tiered-store.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function dir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'switchboard-file-store-'));
  dirs.push(d);
  return d;
}

function entry(url: string, opts: { variant?: string; vary?: string[]; body?: number; tags?: string[]; fill?: string } = {}): StoredResponse {
  const headers = { 'cache-control': 'max-age=60', etag: '"e1"' };
  return {
    key: url + (opts.variant ?? ''),
    url,
    vary: opts.vary,
    policy: new CachePolicy({ url, headers: { host: 'h' } }, { status: 200, headers }, { shared: true }),
    status: 200,
    headers,
    body: Buffer.alloc(opts.body ?? 10, opts.fill ?? 'x'),
    mustRevalidate: false,
    tags: opts.tags ?? [],
  };
}

/** Every file under `d`, relative. */
async function files(d: string): Promise<string[]> {
  return (await readdir(d, { recursive: true })).map(String);
}

test('put and get: status, headers, body, validators and freshness survive; a new store on the same path (a restart) finds them', async () => {
  const path = await dir();
  const s = new FileStore({ path, maxSize: 1_000_000, durable: true, kind: 'disk' });
  await s.ready;
  assert.equal(await s.get('http://h/a'), undefined);
  assert.equal(await s.put(entry('http://h/a', { body: 5000, fill: 'a' })), true);
  const again = new FileStore({ path, maxSize: 1_000_000, durable: true, kind: 'disk' });
  await again.ready;
  const e = await again.get('http://h/a');
  assert.ok(e);
  assert.equal(e.status, 200);
  assert.equal(e.headers.etag, '"e1"');
  assert.deepEqual(e.body, Buffer.alloc(5000, 'a'));
  assert.equal(e.policy.stale(), false);
  assert.ok(e.policy.timeToLive() > 50_000 && e.policy.timeToLive() <= 60_000);
  assert.equal(again.stats().objects, 1);
  assert.ok(again.stats().bytes > 5000);
});

test('variants of a URL, and a new Vary replacing them', async () => {
  const s = new FileStore({ path: await dir(), maxSize: 1_000_000, durable: false, kind: 'memory-shared' });
  await s.put(entry('http://h/v', { variant: '\0a=1', vary: ['a'], fill: '1' }));
  await s.put(entry('http://h/v', { variant: '\0a=2', vary: ['a'], fill: '2' }));
  assert.deepEqual(await s.varyOf('http://h/v'), ['a']);
  assert.deepEqual((await s.get('http://h/v\0a=1'))?.body, Buffer.alloc(10, '1'));
  assert.deepEqual((await s.get('http://h/v\0a=2'))?.body, Buffer.alloc(10, '2'));
  await s.put(entry('http://h/v', { variant: '\0b=1', vary: ['b'] }));
  assert.deepEqual(await s.varyOf('http://h/v'), ['b']);
  assert.equal(await s.get('http://h/v\0a=1'), undefined);
  assert.ok(await s.get('http://h/v\0b=1'));
  assert.equal(await s.varyOf('http://h/none'), undefined);
});

test('purge by URL (every variant and extra key part), by prefix and by tag, seen by another store on the same path', async () => {
  const path = await dir();
  const s = new FileStore({ path, maxSize: 1_000_000, durable: false, kind: 'memory-shared' });
  const other = new FileStore({ path, maxSize: 1_000_000, durable: false, kind: 'memory-shared' });
  await s.put(entry('http://h/a/1', { tags: ['t1'] }));
  await s.put(entry('http://h/a/2', { variant: '\nx', tags: ['t1', 't2'] }));
  await s.put(entry('http://h/a/2', { variant: '\ny' }));
  await s.put(entry('http://h/b', { tags: ['t2'] }));
  assert.equal(await other.deleteUrl('http://h/a/2'), 2);
  assert.equal(await s.get('http://h/a/2\nx'), undefined);
  assert.equal(await s.get('http://h/a/2\ny'), undefined);
  assert.equal(await other.deleteTag('t2'), 1);
  assert.equal(await s.get('http://h/b'), undefined);
  assert.ok(await s.get('http://h/a/1'));
  assert.equal(await other.deletePrefix('http://h/a/'), 1);
  assert.equal(await s.get('http://h/a/1'), undefined);
  assert.equal(await other.deleteTag('t1'), 0);
});

test('the budget: a sweep evicts the least recently used (by mtime) down to 90%; a hit refreshes an old object', async () => {
  const path = await dir();
  const s = new FileStore({ path, maxSize: 20_000, durable: false, kind: 'disk' });
  await s.ready;
  for (let i = 0; i < 4; i++) await s.put(entry(`http://h/${i}`, { body: 4000 }));
  await s.sweep();
  assert.equal(s.stats().objects, 4);
  // Ages: 0 oldest … 3 newest; 0 then used (its mtime older than 10 s, so the hit touches it).
  const base = Date.now() / 1000 - 1000;
  const objectFiles = async (url: string) => (await files(path)).filter((f) => f.includes(hashDir(url)) && !f.endsWith('meta') && f.split('/').length === 5);
  for (let i = 0; i < 4; i++) for (const f of await objectFiles(`http://h/${i}`)) await utimes(join(path, f), base + i, base + i);
  assert.ok(await s.get('http://h/0'));
  await s.put(entry('http://h/4', { body: 4000 }));
  await s.put(entry('http://h/5', { body: 4000 }));
  await s.sweep();
  assert.ok(s.stats().bytes <= 20_000 * 0.9, `bytes ${s.stats().bytes}`);
  assert.ok(s.stats().evictions >= 2);
  assert.equal(await s.get('http://h/1'), undefined, 'the least recently used went');
  assert.equal(await s.get('http://h/2'), undefined);
  assert.ok(await s.get('http://h/0'), 'touched by its hit');
  assert.ok(await s.get('http://h/5'));
  assert.equal(await s.put(entry('http://h/huge', { body: 30_000 })), false, 'larger than the budget');
});

function hashDir(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 32);
}

test('a crash during a write leaves no servable half object; a fresh store removes the temp file', async () => {
  const path = await dir();
  const child = spawn(process.execPath, [join(import.meta.dirname, 'file-store-crash.fixture.ts'), path], { stdio: ['pipe', 'pipe', 'inherit'] });
  after(() => child.kill('SIGKILL'));
  // The child writes half the body of a 4 MiB object to its temp file, prints `half`, and waits on stdin.
  let out = '';
  child.stdout.setEncoding('utf8');
  while (!out.includes('half')) {
    const [chunk] = (await once(child.stdout, 'data')) as [string];
    out += chunk;
  }
  await rm(join(path, '.probe'), { force: true });
  const temps = (await files(path)).filter((f) => f.split('/').pop()?.startsWith('.tmp-'));
  assert.equal(temps.length, 1, 'the write is in progress in a temp file');
  assert.ok((await stat(join(path, temps[0]))).size > 1024 * 1024);
  child.kill('SIGKILL');
  await once(child, 'exit');
  const s = new FileStore({ path, maxSize: 100 * 1024 * 1024, durable: true, kind: 'disk' });
  assert.equal(await s.get('http://h/big'), undefined, 'the half object is never served');
  await s.ready;
  assert.deepEqual(
    (await files(path)).filter((f) => f.split('/').pop()?.startsWith('.tmp-')),
    [],
    'the temp file was removed',
  );
  assert.equal(await s.get('http://h/big'), undefined);
  assert.equal(await s.put(entry('http://h/big', { body: 1000 })), true, 'the key is writable again');
  assert.ok(await s.get('http://h/big'));
});

test('tiers: a hit in the back is promoted to the front; purges reach both', async () => {
  const front = new MemoryStore(100_000);
  const back = new FileStore({ path: await dir(), maxSize: 1_000_000, durable: false, kind: 'disk' });
  const t = new TieredStore(front, back);
  await back.put(entry('http://h/p', { tags: ['t'] }));
  assert.equal(front.get('http://h/p'), undefined);
  assert.ok(await t.get('http://h/p'));
  await new Promise((r) => setImmediate(r));
  assert.ok(front.get('http://h/p'), 'promoted');
  assert.equal(await t.deleteTag('t'), 1);
  assert.equal(front.get('http://h/p'), undefined);
  assert.equal(await back.get('http://h/p'), undefined);
  assert.equal(t.kind, 'memory+disk');
});
