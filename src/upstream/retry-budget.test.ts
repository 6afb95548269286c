/** The retry budget's arithmetic: max(minConcurrent, ⌊percent × active / 100⌋) retries in flight. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget } from './retry-budget.ts';

test('limit: the percentage of requests in flight, rounded down, never below the floor', () => {
  const cases: [percent: number, minConcurrent: number, active: number, limit: number][] = [
    [20, 3, 0, 3], // Envoy's defaults: an idle upstream still gets 3
    [20, 3, 14, 3],
    [20, 3, 19, 3], // 3.8 rounds down to the floor
    [20, 3, 20, 4],
    [20, 3, 100, 20],
    [25, 0, 7, 1],
    [25, 0, 3, 0],
    [0, 0, 1_000, 0], // no retries at all
    [100, 1, 5, 5],
  ];
  for (const [budgetPercent, budgetMinConcurrent, active, limit] of cases) {
    assert.equal(new RetryBudget({ budgetPercent, budgetMinConcurrent }).limit(active), limit, `${budgetPercent}% of ${active}, at least ${budgetMinConcurrent}`);
  }
});

test('tryAcquire takes places up to the limit; a refusal changes nothing; release frees one', () => {
  const budget = new RetryBudget({ budgetPercent: 20, budgetMinConcurrent: 2 });
  assert.equal(budget.tryAcquire(0), true);
  assert.equal(budget.tryAcquire(0), true);
  assert.equal(budget.tryAcquire(0), false);
  assert.equal(budget.retrying, 2);
  assert.equal(budget.tryAcquire(15), true, 'more requests in flight, a larger budget');
  assert.equal(budget.tryAcquire(15), false);
  budget.release();
  assert.equal(budget.retrying, 2);
  assert.equal(budget.tryAcquire(0), false, 'still at the floor of 2');
  budget.release();
  assert.equal(budget.tryAcquire(0), true);
});

test('configure: a reloaded budget applies to the next tryAcquire; retries in flight stay counted', () => {
  const budget = new RetryBudget({ budgetPercent: 20, budgetMinConcurrent: 3 });
  for (let i = 0; i < 3; i++) assert.equal(budget.tryAcquire(0), true);
  budget.configure({ budgetPercent: 0, budgetMinConcurrent: 1 });
  assert.equal(budget.tryAcquire(100), false);
  assert.equal(budget.retrying, 3);
  for (let i = 0; i < 3; i++) budget.release();
  assert.equal(budget.tryAcquire(100), true);
});

test('with N workers each worker gets the floor divided among them (rounded up), so the machine keeps about minConcurrent', () => {
  const perWorker = new RetryBudget({ budgetPercent: 20, budgetMinConcurrent: 10 }, 2);
  assert.equal(perWorker.limit(0), 5);
  assert.equal(perWorker.limit(100), 20, 'the share of its own requests is unchanged');
  assert.equal(new RetryBudget({ budgetPercent: 20, budgetMinConcurrent: 3 }, 2).limit(0), 2);
  const budget = new RetryBudget({ budgetPercent: 20, budgetMinConcurrent: 10 });
  budget.configure({ budgetPercent: 20, budgetMinConcurrent: 10 }, 4);
  assert.equal(budget.limit(0), 3, 'a reload that changes the worker count resizes the floor');
});
