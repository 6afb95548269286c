import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath, rewritePath } from './path.ts';

const normal: Array<[string, string | undefined]> = [
  ['/', '/'],
  ['/a/b', '/a/b'],
  ['/a/../admin', '/admin'],
  ['/a/%2e%2e/admin', '/admin'],
  ['/a/%2E%2E/admin', '/admin'],
  ['//admin', '/admin'],
  ['/a//b/', '/a/b/'],
  ['/a/./b', '/a/b'],
  ['/a/.', '/a/'],
  ['/a/b/..', '/a/'],
  ['/..', undefined],
  ['/a/../../etc/passwd', undefined],
  ['/a%2fb', '/a%2fb'],
];
for (const [given, expected] of normal) {
  test(`normalizePath(${given})`, () => assert.equal(normalizePath(given), expected));
}

test('rewritePath: strip and replace prefixes', () => {
  assert.equal(rewritePath('/api/users', { kind: 'strip', prefix: '/api' }), '/users');
  assert.equal(rewritePath('/api', { kind: 'strip', prefix: '/api' }), '/');
  assert.equal(rewritePath('/other', { kind: 'strip', prefix: '/api' }), '/other');
  assert.equal(rewritePath('/v1/users', { kind: 'replace', from: '/v1/', to: '/v2/' }), '/v2/users');
  assert.equal(rewritePath('/v1/users', undefined), '/v1/users');
});
