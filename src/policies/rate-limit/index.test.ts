import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MemoryState } from '../../state/memory-state.ts';
import type { Filter, PolicyStateView, Reply, Session } from '../filter.ts';
import type { RawConsumer } from '../../config/consumers-schema.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import { fakeDeps, fakeResolveContext, headerList, pairs } from '../../../test/helpers/policy.ts';
import { rateLimitPolicy } from './index.ts';

function make(input: object, state: { view: PolicyStateView; available: boolean }, consumers?: Record<string, RawConsumer>): Filter {
  const { ctx, problems } = fakeResolveContext();
  const config = rateLimitPolicy.resolve(rateLimitPolicy.config.parse(input), ctx);
  assert.deepEqual(problems, []);
  const deps = fakeDeps({
    name: 'api',
    consumers,
    policies: { api: { type: 'rate-limit', ...input } },
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

/** A session of consumer `name` (as an authentication policy would have identified it), from `ip`. */
function as(name: string, ip = '192.0.2.1'): Session {
  return fakeSession({ client: { ip }, identity: { consumer: { name, groups: [], metadata: {} }, credential: `${name}/api-key/0`, policy: 'keys' } });
}

async function statuses(f: Filter, s: () => Session, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(((await f.onRequest!(s())) as Reply | undefined)?.status ?? 200);
  return out;
}

test('consumers.NAME.limits: alice gets her own limit and window in the fields, bob the policy’s; unlimited counts nothing', async () => {
  const memory = new MemoryState();
  const f = make(
    { key: 'consumer', limit: 1, window: '1m' },
    { view: memory, available: true },
    {
      alice: { limits: { api: { limit: 3, window: '1h' } } },
      bob: {},
      root: { limits: { api: { limit: 'unlimited' } } },
    },
  );
  assert.deepEqual(await statuses(f, () => as('alice'), 4), [200, 200, 200, 429]);
  assert.deepEqual(await statuses(f, () => as('bob'), 2), [200, 429]);
  assert.deepEqual(await statuses(f, () => as('root'), 20), Array(20).fill(200));
  const alice = as('alice');
  const refused = (await f.onRequest!(alice)) as Reply;
  // One token every 20 minutes (3 an hour).
  assert.equal(refused.headers?.['ratelimit-policy'], '"api";q=3;w=3600');
  assert.equal(refused.headers?.['retry-after'], String(20 * 60));
  const fresh = make({ key: 'consumer', limit: 1, window: '1m' }, { view: new MemoryState(), available: true }, { alice: { limits: { api: { limit: 3, burst: 2 } } } });
  const first = as('alice');
  assert.deepEqual(await statuses(fresh, () => first, 3), [200, 200, 429], 'burst 2: two at once');
  const head = { status: 200, headers: headerList(), fromUpstream: true };
  fresh.onResponse!(first, head);
  assert.deepEqual(pairs(head.headers), [
    ['ratelimit-policy', '"api";q=3;w=60'],
    ['ratelimit', '"api";r=0;t=40'],
  ]);
  const root = as('root');
  await f.onRequest!(root);
  const none = { status: 200, headers: headerList(), fromUpstream: true };
  f.onResponse!(root, none);
  assert.deepEqual(pairs(none.headers), [], 'an unlimited consumer gets no fields');
  await memory.close();
});

test('an override on a policy keyed by address gives the consumer a count of its own at that address', async () => {
  const memory = new MemoryState();
  const f = make({ key: 'ip', limit: 1, window: '1h' }, { view: memory, available: true }, { alice: { limits: { api: { limit: 2 } } }, bob: {} });
  assert.deepEqual(await statuses(f, () => as('bob', '198.51.100.7'), 2), [200, 429]);
  assert.deepEqual(await statuses(f, () => fakeSession({ client: { ip: '198.51.100.7' } }), 1), [429], 'anyone else at the address shares bob’s count');
  assert.deepEqual(await statuses(f, () => as('alice', '198.51.100.7'), 3), [200, 200, 429], 'alice’s own count, her own limit');
  await memory.close();
});

test('partitionKey: pk is the first 9 bytes of SHA-256 of the state key, on both items; never the key itself', async () => {
  const memory = new MemoryState();
  const f = make({ key: 'header:x-user', limit: 1, window: '1s', partitionKey: true }, { view: memory, available: true });
  const s = fakeSession({ request: { headers: { 'x-user': 'secret-ish-user' } } });
  assert.equal(await f.onRequest!(s), undefined);
  const pk = `:${createHash('sha256').update('rl:api:h=secret-ish-user').digest().subarray(0, 9).toString('base64')}:`;
  assert.match(pk, /^:[A-Za-z0-9+/]{12}:$/);
  const head = { status: 200, headers: headerList(), fromUpstream: true };
  f.onResponse!(s, head);
  assert.deepEqual(pairs(head.headers), [
    ['ratelimit-policy', `"api";q=1;w=1;pk=${pk}`],
    ['ratelimit', `"api";r=0;t=1;pk=${pk}`],
  ]);
  const refused = (await f.onRequest!(fakeSession({ request: { headers: { 'x-user': 'secret-ish-user' } } }))) as Reply;
  assert.equal(refused.headers?.ratelimit, `"api";r=0;t=1;pk=${pk}`);
  assert.ok(!JSON.stringify(refused.headers).includes('secret-ish-user'));
  const other = fakeSession({ request: { headers: { 'x-user': 'another' } } });
  await f.onRequest!(other);
  const h2 = { status: 200, headers: headerList(), fromUpstream: true };
  f.onResponse!(other, h2);
  assert.notEqual(h2.headers.get('ratelimit'), head.headers.get('ratelimit'), 'another partition, another pk');
  // Without partitionKey: no pk (the fields as before).
  const plain = make({ key: 'header:x-user', limit: 1, window: '1s' }, { view: new MemoryState(), available: true });
  const p = fakeSession();
  await plain.onRequest!(p);
  const h3 = { status: 200, headers: headerList(), fromUpstream: true };
  plain.onResponse!(p, h3);
  assert.equal(h3.headers.get('ratelimit'), '"api";r=0;t=1');
  await memory.close();
});
