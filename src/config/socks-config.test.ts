/**
 * A socks5 listener's config: `policies` name basic-auth policies only, and without one the
 * listener must be on loopback unless `forward.allowUnauthenticated` says an open proxy is meant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from './load-text.ts';

function errors(text: string): string[] {
  const r = loadConfigText(text, '/tmp/sb.yaml', {});
  return r.ok ? [] : r.errors.map((e) => e.message);
}

const POLICIES = `policies:
  login: { type: basic-auth }
  keys: { type: api-key }
`;

test('socks5 on loopback without authentication, or with basic-auth anywhere: valid', () => {
  for (const [address, extra] of [
    ['127.0.0.1:1080', ''],
    ['[::1]:1080', ''],
    ['localhost:1080', ''],
    ['0.0.0.0:1080', 'policies: [login]'],
    ['0.0.0.0:1080', 'forward: { allowUnauthenticated: true }'],
  ]) {
    assert.deepEqual(errors(`listeners:\n  socks: { address: "${address}", protocol: socks5, ${extra} }\n${POLICIES}`), [], `${address} ${extra}`);
  }
});

test('socks5 on a non-loopback address without authentication, or with a policy other than basic-auth: errors', () => {
  const open = errors(`listeners:\n  socks: { address: "0.0.0.0:1080", protocol: socks5 }\n${POLICIES}`);
  assert.equal(open.length, 1);
  assert.match(open[0], /listeners\.socks\.policies/);
  assert.match(open[0], /allowUnauthenticated/);
  const keys = errors(`listeners:\n  socks: { address: "127.0.0.1:1080", protocol: socks5, policies: [login, keys] }\n${POLICIES}`);
  assert.equal(keys.length, 1);
  assert.match(keys[0], /listeners\.socks\.policies\[1\]/);
  assert.match(keys[0], /basic-auth/);
  const unknown = errors(`listeners:\n  socks: { address: "127.0.0.1:1080", protocol: socks5, policies: [logni] }\n${POLICIES}`);
  assert.equal(unknown.length, 1);
  assert.match(unknown[0], /login/, 'a did-you-mean');
});
