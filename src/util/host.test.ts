import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostnameOf, portColon } from './host.ts';

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
