import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryState } from '../../state/memory-state.ts';
import type { Reply } from '../filter.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import { fakeDeps, fakeResolveContext } from '../../../test/helpers/policy.ts';
import { concurrencyLimitPolicy } from './index.ts';

test('limit 1: the second request is refused while the first is in flight; onLog returns the place', async () => {
  const memory = new MemoryState();
  const deps = fakeDeps({ name: 'one', state: { user: () => memory, available: true } });
  const { ctx, problems } = fakeResolveContext();
  const f = concurrencyLimitPolicy.create(concurrencyLimitPolicy.resolve(concurrencyLimitPolicy.config.parse({ limit: 1, status: 503 }), ctx), deps);
  assert.deepEqual(problems, []);
  const first = fakeSession();
  assert.equal(await f.onRequest!(first), undefined);
  const refused = (await f.onRequest!(fakeSession())) as Reply;
  assert.deepEqual([refused.status, refused.error?.code, refused.headers?.['retry-after']], [503, 'CONCURRENCY_LIMITED', '1']);
  assert.equal(await f.onRequest!(fakeSession({ client: { ip: '192.0.2.9' } })), undefined, 'another address');
  f.onLog!(fakeSession()); // a refused request holds nothing: returns nothing
  f.onLog!(first);
  // The release is one more state step: the next acquire queues behind it.
  assert.equal(await f.onRequest!(fakeSession()), undefined);
  await memory.close();
});

test('a lease timeout under 1s is refused', () => {
  const { ctx, problems } = fakeResolveContext();
  concurrencyLimitPolicy.resolve(concurrencyLimitPolicy.config.parse({ limit: 1, leaseTimeout: '10ms' }), ctx);
  assert.deepEqual(
    problems.map((p) => p.path),
    [['leaseTimeout']],
  );
});

test('consumers.NAME.limits: alice may have 2 in flight, bob the policy’s 1, root any number', async () => {
  const memory = new MemoryState();
  const deps = fakeDeps({
    name: 'inflight',
    state: { user: () => memory, available: true },
    policies: { inflight: { type: 'concurrency-limit', key: 'consumer', limit: 1 } },
    consumers: { alice: { limits: { inflight: { limit: 2 } } }, bob: {}, root: { limits: { inflight: { limit: 'unlimited' } } } },
  });
  const { ctx } = fakeResolveContext();
  const f = concurrencyLimitPolicy.create(concurrencyLimitPolicy.resolve(concurrencyLimitPolicy.config.parse({ key: 'consumer', limit: 1 }), ctx), deps);
  const who = (name: string) => fakeSession({ identity: { consumer: { name, groups: [], metadata: {} }, credential: `${name}/api-key/0`, policy: 'keys' } });
  const held: Array<ReturnType<typeof who>> = [];
  const status = async (name: string): Promise<number> => {
    const s = who(name);
    const r = (await f.onRequest!(s)) as Reply | undefined;
    if (r === undefined) held.push(s);
    return r?.status ?? 200;
  };
  assert.deepEqual([await status('alice'), await status('alice'), await status('alice')], [200, 200, 429]);
  assert.match(((await f.onRequest!(who('alice'))) as Reply).error!.message, /more than 2 requests/);
  assert.deepEqual([await status('bob'), await status('bob')], [200, 429]);
  for (let i = 0; i < 5; i++) assert.equal(await status('root'), 200);
  f.onLog!(held[0]!);
  assert.equal(await status('alice'), 200, 'a place returned');
  await memory.close();
});
