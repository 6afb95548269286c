/**
 * MurmurHash3, x86 32-bit variant (Austin Appleby, public domain algorithm), over the UTF-8 bytes of
 * a string: the key hash of the hashing balancers (ip-hash, consistent-hash) and the hash of endpoint
 * ids when building their rings and Maglev tables. Written here rather than taken from node:crypto
 * because it runs once per request on the hot path: no allocation, no Buffer, 32-bit integer
 * arithmetic only (`Math.imul`).
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
      bytes = (0xc0 | (c >> 6)) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else {
      let d = 0;
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < n && (d = key.charCodeAt(i + 1)) >= 0xdc00 && d < 0xe000) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        bytes =
          (0xf0 | (cp >> 18)) |
          ((0x80 | ((cp >> 12) & 0x3f)) << 8) |
          ((0x80 | ((cp >> 6) & 0x3f)) << 16) |
          ((0x80 | (cp & 0x3f)) << 24);
        count = 4;
      } else {
        if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // lone surrogate
        bytes = (0xe0 | (c >> 12)) | ((0x80 | ((c >> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
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
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
