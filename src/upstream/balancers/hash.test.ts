import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hash31, hash32 } from './hash.ts';

const SEED = 0x9747b28c;

test('hash32 matches published MurmurHash3_x86_32 test vectors', () => {
  const vectors: [string, number, number][] = [
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['\0\0\0\0', 0, 0x2362f9de],
    ['a', SEED, 0x7fa09ea6],
    ['aa', SEED, 0x5d211726],
    ['aaa', SEED, 0x283e0130],
    ['aaaa', SEED, 0x5a97808a],
    ['abc', SEED, 0xc84a62dd],
    ['abcd', SEED, 0xf0478627],
    ['Hello, world!', SEED, 0x24884cba],
    ['ππππππππ', SEED, 0xd58063c1], // 2-byte UTF-8
    ['The quick brown fox jumps over the lazy dog', SEED, 0x2fa826cd],
    ['hello', 0, 0x248bfa47],
  ];
  for (const [key, seed, expected] of vectors) assert.equal(hash32(key, seed), expected, JSON.stringify(key));
});

/** Straightforward MurmurHash3_x86_32 over a byte array, to check the streaming UTF-8 encoder. */
function reference(bytes: Uint8Array, seed: number): number {
  let h = seed | 0;
  const blocks = bytes.length >> 2;
  const mix = (block: number): number => {
    const k = Math.imul(block, 0xcc9e2d51);
    return Math.imul((k << 15) | (k >>> 17), 0x1b873593);
  };
  for (let b = 0; b < blocks; b++) {
    const i = b * 4;
    h ^= mix(bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let i = bytes.length - 1; i >= blocks * 4; i--) k = (k << 8) | bytes[i];
  if (bytes.length & 3) h ^= mix(k);
  h ^= bytes.length;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

test('hash32 hashes the UTF-8 encoding (multi-byte, astral and lone surrogates)', () => {
  const keys = ['é', 'ü-x', 'abcé', 'abcdefgé', 'abcdefgh€', 'abcd😀', '日本語のキー', '😀', 'a😀bc', '\ud800', 'x\udc00y', '\ud83d', '2001:db8::1', '10.0.0.1'];
  for (const key of keys) {
    for (const seed of [0, 1, SEED]) {
      assert.equal(hash32(key, seed), reference(new TextEncoder().encode(key), seed), JSON.stringify(key));
    }
  }
});

test('hash31 is the top 31 bits of hash32', () => {
  for (const key of ['', 'a', '10.0.0.1', 'é', 'The quick brown fox']) {
    for (const seed of [0, 5]) assert.equal(hash31(key, seed), hash32(key, seed) >>> 1);
  }
});

test('hash32 is deterministic and seeds give different functions', () => {
  assert.equal(hash32('10.1.2.3'), hash32('10.1.2.3'));
  assert.notEqual(hash32('endpoint-a', 1), hash32('endpoint-a', 2));
  assert.notEqual(hash32('10.1.2.3'), hash32('10.1.2.4'));
});

test('hash32 spreads similar keys evenly over buckets', () => {
  const keys = 100_000;
  for (const [name, key] of [
    ['sequential', (i: number) => `key-${i}`],
    ['ipv4', (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`],
  ] as const) {
    for (const seed of [0, 7]) {
      // 16 buckets: every bucket within 5% of even (one bucket's standard deviation is 1.2%).
      // 256 buckets: chi-square below the 0.1% critical value for 255 degrees of freedom (330.5).
      for (const buckets of [16, 256]) {
        const expected = keys / buckets;
        const low = new Array<number>(buckets).fill(0); // low bits (h % n, what Maglev uses)
        const high = new Array<number>(buckets).fill(0); // high bits (position on a ring)
        for (let i = 0; i < keys; i++) {
          const h = hash32(key(i), seed);
          low[h % buckets]++;
          high[Math.floor((h / 2 ** 32) * buckets)]++;
        }
        for (const counts of [low, high]) {
          const label = `${name} seed ${seed}, ${buckets} buckets`;
          if (buckets === 16) {
            const worst = Math.max(...counts.map((c) => Math.abs(c - expected))) / expected;
            assert.ok(worst < 0.05, `${label}: worst bucket off by ${(worst * 100).toFixed(1)}%`);
          } else {
            const chi2 = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
            assert.ok(chi2 < 330.5, `${label}: chi-square ${chi2.toFixed(1)}`);
          }
        }
      }
    }
  }
});
