import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BALANCER_NAMES, balancers } from './index.ts';
import { fakeEndpoints, mulberry32 } from './testing.ts';

test('every configured balancer name builds its own algorithm', () => {
  const eps = fakeEndpoints(['a', 'b', 'c'], [3, 1, 1]);
  for (const name of BALANCER_NAMES) {
    for (const hashTable of ['ring', 'maglev'] as const) {
      const balancer = balancers[name]({ random: mulberry32(1), hashTable });
      assert.equal(balancer.name, name);
      balancer.update(eps);
      assert.ok(eps.includes(balancer.pick(eps, { hashKey: '10.0.0.1', now: 0 })!));
      assert.equal(balancer.pick([], { hashKey: undefined, now: 0 }), undefined);
    }
  }
});
