/**
 * IP address parsing by hand, for the hot path: no regex, no ipaddr.js, no allocation. An IPv4
 * address becomes one unsigned 32-bit number; an IPv6 address four 32-bit words, most significant
 * first. IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) read as the IPv4 address they carry, as
 * nginx's access module and Go's `net.IP.To4` treat them.
 *
 * Strict on purpose (the same functions check config ranges): IPv4 is four decimal parts without
 * leading zeros (`010.0.0.1` is not an address, as for `net.isIP`); IPv6 is RFC 4291 section 2.2
 * text, with at most one `::` and an optional dotted IPv4 tail.
 */

const DOT = 0x2e;
const COLON = 0x3a;
const ZERO = 0x30;
const NINE = 0x39;

/** `text[from, to)` as dotted-quad IPv4 → an unsigned 32-bit number, or -1 when it is not one. */
export function parseIPv4(text: string, from: number, to: number): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= ZERO && c <= NINE) {
      if (digits > 0 && part === 0) return -1; // a leading zero
      part = part * 10 + (c - ZERO);
      if (part > 255) return -1;
      digits++;
    } else if (c === DOT) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + part;
}

/** Hex digit values by character code (below 128), -1 for anything else. */
const HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX[ZERO + c] = c;
for (let c = 0; c < 6; c++) HEX[0x41 + c] = HEX[0x61 + c] = 10 + c;

/** The 16-bit groups of the address being parsed (parsing is synchronous, so one buffer serves all). */
const groups = new Uint16Array(8);

/**
 * `text[from, to)` as IPv6 → four words in `out` (most significant first); false when it is not an
 * address (a zone such as `%eth0` included: strip it first). `out` is unchanged after false.
 * One pass over the characters: groups are collected, then the `::` gap is filled with zeros.
 */
export function parseIPv6(text: string, from: number, to: number, out: Uint32Array): boolean {
  let n = 0; // groups read
  let gap = -1; // where `::` stands, as a group index
  let value = 0;
  let digits = 0;
  let i = from;
  if (to - from >= 2 && text.charCodeAt(from) === COLON) {
    if (text.charCodeAt(from + 1) !== COLON) return false;
    gap = 0;
    i += 2;
  }
  for (; i < to; i++) {
    const c = text.charCodeAt(i);
    const h = c < 128 ? HEX[c] : -1;
    if (h >= 0) {
      if (++digits > 4) return false;
      value = (value << 4) | h;
    } else if (c === COLON) {
      if (digits === 0) {
        // A second colon: `::` (a third, or a second `::`, is an error).
        if (gap >= 0 || i === from) return false;
        gap = n;
      } else {
        if (n === 7) return false;
        groups[n++] = value;
        value = 0;
        digits = 0;
      }
    } else if (c === DOT) {
      // A dotted IPv4 tail, from the start of this group: the last two groups.
      const v4 = digits > 0 && n <= 6 ? parseIPv4(text, i - digits, to) : -1;
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      value = v4 & 0xffff;
      digits = 1;
      break;
    } else {
      return false;
    }
  }
  if (digits > 0) groups[n++] = value;
  else if (gap !== n) return false; // a trailing single colon (or nothing at all)
  if (gap < 0 ? n !== 8 : n === 8) return false;
  const zeros = gap < 0 ? 0 : 8 - n;
  for (let w = 0; w < 4; w++) out[w] = ((group(2 * w, gap, zeros) << 16) | group(2 * w + 1, gap, zeros)) >>> 0;
  return true;
}

/** Group `g` of the full address, given where the gap stands and how many zero groups it holds. */
function group(g: number, gap: number, zeros: number): number {
  if (gap < 0 || g < gap) return groups[g];
  return g < gap + zeros ? 0 : groups[g - zeros];
}

/** Whether four words are an IPv4-mapped IPv6 address (`::ffff:0:0/96`); its IPv4 address is `words[3]`. */
export function isMapped(words: Uint32Array): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff;
}

/**
 * A client address parsed for lookups in `AddressRanges`: parse once, look up in several sets.
 * Reusable: `parse` overwrites it, so a filter keeps one and uses it synchronously, never across
 * an await.
 */
export class ParsedAddress {
  /** 4 (IPv4 or IPv4-mapped IPv6), 6, or 0 after a failed parse. */
  family: 0 | 4 | 6 = 0;
  /** The IPv4 address as an unsigned 32-bit number, when family is 4. */
  v4 = 0;
  /** The IPv6 address as four words, most significant first, when family is 6. */
  readonly v6 = new Uint32Array(4);

  /**
   * Reads `text` as Node reports addresses (`10.1.2.3`, `2001:db8::1`, `::ffff:10.1.2.3`,
   * `fe80::1%eth0`: the zone is ignored). Returns false, with family 0, when it is no address.
   */
  parse(text: string): boolean {
    const v4 = parseIPv4(text, 0, text.length);
    if (v4 >= 0) {
      this.family = 4;
      this.v4 = v4;
      return true;
    }
    const zone = text.indexOf('%');
    const end = zone < 0 ? text.length : zone;
    if (end === text.length - 1 || !parseIPv6(text, 0, end, this.v6)) {
      this.family = 0;
      return false;
    }
    if (isMapped(this.v6)) {
      this.family = 4;
      this.v4 = this.v6[3];
    } else {
      this.family = 6;
    }
    return true;
  }
}
