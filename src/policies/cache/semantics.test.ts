import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cacheStatus,
  directiveSeconds,
  hasDirective,
  mergeNotModified,
  normalizeHost,
  normalizeValue,
  notModified,
  selectedBy304,
  policyHeaders,
  sameOriginKey,
  tagsOf,
  unsafeMethod,
  urlKey,
  variantPart,
  varyNames,
} from './semantics.ts';

test('hosts are normalised for the key: case, default port, trailing dot', () => {
  for (const [authority, scheme, want] of [
    ['Example.COM', 'http', 'example.com'],
    ['example.com:80', 'http', 'example.com'],
    ['example.com:443', 'https', 'example.com'],
    ['example.com:443', 'http', 'example.com:443'],
    ['example.com.', 'https', 'example.com'],
    ['[::1]:80', 'http', '[::1]'],
    ['[::1]', 'http', '[::1]'],
  ] as const)
    assert.equal(normalizeHost(authority, scheme), want, authority);
  assert.equal(urlKey('https', 'A.example:443', '/x', '?q=1'), 'https://a.example/x?q=1');
});

test('header values are normalised for Vary; Vary names sorted, * alone', () => {
  assert.equal(normalizeValue(['gzip', ' br ']), 'gzip, br');
  assert.equal(normalizeValue('gzip ,br'), 'gzip, br');
  assert.equal(normalizeValue('a   b'), 'a b');
  assert.equal(normalizeValue(undefined), '');
  assert.deepEqual(varyNames('Accept-Language, accept-encoding'), ['accept-encoding', 'accept-language']);
  assert.deepEqual(varyNames(['accept', '*']), ['*']);
  assert.equal(varyNames(' '), undefined);
  assert.equal(variantPart(['accept-language'], { 'accept-language': ' de ' }), variantPart(['accept-language'], { 'accept-language': 'de' }));
  assert.notEqual(variantPart(['accept-language'], { 'accept-language': 'fr' }), variantPart(['accept-language'], {}));
});

test('Cache-Control directives are found by name, with their seconds', () => {
  assert.ok(hasDirective('max-age=0, Only-If-Cached', 'only-if-cached'));
  assert.ok(!hasDirective('no-cache-ish', 'no-cache'));
  assert.equal(directiveSeconds('max-age=60, stale-if-error="600"', 'stale-if-error'), 600);
  assert.equal(directiveSeconds('stale-if-error=x', 'stale-if-error'), undefined);
});

test('policyHeaders takes must-revalidate out of what the library sees and adds defaultTtl only without freshness information', () => {
  const a = policyHeaders({ 'cache-control': 'max-age=60, must-revalidate' }, 0);
  assert.equal(a.headers['cache-control'], 'max-age=60');
  assert.ok(a.mustRevalidate && a.explicit);
  const b = policyHeaders({}, 30);
  assert.equal(b.headers['cache-control'], 's-maxage=30');
  assert.ok(b.explicit);
  const c = policyHeaders({}, 0);
  assert.ok(!c.explicit);
  // Never stale either: the origin's s-maxage (proxy-revalidate for a shared cache) and no-cache; not the s-maxage defaultTtl adds.
  assert.ok(policyHeaders({ 'cache-control': 's-maxage=60' }, 0).mustRevalidate);
  assert.ok(policyHeaders({ 'cache-control': 'no-cache="set-cookie", max-age=60' }, 0).mustRevalidate);
  assert.ok(!policyHeaders({ 'cache-control': 'max-age=60, stale-while-revalidate=30' }, 0).mustRevalidate);
  assert.ok(!b.mustRevalidate);
  const d = policyHeaders({ expires: 'Thu, 01 Jan 2037 00:00:00 GMT' }, 30);
  assert.equal(d.headers['cache-control'], undefined, 'Expires is freshness information: no default');
});

test('a 304 replaces and adds fields, except framing; a stored Age goes', () => {
  const merged = mergeNotModified({ etag: '"a"', 'content-length': '5', age: '3', 'x-old': '1' }, { etag: '"a"', 'content-length': '0', 'x-new': '2', 'x-old': '9' });
  assert.deepEqual(merged, { etag: '"a"', 'content-length': '5', 'x-old': '9', 'x-new': '2' });
});

test('client conditionals: If-None-Match by weak comparison, else If-Modified-Since', () => {
  const stored = { etag: 'W/"v1"', 'last-modified': 'Tue, 01 Jan 2030 00:00:00 GMT' };
  assert.ok(notModified({ 'if-none-match': '"v0", "v1"' }, stored));
  assert.ok(notModified({ 'if-none-match': '*' }, stored));
  assert.ok(!notModified({ 'if-none-match': '"v2"', 'if-modified-since': 'Wed, 01 Jan 2031 00:00:00 GMT' }, stored), 'If-None-Match wins');
  assert.ok(notModified({ 'if-modified-since': 'Wed, 01 Jan 2031 00:00:00 GMT' }, stored));
  assert.ok(!notModified({ 'if-modified-since': 'Mon, 01 Jan 2029 00:00:00 GMT' }, stored));
  assert.ok(!notModified({ 'if-modified-since': 'garbage' }, stored));
  assert.ok(!notModified({}, stored));
});

test('which stored response a 304 updates (RFC 9111 §4.3.4): same ETag, else the same valid Last-Modified, else none on both sides', () => {
  const lm = 'Tue, 01 Jan 2030 00:00:00 GMT';
  assert.ok(selectedBy304({ etag: '"a"' }, { etag: '"a"' }));
  assert.ok(!selectedBy304({ etag: 'W/"a"' }, { etag: '"a"' }), 'a strong 304 tag needs a strong stored one');
  assert.ok(selectedBy304({ etag: '"a"' }, { etag: 'W/"a"' }), 'a weak 304 tag compares weakly');
  assert.ok(!selectedBy304({ etag: '"a"' }, { etag: '"b"' }));
  assert.ok(!selectedBy304({ 'last-modified': lm }, { etag: 'W/"a"', 'last-modified': lm }), 'an ETag the stored response lacks selects nothing');
  assert.ok(selectedBy304({ 'last-modified': lm }, { 'last-modified': lm }));
  assert.ok(!selectedBy304({ 'last-modified': 'not a date' }, { 'last-modified': 'not a date' }), 'an invalid date validates nothing');
  assert.ok(!selectedBy304({ 'last-modified': lm }, { 'last-modified': 'Wed, 02 Jan 2030 00:00:00 GMT' }));
  assert.ok(selectedBy304({}, { date: lm }), 'no validators on either side');
  assert.ok(!selectedBy304({ etag: '"a"' }, {}));
});

test('tags, Cache-Status, unsafe methods, same-origin locations', () => {
  assert.deepEqual(tagsOf({ 'surrogate-key': 'a  b', 'cache-tag': 'c, d' }), ['a', 'b', 'c', 'd']);
  assert.equal(cacheStatus('Switchboard', 'hit', 41.7), 'Switchboard; hit; ttl=41');
  assert.equal(cacheStatus('Switchboard', 'fwd=miss'), 'Switchboard; fwd=miss');
  assert.ok(unsafeMethod('POST') && unsafeMethod('PATCH') && !unsafeMethod('GET') && !unsafeMethod('OPTIONS'));
  const base = 'http://example.com/a/b';
  assert.equal(sameOriginKey('/c?x=1', base), 'http://example.com/c?x=1');
  assert.equal(sameOriginKey('d', base), 'http://example.com/a/d');
  assert.equal(sameOriginKey('http://EXAMPLE.com:80/e', base), 'http://example.com/e');
  assert.equal(sameOriginKey('https://example.com/e', base), undefined);
  assert.equal(sameOriginKey('http://other.example/e', base), undefined);
  assert.equal(sameOriginKey(undefined, base), undefined);
});
