import { test } from 'node:test';
import assert from 'node:assert/strict';
import CachePolicy from 'http-cache-semantics';
import type { StoredResponse } from './memory-store.ts';
import { globEscape, RedisStore, ttlOf } from './redis-store.ts';

function entry(headers: Record<string, string>): StoredResponse {
  const url = 'http://h/x';
  return {
    key: url,
    url,
    vary: undefined,
    policy: new CachePolicy({ url, headers: { host: 'h' } }, { status: 200, headers }, { shared: true }),
    status: 200,
    headers,
    body: Buffer.alloc(10),
    mustRevalidate: false,
    tags: [],
  };
}

/** Within a second (the object ages while the test runs). */
function near(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) <= 1000, `${actual} ≈ ${expected}`);
}

test('an object is kept for its freshness lifetime, its stale windows, the configured grace, and an hour more with validators', () => {
  near(ttlOf(entry({ 'cache-control': 'max-age=60' }), 0), 60_000);
  near(ttlOf(entry({ 'cache-control': 'max-age=60, stale-while-revalidate=30' }), 0), 90_000);
  near(ttlOf(entry({ 'cache-control': 'max-age=60' }), 10), 70_000);
  near(ttlOf(entry({ 'cache-control': 'max-age=60', etag: '"a"' }), 0), 3_660_000);
  assert.equal(ttlOf(entry({ 'cache-control': 'max-age=0' }), 0), 1000, 'at least a second');
});

test('a purge prefix matches itself only in SCAN MATCH', () => {
  assert.equal(globEscape('http://h/a*b?[c]\\'), 'http://h/a\\*b\\?\\[c\\]\\\\');
});

test('Redis unreachable: a miss, not stored, nothing purged; never a rejection; one warning', async () => {
  const warnings: string[] = [];
  const s = new RedisStore({
    url: 'redis://127.0.0.1:1',
    prefix: 'x:',
    connectTimeout: 200,
    commandTimeout: 200,
    maxObjectSize: 1024,
    staleIfError: 0,
    log: { warn: (_o, m) => warnings.push(m) },
  });
  assert.equal(await s.varyOf('http://h/x'), undefined);
  assert.equal(await s.get('http://h/x'), undefined);
  assert.equal(await s.put(entry({ 'cache-control': 'max-age=60' })), false);
  assert.equal(await s.deleteTag('t'), 0);
  assert.equal(await s.deletePrefix('http://h/'), 0);
  assert.equal(warnings.length, 1);
});
