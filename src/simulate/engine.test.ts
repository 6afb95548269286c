/**
 * The engine obeys its model: service times, capacity and FIFO queueing (checked against textbook
 * queueing results), queue limits, slowdowns, failures with a detection delay, and the hash keys it
 * hands the balancers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BalancerFactory } from '../upstream/balancers/balancer.ts';
import { balancers, type BalancerName } from '../upstream/balancers/index.ts';
import { PeakEwma } from '../upstream/balancers/latency.ts';
import { drawArrivals } from './arrivals.ts';
import { REFUSED_MS, REJECTED_MS, simulate, type RunRecord } from './engine.ts';
import type { EndpointModel, FleetEvent, Scenario, ServiceTime } from './model.ts';
import { summarize } from './stats.ts';

const constant10: ServiceTime = { distribution: 'constant', mean: 10 };

function endpoint(name: string, over: Partial<EndpointModel> = {}): EndpointModel {
  return { name, weight: 1, capacity: 1, service: constant10, ...over };
}

function scenario(over: Partial<Scenario>): Scenario {
  return {
    name: 'test',
    description: 'test',
    requests: 2000,
    rate: 1,
    clients: { count: 50, zipf: 1 },
    keys: { count: 100, zipf: 0.8 },
    endpoints: [endpoint('s1')],
    events: [],
    hashTable: 'ring',
    ...over,
  };
}

function run(s: Scenario, algorithm: BalancerName = 'round-robin', seed = 1): { record: RunRecord; time: Float64Array } {
  const arrivals = drawArrivals(s, seed);
  return { record: simulate(s, arrivals, algorithm, seed), time: arrivals.time };
}

/** Equal up to float rounding (latency is a difference of two virtual times). */
function assertNear(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-6, `${actual} is not ${expected}`);
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return s / xs.length;
}

test('one endpoint, capacity 1, constant 10 ms, 1 req/s: latency is the service time', () => {
  const { record } = run(scenario({}));
  assert.ok(record.error.every((e) => e === 0));
  assert.equal(Math.min(...record.latency), 10);
  const m = mean(record.latency);
  assert.ok(m >= 10 && m < 10.2, `mean ${m}`);
});

test('queueing matches M/D/1 and M/M/1 mean response times', () => {
  // M/D/1 at 80% (service 10 ms, 80 req/s): wait = rho / (2 mu (1 - rho)) = 20 ms, response 30 ms.
  const md1 = mean(run(scenario({ rate: 80, requests: 40_000 })).record.latency);
  assert.ok(Math.abs(md1 - 30) < 3, `M/D/1 mean ${md1}`);
  // M/M/1 at 50% (mean 10 ms, 50 req/s): response = 1 / (mu - lambda) = 20 ms.
  const exp: EndpointModel = endpoint('s1', { service: { distribution: 'exponential', mean: 10 } });
  const mm1 = mean(run(scenario({ rate: 50, requests: 40_000, endpoints: [exp] })).record.latency);
  assert.ok(Math.abs(mm1 - 20) < 2, `M/M/1 mean ${mm1}`);
});

test('capacity: 4 requests at once are served side by side', () => {
  // 40 req/s against capacity 1 (100 req/s) queues a little; against capacity 4 almost never.
  const one = mean(run(scenario({ rate: 40, requests: 5000 })).record.latency);
  const four = mean(run(scenario({ rate: 40, requests: 5000, endpoints: [endpoint('s1', { capacity: 4 })] })).record.latency);
  assert.ok(one > 12, `capacity 1: ${one}`);
  assert.ok(four < 10.1, `capacity 4: ${four}`);
});

test('overload: the queue grows, and latency with it', () => {
  // 150 req/s against 100 req/s of capacity.
  const { record } = run(scenario({ rate: 150, requests: 3000 }));
  const deciles = Array.from({ length: 10 }, (_, i) => mean(record.latency.subarray(i * 300, (i + 1) * 300)));
  for (let i = 1; i < 10; i++) assert.ok(deciles[i] > deciles[i - 1], `deciles ${deciles.join(', ')}`);
  assert.ok(deciles[9] > 10 * deciles[0] && deciles[9] > 5000, `deciles ${deciles.join(', ')}`);
  assert.ok(
    record.error.every((e) => e === 0),
    'no queue limit: nothing is refused',
  );
});

test('a queue limit answers errors at once instead of queueing without end', () => {
  const { record } = run(scenario({ rate: 500, requests: 3000, endpoints: [endpoint('s1', { queueLimit: 2 })] }));
  let errors = 0;
  let worst = 0;
  for (let r = 0; r < 3000; r++) {
    if (record.error[r]) {
      errors++;
      assertNear(record.latency[r], REJECTED_MS);
    } else worst = Math.max(worst, record.latency[r]);
  }
  assert.ok(errors > 1500, `errors ${errors}`);
  assert.ok(worst <= 30 + 1e-9, `at most 2 waiting and 1 in service ahead: ${worst}`);
});

test('slowdown multiplies service times from `at` until `until`', () => {
  const events: FleetEvent[] = [{ type: 'slowdown', endpoint: 's1', at: { percent: 40 }, until: { percent: 60 }, factor: 3 }];
  const s = scenario({ events });
  const { record, time } = run(s);
  const span = 2000 * 1000; // requests / rate, ms
  for (let r = 0; r < 2000; r++) {
    const t = time[r];
    if (t > 0.41 * span && t < 0.59 * span) assert.ok(record.latency[r] >= 30, `slow at ${t}: ${record.latency[r]}`);
    if (t > 0.61 * span || t < 0.39 * span) assert.ok(record.latency[r] < 30, `fast at ${t}: ${record.latency[r]}`);
  }
});

test('failure: refused until detection, then out of the set; back after recovery and detection', () => {
  const events: FleetEvent[] = [{ type: 'fail', endpoint: 's1', at: { ms: 10_000 }, recover: { ms: 20_000 }, detectAfter: 2000 }];
  const s = scenario({ rate: 100, requests: 3000, endpoints: [endpoint('s1', { capacity: 4 }), endpoint('s2', { capacity: 4 })], events });
  const { record, time } = run(s);
  assert.deepEqual(record.changes, [
    { time: 12_000, endpoint: 0, listed: false },
    { time: 22_000, endpoint: 0, listed: true },
  ]);
  let refused = 0;
  for (let r = 0; r < 3000; r++) {
    const t = time[r];
    const toS1 = record.endpointOf[r] === 0;
    if (t >= 10_000 && t < 12_000 && toS1) {
      assert.equal(record.error[r], 1);
      assertNear(record.latency[r], REFUSED_MS);
      refused++;
    }
    if (t >= 12_000 && t < 22_000) assert.ok(!toS1, `request at ${t} sent to the removed endpoint`);
    if (t >= 22_000) assert.equal(record.error[r], 0);
  }
  assert.ok(refused > 50, `refused ${refused}`);
  assert.ok(
    [...record.endpointOf].some((e, r) => e === 0 && time[r] >= 22_000),
    's1 gets traffic again',
  );
});

test('hash keys: ip-hash sees the client address, consistent-hash the request key', () => {
  const s = scenario({ rate: 100, requests: 3000, endpoints: ['s1', 's2', 's3'].map((n) => endpoint(n, { capacity: 4 })) });
  const arrivals = drawArrivals(s, 1);
  for (const [algorithm, keyOf] of [
    ['ip-hash', arrivals.client],
    ['consistent-hash', arrivals.key],
  ] as const) {
    const record = simulate(s, arrivals, algorithm, 1);
    const seen = new Map<number, number>();
    for (let r = 0; r < 3000; r++) {
      const prev = seen.get(keyOf[r]);
      if (prev !== undefined) assert.equal(record.endpointOf[r], prev, `${algorithm}: key ${keyOf[r]} moved`);
      seen.set(keyOf[r], record.endpointOf[r]);
    }
    assert.equal(new Set(seen.values()).size, 3, `${algorithm} uses every endpoint`);
  }
});

test('the same seed replays the same run; another seed draws other arrivals', () => {
  const s = scenario({ rate: 100, requests: 2000, endpoints: ['s1', 's2'].map((n) => endpoint(n, { capacity: 2, service: { distribution: 'exponential', mean: 15 } })) });
  const a = run(s, 'power-of-two', 7);
  const b = run(s, 'power-of-two', 7);
  assert.deepEqual(a.record, b.record);
  const c = run(s, 'power-of-two', 8);
  assert.notDeepEqual(a.time, c.time);
});

test('what the balancer sees: inFlight counts dispatched, unanswered requests; latencyCost is a PeakEwma of response times', () => {
  const exp: ServiceTime = { distribution: 'exponential', mean: 20 };
  const s = scenario({ rate: 150, requests: 1500, endpoints: ['s1', 's2'].map((n) => endpoint(n, { capacity: 2, service: exp })) });
  const arrivals = drawArrivals(s, 3);
  const seen: { now: number; inFlight: number[]; cost: number[] }[] = [];
  const spy: BalancerFactory = (options) => {
    const inner = balancers['least-connections'](options);
    return {
      name: inner.name,
      update: (endpoints) => inner.update(endpoints),
      pick: (candidates, ctx) => {
        seen.push({ now: ctx.now, inFlight: candidates.map((c) => c.inFlight), cost: candidates.map((c) => c.latencyCost(ctx.now)) });
        return inner.pick(candidates, ctx);
      },
    };
  };
  const record = simulate(s, arrivals, 'least-connections', 3, spy);
  assert.equal(seen.length, 1500);
  const end = (r: number): number => arrivals.time[r] + record.latency[r];
  for (const e of [0, 1]) {
    const mine = [...record.endpointOf.keys()].filter((r) => record.endpointOf[r] === e);
    const answered = [...mine].sort((a, b) => end(a) - end(b));
    const ewma = new PeakEwma();
    let next = 0;
    for (let r = 0; r < 1500; r++) {
      const now = arrivals.time[r];
      const inFlight = mine.filter((q) => q < r && end(q) > now).length;
      assert.equal(seen[r].inFlight[e], inFlight, `request ${r}, endpoint ${e}`);
      while (next < answered.length && end(answered[next]) <= now) ewma.observe(record.latency[answered[next]], end(answered[next++]));
      assert.ok(Math.abs(seen[r].cost[e] - ewma.cost(now)) < 1e-9, `request ${r}, endpoint ${e}: cost ${seen[r].cost[e]} vs ${ewma.cost(now)}`);
    }
    assert.ok(ewma.observed);
  }
});

test('with every endpoint out of the set, requests fail at once without an endpoint', () => {
  const events: FleetEvent[] = [{ type: 'fail', endpoint: 's1', at: { ms: 5000 }, recover: { ms: 10_000 }, detectAfter: 1000 }];
  const s = scenario({ rate: 50, requests: 1000, events });
  const arrivals = drawArrivals(s, 1);
  const record = simulate(s, arrivals, 'random', 1);
  const summary = summarize(s, arrivals, record);
  let unrouted = 0;
  for (let r = 0; r < 1000; r++) {
    const t = arrivals.time[r];
    if (t >= 6000 && t < 11_000) {
      assert.equal(record.endpointOf[r], -1);
      assert.equal(record.error[r], 1);
      assert.equal(record.latency[r], 0);
      unrouted++;
    }
  }
  assert.ok(unrouted > 200, `unrouted ${unrouted}`);
  assert.equal(summary.unrouted, unrouted);
  assert.equal(summary.overall.errors, unrouted + summary.endpoints[0].errors);
  assert.ok(summary.endpoints[0].errors > 20, 'refused during the detection delay');
});
