import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressRanges, parseAddressRange, type AddressRange } from './address-ranges.ts';
import { ParsedAddress } from './ip-address.ts';

function set(...texts: string[]): AddressRanges {
  return new AddressRanges(
    texts.map((t) => {
      const r = parseAddressRange(t);
      assert.ok(r, t);
      return r;
    }),
  );
}

const parsed = new ParsedAddress();
function has(s: AddressRanges, address: string): boolean {
  parsed.parse(address);
  return s.includes(parsed);
}

/** A range as `first-last` text, to compare coalesced sets readably. */
function show(r: AddressRange): string {
  if (r.family === 4) return [r.first, r.last].map((n) => [24, 16, 8, 0].map((b) => (n >>> b) & 255).join('.')).join('-');
  return `${r.first.toString(16)}-${r.last.toString(16)}`;
}

test('parseAddressRange: addresses, CIDRs, mapped forms, and what is refused', () => {
  const table: Array<[string, string | undefined]> = [
    ['10.0.0.0/8', '10.0.0.0-10.255.255.255'],
    ['10.1.2.3/8', '10.0.0.0-10.255.255.255'],
    ['192.0.2.7', '192.0.2.7-192.0.2.7'],
    ['192.0.2.7/32', '192.0.2.7-192.0.2.7'],
    ['0.0.0.0/0', '0.0.0.0-255.255.255.255'],
    ['::ffff:10.0.0.0/104', '10.0.0.0-10.255.255.255'],
    ['::ffff:0:0/96', '0.0.0.0-255.255.255.255'],
    ['::ffff:192.0.2.7', '192.0.2.7-192.0.2.7'],
    ['2001:db8::/32', '20010db8000000000000000000000000-20010db8ffffffffffffffffffffffff'],
    ['::1', '1-1'],
    ['::1/128', '1-1'],
    ['::/0', `0-${'f'.repeat(32)}`],
    ['10.0.0.300/8', undefined],
    ['10.0.0.0/33', undefined],
    ['10.0.0.0/', undefined],
    ['10.0.0.0/08', undefined],
    ['10.0.0.0/+8', undefined],
    ['10/8', undefined],
    ['2001:db8::/129', undefined],
    ['::ffff:10.0.0.0/8', undefined],
    ['fe80::/10%eth0', undefined],
    ['fe80::1%eth0', undefined],
    [' 10.0.0.0/8', undefined],
    ['example.com', undefined],
    ['', undefined],
  ];
  for (const [text, want] of table) {
    const r = parseAddressRange(text);
    assert.equal(r && show(r), want, text);
  }
});

test('overlapping, nested and adjacent ranges coalesce; gaps stay', () => {
  const table: Array<[string[], string[]]> = [
    [['10.0.0.0/8', '10.1.0.0/16'], ['10.0.0.0-10.255.255.255']],
    [['10.1.0.0/16', '10.0.0.0/8', '10.1.2.3'], ['10.0.0.0-10.255.255.255']],
    [['10.0.0.0/9', '10.128.0.0/9'], ['10.0.0.0-10.255.255.255']],
    [['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/23'], ['10.0.0.0-10.0.3.255']],
    [
      ['10.0.0.0/24', '10.0.2.0/24'],
      ['10.0.0.0-10.0.0.255', '10.0.2.0-10.0.2.255'],
    ],
    [['192.0.2.1', '192.0.2.2', '192.0.2.1'], ['192.0.2.1-192.0.2.2']],
    [['0.0.0.0/0', '10.0.0.0/8'], ['0.0.0.0-255.255.255.255']],
    [['255.255.255.255', '255.255.255.254'], ['255.255.255.254-255.255.255.255']],
    [['2001:db8::/33', '2001:db8:8000::/33'], ['20010db8000000000000000000000000-20010db8ffffffffffffffffffffffff']],
    [['::/0', '::1', 'ffff::/16'], [`0-${'f'.repeat(32)}`]],
    [
      ['10.0.0.0/8', '::ffff:10.0.0.0/104', '2001:db8::1'],
      ['10.0.0.0-10.255.255.255', '20010db8000000000000000000000001-20010db8000000000000000000000001'],
    ],
  ];
  for (const [cidrs, want] of table) {
    const s = set(...cidrs);
    assert.deepEqual([...s.ranges()].map(show), want, cidrs.join(' '));
    assert.equal(s.size, want.length);
  }
});

test('lookups: first and last address of each range, the neighbours outside, both families', () => {
  const s = set('10.0.0.0/8', '192.168.1.0/24', '203.0.113.9', '2001:db8::/32', '::1', 'ffff::/16');
  const table: Array<[string, boolean]> = [
    ['9.255.255.255', false],
    ['10.0.0.0', true],
    ['10.255.255.255', true],
    ['11.0.0.0', false],
    ['192.168.0.255', false],
    ['192.168.1.0', true],
    ['192.168.1.255', true],
    ['192.168.2.0', false],
    ['203.0.113.8', false],
    ['203.0.113.9', true],
    ['203.0.113.10', false],
    ['0.0.0.0', false],
    ['255.255.255.255', false],
    ['::ffff:10.1.2.3', true],
    ['::ffff:11.1.2.3', false],
    ['2001:db7:ffff:ffff:ffff:ffff:ffff:ffff', false],
    ['2001:db8::', true],
    ['2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['2001:db9::', false],
    ['::', false],
    ['::1', true],
    ['::2', false],
    ['ffff::', true],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true],
    ['fffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff', false],
    ['not an address', false],
  ];
  for (const [address, want] of table) assert.equal(has(s, address), want, address);
});

test('/0 covers its own family only; /32 and /128 cover one address', () => {
  const all4 = set('0.0.0.0/0');
  assert.equal(has(all4, '0.0.0.0'), true);
  assert.equal(has(all4, '255.255.255.255'), true);
  assert.equal(has(all4, '::ffff:1.2.3.4'), true);
  assert.equal(has(all4, '::1'), false);
  const all6 = set('::/0');
  assert.equal(has(all6, '::'), true);
  assert.equal(has(all6, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), true);
  assert.equal(has(all6, '10.1.2.3'), false);
  assert.equal(has(all6, '::ffff:10.1.2.3'), false);
  const one = set('10.1.2.3/32', '2001:db8::7/128');
  assert.deepEqual(
    ['10.1.2.2', '10.1.2.3', '10.1.2.4', '2001:db8::6', '2001:db8::7', '2001:db8::8'].map((a) => has(one, a)),
    [false, true, false, false, true, false],
  );
  const empty = new AddressRanges([]);
  assert.equal(empty.size, 0);
  assert.equal(has(empty, '10.1.2.3'), false);
  assert.equal(has(empty, '::1'), false);
});

/** A random CIDR: mostly IPv4 with prefixes from /16 to /32, a quarter IPv6 from /48 to /128 within 2001:db8::/32. */
function randomCidr(rand: () => number): string {
  if (rand() < 0.75) {
    const a = Math.floor(rand() * 2 ** 32);
    return `${[24, 16, 8, 0].map((b) => (a >>> b) & 255).join('.')}/${16 + Math.floor(rand() * 17)}`;
  }
  const groups = Array.from({ length: 6 }, () => Math.floor(rand() * 0x10000).toString(16));
  return `2001:db8:${groups.join(':')}/${48 + Math.floor(rand() * 81)}`;
}

/** Deterministic: a failure reproduces. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function scan4(first: Float64Array, last: Float64Array, x: number): boolean {
  for (let i = 0; i < first.length; i++) if (first[i] <= x && x <= last[i]) return true;
  return false;
}

function scan6(first: string[], last: string[], x: string): boolean {
  for (let i = 0; i < first.length; i++) if (first[i] <= x && x <= last[i]) return true;
  return false;
}

test('100,000 random CIDRs: binary search agrees with a naive scan on 10,000 addresses', () => {
  const rand = mulberry32(42);
  const ranges = Array.from({ length: 100_000 }, () => parseAddressRange(randomCidr(rand))!);
  const s = new AddressRanges(ranges);
  assert.ok(s.size < ranges.length);
  const addresses: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    // Half random, half the edges of a listed range (first, last, and their neighbours).
    const r = ranges[Math.floor(rand() * ranges.length)];
    const pick = Math.floor(rand() * 8);
    if (r.family === 4) {
      const v = pick < 4 ? Math.floor(rand() * 2 ** 32) : [r.first, r.last, r.first - 1, r.last + 1][pick - 4];
      if (v >= 0 && v < 2 ** 32) addresses.push([24, 16, 8, 0].map((b) => (v >>> b) & 255).join('.'));
    } else {
      const v = pick < 4 ? (0x20010db8n << 96n) | (BigInt(Math.floor(rand() * 2 ** 48)) << 48n) : [r.first, r.last, r.first - 1n, r.last + 1n][pick - 4];
      addresses.push(
        v
          .toString(16)
          .padStart(32, '0')
          .replace(/(.{4})(?!$)/g, '$1:'),
      );
    }
  }
  // The naive scan: IPv4 over typed arrays, IPv6 as fixed-width hex strings (which sort as the numbers do).
  const v4 = ranges.filter((r) => r.family === 4);
  const v4First = Float64Array.from(v4, (r) => r.first);
  const v4Last = Float64Array.from(v4, (r) => r.last);
  const hex = (v: bigint) => v.toString(16).padStart(32, '0');
  const v6 = ranges.filter((r) => r.family === 6);
  const v6First = v6.map((r) => hex(r.first));
  const v6Last = v6.map((r) => hex(r.last));
  let hits = 0;
  const p = new ParsedAddress();
  for (const address of addresses) {
    assert.ok(p.parse(address), address);
    const naive = p.family === 4 ? scan4(v4First, v4Last, p.v4) : scan6(v6First, v6Last, [...p.v6].map((w) => w.toString(16).padStart(8, '0')).join(''));
    assert.equal(s.includes(p), naive, address);
    if (naive) hits++;
  }
  // Both outcomes were exercised, plenty of each.
  assert.ok(hits > 2000 && hits < addresses.length - 2000, `hits ${hits}`);
});
