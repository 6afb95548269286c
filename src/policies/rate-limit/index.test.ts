import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryState } from '../../state/memory-state.ts';
import type { Filter, PolicyStateView, Reply } from '../filter.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import { fakeDeps, fakeResolveContext, headerList, pairs } from '../../../test/helpers/policy.ts';
import { rateLimitPolicy } from './index.ts';

function make(input: object, state: { view: PolicyStateView; available: boolean }): Filter {
  const { ctx, problems } = fakeResolveContext();
  const config = rateLimitPolicy.resolve(rateLimitPolicy.config.parse(input), ctx);
  assert.deepEqual(problems, []);
  const deps = fakeDeps({
    name: 'api',
    state: {
      user: () => state.view,
      get available() {
        return state.available;
      },
    },
  });
  return rateLimitPolicy.create(config, deps);
}

test('the schema refuses what is not a limit', () => {
  for (const bad of [
    { limit: 0, window: '1s' },
    { limit: 1.5, window: '1s' },
    { limit: 1, window: 'soon' },
    { limit: 1, window: '1s', key: 'cookie' },
    { limit: 1, window: '1s', key: [] },
  ]) {
    assert.equal(rateLimitPolicy.config.safeParse(bad).success, false, JSON.stringify(bad));
  }
  const { ctx, problems } = fakeResolveContext();
  rateLimitPolicy.resolve(rateLimitPolicy.config.parse({ limit: 1, window: 0 }), ctx);
  assert.deepEqual(
    problems.map((p) => p.path),
    [['window']],
  );
});

test('limit 2 per key with a burst of 3: three pass at once, the fourth is 429 with Retry-After and the fields; both fields on passing responses', async () => {
  const memory = new MemoryState();
  const f = make({ key: 'header:x-user', limit: 2, window: '1m', burst: 3, headers: 'both' }, { view: memory, available: true });
  const s = () => fakeSession({ request: { headers: { 'x-user': 'u1' } } });
  const first = s();
  assert.equal(await f.onRequest!(first), undefined);
  assert.equal(await f.onRequest!(s()), undefined);
  assert.equal(await f.onRequest!(s()), undefined);
  const refused = (await f.onRequest!(s())) as Reply;
  assert.equal(refused.status, 429);
  assert.equal(refused.error?.code, 'RATE_LIMITED');
  // One token every 30 s.
  assert.equal(refused.headers?.['retry-after'], '30');
  assert.equal(refused.headers?.ratelimit, '"api";r=0;t=30');
  assert.equal(refused.headers?.['ratelimit-policy'], '"api";q=2;w=60');
  assert.equal(refused.headers?.['x-ratelimit-remaining'], '0');
  const head = { status: 200, headers: headerList(), fromUpstream: true };
  f.onResponse!(first, head);
  assert.deepEqual(pairs(head.headers), [
    ['ratelimit-policy', '"api";q=2;w=60'],
    ['ratelimit', '"api";r=2;t=30'],
    ['x-ratelimit-limit', '2'],
    ['x-ratelimit-remaining', '2'],
    ['x-ratelimit-reset', '30'],
  ]);
  assert.equal(await f.onRequest!(fakeSession({ request: { headers: { 'x-user': 'u2' } } })), undefined, 'another key');
  await memory.close();
});

test('headers: none adds no response hook', () => {
  const memory = new MemoryState();
  assert.equal(make({ limit: 1, window: '1s', headers: 'none' }, { view: memory, available: true }).onResponse, undefined);
});

test('a grant made without the backend (fail open) sends no fields: it counted nothing', async () => {
  const open: PolicyStateView = {
    increment: async () => 0,
    get: async () => 0,
    take: async () => ({ allowed: true, remaining: 0, retryAfterMs: 0 }),
    acquire: async () => 'x',
    release: async () => undefined,
    put: async () => undefined,
    read: async () => undefined,
  };
  const f = make({ limit: 1, window: '1s' }, { view: open, available: false });
  const s = fakeSession();
  assert.equal(await f.onRequest!(s), undefined);
  const head = { status: 200, headers: headerList(), fromUpstream: true };
  f.onResponse!(s, head);
  assert.deepEqual(pairs(head.headers), []);
});
