import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Reply } from '../filter.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import { httpsLocation, httpsRedirectPolicy } from './index.ts';

const locations: Array<{ host: string; port: number; target: string; want: string }> = [
  { host: 'shop.example', port: 443, target: '/a?b=1', want: 'https://shop.example/a?b=1' },
  { host: 'Shop.Example:80', port: 8443, target: '/', want: 'https://shop.example:8443/' },
  { host: 'shop.example.', port: 443, target: '/x', want: 'https://shop.example/x' },
  { host: '[::1]:8080', port: 443, target: '/x', want: 'https://[::1]/x' },
  { host: '[2001:db8::1]', port: 8443, target: '/x', want: 'https://[2001:db8::1]:8443/x' },
];

for (const c of locations) {
  test(`https-redirect location: ${c.host} → ${c.want}`, () => {
    assert.equal(httpsLocation(c.host, c.port, c.target), c.want);
  });
}

function replyFor(input: object, request: Parameters<typeof fakeSession>[0] = {}): Reply {
  const raw = httpsRedirectPolicy.config.parse(input);
  const reply = httpsRedirectPolicy.create(httpsRedirectPolicy.resolve(raw)).onRequest!(fakeSession(request));
  assert.ok(reply !== undefined && !(reply instanceof Promise));
  return reply;
}

test('https-redirect: 308 to the same host, path and query by default; the status as configured', () => {
  const r = replyFor({}, { request: { authority: 'a.example', path: '/p', query: '?q=1' } });
  assert.equal(r.status, 308);
  assert.deepEqual(r.headers, { location: 'https://a.example/p?q=1', 'content-length': '0' });
  assert.equal(replyFor({ status: 301, port: 8443 }, { request: { authority: 'a.example' } }).headers?.location, 'https://a.example:8443/');
  assert.equal(replyFor({ status: 301 }).status, 301);
});

test('https-redirect: a request without a Host (HTTP/1.0) gets 400, never a Location without a host', () => {
  const r = replyFor({}, { request: { authority: '' } });
  assert.equal(r.status, 400);
  assert.equal(r.headers, undefined);
  assert.equal(r.error?.code, 'INVALID_HOST');
});
