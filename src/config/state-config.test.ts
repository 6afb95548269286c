import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from './load-text.ts';

const BASE = `listeners:
  web:
    address: "127.0.0.1:8080"
    protocol: http
`;

function errors(text: string): string[] {
  const r = loadConfigText(text, 'sb.yaml', {});
  return r.ok ? [] : r.errors.map((e) => e.message);
}

test('state: absent means the memory backend, with every Redis default resolved', () => {
  const r = loadConfigText(BASE, 'sb.yaml', {});
  assert.ok(r.ok);
  assert.deepEqual(r.config.state, {
    backend: 'memory',
    redis: { url: 'redis://127.0.0.1:6379', prefix: 'switchboard:', connectTimeout: 2000, commandTimeout: 500 },
  });
});

test('state: redis with its keys, durations converted', () => {
  const r = loadConfigText(
    `${BASE}state:\n  backend: redis\n  redis: { url: "rediss://user:pw@cache:6380/2", prefix: "a:", connectTimeout: 1s, commandTimeout: 250ms }\n`,
    'sb.yaml',
    {},
  );
  assert.ok(r.ok);
  assert.deepEqual(r.config.state, { backend: 'redis', redis: { url: 'rediss://user:pw@cache:6380/2', prefix: 'a:', connectTimeout: 1000, commandTimeout: 250 } });
});

test('state: errors name file:line:column like every other key', () => {
  assert.deepEqual(errors(`${BASE}state:\n  backend: redis\n  redis:\n    url: "http://127.0.0.1:6379"\n`), [
    'sb.yaml:8:10: state.redis.url: expected a redis:// or rediss:// URL such as "redis://127.0.0.1:6379", found "http://127.0.0.1:6379"',
  ]);
  assert.deepEqual(errors(`${BASE}state:\n  backend: redis\n  redis: { url: "not a url" }\n`), [
    'sb.yaml:7:17: state.redis.url: expected a redis:// or rediss:// URL such as "redis://127.0.0.1:6379", found "not a url"',
  ]);
  assert.equal(errors(`${BASE}state:\n  backend: memory\n  redis: { url: "http://x" }\n`).length, 0, 'the url is only checked for the redis backend');
  assert.deepEqual(errors(`${BASE}state:\n  backend: postgres\n`), ['sb.yaml:6:12: state.backend: expected one of "memory", "redis", found "postgres"']);
  assert.deepEqual(errors(`${BASE}state:\n  redis: { commandTimeout: 0 }\n`), [
    'sb.yaml:6:28: state.redis.commandTimeout: expected a duration above 0, such as 500ms or 2s, found 0',
  ]);
  assert.deepEqual(errors(`${BASE}state:\n  backnd: redis\n`), [
    'sb.yaml:6:3: state.backnd: expected one of the keys backend, redis, found "backnd" (did you mean "backend"?)',
  ]);
});
