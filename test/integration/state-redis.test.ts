/**
 * Two instances sharing state through a real Redis (a redis-server this test starts on a free port),
 * then that Redis stopped mid-test (fail-open, fail-closed and local users; one log line and one
 * event per instance; nothing hangs) and restarted on the same port (both instances reconnect by
 * themselves and share again).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { guard } from './helpers/guard.ts';
import { type RedisServer, startRedis } from './helpers/redis-server.ts';
import { RedisState } from '../../src/state/redis-state.ts';
import { StateGuard, type StateOutageEvent } from '../../src/state/state-guard.ts';
import { StateError, StateUnavailableError } from '../../src/state/state.ts';

let redis: RedisServer;
const states: RedisState[] = [];

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await Promise.all(states.map((s) => s.close()));
  await redis?.stop();
});

/** One "instance": its RedisState, its guard, and the log lines the guard wrote. */
function instance(prefix: string): { state: RedisState; guard: StateGuard; lines: Array<{ msg: string; backend: string; target: string }> } {
  // A command timeout far above the outage guard below: an operation that waited for it (instead of
  // answering from its fail mode at once) fails the guard, whatever the machine's load.
  const state = new RedisState({ url: redis.url, prefix, commandTimeout: 30_000, connectTimeout: 1000, maxReconnectDelay: 200 });
  states.push(state);
  const lines: Array<{ msg: string; backend: string; target: string }> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { state, guard: new StateGuard(state, { backend: 'redis', target: redis.url, log }), lines };
}

test('two instances share counters, semaphores, buckets, sets and records exactly; Redis down and back', async () => {
  const prefix = `test:${randomBytes(4).toString('hex')}:`;
  const a = instance(prefix);
  const b = instance(prefix);
  await guard(Promise.all([a.state.waitReady(), b.state.waitReady()]), 'both instances connected', 5000);

  // Shared, exact under concurrency: 2 × 250 increments get 1..500, each once.
  const values = await Promise.all(Array.from({ length: 500 }, (_, i) => (i % 2 ? a : b).state.increment('hits', 1, 60_000)));
  assert.deepEqual(
    values.sort((x, y) => x - y),
    Array.from({ length: 500 }, (_, i) => i + 1),
  );
  assert.equal(await a.state.get('hits'), 500);
  assert.equal(await b.state.get('hits'), 500);

  const leases = await Promise.all(Array.from({ length: 1000 }, (_, i) => (i % 2 ? a : b).state.acquire('slots', 100, 60_000)));
  const granted = leases.filter((l) => l !== undefined);
  assert.equal(granted.length, 100, '1000 acquires across two instances, limit 100: exactly 100 granted');
  await a.state.release('slots', granted[0] as string);
  assert.ok(await b.state.acquire('slots', 100, 60_000), 'a lease released by one instance frees a slot for the other');

  const takes = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).state.take('bucket', 1, 50, 0.001)));
  assert.equal(takes.filter((t) => t.allowed).length, 50, 'a bucket of 50 grants 50 across both instances');
  const refused = takes.find((t) => !t.allowed);
  assert.ok(refused && refused.retryAfterMs > 0 && refused.remaining === 0);

  assert.equal(await a.state.setAdd('tags', 'x', 60_000), true);
  assert.equal(await b.state.setAdd('tags', 'x', 60_000), false);
  assert.equal(await b.state.setHas('tags', 'x'), true);
  assert.equal(await a.state.setSize('tags'), 1);
  await a.state.put('sticky', { endpoint: 'e1' }, 60_000);
  assert.deepEqual(await b.state.read('sticky'), { endpoint: 'e1' });
  assert.equal(await b.state.delete('sticky'), true);
  assert.equal(await a.state.read('sticky'), undefined);
  await assert.rejects(a.state.setAdd('hits', 'm', 1000), StateError, 'a counter is not a set (WRONGTYPE)');

  // Redis goes away.
  const events: Array<['unavailable' | 'restored', StateOutageEvent]> = [];
  const onDown = (m: unknown): void => void events.push(['unavailable', m as StateOutageEvent]);
  const onUp = (m: unknown): void => void events.push(['restored', m as StateOutageEvent]);
  diagnostics.subscribe('switchboard:state:unavailable', onDown);
  diagnostics.subscribe('switchboard:state:restored', onUp);
  try {
    await redis.stop();
    const open = a.guard.user('failOpen');
    const closed = a.guard.user('failClosed');
    const local = a.guard.user('local');
    // Guarded well below the 30 s command timeout: no operation may wait for a dead Redis.
    const outage = await guard(
      Promise.all([
        open.increment('hits', 1, 60_000),
        open.acquire('slots', 100, 60_000),
        open.take('bucket', 1, 50, 0.001),
        closed.increment('hits', 1, 60_000),
        closed.acquire('slots', 100, 60_000),
        closed.take('bucket', 1, 50, 0.001),
        local.increment('hits', 1, 60_000),
        local.increment('hits', 1, 60_000),
        ...Array.from({ length: 50 }, () => closed.get('hits')),
        b.guard.user('failClosed').increment('hits', 1, 60_000),
      ]),
      'operations during the outage (an operation waited for the 30 s command timeout)',
      10_000,
    );
    assert.equal(outage[0], 0, 'fail-open: counted as nothing');
    assert.equal(outage[1], '~open', 'fail-open: a lease that counts nowhere');
    assert.equal((outage[2] as { allowed: boolean }).allowed, true);
    assert.equal(outage[3], Number.POSITIVE_INFINITY, 'fail-closed: counted as full');
    assert.equal(outage[4], undefined, 'fail-closed: refused');
    assert.deepEqual(outage[5], { allowed: false, remaining: 0, retryAfterMs: 1000 });
    assert.deepEqual([outage[6], outage[7]].sort(), [1, 2], 'local: counted in this process');
    await local.release('slots', (await local.acquire('slots', 1, 60_000)) as string);
    assert.ok(await local.acquire('slots', 1, 60_000), 'a local lease is released locally');

    const down = (lines: typeof a.lines) => lines.filter((l) => l.msg.includes('unreachable'));
    assert.equal(down(a.lines).length, 1, 'one log line per outage, not one per operation');
    assert.equal(down(b.lines).length, 1);
    assert.equal(down(a.lines)[0].backend, 'redis');
    assert.deepEqual(
      events.map(([kind, e]) => [kind, e.backend, e.error instanceof StateUnavailableError]),
      [
        ['unavailable', 'redis', true],
        ['unavailable', 'redis', true],
      ],
    );
    assert.ok(a.guard.failedOperations >= 58, `failed operations counted (${a.guard.failedOperations})`);
    assert.equal(a.guard.available, false);

    // Redis comes back on the same port, empty: both instances reconnect by themselves.
    redis = await startRedis(redis.port);
    await guard(Promise.all([a.state.waitReady(10_000), b.state.waitReady(10_000)]), 'both instances reconnected', 11_000);
    const user = (i: typeof a) => i.guard.user('failClosed');
    assert.equal(await user(a).increment('hits', 1, 60_000), 1);
    assert.equal(await user(b).increment('hits', 1, 60_000), 2, 'shared again');
    assert.equal(await user(a).get('hits'), 2);
    assert.equal(a.guard.available, true);
    const up = (lines: typeof a.lines) => lines.filter((l) => l.msg.includes('reachable again'));
    assert.equal(up(a.lines).length, 1);
    assert.equal(up(b.lines).length, 1);
    assert.deepEqual(
      events.filter(([kind]) => kind === 'restored').map(([, e]) => e.backend),
      ['redis', 'redis'],
    );
  } finally {
    diagnostics.unsubscribe('switchboard:state:unavailable', onDown);
    diagnostics.unsubscribe('switchboard:state:restored', onUp);
  }
});

test('a Redis that stops answering (SIGSTOP) costs an operation the command timeout, not a hang', async () => {
  const state = new RedisState({ url: redis.url, prefix: 'hang:', commandTimeout: 200 });
  states.push(state);
  await guard(state.waitReady(), 'connected', 5000);
  process.kill(redis.child.pid as number, 'SIGSTOP');
  try {
    const started = performance.now();
    // Rejected by the command timeout (its message says so), not before it; the guard catches a hang.
    await assert.rejects(guard(state.get('k'), 'get on a stopped redis', 5000), (error: Error) => {
      assert.ok(error instanceof StateUnavailableError, String(error));
      assert.equal(error.message, 'redis GET: no answer within 200ms');
      return true;
    });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 190, `not before the 200 ms command timeout (${Math.round(elapsed)}ms)`);
  } finally {
    process.kill(redis.child.pid as number, 'SIGCONT');
  }
  assert.equal(await guard(state.get('k'), 'get after SIGCONT', 2000), 0);
});

test('scripts run again after Redis forgot them (SCRIPT FLUSH, as a restart does): NOSCRIPT, then EVAL', async () => {
  const state = new RedisState({ url: redis.url, prefix: 'noscript:' });
  states.push(state);
  await guard(state.waitReady(), 'connected', 5000);
  assert.equal(await state.increment('c', 5, 60_000), 5);
  assert.equal(execFileSync('redis-cli', ['-p', String(redis.port), 'SCRIPT', 'FLUSH'], { encoding: 'utf8', timeout: 5000 }).trim(), 'OK');
  assert.equal(await state.increment('c', 1, 60_000), 6);
  assert.ok(await state.acquire('s', 1, 60_000));
});

/** The ids of the connections named `name` in the server's CLIENT LIST. */
function connectionsNamed(name: string): string[] {
  const list = execFileSync('redis-cli', ['-p', String(redis.port), 'CLIENT', 'LIST'], { encoding: 'utf8', timeout: 5000 });
  return list
    .trim()
    .split('\n')
    .filter((line) => / name=(\S*)/.exec(line)?.[1] === name)
    .map((line) => /\bid=(\d+)/.exec(line)![1]!);
}

/** Polls the server's CLIENT LIST until `test` passes on the new `switchboard:state` connections' ids (bounded). */
function stateConnections(test: (ids: string[]) => boolean, before: readonly string[], what: string): Promise<string[]> {
  return guard(
    (async () => {
      for (;;) {
        const ids = connectionsNamed('switchboard:state').filter((id) => !before.includes(id));
        if (test(ids)) return ids;
        await new Promise((resolve) => setTimeout(resolve, 20)); // polling the server, bounded by the guard
      }
    })(),
    what,
    5000,
  );
}

test('the state connection is named switchboard:state in CLIENT LIST, again after a reconnection, and is gone once closed', async () => {
  const before = connectionsNamed('switchboard:state');
  const state = new RedisState({ url: redis.url, prefix: 'named:', maxReconnectDelay: 100 });
  states.push(state);
  await guard(state.waitReady(), 'connected', 5000);
  const named = connectionsNamed('switchboard:state').filter((id) => !before.includes(id));
  assert.equal(named.length, 1, `one new connection named switchboard:state: ${JSON.stringify(named)}`);

  // Killed by the server: the client reconnects by itself and names the new connection too.
  execFileSync('redis-cli', ['-p', String(redis.port), 'CLIENT', 'KILL', 'ID', named[0]!], { timeout: 5000 });
  const fresh = await stateConnections((ids) => ids.length > 0 && !ids.includes(named[0]!), before, 'a reconnection named switchboard:state');
  assert.equal(fresh.length, 1, JSON.stringify(fresh));
  assert.equal(await guard(state.increment('c', 1, 60_000), 'an operation on the new connection', 5000), 1);

  await state.close();
  await stateConnections((ids) => ids.length === 0, before, 'its connection gone once closed');
});
