import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WeightedRandom } from './random.ts';
import { fakeEndpoints, mulberry32, tally } from './testing.ts';

const ctx = { hashKey: undefined, now: 0 };

test('random picks in proportion to weight', () => {
  for (const weights of [
    [1, 1, 1, 1],
    [5, 2, 1],
    [0.25, 1.75, 2],
  ]) {
    const r = new WeightedRandom({ random: mulberry32(7) });
    const ids = weights.map((_, i) => `e${i}`);
    const eps = fakeEndpoints(ids, weights);
    r.update(eps);
    const n = 20_000;
    const counts = tally(Array.from({ length: n }, () => r.pick(eps, ctx)?.id));
    const total = weights.reduce((a, b) => a + b, 0);
    ids.forEach((id, i) => {
      const share = (counts.get(id) ?? 0) / n;
      assert.ok(Math.abs(share - weights[i] / total) < 0.015, `${weights}: ${id} ${share}`);
    });
  }
});

test('random reads weights on every pick and honours subsets', () => {
  const r = new WeightedRandom({ random: mulberry32(8) });
  const eps = fakeEndpoints(['a', 'b', 'c']);
  r.update(eps);
  eps[0].weight = 8; // slow start finished
  const counts = tally(Array.from({ length: 10_000 }, () => r.pick([eps[0], eps[1]], ctx)?.id));
  assert.equal(counts.get('c'), undefined);
  assert.ok(Math.abs(counts.get('a')! / 10_000 - 8 / 9) < 0.015);
});

test('random stays within candidates at the extremes of the generator', () => {
  const eps = fakeEndpoints(['a', 'b', 'c'], [0.1, 0.2, 0.3]);
  const low = new WeightedRandom({ random: () => 0 });
  const high = new WeightedRandom({ random: () => 0.9999999999999999 });
  assert.equal(low.pick(eps, ctx)?.id, 'a');
  assert.equal(high.pick(eps, ctx)?.id, 'c');
  assert.equal(low.pick([], ctx), undefined);
});
