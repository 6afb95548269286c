import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryState } from './memory-state.ts';
import { StateError } from './state.ts';

/** A MemoryState on a clock the test moves. */
function clocked(): { state: MemoryState; advance: (ms: number) => void } {
  let now = 1_000_000;
  const state = new MemoryState({ now: () => now, sweepIntervalMs: 0 });
  return { state, advance: (ms) => (now += ms) };
}

test('counters: a fixed window from the first increment; later increments do not move the expiry', async () => {
  const { state, advance } = clocked();
  assert.equal(await state.get('c'), 0);
  assert.equal(await state.increment('c', 1, 1000), 1);
  advance(600);
  assert.equal(await state.increment('c', 2, 1000), 3);
  advance(399);
  assert.equal(await state.get('c'), 3);
  advance(1);
  assert.equal(await state.get('c'), 0, 'expired 1000 ms after creation, not after the last increment');
  assert.equal(await state.increment('c', -2, 1000), -2, 'a new window starts at 0');
});

test('token bucket: starts full, refills continuously, refuses with the time until enough is back', async () => {
  const { state, advance } = clocked();
  const take = (n: number) => state.take('b', n, 10, 5);
  assert.deepEqual(await take(4), { allowed: true, remaining: 6, retryAfterMs: 0 });
  assert.deepEqual(await take(6), { allowed: true, remaining: 0, retryAfterMs: 0 });
  assert.deepEqual(await take(3), { allowed: false, remaining: 0, retryAfterMs: 600 });
  advance(600);
  assert.deepEqual(await take(3), { allowed: true, remaining: 0, retryAfterMs: 0 });
  advance(10_000);
  assert.deepEqual(await take(1), { allowed: true, remaining: 9, retryAfterMs: 0 }, 'never above capacity');
  await assert.rejects(take(11), RangeError);
  await assert.rejects(state.take('b', 1, 10, 0), RangeError);
});

test('token bucket: the entry expires once the bucket would be full again', async () => {
  const { state, advance } = clocked();
  await state.take('b', 10, 10, 10);
  advance(999);
  state.sweep();
  assert.equal(state.size, 1);
  advance(1);
  assert.equal(state.sweep(), 1);
  assert.equal(state.size, 0);
});

test('semaphore: at most limit leases; release frees one; a dead holder frees its own lease at its ttl', async () => {
  const { state, advance } = clocked();
  const a = await state.acquire('s', 2, 1000);
  advance(500);
  const b = await state.acquire('s', 2, 1000);
  assert.ok(a !== undefined && b !== undefined && a !== b);
  assert.equal(await state.acquire('s', 2, 1000), undefined);
  await state.release('s', b);
  await state.release('s', b); // twice: ignored
  const c = await state.acquire('s', 2, 1000);
  assert.ok(c);
  assert.equal(await state.acquire('s', 2, 1000), undefined);
  advance(500); // a's ttl is over (a never released: its holder died); c's is not
  assert.ok(await state.acquire('s', 2, 1000));
  assert.equal(await state.acquire('s', 2, 1000), undefined);
});

test('semaphore: 1000 concurrent acquires with limit 100 grant exactly 100', async () => {
  const state = new MemoryState({ sweepIntervalMs: 0 });
  const leases = await Promise.all(Array.from({ length: 1000 }, () => state.acquire('s', 100, 60_000)));
  const granted = leases.filter((l) => l !== undefined);
  assert.equal(granted.length, 100);
  assert.equal(new Set(granted).size, 100, 'each lease id is distinct');
});

test('counters: 1000 concurrent increments give 1..1000, each value once', async () => {
  const state = new MemoryState({ sweepIntervalMs: 0 });
  const values = await Promise.all(Array.from({ length: 1000 }, () => state.increment('c', 1, 60_000)));
  assert.deepEqual(
    values.sort((x, y) => x - y),
    Array.from({ length: 1000 }, (_, i) => i + 1),
  );
});

test('sets: add, has, size, remove; the set expires ttl after its latest add', async () => {
  const { state, advance } = clocked();
  assert.equal(await state.setAdd('s', 'a', 1000), true);
  assert.equal(await state.setAdd('s', 'a', 1000), false);
  assert.equal(await state.setAdd('s', 'b', 1000), true);
  assert.equal(await state.setSize('s'), 2);
  assert.equal(await state.setHas('s', 'b'), true);
  assert.equal(await state.setRemove('s', 'b'), true);
  assert.equal(await state.setRemove('s', 'b'), false);
  advance(900);
  await state.setAdd('s', 'c', 1000);
  advance(900);
  assert.equal(await state.setSize('s'), 2, 'the add at 900 ms moved the expiry');
  advance(100);
  assert.equal(await state.setHas('s', 'a'), false);
  assert.equal(await state.setSize('s'), 0);
});

test('records: copied in and out, replaced by put, gone after ttl or delete', async () => {
  const { state, advance } = clocked();
  const value = { endpoint: 'a', n: [1, 2] };
  await state.put('r', value, 1000);
  value.n.push(3);
  const read = await state.read('r');
  assert.deepEqual(read, { endpoint: 'a', n: [1, 2] });
  await state.put('r', null, 1000);
  assert.equal(await state.read('r'), null, 'a null record is not an absent one');
  advance(1000);
  assert.equal(await state.read('r'), undefined);
  await state.put('r', 'x', 1000);
  assert.equal(await state.delete('r'), true);
  assert.equal(await state.delete('r'), false);
  assert.equal(await state.read('r'), undefined);
});

test('one kind per key: using a counter as a set is an error; put replaces any kind', async () => {
  const { state } = clocked();
  await state.increment('k', 1, 1000);
  await assert.rejects(state.setAdd('k', 'm', 1000), StateError);
  await assert.rejects(state.read('k'), StateError);
  await state.put('k', 1, 1000);
  assert.equal(await state.read('k'), 1);
});

test('bad arguments are refused the same way by every backend (the shared checks)', async () => {
  const { state } = clocked();
  await assert.rejects(state.increment('c', 1.5, 1000), RangeError);
  await assert.rejects(state.increment('c', 1, 0), RangeError);
  await assert.rejects(state.acquire('s', 0, 1000), RangeError);
  await assert.rejects(state.setAdd('s', 'm', -1), RangeError);
});

test('sweep: bounded per call, resumes where it stopped, drops only expired entries', async () => {
  let now = 0;
  const state = new MemoryState({ now: () => now, sweepIntervalMs: 0, sweepBatch: 10 });
  for (let i = 0; i < 25; i++) await state.increment(`c${i}`, 1, i < 20 ? 100 : 10_000);
  now = 100;
  assert.equal(state.sweep(), 10);
  assert.equal(state.sweep(), 10);
  assert.equal(state.sweep(), 0, 'the last 5 have not expired');
  assert.equal(state.size, 5);
});

test('close: later operations reject', async () => {
  const { state } = clocked();
  await state.close();
  await assert.rejects(state.get('c'), StateError);
});
