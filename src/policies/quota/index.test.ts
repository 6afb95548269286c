import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryState } from '../../state/memory-state.ts';
import type { PolicyProblem } from '../filter.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import { fakeDeps, fakeResolveContext } from '../../../test/helpers/policy.ts';
import { periodAt, zoneFormatter } from './period.ts';
import { quotaPolicy } from './index.ts';

const utc = zoneFormatter('UTC');
const berlin = zoneFormatter('Europe/Berlin');

test('calendar periods with a fixed clock: a day and a month in UTC', () => {
  const now = Date.UTC(2026, 11, 5, 16, 30);
  assert.deepEqual(periodAt('day', utc, now), { id: '2026-12-05', start: Date.UTC(2026, 11, 5), end: Date.UTC(2026, 11, 6) });
  assert.deepEqual(periodAt('month', utc, now), { id: '2026-12', start: Date.UTC(2026, 11, 1), end: Date.UTC(2027, 0, 1) });
  // The last millisecond of a day is in it; the next one is in the next day.
  assert.equal(periodAt('day', utc, Date.UTC(2026, 11, 5, 23, 59, 59, 999)).id, '2026-12-05');
  assert.equal(periodAt('day', utc, Date.UTC(2026, 11, 6)).id, '2026-12-06');
});

test('calendar periods in a zone: local midnight, and days of 23 and 25 hours at daylight-saving changes', () => {
  // 23:30 UTC on 5 December is 00:30 on the 6th in Berlin (UTC+1).
  const p = periodAt('day', berlin, Date.UTC(2026, 11, 5, 23, 30));
  assert.deepEqual(p, { id: '2026-12-06', start: Date.UTC(2026, 11, 5, 23), end: Date.UTC(2026, 11, 6, 23) });
  // 29 March 2026: clocks go forward, the day lasts 23 hours; 25 October 2026: 25 hours.
  const spring = periodAt('day', berlin, Date.UTC(2026, 2, 29, 12));
  assert.equal(spring.end - spring.start, 23 * 3600_000);
  const autumn = periodAt('day', berlin, Date.UTC(2026, 9, 25, 12));
  assert.equal(autumn.end - autumn.start, 25 * 3600_000);
  const month = periodAt('month', berlin, Date.UTC(2026, 2, 31, 22, 30)); // 1 April 00:30 local (UTC+2)
  assert.deepEqual(month, { id: '2026-04', start: Date.UTC(2026, 2, 31, 22), end: Date.UTC(2026, 3, 30, 22) });
});

test('resolve refuses an unknown time zone', () => {
  const { ctx, problems } = fakeResolveContext();
  quotaPolicy.resolve(quotaPolicy.config.parse({ limit: 1, period: 'day', timeZone: 'Mars/Olympus' }), ctx);
  assert.deepEqual(
    problems.map((p: PolicyProblem) => p.path),
    [['timeZone']],
  );
});

test('counts per consumer; the request over the limit is 429 QUOTA_EXCEEDED; usage reads what is left', async () => {
  const memory = new MemoryState();
  const deps = fakeDeps({ name: 'daily', state: { user: () => memory, available: true } });
  const { ctx } = fakeResolveContext();
  const filter = quotaPolicy.create(quotaPolicy.resolve(quotaPolicy.config.parse({ limit: 2, period: 'day' }), ctx), deps);
  const alice = { consumer: { name: 'alice', groups: [], metadata: {} }, credential: 'alice/api-key/0', policy: 'keys' };
  const verdicts = [];
  for (let i = 0; i < 3; i++) verdicts.push(await filter.onRequest!(fakeSession({ identity: alice })));
  assert.deepEqual(verdicts.slice(0, 2), [undefined, undefined]);
  assert.equal(verdicts[2]?.status, 429);
  assert.equal(verdicts[2]?.error?.code, 'QUOTA_EXCEEDED');
  assert.ok(Number(verdicts[2]?.headers?.['retry-after']) >= 1);
  assert.equal(await filter.onRequest!(fakeSession({ identity: { ...alice, consumer: { ...alice.consumer, name: 'bob' } } })), undefined, 'bob has his own quota');
  const usage = await filter.usage!({ consumer: 'alice' });
  assert.equal(usage.remaining, 0);
  assert.equal(usage.used, 2);
  assert.equal((await filter.usage!({ consumer: 'bob' })).remaining, 1);
  // Without an identity the key is the client address.
  assert.equal(await filter.onRequest!(fakeSession()), undefined);
  assert.equal((await filter.usage!({ ip: '192.0.2.1' })).used, 1);
  await memory.close();
});

test('consumers.NAME.limits: alice’s own quota in the count, the fields and usage; an unlimited consumer is not counted', async () => {
  const memory = new MemoryState();
  const deps = fakeDeps({
    name: 'daily',
    state: { user: () => memory, available: true },
    policies: { daily: { type: 'quota', limit: 1, period: 'day' } },
    consumers: { alice: { limits: { daily: { limit: 3 } } }, bob: {}, root: { limits: { daily: { limit: 'unlimited' } } } },
  });
  const { ctx } = fakeResolveContext();
  const filter = quotaPolicy.create(quotaPolicy.resolve(quotaPolicy.config.parse({ limit: 1, period: 'day' }), ctx), deps);
  const who = (name: string) => fakeSession({ identity: { consumer: { name, groups: [], metadata: {} }, credential: `${name}/api-key/0`, policy: 'keys' } });
  const statuses = async (name: string, n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push((await filter.onRequest!(who(name)))?.status ?? 200);
    return out;
  };
  assert.deepEqual(await statuses('alice', 4), [200, 200, 200, 429]);
  assert.deepEqual(await statuses('bob', 2), [200, 429]);
  assert.deepEqual(await statuses('root', 5), [200, 200, 200, 200, 200]);
  const refused = await filter.onRequest!(who('alice'));
  assert.match(String(refused?.headers?.['ratelimit-policy']), /^"daily";q=3;w=86400$/);
  assert.deepEqual(
    [await filter.usage!({ consumer: 'alice' }), await filter.usage!({ consumer: 'bob' })].map((u) => [u.limit, u.used, u.remaining]),
    [
      [3, 3, 0],
      [1, 1, 0],
    ],
  );
  assert.equal((await filter.usage!({ consumer: 'root' })).limit, Number.POSITIVE_INFINITY);
  await memory.close();
});
