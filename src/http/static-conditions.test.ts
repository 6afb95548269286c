import assert from 'node:assert/strict';
import { test } from 'node:test';
import { acceptedEncodings, etagMatches, etagOf, evaluateConditions, ifRangeHolds, parseRange } from './static-conditions.ts';

test('parseRange: single ranges, suffixes, open ends, unsatisfiable, ignored', () => {
  const cases: Array<[string, number, ReturnType<typeof parseRange>]> = [
    ['bytes=0-0', 10, { start: 0, end: 0 }],
    ['bytes=2-4', 10, { start: 2, end: 4 }],
    ['bytes=7-', 10, { start: 7, end: 9 }],
    ['bytes=-3', 10, { start: 7, end: 9 }],
    ['bytes=-30', 10, { start: 0, end: 9 }],
    ['bytes=8-100', 10, { start: 8, end: 9 }],
    ['bytes=10-', 10, 'unsatisfiable'],
    ['bytes=-0', 10, 'unsatisfiable'],
    ['bytes=0-', 0, 'unsatisfiable'],
    ['bytes=5-2', 10, undefined],
    ['bytes=0-1,3-4', 10, undefined],
    ['items=0-1', 10, undefined],
    ['bytes=a-b', 10, undefined],
    ['bytes=-', 10, undefined],
    ['bytes=1', 10, undefined],
  ];
  for (const [h, size, want] of cases) assert.deepEqual(parseRange(h, size), want, h);
});

test('conditions in RFC 9110 §13.2.2 order', () => {
  const etag = etagOf(10, 1_700_000_000_500, undefined);
  const lm = new Date(1_700_000_000_500).toUTCString();
  const cases: Array<[Record<string, string>, 0 | 304 | 412]> = [
    [{}, 0],
    [{ 'if-none-match': etag }, 304],
    [{ 'if-none-match': `W/${etag}` }, 304],
    [{ 'if-none-match': '*' }, 304],
    [{ 'if-none-match': '"x"' }, 0],
    [{ 'if-none-match': '"x"', 'if-modified-since': lm }, 0],
    [{ 'if-modified-since': lm }, 304],
    [{ 'if-modified-since': 'garbage' }, 0],
    [{ 'if-modified-since': new Date(1_699_999_999_000).toUTCString() }, 0],
    [{ 'if-match': etag }, 0],
    [{ 'if-match': `W/${etag}` }, 412],
    [{ 'if-match': '"x"', 'if-none-match': etag }, 412],
    [{ 'if-unmodified-since': lm }, 0],
    [{ 'if-unmodified-since': new Date(0).toUTCString() }, 412],
    [{ 'if-match': etag, 'if-unmodified-since': new Date(0).toUTCString() }, 0],
  ];
  for (const [h, want] of cases) assert.equal(evaluateConditions(h, etag, 1_700_000_000_500), want, JSON.stringify(h));
  assert.equal(etagMatches('"a", "b"', '"b"', false), true);
  assert.notEqual(etagOf(10, 1, 'br'), etagOf(10, 1, undefined));
  assert.equal(ifRangeHolds(undefined, etag, lm), true);
  assert.equal(ifRangeHolds(etag, etag, lm), true);
  assert.equal(ifRangeHolds(`W/${etag}`, etag, lm), false);
  assert.equal(ifRangeHolds(lm, etag, lm), true);
  assert.equal(ifRangeHolds(new Date(0).toUTCString(), etag, lm), false);
});

test('acceptedEncodings: q-values, *, x-gzip, our order at equal q', () => {
  const names = (h: string | undefined): string[] => acceptedEncodings(h).map((e) => e.coding);
  assert.deepEqual(names(undefined), []);
  assert.deepEqual(names('gzip, deflate, br, zstd'), ['br', 'zstd', 'gzip']);
  assert.deepEqual(names('gzip;q=1.0, br;q=0.5'), ['gzip', 'br']);
  assert.deepEqual(names('br;q=0, gzip'), ['gzip']);
  assert.deepEqual(names('*'), ['br', 'zstd', 'gzip']);
  assert.deepEqual(names('br;q=0, *;q=0.2'), ['zstd', 'gzip']);
  assert.deepEqual(names('x-gzip'), ['gzip']);
  assert.deepEqual(names('identity'), []);
  assert.deepEqual(names('GZIP ; Q=0.3 , BR;q=0.9'), ['br', 'gzip']);
});
