import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitAuthority, viaNames } from './destination.ts';
import { viaValue } from './forward-headers.ts';

test('splitAuthority: host and port of an authority, the default port when it names none', () => {
  const cases: Array<[string, number, { host: string; port: number }]> = [
    ['example.com', 80, { host: 'example.com', port: 80 }],
    ['example.com:8080', 80, { host: 'example.com', port: 8080 }],
    ['example.com.:443', 80, { host: 'example.com', port: 443 }],
    ['127.0.0.1:3128', 80, { host: '127.0.0.1', port: 3128 }],
    ['[::1]:8443', 443, { host: '::1', port: 8443 }],
    ['[::1]', 80, { host: '::1', port: 80 }],
    ['2130706433', 80, { host: '2130706433', port: 80 }],
  ];
  for (const [authority, port, want] of cases) assert.deepEqual(splitAuthority(authority, port), want, authority);
});

test('viaNames: whether one hop of a Via value is our pseudonym', () => {
  const cases: Array<[string | string[] | undefined, boolean]> = [
    [undefined, false],
    ['1.1 switchboard', true],
    ['1.0 fred, 1.1 Switchboard (Switchboard/1)', true],
    [['1.0 fred', 'HTTP/2 switchboard'], true],
    ['1.1 switchboard-2', false],
    ['switchboard', false],
    ['1.1 other, 1.1 edge', false],
  ];
  for (const [via, want] of cases) assert.equal(viaNames(via, 'switchboard'), want, String(via));
});

test('viaValue: the received protocol version, then the pseudonym', () => {
  assert.equal(viaValue('HTTP/1.1', 'edge'), '1.1 edge');
  assert.equal(viaValue('HTTP/1.0', 'edge'), '1.0 edge');
  assert.equal(viaValue('HTTP/2', 'edge'), '2 edge');
});
