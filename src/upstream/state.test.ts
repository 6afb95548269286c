/**
 * The lasting upstream state on a mocked clock: slow start ramps a new endpoint's weight, ejections
 * last longer each time (up to the maximum) and decay while the endpoint behaves, and state survives
 * a config change that keeps the endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { UpstreamConfig } from '../config/types.ts';
import type { RawUpstream } from '../config/schema.ts';
import { upstreamConfig, upstreamOnlyConfig } from '../../test/helpers/pipeline.ts';
import { createLogger } from '../observability/logger.ts';
import { StateStore } from './state.ts';

const A = 'http://127.0.0.1:1';
const B = 'http://127.0.0.1:2';

function config(raw: Partial<RawUpstream>, urls = [A]): UpstreamConfig {
  return upstreamConfig('u', { endpoints: urls.map((url) => ({ url })), ...raw });
}

test('slow start: an endpoint added by a reload starts at a tenth of its weight and ramps to all of it', (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'setTimeout', 'Date'] });
  const store = new StateStore(createLogger('silent'));
  try {
    store.apply(upstreamOnlyConfig(config({ slowStart: '1s' })));
    const state = store.get('u')!;
    assert.equal(state.endpoints.get(A)!.weightFactor, 1, 'endpoints present at startup take full weight at once');
    store.apply(upstreamOnlyConfig(config({ slowStart: '1s' }, [A, B])));
    const b = state.endpoints.get(B)!;
    assert.equal(b.weightFactor, 0.1);
    let rebuilds = 0;
    state.subscribe(() => rebuilds++);
    t.mock.timers.tick(500);
    assert.ok(rebuilds >= 5, `subscribers (balancer tables) told at each ramp step: ${rebuilds}`);
    assert.ok(b.weightFactor > 0.5 && b.weightFactor < 0.6, `half way: ${b.weightFactor}`);
    t.mock.timers.tick(600);
    assert.equal(b.weightFactor, 1);
  } finally {
    store.close();
  }
});

test('slow start is off by default', () => {
  const store = new StateStore(createLogger('silent'));
  try {
    store.apply(upstreamOnlyConfig(config({})));
    store.apply(upstreamOnlyConfig(config({}, [A, B])));
    assert.equal(store.get('u')!.endpoints.get(B)!.weightFactor, 1);
  } finally {
    store.close();
  }
});

test('outlier ejection lasts one base time more each time, up to the maximum, and the multiplier decays', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const store = new StateStore(createLogger('silent'));
  try {
    store.apply(upstreamOnlyConfig(config({ outlierDetection: { consecutiveFailures: 2, baseEjectionTime: '10s', maxEjectionTime: '25s', maxEjectedPercent: 100 } })));
    const state = store.get('u')!;
    const a = state.endpoints.get(A)!;
    const eject = (): number => {
      state.record(a, true);
      state.record(a, true);
      assert.equal(a.ejected, true);
      return a.ejectedUntil - Date.now();
    };
    assert.equal(eject(), 10_000);
    t.mock.timers.tick(10_000);
    assert.equal(a.ejected, false, 'returned after the ejection time');
    assert.equal(eject(), 20_000, 'second ejection: two base times');
    t.mock.timers.tick(20_000);
    assert.equal(eject(), 25_000, 'third: capped at maxEjectionTime');
    t.mock.timers.tick(25_000);
    // A success in between resets the streak: one failure is not enough.
    state.record(a, true);
    state.record(a, false);
    state.record(a, true);
    assert.equal(a.ejected, false);
    // Thirty calm seconds (three base times) take the multiplier from 3 back to 0: next is 1 base time.
    t.mock.timers.tick(30_000);
    state.record(a, true);
    assert.equal(a.ejected, true);
    assert.equal(a.ejectedUntil - Date.now(), 10_000);
  } finally {
    store.close();
  }
});

test('state survives a reload that keeps the endpoint, and is dropped when the endpoint goes', () => {
  const store = new StateStore(createLogger('silent'));
  try {
    const first = upstreamOnlyConfig(config({}, [A, B]));
    store.apply(first);
    const a = store.get('u')!.endpoints.get(A)!;
    a.inFlight = 3;
    a.latency.observe(42, 0);
    const second = upstreamOnlyConfig(config({ balancer: 'least-connections' }, [A]));
    store.apply(second);
    store.prune(second);
    assert.equal(store.get('u')!.endpoints.get(A), a);
    assert.equal(a.inFlight, 3);
    assert.equal(a.latency.cost(0), 42);
    assert.equal(store.get('u')!.endpoints.has(B), false);
  } finally {
    store.close();
  }
});
