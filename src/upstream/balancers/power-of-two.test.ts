import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PowerOfTwo } from './power-of-two.ts';
import { fakeEndpoints, mulberry32, tally } from './testing.ts';

const ctx = { hashKey: undefined, now: 0 };

test('power of two compares two distinct candidates and takes the less loaded', () => {
  const p2c = new PowerOfTwo({ random: mulberry32(1) });
  const eps = fakeEndpoints(['a', 'b']);
  p2c.update(eps);
  eps[0].inFlight = 5;
  // With two candidates both are always sampled (distinct), so the less loaded always wins.
  for (let i = 0; i < 1000; i++) assert.equal(p2c.pick(eps, ctx)?.id, 'b');
});

test('power of two prefers less loaded endpoints', () => {
  const p2c = new PowerOfTwo({ random: mulberry32(2) });
  const eps = fakeEndpoints(['a', 'b', 'c', 'd']);
  p2c.update(eps);
  eps[0].inFlight = 10; // loses every comparison: never picked
  eps[1].inFlight = 5;
  const counts = tally(Array.from({ length: 12_000 }, () => p2c.pick(eps, ctx)?.id));
  assert.equal(counts.get('a'), undefined);
  // b wins only against a (pairs ab: 1/6 of samples); c and d tie between themselves.
  assert.ok(Math.abs(counts.get('b')! / 12_000 - 1 / 6) < 0.02, `b: ${counts.get('b')}`);
  assert.ok(Math.abs(counts.get('c')! - counts.get('d')!) < 500);
});

test('power of two keeps load per weight balanced as requests start', () => {
  for (const weights of [
    [1, 1, 1, 1, 1],
    [1, 1, 1, 1, 3], // the heavy one needs 3/7 of picks: more than a uniform draw would offer it (2/5)
  ]) {
    const p2c = new PowerOfTwo({ random: mulberry32(3) });
    const eps = fakeEndpoints(['a', 'b', 'c', 'd', 'e'], weights);
    p2c.update(eps);
    const total = weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < 100 * total; i++) p2c.pick(eps, ctx)!.inFlight++;
    // Within 3 requests per weight of the mean (100); independent random picks would be off by ~10.
    for (const e of eps) assert.ok(Math.abs(e.inFlight / e.weight - 100) <= 3, `${weights}: ${e.id} ${e.inFlight}`);
  }
});

test('power of two shares follow weights when idle', () => {
  // With no load every comparison ties and the first drawn (in proportion to weight) wins.
  for (const weights of [
    [1, 1, 1],
    [3, 1, 1],
    [0.5, 2, 1.5],
  ]) {
    const p2c = new PowerOfTwo({ random: mulberry32(4) });
    const ids = ['a', 'b', 'c'];
    const eps = fakeEndpoints(ids, weights);
    p2c.update(eps);
    const n = 20_000;
    const counts = tally(Array.from({ length: n }, () => p2c.pick(eps, ctx)?.id));
    const total = weights.reduce((a, b) => a + b, 0);
    ids.forEach((id, i) => {
      const share = counts.get(id)! / n;
      assert.ok(Math.abs(share - weights[i] / total) < 0.015, `${weights}: ${id} ${share}`);
    });
  }
});

test('power of two with one or no candidates', () => {
  const p2c = new PowerOfTwo({ random: mulberry32(5) });
  const eps = fakeEndpoints(['a']);
  p2c.update(eps);
  assert.equal(p2c.pick(eps, ctx), eps[0]);
  assert.equal(p2c.pick([], ctx), undefined);
});
