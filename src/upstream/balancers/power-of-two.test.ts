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

test('power of two keeps load balanced as requests start and end', () => {
  const p2c = new PowerOfTwo({ random: mulberry32(3) });
  const eps = fakeEndpoints(['a', 'b', 'c', 'd', 'e'], [1, 1, 1, 1, 3]);
  p2c.update(eps);
  for (let i = 0; i < 700; i++) p2c.pick(eps, ctx)!.inFlight++;
  // Load per weight stays close: no endpoint more than 3 requests per weight above the mean (100).
  for (const e of eps) assert.ok(Math.abs(e.inFlight / e.weight - 100) <= 3, `${e.id}: ${e.inFlight}`);
});

test('power of two shares follow weights when idle', () => {
  // With no load every comparison ties, so shares are uniform (weights only matter through load).
  const p2c = new PowerOfTwo({ random: mulberry32(4) });
  const eps = fakeEndpoints(['a', 'b', 'c']);
  p2c.update(eps);
  const counts = tally(Array.from({ length: 9000 }, () => p2c.pick(eps, ctx)?.id));
  for (const [id, count] of counts) assert.ok(Math.abs(count - 3000) < 150, `${id}: ${count}`);
});

test('power of two with one or no candidates', () => {
  const p2c = new PowerOfTwo({ random: mulberry32(5) });
  const eps = fakeEndpoints(['a']);
  p2c.update(eps);
  assert.equal(p2c.pick(eps, ctx), eps[0]);
  assert.equal(p2c.pick([], ctx), undefined);
});
