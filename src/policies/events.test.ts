import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type AuthFetchEvent, authDecisions, authFetch, LimitDecisions, observeFetch, type PolicyDecisionEvent, policyDecision } from './events.ts';
import type { PolicyState } from './filter.ts';

/** The messages of `channel` published while `fn` runs. */
async function published<T>(channel: typeof policyDecision, fn: () => unknown): Promise<T[]> {
  const seen: T[] = [];
  const listener = (m: unknown): void => {
    seen.push(m as T);
  };
  channel.subscribe(listener);
  try {
    await fn();
  } finally {
    channel.unsubscribe(listener);
  }
  return seen;
}

test('a decision publishes the one frozen message of its policy and result, every time', async () => {
  const d = authDecisions({ name: 'keys', type: 'api-key' });
  const seen = await published<PolicyDecisionEvent>(policyDecision, () => {
    d.publish('success');
    d.publish('success');
    d.publish('invalid');
  });
  assert.deepEqual(
    seen.map((e) => [e.policy, e.type, e.result]),
    [
      ['keys', 'api-key', 'success'],
      ['keys', 'api-key', 'success'],
      ['keys', 'api-key', 'invalid'],
    ],
  );
  assert.equal(seen[0], seen[1], 'the same object: nothing made per request');
  assert.ok(Object.isFrozen(seen[0]));
});

test('a limit decision says when the state’s fallback answered it', async () => {
  const state = { available: true } as { available: boolean } & PolicyState;
  const d = new LimitDecisions({ name: 'rl', type: 'rate-limit', state });
  const table: Array<[boolean, boolean, boolean, string]> = [
    [true, true, false, 'allowed'],
    [true, false, false, 'limited'],
    [true, true, true, 'delayed'],
    [false, true, false, 'failed_open'],
    [false, false, false, 'failed_closed'],
  ];
  for (const [available, allowed, delayed, result] of table) {
    state.available = available;
    const seen = await published<PolicyDecisionEvent>(policyDecision, () => d.decide(allowed, delayed));
    assert.deepEqual(
      seen.map((e) => e.result),
      [result],
      `available ${available}, allowed ${allowed}, delayed ${delayed}`,
    );
  }
});

test('observeFetch publishes each fetch’s outcome and duration, and resolves or rejects as the fetch does', async () => {
  const seen = await published<AuthFetchEvent>(authFetch, async () => {
    assert.equal(await observeFetch('bearer', 'jwks', async () => 'keys'), 'keys');
    await assert.rejects(
      observeFetch('opaque', 'introspection', async () => {
        throw new Error('refused');
      }),
      /refused/,
    );
  });
  assert.deepEqual(
    seen.map((e) => [e.policy, e.kind, e.ok]),
    [
      ['bearer', 'jwks', true],
      ['opaque', 'introspection', false],
    ],
  );
  assert.ok(seen.every((e) => e.durationMs >= 0));
  // Without subscribers, only the work runs.
  assert.equal(authFetch.hasSubscribers, false);
  assert.equal(await observeFetch('bearer', 'jwks', async () => 1), 1);
});
