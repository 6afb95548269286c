import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeDeps, fakeResolveContext } from '../../../test/helpers/policy.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import type { Identity, Reply } from '../filter.ts';
import { authorizePolicy } from './index.ts';
import type { RawAuthorize } from './config.ts';

function decide(raw: RawAuthorize, identity: Identity | undefined, method = 'GET'): string {
  const { ctx, problems } = fakeResolveContext();
  const resolved = authorizePolicy.resolve(authorizePolicy.config.parse(raw), ctx);
  assert.deepEqual(problems, []);
  const verdict = authorizePolicy.create(resolved, fakeDeps({ name: 'orders', type: 'authorize' })).onRequest!(fakeSession({ identity, request: { method } })) as
    | Reply
    | undefined;
  return verdict === undefined ? 'pass' : `${verdict.status} ${verdict.error?.code}`;
}

const who = (groups: string[], extra: Partial<Identity> = {}): Identity => ({
  consumer: { name: 'c', groups, metadata: {} },
  credential: 'c/api-key/0',
  policy: 'keys',
  ...extra,
});

test('groups any/all; no identity 401, a missing group 403', () => {
  const table: Array<[string, RawAuthorize, Identity | undefined, string]> = [
    ['in one of them', { groups: ['gold', 'silver'] }, who(['silver']), 'pass'],
    ['in none', { groups: ['gold', 'silver'] }, who(['bronze']), '403 FORBIDDEN'],
    ['no groups', { groups: ['gold'] }, who([]), '403 FORBIDDEN'],
    ['all: has all', { groups: ['gold', 'beta'], mode: 'all' }, who(['beta', 'gold', 'x']), 'pass'],
    ['all: has one', { groups: ['gold', 'beta'], mode: 'all' }, who(['gold']), '403 FORBIDDEN'],
    ['no identity', { groups: ['gold'] }, undefined, '401 AUTH_REQUIRED'],
  ];
  for (const [name, raw, identity, want] of table) assert.equal(decide(raw, identity), want, name);
});

test('scopes (all needed), claims (dotted paths, lists), every condition must hold', () => {
  const token = who(['gold'], { scopes: ['read', 'write'], claims: { org: { role: 'admin', id: 7 }, roles: ['viewer', 'owner'], 'x.y': true } });
  const table: Array<[string, RawAuthorize, string]> = [
    ['scopes held', { scopes: ['read'] }, 'pass'],
    ['a scope missing', { scopes: ['read', 'admin'] }, '403 FORBIDDEN'],
    ['nested claim', { claims: { 'org.role': ['admin', 'owner'] } }, 'pass'],
    ['nested claim, other value', { claims: { 'org.role': ['owner'] } }, '403 FORBIDDEN'],
    ['number claim', { claims: { 'org.id': [7] } }, 'pass'],
    ['number claim as a string does not match', { claims: { 'org.id': ['7'] } }, '403 FORBIDDEN'],
    ['list claim', { claims: { roles: ['owner'] } }, 'pass'],
    ['a literal dotted key first', { claims: { 'x.y': [true] } }, 'pass'],
    ['absent claim', { claims: { tenant: ['a'] } }, '403 FORBIDDEN'],
    ['groups and scopes both hold', { groups: ['gold'], scopes: ['write'] }, 'pass'],
    ['groups hold, scopes do not', { groups: ['gold'], scopes: ['admin'] }, '403 FORBIDDEN'],
  ];
  for (const [name, raw, want] of table) assert.equal(decide(raw, token), want, name);
  assert.equal(decide({ scopes: ['read'] }, who(['gold'])), '403 FORBIDDEN', 'an identity without a token has no scopes');
});

test('methods: only those are checked', () => {
  assert.equal(decide({ groups: ['admin'], methods: ['POST', 'DELETE'] }, who([]), 'GET'), 'pass');
  assert.equal(decide({ groups: ['admin'], methods: ['POST', 'DELETE'] }, who([]), 'DELETE'), '403 FORBIDDEN');
  assert.equal(decide({ groups: ['admin'], methods: ['POST'] }, undefined, 'GET'), 'pass');
});

test('config: at least one condition; mode only with groups', () => {
  for (const [raw, want] of [
    [{}, 'at least one of groups, scopes, claims'],
    [{ scopes: ['a'], mode: 'all' }, 'mode only together with groups'],
  ] as Array<[RawAuthorize, string]>) {
    const { ctx, problems } = fakeResolveContext();
    authorizePolicy.resolve(authorizePolicy.config.parse(raw), ctx);
    assert.equal(problems[0]?.expected, want);
  }
});
