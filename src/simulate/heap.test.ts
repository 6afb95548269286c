/** The event queue: earliest first, ties in scheduling order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHeap, type Timed } from './heap.ts';
import { mulberry32 } from './random.ts';

interface Ev extends Timed {
  id: number;
}

test('pops in time order, equal times in push order', () => {
  const heap = new EventHeap<Ev>();
  const r = mulberry32(5);
  const pushed: Ev[] = [];
  for (let id = 0; id < 2000; id++) {
    const ev = { time: Math.floor(r() * 100), seq: 0, id };
    pushed.push(ev);
    heap.push(ev);
  }
  assert.equal(heap.size, 2000);
  const expected = [...pushed].sort((a, b) => a.time - b.time || a.id - b.id).map((e) => e.id);
  const popped: number[] = [];
  for (let ev = heap.pop(); ev; ev = heap.pop()) popped.push(ev.id);
  assert.deepEqual(popped, expected);
  assert.equal(heap.peek(), undefined);
});

test('interleaved push and pop keep the order', () => {
  const heap = new EventHeap<Ev>();
  heap.push({ time: 5, seq: 0, id: 1 });
  heap.push({ time: 1, seq: 0, id: 2 });
  assert.equal(heap.pop()?.id, 2);
  heap.push({ time: 3, seq: 0, id: 3 });
  heap.push({ time: 5, seq: 0, id: 4 });
  assert.deepEqual([heap.pop()?.id, heap.pop()?.id, heap.pop()?.id, heap.pop()], [3, 1, 4, undefined]);
});
