import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import { compactHeap } from './heap.ts';

const young = (): number => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;

test('compactHeap shrinks a young generation that a burst of allocation grew', () => {
  // Short-lived allocation with some survivors makes V8 grow the young generation.
  let keep: unknown[] = [];
  for (let i = 0; i < 200_000; i++) {
    keep.push({ i, s: `x${i}` });
    if (keep.length > 50_000) keep = [];
  }
  const grown = young();
  assert.ok(grown > 4 * 1024 * 1024, `the burst grew the young generation (${grown} bytes)`);
  keep = [];
  compactHeap();
  const after = young();
  assert.ok(after < grown / 2, `young generation ${grown} → ${after} bytes`);
});
