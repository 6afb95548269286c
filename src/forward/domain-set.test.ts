import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainSet } from './domain-set.ts';

test('DomainSet: exact names, *.suffix (under it, not itself), ~regex (the whole name)', () => {
  const set = new DomainSet(['tracker.example', '*.ads.example', '~^cdn[0-9]+\\.example$', '~IMG\\d\\.test']);
  const table: Array<[string, boolean]> = [
    ['tracker.example', true],
    ['a.tracker.example', false],
    ['ads.example', false],
    ['x.ads.example', true],
    ['a.b.c.ads.example', true],
    ['xads.example', false],
    ['cdn12.example', true],
    ['cdn.example', false],
    ['img1.test', true],
    ['img1.test.evil', false], // anchored: the whole name
    ['other.example', false],
  ];
  for (const [name, want] of table) assert.equal(set.has(name), want, name);
  assert.equal(set.size, 4);
});

test('DomainSet: 100,000 names (exact and *.suffix), hits and misses', () => {
  // Correctness at the size the issue names; the speed (about 0.5 µs a lookup) is measured, not
  // asserted: tests assert behaviour, never timings.
  const patterns: string[] = [];
  for (let i = 0; i < 50_000; i++) patterns.push(`host${i}.blocked${i % 997}.example`);
  for (let i = 0; i < 50_000; i++) patterns.push(`*.zone${i}.example`);
  const set = new DomainSet(patterns);
  assert.equal(set.size, 100_000);
  assert.ok(set.has('host49999.blocked149.example'));
  assert.ok(set.has('deep.sub.zone12345.example'));
  assert.ok(!set.has('zone12345.example'));
  assert.ok(!set.has('host50000.blocked151.example'));
  let hits = 0;
  for (let i = 0; i < 100_000; i++) {
    if (set.has(`host${i % 50_000}.blocked${(i % 50_000) % 997}.example`)) hits++;
    if (set.has(`a.b.c.d.nozone${i}.example`)) hits++;
  }
  assert.equal(hits, 100_000);
});
