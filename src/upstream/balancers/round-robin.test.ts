import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoundRobin } from './round-robin.ts';
import { fakeEndpoints } from './testing.ts';

const ctx = { hashKey: undefined, now: 0 };
const eps = fakeEndpoints(['a', 'b', 'c']);

test('round robin visits each candidate in turn', () => {
  const rr = new RoundRobin();
  rr.update(eps);
  const seen = Array.from({ length: 7 }, () => rr.pick(eps, ctx)?.id);
  assert.deepEqual(seen, ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
});

test('round robin spreads evenly over many picks', () => {
  const rr = new RoundRobin();
  rr.update(eps);
  const counts = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const id = rr.pick(eps, ctx)!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  assert.deepEqual([...counts.values()], [1000, 1000, 1000]);
});

test('round robin copes with the candidate list shrinking', () => {
  const rr = new RoundRobin();
  rr.update(eps);
  rr.pick(eps, ctx);
  rr.pick(eps, ctx);
  rr.pick(eps, ctx);
  const two = eps.slice(0, 2);
  assert.deepEqual([rr.pick(two, ctx)?.id, rr.pick(two, ctx)?.id, rr.pick(two, ctx)?.id], ['a', 'b', 'a']);
});

test('round robin returns undefined with no candidates', () => {
  assert.equal(new RoundRobin().pick([], ctx), undefined);
});
