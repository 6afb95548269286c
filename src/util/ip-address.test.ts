import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { ParsedAddress, parseIPv4, parseIPv6 } from './ip-address.ts';

const v4 = (s: string) => parseIPv4(s, 0, s.length);

test('parseIPv4 reads dotted quads and nothing else', () => {
  const table: Array<[string, number]> = [
    ['0.0.0.0', 0],
    ['10.1.2.3', 0x0a010203],
    ['255.255.255.255', 0xffffffff],
    ['192.168.0.1', 0xc0a80001],
    ['256.0.0.1', -1],
    ['1.2.3', -1],
    ['1.2.3.4.5', -1],
    ['1..2.3', -1],
    ['.1.2.3', -1],
    ['1.2.3.', -1],
    ['010.0.0.1', -1],
    ['1.2.3.00', -1],
    ['1.2.3.4 ', -1],
    ['1.2.3.-4', -1],
    ['0x1.2.3.4', -1],
    ['', -1],
  ];
  for (const [text, want] of table) assert.equal(v4(text), want, text);
});

function words(text: string): number[] | undefined {
  const out = new Uint32Array(4);
  return parseIPv6(text, 0, text.length, out) ? [...out] : undefined;
}

test('parseIPv6 reads RFC 4291 text into four words', () => {
  const table: Array<[string, number[] | undefined]> = [
    ['::', [0, 0, 0, 0]],
    ['::1', [0, 0, 0, 1]],
    ['1::', [0x10000, 0, 0, 0]],
    ['2001:db8::8a2e:370:7334', [0x20010db8, 0, 0x8a2e, 0x03707334]],
    ['2001:DB8:0:0:0:0:0:1', [0x20010db8, 0, 0, 1]],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff]],
    ['::ffff:10.1.2.3', [0, 0, 0xffff, 0x0a010203]],
    ['64:ff9b::192.0.2.1', [0x0064ff9b, 0, 0, 0xc0000201]],
    ['1:2:3:4:5:6:1.2.3.4', [0x10002, 0x30004, 0x50006, 0x01020304]],
    ['1:2:3:4:5:6:7::', [0x10002, 0x30004, 0x50006, 0x70000]],
    ['::2:3:4:5:6:7:8', [0x0002, 0x30004, 0x50006, 0x70008]],
    ['1:2:3:4:5:6:7:8:9', undefined],
    ['1:2:3:4:5:6:7', undefined],
    ['1:2:3:4:5:6:7:8::', undefined],
    ['1:2:3:4::5:6:7:8', undefined],
    ['1::2::3', undefined],
    [':::', undefined],
    [':1::', undefined],
    ['1:', undefined],
    [':', undefined],
    ['12345::', undefined],
    ['g::', undefined],
    ['::1.2.3', undefined],
    ['1:2:3:4:5:6:7:1.2.3.4', undefined],
    ['::1.2.3.4:5', undefined],
    ['fe80::1%eth0', undefined],
    ['', undefined],
  ];
  for (const [text, want] of table) assert.deepEqual(words(text), want, text);
});

test('parseIPv6 agrees with ipaddr.js on random addresses in every compressed form', () => {
  for (let i = 0; i < 2000; i++) {
    const parts = Array.from({ length: 8 }, () => (Math.random() < 0.3 ? 0 : Math.floor(Math.random() * 0x10000)));
    const addr = ipaddr.IPv6.parse(parts.map((p) => p.toString(16)).join(':'));
    const fixed = parts.map((p) => p.toString(16).padStart(4, '0')).join(':');
    for (const text of [addr.toString(), addr.toNormalizedString(), fixed, fixed.toUpperCase()]) {
      const want = [0, 1, 2, 3].map((w) => ((parts[2 * w] << 16) | parts[2 * w + 1]) >>> 0);
      assert.deepEqual(words(text), want, text);
      assert.equal(isIP(text), 6);
    }
  }
});

test('ParsedAddress reads client addresses as Node reports them, mapped ones as IPv4', () => {
  const a = new ParsedAddress();
  const table: Array<[string, 0 | 4 | 6, number?]> = [
    ['10.1.2.3', 4, 0x0a010203],
    ['::ffff:10.1.2.3', 4, 0x0a010203],
    ['::FFFF:a01:203', 4, 0x0a010203],
    ['2001:db8::1', 6],
    ['fe80::1%eth0', 6],
    ['fe80::1%', 0],
    ['::ffff:1.2.3', 0],
    ['example.com', 0],
    ['', 0],
  ];
  for (const [text, family, value] of table) {
    assert.equal(a.parse(text), family !== 0, text);
    assert.equal(a.family, family, text);
    if (value !== undefined) assert.equal(a.v4, value, text);
  }
});

test('ParsedAddress accepts exactly what net.isIP accepts, on the edge cases', () => {
  const a = new ParsedAddress();
  const texts = [
    '010.0.0.1',
    '1.2.3.00',
    '0.0.0.0',
    '::',
    '1::',
    '::1.2.3.4',
    '::01.2.3.4',
    '::1.2.3.04',
    '1:2:3:4:5:6:1.2.3.4',
    '1:2:3:4:5:1.2.3.4',
    '::a:b:c:d:e:1.2.3.4',
    '::a:b:c:d:e:f:1.2.3.4',
    '1:2:3:4:5:6:7::',
    '::2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8::',
    '1::2::3',
    ':::',
    '00001::',
    '01:2::',
    '::ffff:1.2.3',
    'fe80::1%eth0',
    'fe80::1%',
    '1.2.3.4 ',
    ' ::1',
  ];
  for (const text of texts) assert.equal(a.parse(text), isIP(text) !== 0, text);
});
