/** The seeded generators and distributions the simulator draws from. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discrete, exponential, mulberry32, normal, stream, zipfWeights } from './random.ts';
import { lognormalSigma, serviceMs } from './model.ts';

test('mulberry32: a seed fixes the sequence; values are in [0, 1)', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const c = mulberry32(43);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(
    xs,
    Array.from({ length: 1000 }, () => b()),
  );
  assert.notDeepEqual(
    xs.slice(0, 10),
    Array.from({ length: 10 }, () => c()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.03, `mean ${mean}`);
});

test('stream: named streams of one seed are independent of each other', () => {
  assert.notEqual(stream(1, 'arrivals')(), stream(1, 'balancer')());
  assert.equal(stream(1, 'arrivals')(), stream(1, 'arrivals')());
  assert.notEqual(stream(1, 'arrivals')(), stream(2, 'arrivals')());
});

test('exponential and normal have the right moments', () => {
  const r = mulberry32(7);
  const n = 50_000;
  let e = 0;
  let z = 0;
  let z2 = 0;
  for (let i = 0; i < n; i++) {
    e += exponential(r(), 20);
    const x = normal(r);
    z += x;
    z2 += x * x;
  }
  assert.ok(Math.abs(e / n - 20) < 0.5, `exponential mean ${e / n}`);
  assert.ok(Math.abs(z / n) < 0.02, `normal mean ${z / n}`);
  assert.ok(Math.abs(z2 / n - 1) < 0.03, `normal variance ${z2 / n}`);
});

test('discrete draws in proportion to the weights; Zipf weights fall as 1/rank^s', () => {
  const pick = discrete([1, 2, 7]);
  const r = mulberry32(3);
  const counts = [0, 0, 0];
  for (let i = 0; i < 30_000; i++) counts[pick(r)]++;
  assert.deepEqual(
    counts.map((c) => Math.round(c / 3000)),
    [1, 2, 7],
  );
  assert.deepEqual(zipfWeights(3, 1), [1, 1 / 2, 1 / 3]);
  assert.deepEqual(zipfWeights(3, 0), [1, 1, 1]);
});

test('lognormal service: sigma from (mean, p99) gives back that mean and p99', () => {
  const sigma = lognormalSigma(20, 100);
  assert.ok(sigma !== undefined && sigma > 0);
  const r = mulberry32(11);
  const xs = Float64Array.from({ length: 100_000 }, () => serviceMs({ distribution: 'lognormal', mean: 20, sigma }, 0, normal(r))).sort();
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 20) < 0.5, `mean ${mean}`);
  assert.ok(Math.abs(xs[99_000] - 100) < 5, `p99 ${xs[99_000]}`);
  assert.equal(lognormalSigma(20, 10), undefined, 'p99 below the mean');
  assert.equal(lognormalSigma(20, 1000), undefined, 'p99 too far above the mean for a lognormal');
});
