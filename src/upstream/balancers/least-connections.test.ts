import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeastConnections } from './least-connections.ts';
import { fakeEndpoints, mulberry32, tally } from './testing.ts';

const ctx = { hashKey: undefined, now: 0 };

test('least connections picks the lowest in-flight per weight', () => {
  const lc = new LeastConnections({ random: mulberry32(1) });
  const eps = fakeEndpoints(['a', 'b', 'c'], [1, 1, 4]);
  lc.update(eps);
  eps[0].inFlight = 3;
  eps[1].inFlight = 1;
  eps[2].inFlight = 8; // 8 / 4 = 2
  for (let i = 0; i < 100; i++) assert.equal(lc.pick(eps, ctx)?.id, 'b');
  eps[1].inFlight = 3; // a 3, b 3, c 2
  for (let i = 0; i < 100; i++) assert.equal(lc.pick(eps, ctx)?.id, 'c');
});

test('least connections follows load as requests start', () => {
  const lc = new LeastConnections({ random: mulberry32(2) });
  const eps = fakeEndpoints(['a', 'b', 'c', 'd'], [1, 1, 1, 2]);
  lc.update(eps);
  // 50 requests that never finish: in-flight ends proportional to weight.
  for (let i = 0; i < 50; i++) lc.pick(eps, ctx)!.inFlight++;
  assert.deepEqual(
    eps.map((e) => e.inFlight),
    [10, 10, 10, 20],
  );
});

test('least connections spreads ties instead of piling onto the first endpoint', () => {
  const lc = new LeastConnections({ random: mulberry32(3) });
  const eps = fakeEndpoints(['a', 'b', 'c', 'd', 'e']);
  lc.update(eps);
  const counts = tally(Array.from({ length: 10_000 }, () => lc.pick(eps, ctx)?.id));
  assert.equal(counts.size, 5);
  for (const [id, count] of counts) assert.ok(Math.abs(count - 2000) < 200, `${id}: ${count}`);
});

test('least connections breaks ties by weight', () => {
  const lc = new LeastConnections({ random: mulberry32(4) });
  const eps = fakeEndpoints(['a', 'b', 'c'], [3, 1, 1]);
  eps[2].inFlight = 1; // c is not tied
  lc.update(eps);
  const counts = tally(Array.from({ length: 10_000 }, () => lc.pick(eps, ctx)?.id));
  assert.equal(counts.get('c'), undefined);
  assert.ok(Math.abs(counts.get('a')! / 10_000 - 0.75) < 0.03, `a: ${counts.get('a')}`);
});

test('least connections with one or no candidates', () => {
  const lc = new LeastConnections({ random: mulberry32(5) });
  const eps = fakeEndpoints(['a']);
  lc.update(eps);
  assert.equal(lc.pick(eps, ctx), eps[0]);
  assert.equal(lc.pick([], ctx), undefined);
});
