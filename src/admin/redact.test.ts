import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REDACTED, redact, redactUrl } from './redact.ts';

test('URL userinfo: the password (or a lone user, which may be a token) is redacted, the rest kept', () => {
  assert.equal(redactUrl('redis://user:s3cret@127.0.0.1:6379/0'), `redis://user:${REDACTED}@127.0.0.1:6379/0`);
  assert.equal(redactUrl('redis://:s3cret@[::1]:6379'), `redis://:${REDACTED}@[::1]:6379`);
  assert.equal(redactUrl('https://tok3n@example.com/x'), `https://${REDACTED}@example.com/x`);
  assert.equal(redactUrl('http://127.0.0.1:8080/a@b'), 'http://127.0.0.1:8080/a@b');
  assert.equal(redactUrl('not a url @ all'), 'not a url @ all');
});

test('secrets by key name, at any depth, in maps and lists; PEM contents by size; paths and other values kept', () => {
  const out = redact({
    admin: { address: '127.0.0.1:9901', token: 'T0KEN' },
    upstreams: new Map([['app', { tls: { key: '-----BEGIN PRIVATE KEY-----\nabc', cert: '-----BEGIN CERTIFICATE-----\nxyz' } }]]),
    policies: [{ clientSecret: 'cs', apiKeys: ['k1', 'k2'], headers: { Authorization: 'Bearer x', 'x-other': 'fine' } }],
    certificates: [{ keyFile: '/etc/tls/key.pem', certFile: '/etc/tls/cert.pem' }],
    state: { redis: { url: 'redis://u:pw@h:1' } },
    fn: () => 1,
  });
  const text = JSON.stringify(out);
  const at = (...path: Array<string | number>): unknown => path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], out);
  for (const secret of ['T0KEN', 'PRIVATE KEY', 'cs"', 'k1', 'Bearer x', ':pw@']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
  assert.equal(at('admin', 'address'), '127.0.0.1:9901');
  assert.equal(at('admin', 'token'), REDACTED);
  assert.equal(at('upstreams', 'app', 'tls', 'key'), REDACTED);
  assert.match(at('upstreams', 'app', 'tls', 'cert') as string, /^\[PEM, \d+ bytes\]$/);
  assert.equal(at('policies', 0, 'apiKeys'), REDACTED);
  assert.equal(at('policies', 0, 'headers', 'x-other'), 'fine');
  assert.equal(at('certificates', 0, 'keyFile'), '/etc/tls/key.pem');
  assert.equal(at('fn'), undefined);
});
