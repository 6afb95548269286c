import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WeightedRoundRobin } from './weighted-round-robin.ts';
import { fakeEndpoints, tally, type FakeEndpoint } from './testing.ts';

const ctx = { hashKey: undefined, now: 0 };

function picks(wrr: WeightedRoundRobin, candidates: FakeEndpoint[], count: number): string[] {
  return Array.from({ length: count }, () => wrr.pick(candidates, ctx)!.id);
}

function longestRun(seq: string[], id: string): number {
  let longest = 0;
  let run = 0;
  for (const x of seq) {
    run = x === id ? run + 1 : 0;
    longest = Math.max(longest, run);
  }
  return longest;
}

function assertShares(seq: string[], ids: string[], weights: number[], tolerance: number): void {
  const total = weights.reduce((a, b) => a + b, 0);
  const counts = tally(seq);
  ids.forEach((id, i) => {
    const share = (counts.get(id) ?? 0) / seq.length;
    const expected = weights[i] / total;
    assert.ok(Math.abs(share - expected) <= tolerance * expected, `${id}: ${share} vs ${expected}`);
  });
}

test('weighted round robin matches weights 3,1,1 and 5,2,1 within 2% over 10,000 picks', () => {
  for (const weights of [
    [3, 1, 1],
    [5, 2, 1],
  ]) {
    const eps = fakeEndpoints(['a', 'b', 'c'], weights);
    const wrr = new WeightedRoundRobin();
    wrr.update(eps);
    assertShares(picks(wrr, eps, 10_000), ['a', 'b', 'c'], weights, 0.02);
  }
});

test("weighted round robin is smooth: 5,1,1 gives NGINX's a a b a c a a, never a run of 5", () => {
  const eps = fakeEndpoints(['a', 'b', 'c'], [5, 1, 1]);
  const wrr = new WeightedRoundRobin();
  wrr.update(eps);
  const seq = picks(wrr, eps, 7000);
  // The schedule from the comment in ngx_http_upstream_round_robin.c; b and c are split by an a.
  assert.deepEqual(seq.slice(0, 7), ['a', 'a', 'b', 'a', 'c', 'a', 'a']);
  assert.deepEqual(seq.slice(7, 14), seq.slice(0, 7), 'the schedule repeats every 7 picks');
  // Within a cycle the heavy endpoint runs at most 2; where one cycle ends (…a a) and the next
  // starts (a a…) it runs 4. A plain weighted round robin (a a a a a b c) runs 5.
  assert.equal(longestRun(seq.slice(0, 7), 'a'), 2);
  assert.equal(longestRun(seq, 'a'), 4);
});

test("weighted round robin never gets ahead of any endpoint's share by a whole pick", () => {
  // From a fresh state with fixed weights (total T over m candidates), endpoint i's `current` after
  // n picks is n·w_i − T·count_i(n), because every pick adds w_i and each of its wins subtracts T.
  // A winner's current before the subtraction is the largest, so at least the mean T/m; after it,
  // at least T/m − T, and it only grows until the next win. Hence count_i(n) ≤ n·w_i/T + 1 − 1/m
  // for every prefix n: a bound that bursty schedules (a a a a a b c) break at once. With integer
  // weights this also makes the schedule periodic: after T picks every count is exactly w_i.
  for (const weights of [
    [5, 1, 1],
    [5, 2, 1],
    [3, 1, 1],
    [10, 1, 1, 1],
    [1.5, 0.5, 1],
  ]) {
    const ids = weights.map((_, i) => `e${i}`);
    const eps = fakeEndpoints(ids, weights);
    const wrr = new WeightedRoundRobin();
    wrr.update(eps);
    const total = weights.reduce((a, b) => a + b, 0);
    const m = weights.length;
    const counts = new Map<string, number>();
    for (let n = 1; n <= 2000; n++) {
      const id = wrr.pick(eps, ctx)!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
      ids.forEach((other, i) => {
        const bound = (n * weights[i]) / total + 1 - 1 / m + 1e-9;
        assert.ok((counts.get(other) ?? 0) <= bound, `${weights}: ${other} picked ${counts.get(other)} times in ${n}`);
      });
    }
  }
});

test('weighted round robin handles fractional weights and reads weights on every pick', () => {
  const eps = fakeEndpoints(['a', 'b', 'c'], [0.5, 1.5, 1]);
  const wrr = new WeightedRoundRobin();
  wrr.update(eps);
  assertShares(picks(wrr, eps, 10_000), ['a', 'b', 'c'], [0.5, 1.5, 1], 0.02);
  // Slow start ramps a weight up without an update.
  eps[0].weight = 3;
  assertShares(picks(wrr, eps, 11_000), ['a', 'b', 'c'], [3, 1.5, 1], 0.02);
});

test('weighted round robin picks among a subset of candidates (retries)', () => {
  const eps = fakeEndpoints(['a', 'b', 'c'], [5, 1, 1]);
  const wrr = new WeightedRoundRobin();
  wrr.update(eps);
  // A retry after `a`: only b and c, split evenly, never a.
  const retry = picks(wrr, [eps[1], eps[2]], 1000);
  assert.equal(tally(retry).get('a'), undefined);
  assert.equal(tally(retry).get('b'), 500);
  // Subsets in another order, and equal endpoints as other objects: state follows the id.
  const copies = fakeEndpoints(['c', 'a'], [1, 5]);
  assertShares(picks(wrr, copies, 6000), ['a', 'c'], [5, 1], 0.02);
  // Interleaved first attempts and retries: each attempt excludes the endpoint it just got.
  const full: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const first = wrr.pick(eps, ctx)!;
    full.push(first.id);
    const second = wrr.pick(
      eps.filter((e) => e !== first),
      ctx,
    )!;
    assert.notEqual(second.id, first.id);
  }
  assert.ok(tally(full).get('a')! > tally(full).get('b')! * 3, 'the full set still favours the heavy endpoint');
});

test('weighted round robin keeps its schedule across updates for endpoints that stay', () => {
  const eps = fakeEndpoints(['a', 'b', 'c', 'd'], [5, 1, 1, 1]);
  const wrr = new WeightedRoundRobin();
  wrr.update(eps);
  // An update before every pick (health flapping on d) must not restart the schedule at `a`.
  const seq: string[] = [];
  for (let i = 0; i < 7000; i++) {
    wrr.update(i % 2 ? eps : eps.slice(0, 3));
    seq.push(wrr.pick(eps.slice(0, 3), ctx)!.id);
  }
  assertShares(seq, ['a', 'b', 'c'], [5, 1, 1], 0.02);
});

test('weighted round robin returns undefined with no candidates and the only one with one', () => {
  const wrr = new WeightedRoundRobin();
  const eps = fakeEndpoints(['a']);
  wrr.update(eps);
  assert.equal(wrr.pick([], ctx), undefined);
  assert.equal(wrr.pick(eps, ctx), eps[0]);
});
