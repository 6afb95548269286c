import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalAddress, parseLooseIPv4, readHost } from './host-address.ts';

test('readHost reads every IPv4 spelling as the address it spells (EDGE-CASES 34)', () => {
  const table: Array<[string, string]> = [
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'], // decimal
    ['0177.0.0.1', '127.0.0.1'], // octal
    ['0177.0.0.01', '127.0.0.1'],
    ['0x7f.0.0.1', '127.0.0.1'], // hex
    ['0X7F.0.0.1', '127.0.0.1'],
    ['0x7f000001', '127.0.0.1'],
    ['017700000001', '127.0.0.1'], // octal, one part
    ['127.1', '127.0.0.1'], // short forms
    ['127.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.0.0.1.', '127.0.0.1'], // trailing dot
    ['0', '0.0.0.0'],
    ['0.0.0.0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['169.254.43518', '169.254.169.254'],
    ['2852039166', '169.254.169.254'],
    ['0xa9fea9fe', '169.254.169.254'],
    ['100.64.0.1', '100.64.0.1'],
    ['4294967295', '255.255.255.255'],
  ];
  for (const [host, want] of table) assert.deepEqual(readHost(host), { kind: 'address', address: want }, host);
});

test('readHost reads IPv6 literals, brackets and mapped forms included', () => {
  const table: Array<[string, string]> = [
    ['::1', '::1'],
    ['[::1]', '::1'],
    ['[0:0:0:0:0:0:0:1]', '::1'],
    ['::', '::'],
    ['::ffff:127.0.0.1', '127.0.0.1'], // IPv4-mapped reads as IPv4
    ['::ffff:7f00:1', '127.0.0.1'],
    ['[::FFFF:7F00:1]', '127.0.0.1'],
    ['::127.0.0.1', '::7f00:1'], // IPv4-compatible stays IPv6 (the defaults look inside)
    ['FC00::1', 'fc00::1'],
    ['fe80:0:0:0:0:0:0:1', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fd00:ec2::254', 'fd00:ec2::254'],
  ];
  for (const [host, want] of table) assert.deepEqual(readHost(host), { kind: 'address', address: want }, host);
});

test('readHost: names, and hosts that are neither a name nor an address', () => {
  assert.deepEqual(readHost('Example.COM.'), { kind: 'name', name: 'example.com' });
  assert.deepEqual(readHost('a_b.example'), { kind: 'name', name: 'a_b.example' });
  assert.deepEqual(readHost('xn--bcher-kva.example'), { kind: 'name', name: 'xn--bcher-kva.example' });
  for (const bad of [
    '',
    '.',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.256.0.0',
    '08.0.0.1',
    '0x1g.0.0.1',
    'example.123',
    '4294967296',
    'a..b',
    '-a.example',
    'a-.example',
    'a b',
    'bücher.example',
    '[::1',
    'fe80::1%eth0',
    '::1::2',
    'a:b',
    `${'a'.repeat(64)}.example`,
    'a@b',
  ]) {
    assert.equal(readHost(bad).kind, 'invalid', bad);
  }
});

test('parseLooseIPv4 and canonicalAddress', () => {
  assert.equal(parseLooseIPv4('1.2.3.4'), 0x01020304);
  assert.equal(parseLooseIPv4('1.0x10203'), 0x01010203);
  assert.equal(parseLooseIPv4('1.2.65535'), 0x0102ffff);
  assert.equal(parseLooseIPv4('1.2.65536'), -1);
  assert.equal(parseLooseIPv4('1.2.3.4.'), -1);
  assert.equal(parseLooseIPv4('99999999999999999999'), -1);
  assert.equal(canonicalAddress('::ffff:10.0.0.1'), '10.0.0.1');
  assert.equal(canonicalAddress('2001:DB8::0:1'), '2001:db8::1');
  assert.equal(canonicalAddress('example'), undefined);
});

test('readHost: a host read again gives the same frozen reading, and an over-long one is read each time but the same', () => {
  const first = readHost('0x7F.1');
  assert.deepEqual(first, { kind: 'address', address: '127.0.0.1' });
  assert.equal(readHost('0x7F.1'), first);
  assert.ok(Object.isFrozen(first));
  const long = `${'a.'.repeat(150)}example`;
  assert.deepEqual(readHost(long), { kind: 'invalid', why: 'neither a name nor an IP address' });
  assert.notEqual(readHost(long), readHost(long));
  // More hosts than are kept: every reading is still right.
  for (let i = 0; i < 5000; i++) assert.equal((readHost(`10.0.${i >> 8}.${i & 255}`) as { address: string }).address, `10.0.${i >> 8}.${i & 255}`);
  assert.deepEqual(readHost('0x7F.1'), first);
});
