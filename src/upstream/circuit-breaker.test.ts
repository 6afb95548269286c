/**
 * The circuit breaker with mocked setTimeout: what `admit` decides, the order queued requests start
 * in, queue timeouts, cancels, a reloaded limit and close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CircuitBreakerConfig } from '../config/types.ts';
import { CircuitBreaker, type Admission } from './circuit-breaker.ts';

const CONFIG: CircuitBreakerConfig = { maxRequests: 2, maxQueued: 2, queueTimeout: 1_000 };

/** A breaker whose queued requests log their start (and enter, as the proxy step does) or timeout. */
function breaker(config: Partial<CircuitBreakerConfig> = {}) {
  const cb = new CircuitBreaker({ ...CONFIG, ...config });
  const log: string[] = [];
  const queue = (name: string) =>
    cb.enqueue(
      () => {
        log.push(`start ${name}`);
        cb.enter();
      },
      () => log.push(`timeout ${name}`),
    );
  return { cb, log, queue };
}

test('admit: now below the limit, queue while the queue has room, full past it; 0 = no limit', () => {
  const cases: [config: Partial<CircuitBreakerConfig>, active: number, queued: number, expected: Admission][] = [
    [{}, 0, 0, 'now'],
    [{}, 1, 0, 'now'],
    [{}, 2, 0, 'queue'],
    [{}, 2, 1, 'queue'],
    [{}, 2, 2, 'full'],
    [{ maxQueued: 0 }, 2, 0, 'full'],
    [{ maxRequests: 0 }, 1_000, 0, 'now'],
    [{ maxRequests: 1, maxQueued: 5 }, 1, 4, 'queue'],
  ];
  for (const [config, active, queued, expected] of cases) {
    const { cb, queue } = breaker(config);
    for (let i = 0; i < active; i++) cb.enter();
    for (let i = 0; i < queued; i++) queue(String(i));
    assert.equal(cb.admit(), expected, `${JSON.stringify(config)} with ${active} active, ${queued} queued`);
    assert.equal(cb.active, active, 'admit changes nothing');
    assert.equal(cb.queued, queued);
    cb.close();
  }
});

test('leave starts queued requests oldest first, one per freed slot', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { cb, log, queue } = breaker({ maxQueued: 3 });
  cb.enter();
  cb.enter();
  queue('a');
  queue('b');
  queue('c');
  cb.leave();
  assert.deepEqual(log, ['start a']);
  assert.equal(cb.active, 2);
  assert.equal(cb.queued, 2);
  cb.leave();
  cb.leave();
  assert.deepEqual(log, ['start a', 'start b', 'start c']);
  t.mock.timers.tick(5_000);
  assert.deepEqual(log, ['start a', 'start b', 'start c'], 'started requests have no timer left');
  cb.leave();
  cb.leave();
  assert.equal(cb.active, 0);
});

test('a started request that ends at once lets the next one in (leave within leave)', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const cb = new CircuitBreaker({ ...CONFIG, maxRequests: 1, maxQueued: 3 });
  const log: string[] = [];
  cb.enter();
  for (const name of ['a', 'b', 'c']) {
    cb.enqueue(
      () => {
        log.push(name);
        cb.enter();
        if (name !== 'c') cb.leave(); // e.g. no endpoint: answered and over at once
      },
      () => log.push(`timeout ${name}`),
    );
  }
  cb.leave();
  assert.deepEqual(log, ['a', 'b', 'c']);
  assert.equal(cb.active, 1);
  assert.equal(cb.queued, 0);
});

test('queueTimeout: the request leaves the queue before onTimeout runs; the others keep their place', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { cb, log, queue } = breaker();
  cb.enter();
  cb.enter();
  const a = queue('a');
  t.mock.timers.tick(500);
  queue('b');
  t.mock.timers.tick(499);
  assert.deepEqual(log, []);
  t.mock.timers.tick(1);
  assert.deepEqual(log, ['timeout a']);
  assert.equal(cb.queued, 1);
  assert.equal(a.timer, undefined);
  cb.cancel(a); // what the proxy step does on timeout too: a no-op by now
  assert.equal(cb.queued, 1);
  cb.leave();
  assert.deepEqual(log, ['timeout a', 'start b']);
});

test('cancel takes a request out without starting it and stops its timer', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { cb, log, queue } = breaker();
  cb.enter();
  cb.enter();
  const a = queue('a');
  queue('b');
  cb.cancel(a);
  assert.equal(cb.queued, 1);
  assert.equal(cb.admit(), 'queue', 'the freed queue place is free again');
  cb.leave();
  t.mock.timers.tick(5_000);
  assert.deepEqual(log, ['start b']);
});

test('a reloaded higher limit lets several queued requests in at the next leave', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { cb, log, queue } = breaker({ maxRequests: 1 });
  cb.enter();
  queue('a');
  queue('b');
  cb.configure({ ...CONFIG, maxRequests: 3 });
  assert.deepEqual(log, [], 'nothing starts on configure itself');
  cb.leave();
  assert.deepEqual(log, ['start a', 'start b']);
  assert.equal(cb.active, 2);
});

test('close stops the queue timers; queued requests still start on a leave', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { cb, log, queue } = breaker();
  cb.enter();
  cb.enter();
  queue('a');
  cb.close();
  t.mock.timers.tick(5_000);
  assert.deepEqual(log, []);
  cb.leave();
  assert.deepEqual(log, ['start a']);
});
