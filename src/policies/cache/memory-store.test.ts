import { test } from 'node:test';
import assert from 'node:assert/strict';
import CachePolicy from 'http-cache-semantics';
import { Collapser } from './collapse.ts';
import { MemoryStore, type StoredResponse } from './memory-store.ts';

function entry(url: string, opts: { variant?: string; vary?: string[]; body?: number; tags?: string[] } = {}): StoredResponse {
  const headers = { 'cache-control': 'max-age=60' };
  return {
    key: url + (opts.variant ?? ''),
    url,
    vary: opts.vary,
    policy: new CachePolicy({ url, headers: { host: 'h' } }, { status: 200, headers }),
    status: 200,
    headers,
    body: Buffer.alloc(opts.body ?? 10),
    mustRevalidate: false,
    tags: opts.tags ?? [],
  };
}

test('the store evicts least recently used objects past its byte budget', () => {
  const s = new MemoryStore(6000);
  for (let i = 0; i < 4; i++) s.put(entry(`http://h/${i}`, { body: 1000 }));
  assert.equal(s.size, 4);
  assert.ok(s.get('http://h/0'));
  s.put(entry('http://h/4', { body: 1000 }));
  assert.ok(s.bytes <= 6000);
  assert.equal(s.get('http://h/1'), undefined, 'the least recently used went');
  assert.ok(s.get('http://h/0'));
  assert.ok(s.evictions >= 1);
  assert.equal(s.put(entry('http://h/huge', { body: 7000 })), false);
});

test('variants of a URL, and a new Vary replacing them', () => {
  const s = new MemoryStore(100_000);
  s.put(entry('http://h/v', { variant: '\0a=1', vary: ['a'] }));
  s.put(entry('http://h/v', { variant: '\0a=2', vary: ['a'] }));
  assert.deepEqual(s.varyOf('http://h/v'), ['a']);
  assert.equal(s.size, 2);
  s.put(entry('http://h/v', { variant: '\0b=1', vary: ['b'] }));
  assert.equal(s.size, 1);
  assert.deepEqual(s.varyOf('http://h/v'), ['b']);
});

test('purge by URL, by prefix and by tag; the indexes follow', () => {
  const s = new MemoryStore(100_000);
  s.put(entry('http://h/a/1', { tags: ['t1'] }));
  s.put(entry('http://h/a/2', { variant: 'x', tags: ['t1', 't2'] }));
  s.put(entry('http://h/a/2', { variant: 'y' }));
  s.put(entry('http://h/b', { tags: ['t2'] }));
  assert.equal(s.deleteUrl('http://h/a/2'), 2);
  assert.equal(s.hasUrl('http://h/a/2'), false);
  assert.equal(s.deleteTag('t2'), 1);
  assert.equal(s.get('http://h/b'), undefined);
  assert.equal(s.deletePrefix('http://h/a/'), 1);
  assert.equal(s.size, 0);
  assert.equal(s.deleteTag('t1'), 0, 'the tag index lost the deleted objects');
});

test('collapsing: waiters learn the leader’s outcome, or time out', async () => {
  const c = new Collapser();
  assert.ok(c.lead('k'));
  assert.ok(!c.lead('k'));
  const a = c.wait('k', 0);
  const b = c.wait('k', 0);
  c.done('k', 'filled');
  assert.deepEqual(await Promise.all([a, b]), ['filled', 'filled']);
  assert.ok(c.lead('k'));
  const t = c.wait('k', 1);
  assert.equal(await t, 'timeout');
  c.done('k', 'released');
  assert.equal(await c.wait('k', 0), 'released', 'no leader: go upstream');
});
