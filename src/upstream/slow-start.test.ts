/**
 * Slow start on an injected clock: the ramp's values, endpoints ramping independently, a reloaded
 * window, and the timer (mocked setInterval) that steps while something ramps and then stops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SLOW_START_MIN, SlowStart, rampFactor, type Ramping } from './slow-start.ts';

function close(actual: number, expected: number, message: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${message}: ${actual}, expected ${expected}`);
}

/** A slow start over `names` with a `window` ms ramp, on a clock the test moves. */
function ramp(names: string[], window: number) {
  const clock = { now: 5_000 };
  const endpoints = new Map<string, Ramping>(names.map((n) => [n, { weightFactor: 1, rampStartedAt: 0 }]));
  let steps = 0;
  const slowStart = new SlowStart(
    window,
    endpoints,
    () => steps++,
    () => clock.now,
  );
  return { clock, endpoints, slowStart, steps: () => steps };
}

test('rampFactor: a tenth at the start, linear to all of the weight at the end of the window', () => {
  const cases: [elapsed: number, window: number, factor: number][] = [
    [0, 1_000, SLOW_START_MIN],
    [250, 1_000, 0.325],
    [500, 1_000, 0.55],
    [999, 1_000, 0.9991],
    [1_000, 1_000, 1],
    [5_000, 1_000, 1],
    [30_000, 60_000, 0.55],
    [0, 0, 1], // no window: no ramp
    [123, 0, 1],
  ];
  for (const [elapsed, window, factor] of cases) close(rampFactor(elapsed, window), factor, `${elapsed} ms of ${window}`);
});

test('start sets a tenth; each step recomputes from the clock; endpoints ramp independently', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { clock, endpoints, slowStart, steps } = ramp(['a', 'b', 'c'], 1_000);
  const [a, b, c] = [...endpoints.values()];
  try {
    slowStart.start(a);
    assert.equal(a.weightFactor, SLOW_START_MIN);
    assert.equal(a.rampStartedAt, clock.now);
    clock.now += 400;
    slowStart.start(b);
    const table: [advance: number, a: number, b: number][] = [
      [100, 0.55, 0.19],
      [300, 0.82, 0.46],
      [200, 1, 0.64],
      [400, 1, 1],
    ];
    for (const [advance, fa, fb] of table) {
      clock.now += advance;
      slowStart.step();
      close(a.weightFactor, fa, `a after ${advance}`);
      close(b.weightFactor, fb, `b after ${advance}`);
      assert.equal(c.weightFactor, 1, 'an endpoint that never started stays at full weight');
    }
    assert.equal(steps(), table.length, 'the owner is told at each step');
  } finally {
    slowStart.stop();
  }
});

test('a window of 0 starts nothing; a reload to 0 ends ramps in progress at the next step', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const off = ramp(['a'], 0);
  const a = off.endpoints.get('a')!;
  off.slowStart.start(a);
  assert.equal(a.weightFactor, 1);

  const { clock, endpoints, slowStart } = ramp(['a'], 10_000);
  const b = endpoints.get('a')!;
  try {
    slowStart.start(b);
    clock.now += 1_000;
    slowStart.configure(0);
    slowStart.step();
    assert.equal(b.weightFactor, 1);
  } finally {
    slowStart.stop();
  }
});

test('the timer steps every window/20 (25 ms to 1 s) while something ramps, then stops', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { clock, endpoints, slowStart, steps } = ramp(['a'], 1_000);
  const a = endpoints.get('a')!;
  const pass = (ms: number): void => {
    clock.now += ms;
    t.mock.timers.tick(ms);
  };
  try {
    slowStart.start(a);
    pass(49);
    assert.equal(steps(), 0);
    pass(1);
    assert.equal(steps(), 1);
    close(a.weightFactor, 0.145, 'one step in');
    for (let i = 0; i < 19; i++) pass(50);
    assert.equal(a.weightFactor, 1);
    assert.equal(steps(), 20);
    pass(1_000);
    assert.equal(steps(), 20, 'no step once every ramp is over');
    // A new ramp starts the timer again.
    slowStart.start(a);
    pass(50);
    assert.equal(steps(), 21);
  } finally {
    slowStart.stop();
  }
});

test('stop ends the steps and leaves the factors where they are', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] });
  const { endpoints, slowStart, steps } = ramp(['a'], 1_000);
  const a = endpoints.get('a')!;
  slowStart.start(a);
  slowStart.stop();
  t.mock.timers.tick(5_000);
  assert.equal(steps(), 0);
  assert.equal(a.weightFactor, SLOW_START_MIN);
});
