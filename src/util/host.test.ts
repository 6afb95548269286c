import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostnameOf, isHostName, portColon } from './host.ts';

test('a Host value taken apart: port colon and host name', () => {
  const cases: Array<[string, number, string]> = [
    ['Example.COM', -1, 'example.com'],
    ['example.com.:8080', 12, 'example.com'],
    ['[::1]', -1, '[::1]'],
    ['[::1]:443', 5, '[::1]'],
    ['10.0.0.1:80', 8, '10.0.0.1'],
    ['', -1, ''],
  ];
  for (const [host, colon, name] of cases) {
    assert.equal(portColon(host), colon, host);
    assert.equal(hostnameOf(host), name, host);
  }
});

test('isHostName: DNS labels of letters, digits, - and _, 1-63 bytes, 253 in all', () => {
  for (const ok of ['example.com', 'a', 'xn--bcher-kva.example', '_dmarc.example', 'a-b.c', `${'a'.repeat(63)}.example`]) assert.ok(isHostName(ok), ok);
  for (const bad of [
    '',
    '.',
    'a.',
    '.a',
    'a..b',
    '-a',
    'a-',
    'a-.b',
    'A.example',
    'a b',
    'a:b',
    'bücher.example',
    `${'a'.repeat(64)}.example`,
    `${'a.'.repeat(127)}ab`,
  ]) {
    assert.ok(!isHostName(bad), bad);
  }
});
