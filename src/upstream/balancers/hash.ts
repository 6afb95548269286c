/**
 * MurmurHash3, x86 32-bit variant (Austin Appleby, public domain algorithm), over the UTF-8 bytes of
 * a string: the key hash of the hashing balancers (ip-hash, consistent-hash) and the hash of endpoint
 * ids when building their rings and Maglev tables. Written here rather than taken from node:crypto
 * because it runs once per request on the hot path: no allocation, no Buffer, 32-bit integer
 * arithmetic only (`Math.imul`), four characters at a time for ASCII keys.
 *
 * The string is encoded to UTF-8 on the fly (lone surrogates as U+FFFD, as TextEncoder does), so
 * the result equals MurmurHash3_x86_32 of `Buffer.from(key)` in any other implementation.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/**
 * 32-bit MurmurHash3 of `key`'s UTF-8 bytes with `seed`, as an unsigned integer (0 … 2^32-1).
 * Different seeds give independent hash functions of the same key (Maglev's offset and skip,
 * ring replicas).
 */
export function hash32(key: string, seed = 0): number {
  return murmur3(key, seed) >>> 0;
}

/**
 * The top 31 bits of hash32 (0 … 2^31-1): what the hash tables use, because V8 keeps integers
 * below 2^31 unboxed (Smi) when they cross a function call, and a 32-bit unsigned hash would be
 * allocated as a heap number on every request.
 */
export function hash31(key: string, seed = 0): number {
  return murmur3(key, seed) >>> 1;
}

/** MurmurHash3_x86_32 as a signed 32-bit integer (so that returning it never allocates). */
function murmur3(key: string, seed: number): number {
  // Fast path: ASCII keys (addresses, ids, most header values), four characters per block.
  let h = seed | 0;
  const n = key.length;
  const blocks = n & ~3;
  let i = 0;
  for (; i < blocks; i += 4) {
    const c0 = key.charCodeAt(i);
    const c1 = key.charCodeAt(i + 1);
    const c2 = key.charCodeAt(i + 2);
    const c3 = key.charCodeAt(i + 3);
    if ((c0 | c1 | c2 | c3) >= 0x80) return murmur3Utf8(key, seed);
    let k = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = 0;
    for (let shift = 0; i < n; i++, shift += 8) {
      const c = key.charCodeAt(i);
      if (c >= 0x80) return murmur3Utf8(key, seed);
      k |= c << shift;
    }
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  return finish(h, n);
}

/** The same over any string, encoding UTF-8 on the fly (lone surrogates as U+FFFD). */
function murmur3Utf8(key: string, seed: number): number {
  let h = seed | 0;
  let k = 0; // pending block, little-endian
  let shift = 0; // bits already in k
  let length = 0; // bytes hashed
  const n = key.length;
  for (let i = 0; i < n; i++) {
    let c = key.charCodeAt(i);
    let bytes: number; // up to 4 UTF-8 bytes, first byte lowest
    let count: number;
    if (c < 0x80) {
      bytes = c;
      count = 1;
    } else if (c < 0x800) {
      bytes = 0xc0 | (c >> 6) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else {
      const d = c >= 0xd800 && c < 0xdc00 && i + 1 < n ? key.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d < 0xe000) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        bytes = 0xf0 | (cp >> 18) | ((0x80 | ((cp >> 12) & 0x3f)) << 8) | ((0x80 | ((cp >> 6) & 0x3f)) << 16) | ((0x80 | (cp & 0x3f)) << 24);
        count = 4;
      } else {
        if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // lone surrogate
        bytes = 0xe0 | (c >> 12) | ((0x80 | ((c >> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
        count = 3;
      }
    }
    length += count;
    for (; count > 0; count--) {
      k |= (bytes & 0xff) << shift;
      bytes >>>= 8;
      shift += 8;
      if (shift === 32) {
        k = Math.imul(k, C1);
        k = (k << 15) | (k >>> 17);
        k = Math.imul(k, C2);
        h ^= k;
        h = (h << 13) | (h >>> 19);
        h = (Math.imul(h, 5) + 0xe6546b64) | 0;
        k = 0;
        shift = 0;
      }
    }
  }
  if (shift > 0) {
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  return finish(h, length);
}

/** Length and final avalanche (fmix32). */
function finish(h: number, length: number): number {
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
