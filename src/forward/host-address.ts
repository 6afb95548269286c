/**
 * What a destination host written by a client is: an IP address (in any spelling a resolver or a
 * browser would accept), a DNS name, or neither. CONNECT authorities and SOCKS hosts arrive raw, so
 * `0177.0.0.1`, `0x7f000001`, `2130706433` and `127.1` must be read as the 127.0.0.1 they spell
 * before any check, or a deny on 127/8 is bypassed (EDGE-CASES 34).
 *
 * The IPv4 reading is the WHATWG URL Standard's IPv4 parser (the BSD `inet_aton` rules): one to four
 * dot-separated parts, each decimal, octal (a leading `0`) or hex (`0x`); all but the last at most
 * 255, the last filling the remaining bytes. As in WHATWG's "ends in a number" rule, a host whose
 * last label is numeric must be such an address: `1.2.3.4.5` or `example.123` is refused, not
 * resolved. IPv6 is RFC 4291 text (util/ip-address.ts), brackets removed; a zone (`%eth0`) is refused.
 */
import { isHostName } from '../util/host.ts';
import { ParsedAddress } from '../util/ip-address.ts';

/** The host read: `address` is canonical text (IPv4 dotted quad, IPv6 RFC 5952; IPv4-mapped IPv6 as IPv4). */
export type HostReading =
  | { readonly kind: 'address'; readonly address: string }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'invalid'; readonly why: string };

const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
/** Scratch for IPv6 literals (used synchronously only). */
const parsed = new ParsedAddress();

/**
 * Readings of the hosts asked about lately, so that a busy destination is read once, not per
 * request (lower-casing, the IPv4 spellings, the formatted address). Per worker: it
 * holds the results of a pure function, so nothing needs sharing. At most READINGS_MAX hosts of at
 * most 255 characters (a DNS name has 253): about 1 MB at worst; cleared when full.
 */
const readings = new Map<string, HostReading>();
const READINGS_MAX = 4096;

/**
 * Reads a destination host as a way in received it: lower-cases it, removes IPv6 brackets and one
 * trailing dot. The same raw text gives the same (frozen) reading.
 */
export function readHost(raw: string): HostReading {
  let reading = readings.get(raw);
  if (reading === undefined) {
    reading = Object.freeze(read(raw));
    if (raw.length <= 255) {
      if (readings.size >= READINGS_MAX) readings.clear();
      readings.set(raw, reading);
    }
  }
  return reading;
}

function read(raw: string): HostReading {
  let host = raw;
  if (host.length > 2 && host.charCodeAt(0) === 0x5b && host.charCodeAt(host.length - 1) === 0x5d) host = host.slice(1, -1);
  else if (host.length > 1 && host.charCodeAt(host.length - 1) === DOT) host = host.slice(0, -1);
  host = host.toLowerCase();
  if (host.length === 0) return { kind: 'invalid', why: 'an empty host' };
  if (host.includes(':')) {
    if (host.includes('%')) return { kind: 'invalid', why: 'an IPv6 address with a zone' };
    if (!parsed.parse(host)) return { kind: 'invalid', why: 'neither a name nor an IP address' };
    return { kind: 'address', address: parsed.family === 4 ? formatIPv4(parsed.v4) : formatIPv6(parsed.v6) };
  }
  if (endsInNumber(host)) {
    const v4 = parseLooseIPv4(host);
    return v4 < 0 ? { kind: 'invalid', why: 'a numeric host that is no IPv4 address' } : { kind: 'address', address: formatIPv4(v4) };
  }
  return isHostName(host) ? { kind: 'name', name: host } : { kind: 'invalid', why: 'neither a name nor an IP address' };
}

/** Whether the last label is all digits, or `0x` and hex digits (WHATWG URL "ends in a number"). */
function endsInNumber(host: string): boolean {
  const start = host.lastIndexOf('.') + 1;
  if (start === host.length) return false;
  let all = true;
  for (let i = start; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < ZERO || c > NINE) all = false;
  }
  if (all) return true;
  return host.startsWith('0x', start) && (host.length === start + 2 || hexValue(host, start + 2, host.length) >= 0);
}

/**
 * `text` as a WHATWG/inet_aton IPv4 address → an unsigned 32-bit number, or -1. Accepts `127.1`,
 * `0177.0.0.1`, `0x7f.1`, `2130706433`, `0x7f000001`; refuses empty parts, more than four parts,
 * parts out of range, and octal parts with 8 or 9.
 */
export function parseLooseIPv4(text: string): number {
  const values = [0, 0, 0, 0];
  let n = 0;
  let from = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i < text.length && text.charCodeAt(i) !== DOT) continue;
    if (n === 4) return -1;
    const v = partValue(text, from, i);
    if (v < 0) return -1;
    values[n++] = v;
    from = i + 1;
  }
  for (let p = 0; p < n - 1; p++) if (values[p] > 255) return -1;
  const lastBytes = 5 - n; // the last part fills what the others leave
  if (values[n - 1] >= 256 ** lastBytes) return -1;
  let address = 0;
  for (let p = 0; p < n - 1; p++) address += values[p] * 256 ** (3 - p);
  return address + values[n - 1];
}

/** One part: decimal, `0`-led octal, or `0x` hex (an empty `0x` is 0, as WHATWG reads it); -1 when none. */
function partValue(text: string, from: number, to: number): number {
  if (from === to) return -1;
  if (to - from >= 2 && text.charCodeAt(from) === ZERO && (text.charCodeAt(from + 1) | 0x20) === 0x78) {
    return to - from === 2 ? 0 : hexValue(text, from + 2, to);
  }
  const base = to - from >= 2 && text.charCodeAt(from) === ZERO ? 8 : 10;
  let value = 0;
  for (let i = from; i < to; i++) {
    const d = text.charCodeAt(i) - ZERO;
    if (d < 0 || d >= base) return -1;
    value = value * base + d;
    if (value > 0xffffffff) return -1;
  }
  return value;
}

function hexValue(text: string, from: number, to: number): number {
  if (from === to) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i) | 0x20;
    const d = c >= ZERO && c <= NINE ? c - ZERO : c >= 0x61 && c <= 0x66 ? c - 0x61 + 10 : -1;
    if (d < 0) return -1;
    value = value * 16 + d;
    if (value > 0xffffffff) return -1;
  }
  return value;
}

/** An unsigned 32-bit number → `a.b.c.d`. */
export function formatIPv4(v4: number): string {
  return `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
}

/** Four words → RFC 5952 text: lower case, no leading zeros, the longest run (≥ 2) of zero groups as `::`. */
export function formatIPv6(words: Uint32Array): string {
  const g: number[] = [];
  for (let w = 0; w < 4; w++) g.push(words[w] >>> 16, words[w] & 0xffff);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    g
      .slice(from, to)
      .map((x) => x.toString(16))
      .join(':');
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

/** Canonical text of an address Node or a resolver reported (already an address): IPv4-mapped IPv6 becomes IPv4. */
export function canonicalAddress(text: string): string | undefined {
  if (!parsed.parse(text)) return undefined;
  return parsed.family === 4 ? formatIPv4(parsed.v4) : formatIPv6(parsed.v6);
}
