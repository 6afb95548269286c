/**
 * Outlier detection on an injected clock (and mocked setTimeout for the return from ejection):
 * durations and their decay, the max-ejected share, the failure streak, and timers that stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { OutlierConfig } from '../config/types.ts';
import { OutlierDetection, decayedEjections, ejectionDuration, maxEjected, type OutlierRecord } from './outlier-detection.ts';

const CONFIG: OutlierConfig = { consecutiveFailures: 2, baseEjectionTime: 10_000, maxEjectionTime: 25_000, maxEjectedPercent: 100 };

interface Endpoint extends OutlierRecord {
  name: string;
}

function endpoint(name: string): Endpoint {
  return { name, ejected: false, ejectedUntil: 0, ejections: 0, lastEjectedAt: 0, consecutiveFailures: 0, ejectionTimer: undefined };
}

/** A detector over `names`, on a clock the test moves, logging its events. */
function detector(names: string[], config: Partial<OutlierConfig> = {}) {
  const clock = { now: 1_000_000 };
  const endpoints = new Map(names.map((n) => [n, endpoint(n)]));
  const events: string[] = [];
  const od = new OutlierDetection(
    { ...CONFIG, ...config },
    endpoints,
    { ejected: (e, reason) => events.push(`ejected ${e.name}: ${reason}`), returned: (e) => events.push(`returned ${e.name}`) },
    () => clock.now,
  );
  const fail = (name: string, times: number): Endpoint => {
    const e = endpoints.get(name)!;
    for (let i = 0; i < times; i++) od.record(e, true);
    return e;
  };
  return { clock, endpoints, events, od, fail };
}

test('ejectionDuration: one base time per ejection, capped at the maximum', () => {
  const cases: [ejections: number, ms: number][] = [
    [1, 10_000],
    [2, 20_000],
    [3, 25_000],
    [10, 25_000],
  ];
  for (const [ejections, ms] of cases) assert.equal(ejectionDuration(CONFIG, ejections), ms, `ejection ${ejections}`);
});

test('decayedEjections: one less per whole base time of calm since the last ejection ended', () => {
  const cases: [ejections: number, ejectedUntil: number, now: number, expected: number][] = [
    [3, 0, 0, 3],
    [3, 0, 9_999, 3],
    [3, 0, 10_000, 2],
    [3, 0, 29_999, 1],
    [3, 0, 30_000, 0],
    [3, 0, 1_000_000, 0],
    [0, 0, 50_000, 0],
    [2, 50_000, 40_000, 2], // the clock before the end: no decay, never growth
  ];
  for (const [ejections, until, now, expected] of cases) assert.equal(decayedEjections(ejections, until, now, 10_000), expected, `${ejections} at ${now - until} ms`);
});

test('maxEjected: the percentage of endpoints rounded down, but at least one', () => {
  const cases: [endpoints: number, percent: number, max: number][] = [
    [10, 10, 1],
    [20, 10, 2],
    [19, 10, 1],
    [4, 50, 2],
    [3, 50, 1],
    [1, 0, 1],
    [5, 100, 5],
  ];
  for (const [n, percent, max] of cases) assert.equal(maxEjected(n, percent), max, `${percent}% of ${n}`);
});

test('consecutive failures eject; a success in between resets the streak; 0 turns detection off', () => {
  const { od, fail, endpoints, events } = detector(['a']);
  const a = endpoints.get('a')!;
  fail('a', 1);
  od.record(a, false);
  fail('a', 1);
  assert.equal(a.ejected, false, 'a success reset the streak');
  fail('a', 1);
  assert.equal(a.ejected, true);
  assert.equal(a.consecutiveFailures, 0, 'the streak starts over');
  assert.deepEqual(events, ['ejected a: 2 consecutive failures; ejected for 10000 ms (ejection 1)']);
  od.close();

  const off = detector(['a'], { consecutiveFailures: 0 });
  assert.equal(off.fail('a', 100).ejected, false);
  off.od.close();
});

test('ejections last longer each time, decay while calm, and return on their timer', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { od, fail, clock, events } = detector(['a']);
  const pass = (ms: number): void => {
    clock.now += ms;
    t.mock.timers.tick(ms);
  };
  try {
    const durations: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a = fail('a', 2);
      assert.equal(a.lastEjectedAt, clock.now);
      durations.push(a.ejectedUntil - clock.now);
      pass(durations[i] - 1);
      assert.equal(a.ejected, true, 'still out a millisecond before the end');
      pass(1);
      assert.equal(a.ejected, false, 'back at the end');
    }
    assert.deepEqual(durations, [10_000, 20_000, 25_000]);
    assert.equal(events.filter((e) => e === 'returned a').length, 3);
    // Twenty calm seconds take the multiplier from 3 to 1: the next ejection is the second.
    pass(20_000);
    const a = fail('a', 2);
    assert.equal(a.ejections, 2);
    assert.equal(a.ejectedUntil - clock.now, 20_000);
  } finally {
    od.close();
  }
});

test('max ejected percent: no ejection past the share; a failing endpoint while ejected is not counted', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { od, fail, events } = detector(['a', 'b', 'c', 'd'], { maxEjectedPercent: 50 });
  try {
    assert.equal(fail('a', 2).ejected, true);
    assert.equal(fail('a', 5).consecutiveFailures, 0, 'failures while ejected do not count');
    assert.equal(fail('b', 2).ejected, true);
    const c = fail('c', 2);
    assert.equal(c.ejected, false, 'two of four are out already');
    assert.equal(c.consecutiveFailures, 0, 'the streak that could not eject starts over');
    t.mock.timers.tick(10_000);
    assert.equal(fail('c', 2).ejected, true, 'room again once the others returned');
    assert.deepEqual(
      events.map((e) => e.split(':')[0]),
      ['ejected a', 'ejected b', 'returned a', 'returned b', 'ejected c'],
    );
  } finally {
    od.close();
  }
});

test('forget and close stop the timers: nothing returns afterwards', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { od, fail, events } = detector(['a', 'b']);
  const a = fail('a', 2);
  const b = fail('b', 2);
  od.forget(a);
  assert.equal(a.ejectionTimer, undefined);
  od.close();
  assert.equal(b.ejectionTimer, undefined);
  t.mock.timers.tick(60_000);
  assert.equal(a.ejected, true);
  assert.equal(b.ejected, true);
  assert.equal(events.filter((e) => e.startsWith('returned')).length, 0);
});

test('configure: a reloaded config applies to the next ejection', () => {
  const { od, fail } = detector(['a']);
  od.configure({ ...CONFIG, consecutiveFailures: 3, baseEjectionTime: 1_000 });
  assert.equal(fail('a', 2).ejected, false);
  const a = fail('a', 1);
  assert.equal(a.ejected, true);
  assert.equal(a.ejectedUntil - a.lastEjectedAt, 1_000);
  od.close();
});
