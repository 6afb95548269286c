import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeastResponseTime } from './least-response-time.ts';
import { fakeEndpoints, mulberry32, tally } from './testing.ts';

const ctx = { hashKey: undefined, now: 1000 };

test('least response time sends little traffic to a slow endpoint', () => {
  const lrt = new LeastResponseTime({ random: mulberry32(1) });
  const eps = fakeEndpoints(['slow', 'fast1', 'fast2']);
  eps[0].cost = 100;
  eps[1].cost = 5;
  eps[2].cost = 5;
  lrt.update(eps);
  const counts = tally(Array.from({ length: 10_000 }, () => lrt.pick(eps, ctx)?.id));
  assert.ok((counts.get('slow') ?? 0) < 2000, `slow: ${counts.get('slow')}`);
  assert.ok(Math.abs(counts.get('fast1')! - counts.get('fast2')!) < 400);
});

test('least response time weighs latency by requests in flight', () => {
  const lrt = new LeastResponseTime({ random: mulberry32(2) });
  const eps = fakeEndpoints(['a', 'b']);
  lrt.update(eps);
  eps[0].cost = 10;
  eps[1].cost = 40;
  // 10 × (0 + 1) < 40 × 1: a.
  assert.equal(lrt.pick(eps, ctx)?.id, 'a');
  // 10 × (5 + 1) = 60 > 40: b, though slower.
  eps[0].inFlight = 5;
  assert.equal(lrt.pick(eps, ctx)?.id, 'b');
  // Weight divides: 10 × 6 / 2 = 30 < 40.
  eps[0].weight = 2;
  assert.equal(lrt.pick(eps, ctx)?.id, 'a');
  // Requests that never finish spread by cost: a (10 ms) ends with about 4× b's (40 ms).
  eps[0].inFlight = 0;
  eps[0].weight = 1;
  for (let i = 0; i < 500; i++) lrt.pick(eps, ctx)!.inFlight++;
  assert.ok(Math.abs(eps[0].inFlight / eps[1].inFlight - 4) < 0.2, `${eps[0].inFlight} vs ${eps[1].inFlight}`);
});

test('least response time passes the time to latencyCost', () => {
  const lrt = new LeastResponseTime({ random: mulberry32(3) });
  const eps = fakeEndpoints(['a', 'b']);
  const seen: number[] = [];
  eps[0].latencyCost = (now: number) => {
    seen.push(now);
    return 1;
  };
  eps[1].cost = 5;
  lrt.update(eps);
  lrt.pick(eps, { hashKey: undefined, now: 1234 });
  assert.deepEqual(seen, [1234]);
});

test('an endpoint with no observation yet does not take a whole burst', () => {
  const lrt = new LeastResponseTime({ random: mulberry32(4) });
  const eps = fakeEndpoints(['new', 'a', 'b', 'c']);
  eps[0].cost = 0; // nothing observed
  eps[1].cost = 10;
  eps[2].cost = 10;
  eps[3].cost = 10;
  lrt.update(eps);
  // A burst of 400 requests before any response: the new endpoint is scored like an average one.
  for (let i = 0; i < 400; i++) lrt.pick(eps, ctx)!.inFlight++;
  assert.ok(eps[0].inFlight < 150, `new endpoint took ${eps[0].inFlight} of 400`);
  assert.ok(eps[0].inFlight > 50, `new endpoint took ${eps[0].inFlight} of 400`);
});

test('with nothing observed anywhere least response time balances by load', () => {
  const lrt = new LeastResponseTime({ random: mulberry32(5) });
  const eps = fakeEndpoints(['a', 'b', 'c']);
  lrt.update(eps);
  for (let i = 0; i < 300; i++) lrt.pick(eps, ctx)!.inFlight++;
  for (const e of eps) assert.ok(Math.abs(e.inFlight - 100) <= 3, `${e.id}: ${e.inFlight}`);
});

test('least response time with one or no candidates', () => {
  const lrt = new LeastResponseTime({ random: mulberry32(6) });
  const eps = fakeEndpoints(['a']);
  eps[0].cost = 1000;
  lrt.update(eps);
  assert.equal(lrt.pick(eps, ctx), eps[0]);
  assert.equal(lrt.pick([], ctx), undefined);
});
