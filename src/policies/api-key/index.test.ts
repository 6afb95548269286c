import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeDeps, headerList, pairs } from '../../../test/helpers/policy.ts';
import { fakeSession, type FakeSessionInit } from '../../../test/helpers/session.ts';
import type { Filter, Reply, Session, UpstreamRequestHead } from '../filter.ts';
import { sha256Hex } from '../consumers.ts';
import { apiKeyPolicy, cookieValue, queryParam, withoutQueryParam } from './index.ts';
import type { RawApiKey } from './config.ts';

const ALICE = 'alice-key-0123456789abcdef';
const BOB = 'bob-key-0123456789abcdefghij';
const consumers = {
  alice: {
    groups: ['gold', 'beta'],
    credentials: [
      { type: 'basic' as const, username: 'a', password: `$2b$04$${'a'.repeat(53)}` },
      { type: 'api-key' as const, key: ALICE },
    ],
  },
  bob: { credentials: [{ type: 'api-key' as const, keyHash: `sha256:${sha256Hex(BOB)}` }] },
  guest: { groups: ['free'] },
};

const deps = (routes?: Record<string, Array<[string, string]>>) => fakeDeps({ name: 'keys', consumers, routes });
/** The directory's own consumer object (identities compare consumers by reference). */
const fakeDepsConsumer = (name: string) => shared.consumers.consumer(name)!;
const shared = deps();

function filter(raw: RawApiKey = {}, routes?: Record<string, Array<[string, string]>>): Filter {
  const parsed = apiKeyPolicy.config.parse(raw);
  return apiKeyPolicy.create(apiKeyPolicy.resolve(parsed), { ...shared, routes: deps(routes).routes });
}

function run(f: Filter, init: FakeSessionInit): { s: Session; verdict: Reply | undefined } {
  const s = fakeSession({ route: 'r', ...init });
  const verdict = f.onRequest!(s);
  assert.ok(!(verdict instanceof Promise));
  return { s, verdict };
}

function upstream(f: Filter, s: Session, target: string, pairsIn: Array<[string, string]>): { target: string; headers: Array<[string, string]> } {
  const head: UpstreamRequestHead = { method: 'GET', target, headers: headerList(pairsIn), endpoint: 'http://127.0.0.1:1', attempt: 1 };
  f.onUpstreamRequest!(s, head);
  return { target: head.target, headers: pairs(head.headers as ReturnType<typeof headerList>) };
}

test('a key in the header identifies its consumer with a credential id that reveals nothing of it', () => {
  const { s, verdict } = run(filter(), { request: { headers: { 'x-api-key': ALICE } } });
  assert.equal(verdict, undefined);
  assert.deepEqual(s.identity, { consumer: { name: 'alice', groups: ['gold', 'beta'], metadata: {} }, credential: 'alice/api-key/1', policy: 'keys' });
  assert.equal(run(filter(), { request: { headers: { 'x-api-key': BOB } } }).s.identity?.consumer.name, 'bob', 'a keyHash credential');
});

test('missing: 401 AUTH_REQUIRED; wrong: 401 AUTH_INVALID; both with the challenge, neither says more', () => {
  const missing = run(filter(), {}).verdict;
  assert.deepEqual(missing, {
    status: 401,
    headers: { 'www-authenticate': ['ApiKey header="x-api-key"'] },
    error: { code: 'AUTH_REQUIRED', message: 'this route needs a credential' },
  });
  for (const wrong of [`${ALICE}x`, ALICE.slice(0, -1), '', ALICE.toUpperCase(), `${ALICE}, ${BOB}`]) {
    const { s, verdict } = run(filter(), { request: { headers: { 'x-api-key': wrong } } });
    assert.deepEqual(
      verdict,
      { status: 401, headers: { 'www-authenticate': 'ApiKey header="x-api-key"' }, error: { code: 'AUTH_INVALID', message: 'the credential was not accepted' } },
      wrong,
    );
    assert.equal(s.identity, undefined);
  }
});

test('query parameter and cookie, when configured, in that order after the header', () => {
  const f = filter({ header: 'X-Key', query: 'apikey', cookie: 'sb_key' });
  assert.equal(run(f, { request: { query: `?a=1&apikey=${encodeURIComponent(ALICE)}` } }).s.identity?.consumer.name, 'alice');
  assert.equal(run(f, { request: { headers: { cookie: `x=1; sb_key=${BOB}; y=2` } } }).s.identity?.consumer.name, 'bob');
  assert.equal(run(f, { request: { headers: { 'x-key': BOB }, query: `?apikey=${ALICE}` } }).s.identity?.consumer.name, 'bob', 'the header first');
  assert.equal(run(filter(), { request: { query: `?apikey=${ALICE}` } }).verdict?.error?.code, 'AUTH_REQUIRED', 'no query source unless configured');
});

test('upstream: the key removed (header, query, cookie), identity headers set, client copies always removed', () => {
  const f = filter({ query: 'apikey', cookie: 'k' });
  const { s } = run(f, { request: { headers: { 'x-api-key': ALICE } } });
  const out = upstream(f, s, `/x?apikey=${ALICE}&b=2`, [
    ['X-Api-Key', ALICE],
    ['Cookie', `k=${ALICE}; other=1`],
    ['X-Consumer-Name', 'admin'],
    ['x-consumer-groups', 'root'],
    ['accept', '*/*'],
  ]);
  assert.equal(out.target, '/x?b=2');
  assert.deepEqual(out.headers, [
    ['accept', '*/*'],
    ['x-consumer-name', 'alice'],
    ['x-consumer-groups', 'gold,beta'],
    ['cookie', 'other=1'],
  ]);
  const kept = filter({ hideCredentials: false, consumerHeaders: { name: 'x-who' } });
  const k = run(kept, { request: { headers: { 'x-api-key': BOB } } }).s;
  assert.deepEqual(
    upstream(kept, k, '/', [
      ['x-api-key', BOB],
      ['x-who', 'spoof'],
      ['x-consumer-groups', 'spoof'],
    ]).headers,
    [
      ['x-api-key', BOB],
      ['x-who', 'bob'],
    ],
  );
});

test('anonymous: no key → that consumer; a wrong key is still 401', () => {
  const f = filter({ anonymous: 'guest' });
  const { s, verdict } = run(f, {});
  assert.equal(verdict, undefined);
  assert.deepEqual(s.identity, { consumer: { name: 'guest', groups: ['free'], metadata: {} }, credential: 'guest/anonymous', policy: 'keys' });
  assert.equal(run(f, { request: { headers: { 'x-api-key': 'nope' } } }).verdict?.error?.code, 'AUTH_INVALID');
});

test('several auth policies: one with no credential passes on when another follows on this route; already identified passes', () => {
  const routes = {
    r: [
      ['cors', 'cors'],
      ['keys', 'api-key'],
      ['login', 'basic-auth'],
    ] as Array<[string, string]>,
    alone: [['keys', 'api-key']] as Array<[string, string]>,
  };
  const f = filter({}, routes);
  assert.equal(run(f, {}).verdict, undefined, 'basic-auth comes later on route r');
  assert.equal(run(f, { route: 'alone' }).verdict?.status, 401);
  const identified = fakeSession({ route: 'alone', identity: { consumer: { name: 'x', groups: [], metadata: {} }, credential: 'x/basic/0', policy: 'login' } });
  assert.equal(f.onRequest!(identified), undefined);
  assert.equal(identified.identity?.consumer.name, 'x');
});

test('query and cookie helpers', () => {
  assert.equal(queryParam('?apikey=a%2Bb', 'apikey'), 'a+b');
  assert.equal(queryParam('?xapikey=1', 'apikey'), undefined);
  assert.equal(queryParam('?api%6Bey=k', 'apikey'), 'k');
  assert.equal(withoutQueryParam('/p?apikey=1', 'apikey'), '/p');
  assert.equal(withoutQueryParam('/p?a=1&apikey=1&apikey=2&b', 'apikey'), '/p?a=1&b');
  assert.equal(withoutQueryParam('/p?xapikey=1', 'apikey'), '/p?xapikey=1');
  assert.equal(withoutQueryParam('/p?api%6Bey=1', 'apikey'), '/p', 'an encoded name is the same parameter');
  assert.equal(cookieValue(['a=1', 'k = v ; b=2'], 'k'), 'v');
  assert.equal(cookieValue('kk=1', 'k'), undefined);
});

test('required (all-of): checks its own credential even when identified; it must be the same consumer; missing is 401 whatever follows', () => {
  const routes = {
    r: [
      ['login', 'basic-auth'],
      ['keys', 'api-key'],
      ['sso', 'oidc'],
    ] as Array<[string, string]>,
  };
  const f = filter({ required: true, anonymous: 'guest' }, routes);
  const alice = (): FakeSessionInit['identity'] => ({ consumer: fakeDepsConsumer('alice'), credential: 'alice/basic/0', policy: 'login' });
  const same = run(f, { identity: alice(), request: { headers: { 'x-api-key': ALICE } } });
  assert.equal(same.verdict, undefined);
  assert.equal(same.s.identity?.credential, 'alice/basic/0', 'the first identity stays');
  assert.equal(run(f, { identity: alice(), request: { headers: { 'x-api-key': BOB } } }).verdict?.error?.code, 'AUTH_INVALID', 'another consumer');
  assert.equal(run(f, { identity: alice() }).verdict?.error?.code, 'AUTH_REQUIRED', 'missing, though identified and followed by another policy');
  assert.equal(run(f, {}).verdict?.error?.code, 'AUTH_REQUIRED', 'no anonymous fallback');
});
