import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileKey, limitKey, type KeySource } from './limit-key.ts';

const alice = { consumer: { name: 'alice' }, credential: 'alice/api-key/0' };
function source(init: Partial<KeySource> = {}): KeySource {
  return { identity: undefined, client: { ip: '192.0.2.1' }, request: { path: '/a', headers: { 'x-tenant': 'acme' } }, route: 'r1', ...init };
}

test('each part, and the fallback to the client address without an identity', () => {
  assert.equal(compileKey('consumer')(source({ identity: alice })), 'c=alice');
  assert.equal(compileKey('credential')(source({ identity: alice })), 'k=alice/api-key/0');
  assert.equal(compileKey('consumer')(source()), 'ip=192.0.2.1');
  assert.equal(compileKey('credential')(source()), 'ip=192.0.2.1');
  assert.equal(compileKey('ip')(source()), 'ip=192.0.2.1');
  assert.equal(compileKey('path')(source()), 'p=/a');
  assert.equal(compileKey('route')(source()), 'r=r1');
  assert.equal(compileKey('header:X-Tenant')(source()), 'h=acme');
  assert.equal(compileKey('header:x-missing')(source()), 'h=');
  assert.equal(compileKey(['consumer', 'route'])(source({ identity: alice })), 'c=alice\u001fr=r1');
});

test('a long value is hashed: keys stay short whatever a client sends', () => {
  const key = compileKey('header:x-tenant')(source({ request: { path: '/', headers: { 'x-tenant': 'x'.repeat(10_000) } } }));
  assert.ok(key.length < 60, key);
  assert.match(key, /^h=#[A-Za-z0-9_-]{43}$/);
});

test('the schema: known parts and header:NAME only', () => {
  for (const good of ['consumer', 'ip', 'header:x-api-version', ['consumer', 'path']]) assert.equal(limitKey.safeParse(good).success, true, String(good));
  for (const bad of ['user', 'header:', 'header:a b', [], ['ip', 'nope']]) assert.equal(limitKey.safeParse(bad).success, false, String(bad));
});
