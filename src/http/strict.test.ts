import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseForwardTarget } from './strict.ts';

test('parseForwardTarget: the forms a forward listener takes, and what it refuses (EDGE-CASES 9, 10)', () => {
  const cases: Array<[string, string, string, ReturnType<typeof parseForwardTarget>]> = [
    ['GET', 'http://Example.COM:8080/a/b?x=1', 'other', { form: 'absolute', authority: 'example.com:8080', path: '/a/b', query: '?x=1' }],
    ['GET', 'http://example.com', 'example.com', { form: 'absolute', authority: 'example.com', path: '/', query: '' }],
    ['GET', 'http://example.com?q', '', { form: 'absolute', authority: 'example.com', path: '/', query: '?q' }],
    ['GET', 'https://example.com/', '', { form: 'absolute-https', authority: 'example.com', path: '/', query: '' }],
    ['GET', '/proxy.pac', 'proxy:3128', { form: 'origin', authority: undefined, path: '/proxy.pac', query: '' }],
    ['CONNECT', 'example.com:443', 'example.com:443', { form: 'authority', authority: 'example.com:443', path: '', query: '' }],
    ['CONNECT', '[::1]:8443', '', { form: 'authority', authority: '[::1]:8443', path: '', query: '' }],
    ['CONNECT', '', 'h2.example:443', { form: 'authority', authority: 'h2.example:443', path: '', query: '' }],
    ['CONNECT', '/', 'x', 'INVALID_TARGET'],
    ['CONNECT', 'example.com', 'x', 'INVALID_TARGET'],
    ['CONNECT', 'example.com:0', 'x', 'INVALID_TARGET'],
    ['CONNECT', 'example.com:00', 'x', 'INVALID_TARGET'],
    ['GET', 'http://example.com:0/', '', 'INVALID_HOST'],
    ['GET', 'http://example.com:/', '', 'INVALID_HOST'],
    ['GET', 'http://[::1]:8080/', '', { form: 'absolute', authority: '[::1]:8080', path: '/', query: '' }],
    ['CONNECT', 'example.com:70000', 'x', 'INVALID_TARGET'],
    ['CONNECT', 'http://example.com:443', 'x', 'INVALID_TARGET'],
    ['GET', 'http://user:pw@example.com/', '', 'INVALID_HOST'],
    ['GET', 'http:///path', '', 'INVALID_HOST'],
    ['GET', 'http://example.com:99999/', '', 'INVALID_HOST'],
    ['GET', 'http://example.com/#frag', '', 'INVALID_TARGET'],
    ['GET', 'ftp://example.com/', '', 'INVALID_TARGET'],
    ['OPTIONS', '*', '', 'INVALID_TARGET'],
  ];
  for (const [method, url, authority, want] of cases) assert.deepEqual(parseForwardTarget(method, url, authority), want, `${method} ${url}`);
});
