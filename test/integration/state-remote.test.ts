/**
 * The machine's state across a real process boundary: worker processes (node:child_process fork,
 * the IPC channel node:cluster uses too) with a RemoteState each, served by the parent's StateHost.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { guard } from './helpers/guard.ts';
import { NODE } from './helpers/paths.ts';
import { MemoryState } from '../../src/state/memory-state.ts';
import { RemoteState } from '../../src/state/remote-state.ts';
import { StateHost } from '../../src/state/state-host.ts';
import { StateUnavailableError } from '../../src/state/state.ts';

const WORKER = fileURLToPath(new URL('./fixtures/state-worker.ts', import.meta.url));
const children: ChildProcess[] = [];

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(c.pid as number, 'SIGKILL');
});

interface Done {
  cmd: 'done';
  values: number[];
  granted: number;
  pending: number;
}

test('workers in separate processes share exact counts through the supervisor', async () => {
  const host = new StateHost(new MemoryState({ sweepIntervalMs: 0 }));
  const WORKERS = 3;
  const N = 300;
  const LIMIT = 100;
  const others: unknown[][] = [];
  const workers = Array.from({ length: WORKERS }, (_, i) => {
    const child = fork(WORKER, [], { execPath: NODE, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    others[i] = [];
    child.on('message', (m) => {
      if (!host.handle(m, child)) others[i].push(m);
    });
    return child;
  });
  await guard(Promise.all(workers.map((_, i) => waitFor(() => others[i].length > 0))), 'workers ready', 10_000);
  const results = workers.map((w, i) => {
    const done = waitFor(() => others[i].some((m) => (m as Done).cmd === 'done')).then(() => others[i].find((m) => (m as Done).cmd === 'done') as Done);
    w.send({ cmd: 'run', n: N, limit: LIMIT });
    return done;
  });
  const all = await guard(Promise.all(results), 'workers done', 20_000);

  const values = all.flatMap((d) => d.values).sort((a, b) => a - b);
  assert.deepEqual(
    values,
    Array.from({ length: WORKERS * N }, (_, i) => i + 1),
    'every increment got its own value: no lost or doubled count',
  );
  assert.equal(
    all.reduce((s, d) => s + d.granted, 0),
    LIMIT,
    'exactly limit leases granted across the workers',
  );
  assert.ok(
    all.every((d) => d.pending === 0),
    'nothing left pending',
  );
  assert.equal(await host.state.get('hits'), WORKERS * N);
  assert.equal(await host.state.acquire('slots', LIMIT, 60_000), undefined, 'full');
  // The workers return their leases: every slot is free again.
  const released = workers.map((w, i) => {
    const done = waitFor(() => others[i].some((m) => (m as { cmd: string }).cmd === 'released'));
    w.send({ cmd: 'release' });
    return done;
  });
  await guard(Promise.all(released), 'workers released', 10_000);
  const regained = await Promise.all(Array.from({ length: LIMIT + 1 }, () => host.state.acquire('slots', LIMIT, 60_000)));
  assert.equal(regained.filter((l) => l !== undefined).length, LIMIT);

  for (const w of workers) w.send({ cmd: 'exit' });
  await guard(Promise.all(workers.map((w) => (w.exitCode === null ? once(w, 'exit') : undefined))), 'workers exit', 10_000);
  await host.close();
});

test('an operation the supervisor never answers rejects with StateUnavailableError at its timeout', async () => {
  const state = new RemoteState({ send: () => true }, { timeoutMs: 50 });
  const started = performance.now();
  await assert.rejects(guard(state.increment('c', 1, 1000), 'remote timeout', 2000), StateUnavailableError);
  assert.ok(performance.now() - started >= 45);
  assert.equal(state.pending, 0);
});

test('a closed channel rejects at once; untagged messages are left alone; a late reply is dropped', async () => {
  const closed = new RemoteState({ send: (_m, cb) => cb?.(new Error('channel closed')) }, { timeoutMs: 10_000 });
  await assert.rejects(guard(closed.get('c'), 'closed channel', 1000), StateUnavailableError);

  const sent: Array<{ id: number }> = [];
  const state = new RemoteState({ send: (m) => sent.push(m as { id: number }) }, { timeoutMs: 10_000 });
  const reply = state.get('c');
  assert.equal(state.handle({ cmd: 'something else', id: sent[0].id }), false);
  assert.equal(state.handle({ sb: 'state', id: 999, ok: true, value: 1 }), true);
  assert.equal(state.handle({ sb: 'state', id: sent[0].id, ok: true, value: 7 }), true);
  assert.equal(await reply, 7);
  await state.close();
  await assert.rejects(state.get('c'), StateUnavailableError);
});

test('the host answers errors and malformed requests, and ignores other messages', async () => {
  const host = new StateHost(new MemoryState({ sweepIntervalMs: 0 }));
  const replies: unknown[] = [];
  const to = { send: (m: object) => replies.push(m) };
  assert.equal(host.handle({ cmd: 'ping' }, to), false);
  assert.equal(host.handle({ sb: 'state', id: 1, op: 'close', args: [] }, to), true);
  assert.equal(host.handle({ sb: 'state', id: 2, op: 'increment', args: ['c', 1.5, 1000] }, to), true);
  await waitFor(() => replies.length === 2);
  assert.deepEqual(replies[0], { sb: 'state', id: 1, ok: false, error: { name: 'StateError', message: 'not a state operation: "close"' } });
  assert.equal((replies[1] as { error: { name: string } }).error.name, 'RangeError');
  const state: RemoteState = new RemoteState({ send: (m): boolean => host.handle(m, { send: (r): boolean => state.handle(r) }) });
  await assert.rejects(state.increment('c', 1, 0), RangeError);
  await state.put('r', 1, 1000);
  await assert.rejects(state.setAdd('r', 'm', 1000), /holds a record/);
  await host.close();
});

/** Resolves once `cond` holds, checking on each turn of the event loop (bounded by the caller's guard). */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}
