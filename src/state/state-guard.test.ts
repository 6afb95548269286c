import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import type { Logger } from '../observability/logger.ts';
import { createSharedState } from './create-shared-state.ts';
import { MemoryState } from './memory-state.ts';
import { RemoteState } from './remote-state.ts';
import { StateGuard } from './state-guard.ts';
import { StateHost } from './state-host.ts';
import { type SharedState, StateUnavailableError } from './state.ts';

/** A MemoryState behind a switch: `down` makes every operation reject as an unreachable backend would; `hold` parks them. */
function switchable(): { state: SharedState; down: boolean; held: Array<() => void>; hold: boolean } {
  const memory = new MemoryState({ sweepIntervalMs: 0 });
  const ctl = { state: undefined as unknown as SharedState, down: false, hold: false, held: [] as Array<() => void> };
  ctl.state = new Proxy(memory, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (ctl.hold) return new Promise((_, reject) => ctl.held.push(() => reject(new StateUnavailableError('timed out'))));
        if (ctl.down) return Promise.reject(new StateUnavailableError('connection refused'));
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
  return ctl;
}

function logged(): { log: Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  return { log: pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) }), lines };
}

test('guard: each user gets its own answer during an outage; one log line and one event each way', async () => {
  const backend = switchable();
  const { log, lines } = logged();
  const guard = new StateGuard(backend.state, { backend: 'supervisor', log, retryAfterMs: 250 });
  const events: string[] = [];
  const down = (m: unknown): void => void events.push(`down:${(m as { backend: string }).backend}`);
  const up = (m: unknown): void => void events.push(`up:${(m as { downMs: number }).downMs >= 0}`);
  diagnostics.subscribe('switchboard:state:unavailable', down);
  diagnostics.subscribe('switchboard:state:restored', up);
  try {
    const open = guard.user('failOpen');
    const closed = guard.user('failClosed');
    const local = guard.user('local');
    assert.equal(await closed.increment('c', 1, 1000), 1);
    backend.down = true;
    assert.equal(await open.increment('c', 1, 1000), 0);
    assert.equal(await closed.increment('c', 1, 1000), Number.POSITIVE_INFINITY);
    assert.equal(await local.increment('c', 1, 1000), 1, 'local starts its own count');
    assert.equal(await local.increment('c', 1, 1000), 2);
    assert.deepEqual(await closed.take('b', 1, 5, 1), { allowed: false, remaining: 0, retryAfterMs: 250 });
    assert.deepEqual(await open.take('b', 1, 5, 1), { allowed: true, remaining: 4, retryAfterMs: 0 });
    assert.equal(await closed.acquire('s', 1, 1000), undefined);
    const lease = await open.acquire('s', 1, 1000);
    assert.equal(typeof lease, 'string');
    await open.release('s', lease as string);
    assert.equal(await open.read('r'), undefined);
    await closed.put('r', 1, 1000); // dropped
    assert.equal(await open.setHas('x', 'm'), false);
    await local.put('r', { a: 1 }, 1000);
    assert.deepEqual(await local.read('r'), { a: 1 });
    assert.equal(guard.available, false);
    assert.equal(guard.failedOperations, 13, 'every operation a fallback answered (the fail-open lease release needs no backend)');
    backend.down = false;
    assert.equal(await closed.increment('c', 1, 1000), 2, 'the backend count resumes where it was');
    assert.equal(guard.available, true);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg]),
      [
        [50, 'shared state (supervisor) unreachable: users answer with their fail-open, fail-closed or local choice until it is back'],
        [30, lines[1]?.msg.startsWith('shared state (supervisor) reachable again after ') ? lines[1].msg : 'the restored line'],
      ],
    );
    assert.deepEqual(events, ['down:supervisor', 'up:true']);
  } finally {
    diagnostics.unsubscribe('switchboard:state:unavailable', down);
    diagnostics.unsubscribe('switchboard:state:restored', up);
  }
});

test('guard: errors other than unavailability reach the user and count nothing', async () => {
  const guard = new StateGuard(new MemoryState({ sweepIntervalMs: 0 }), { backend: 'memory', log: logged().log });
  await assert.rejects(guard.user('failOpen').increment('c', 1.5, 1000), RangeError);
  await guard.user('failOpen').put('r', 1, 1000);
  await assert.rejects(guard.user('local').setAdd('r', 'm', 1000), /holds a record/);
  assert.equal(guard.failedOperations, 0);
  assert.equal(guard.available, true);
});

test('guard: while the backend is down, one operation at a time probes it; the others do not wait', async () => {
  const backend = switchable();
  const guard = new StateGuard(backend.state, { backend: 'redis', log: logged().log });
  const user = guard.user('failClosed');
  backend.down = true;
  await user.get('c'); // the outage is known
  backend.down = false;
  backend.hold = true; // the backend hangs: the next operation is the probe and waits
  const probe = user.get('c');
  const others = await Promise.all(Array.from({ length: 10 }, () => user.get('c')));
  assert.deepEqual(others, Array(10).fill(Number.POSITIVE_INFINITY), 'answered at once, without the backend');
  assert.equal(backend.held.length, 1, 'only the probe reached the backend');
  backend.held[0]();
  assert.equal(await probe, Number.POSITIVE_INFINITY);
  backend.hold = false;
  assert.equal(await user.get('c'), 0, 'the next probe finds it back');
  assert.equal(guard.available, true);
});

test('createSharedState: memory in one process, RemoteState with a channel, Redis marked unreachable when it cannot connect', { timeout: 10_000 }, async () => {
  const { log, lines } = logged();
  const single = await createSharedState(undefined, { log });
  assert.ok(single.backend instanceof MemoryState);
  assert.equal(await single.user('failClosed').increment('c', 2, 1000), 2);
  await single.close();

  const host = new StateHost();
  const worker: StateGuard = await createSharedState(undefined, { log, channel: { send: (m) => host.handle(m, { send: (r) => worker.handle(r) }) } });
  assert.ok(worker.backend instanceof RemoteState);
  assert.equal(worker.handle({ cmd: 'not state' }), false);
  assert.equal(await worker.user('failClosed').increment('c', 3, 1000), 3);
  assert.equal(await host.state.get('c'), 3);
  await worker.close();
  await host.close();

  // A port that refuses connections: start a server, read its port, close it.
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  const url = `redis://:hunter2@127.0.0.1:${port}`;
  // Start gives up on the first connection after the configured connect timeout (the logged error
  // names it), not the default 2 s, and never hangs: the test's timeout is the guard.
  const redis = await createSharedState({ backend: 'redis', redis: { url, prefix: 't:', connectTimeout: 200, commandTimeout: 200 } }, { log });
  try {
    assert.equal(redis.available, false);
    assert.equal(await redis.user('failOpen').increment('c', 1, 1000), 0);
    const down = lines.filter((l) => l.msg.includes('unreachable')) as Array<{ msg: string; err?: { message?: string } }>;
    assert.equal(down.length, 1);
    assert.match(String(down[0]?.err?.message), /^redis not reachable within 200ms\b/, 'start waited the configured connect timeout');
    assert.doesNotMatch(JSON.stringify(lines), /hunter2/, 'credentials are never logged');
  } finally {
    await redis.close();
  }
});

test('createSharedState with redis: the machine’s own state beside it (memory alone, the supervisor’s in a worker), answering while Redis is down', async () => {
  const { log } = logged();
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  const redis = { backend: 'redis' as const, redis: { url: `redis://127.0.0.1:${port}`, prefix: 't:', connectTimeout: 200, commandTimeout: 200 } };

  const single = await createSharedState(redis, { log });
  try {
    assert.ok(single.machine?.backend instanceof MemoryState);
    await single.machine.user('failOpen').put('r', { a: 1 }, 1000);
    assert.deepEqual(await single.machine.user('failOpen').read('r'), { a: 1 });
    assert.equal(single.available, false, 'Redis itself is down');
  } finally {
    await single.close();
  }

  const host = new StateHost();
  const worker: StateGuard = await createSharedState(redis, { log, channel: { send: (m) => host.handle(m, { send: (r) => worker.handle(r) }) } });
  try {
    assert.ok(worker.machine?.backend instanceof RemoteState);
    await worker.machine.user('failOpen').put('r', 7, 1000);
    assert.equal(await host.state.read('r'), 7, 'the supervisor holds it');
  } finally {
    await worker.close();
    await host.close();
  }

  const memory = await createSharedState(undefined, { log });
  assert.equal(memory.machine, undefined, 'memory is the machine’s state already');
  await memory.close();
});
