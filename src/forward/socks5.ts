/**
 * The SOCKS5 wire format (RFC 1928) and its username/password sub-negotiation (RFC 1929): pure
 * functions from bytes to messages and back, no sockets. Each parser takes what has arrived so far
 * and answers `undefined` while the message is incomplete (TCP may deliver it a byte at a time), a
 * `SocksFault` when the bytes can never be a valid message, or the message and its length.
 *
 * Strict: every version byte, reserved byte, length and address type is checked; nothing is
 * guessed. Field sizes are bounded by the format itself (a length byte), so no message exceeds
 * 4 + 255 + 255 bytes and a parser never buffers more.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const SOCKS_VERSION = 0x05;
/** RFC 1929's sub-negotiation version. */
export const AUTH_VERSION = 0x01;

/** Authentication methods (RFC 1928 §3). */
export const METHOD_NONE = 0x00;
export const METHOD_PASSWORD = 0x02;
export const METHOD_UNACCEPTABLE = 0xff;

/** Commands (RFC 1928 §4). */
export const CMD_CONNECT = 0x01;
export const CMD_BIND = 0x02;
export const CMD_UDP_ASSOCIATE = 0x03;

/** Reply codes (RFC 1928 §6). */
export const REP = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

const ATYP_IPV4 = 0x01;
const ATYP_DOMAIN = 0x03;
const ATYP_IPV6 = 0x04;

/** Why bytes can never become a valid message; `reply` is the REP code to answer with, when the format has one. */
export interface SocksFault {
  readonly fault: string;
  readonly reply?: number;
}

/** A complete message and how many bytes it took. */
export type Parsed<T> = { readonly value: T; readonly length: number } | SocksFault | undefined;

export function isFault<T>(p: Parsed<T>): p is SocksFault {
  return p !== undefined && 'fault' in p;
}

/** A destination as a request or UDP header names it: a name (lower-cased, no trailing dot) or an IP literal. */
export interface SocksAddress {
  readonly host: string;
  readonly port: number;
}

/** The method-selection message (RFC 1928 §3): the methods the client offers. */
export function parseGreeting(b: Buffer): Parsed<readonly number[]> {
  if (b.length < 1) return undefined;
  if (b[0] !== SOCKS_VERSION) return { fault: `version ${b[0]} (not SOCKS5)` };
  if (b.length < 2) return undefined;
  const n = b[1];
  if (n === 0) return { fault: 'a greeting that offers no method' };
  if (b.length < 2 + n) return undefined;
  return { value: [...b.subarray(2, 2 + n)], length: 2 + n };
}

/** RFC 1929's username/password request. The fields are read as UTF-8 (as Basic credentials are). */
export function parseCredentials(b: Buffer): Parsed<{ user: string; password: string }> {
  if (b.length < 1) return undefined;
  if (b[0] !== AUTH_VERSION) return { fault: `username/password version ${b[0]} (not 1)` };
  if (b.length < 2) return undefined;
  const ulen = b[1];
  if (ulen === 0) return { fault: 'an empty username' };
  if (b.length < 3 + ulen) return undefined;
  const plen = b[2 + ulen];
  const end = 3 + ulen + plen;
  if (b.length < end) return undefined;
  return { value: { user: b.toString('utf8', 2, 2 + ulen), password: b.toString('utf8', 3 + ulen, end) }, length: end };
}

/** A request (RFC 1928 §4): the command and its destination. */
export interface SocksRequest {
  readonly command: number;
  readonly destination: SocksAddress;
}

/** A request: VER CMD RSV ATYP DST.ADDR DST.PORT. An unknown address type is a fault with REP 0x08. */
export function parseRequest(b: Buffer): Parsed<SocksRequest> {
  if (b.length < 1) return undefined;
  if (b[0] !== SOCKS_VERSION) return { fault: `request version ${b[0]} (not SOCKS5)`, reply: REP.generalFailure };
  if (b.length < 3) return undefined;
  if (b[2] !== 0x00) return { fault: 'a non-zero reserved byte', reply: REP.generalFailure };
  const address = parseAddress(b, 3);
  if (address === undefined || isFault(address)) return address;
  return { value: { command: b[1], destination: address.value }, length: address.length };
}

/** Hosts a domain-name address may spell: names, and IP literals written as text (IPv6 without brackets). */
const HOST_TEXT = /^[a-z0-9_][a-z0-9_.-]*$|^[0-9a-f:.]+$/;

/** ATYP DST.ADDR DST.PORT from `at`; `length` counts from the buffer's start. */
function parseAddress(b: Buffer, at: number): Parsed<SocksAddress> {
  if (b.length < at + 1) return undefined;
  const type = b[at];
  let host: string;
  let end: number;
  if (type === ATYP_IPV4) {
    end = at + 5;
    if (b.length < end + 2) return undefined;
    host = `${b[at + 1]}.${b[at + 2]}.${b[at + 3]}.${b[at + 4]}`;
  } else if (type === ATYP_IPV6) {
    end = at + 17;
    if (b.length < end + 2) return undefined;
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + 1 + 2 * i).toString(16));
    // RFC 5952 §5: an IPv4-mapped address keeps its IPv4 part dotted.
    host = groups.slice(0, 6).join(':') === '0:0:0:0:0:ffff' ? `::ffff:${b[at + 13]}.${b[at + 14]}.${b[at + 15]}.${b[at + 16]}` : compressIPv6(groups);
  } else if (type === ATYP_DOMAIN) {
    if (b.length < at + 2) return undefined;
    const n = b[at + 1];
    if (n === 0) return { fault: 'an empty domain name', reply: REP.hostUnreachable };
    end = at + 2 + n;
    if (b.length < end + 2) return undefined;
    host = b.toString('latin1', at + 2, end).toLowerCase();
    if (host.endsWith('.')) host = host.slice(0, -1);
    if (!HOST_TEXT.test(host) || host.includes('..')) return { fault: 'a domain name with characters no host name has', reply: REP.hostUnreachable };
  } else return { fault: `address type ${type}`, reply: REP.addressTypeNotSupported };
  return { value: { host, port: b.readUInt16BE(end) }, length: end + 2 };
}

/** RFC 5952 text of eight hex groups: the longest run of two or more zero groups as `::`. */
function compressIPv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** ATYP ADDR PORT for an IP address (IPv4-mapped IPv6 sent as IPv4); a name is sent as a domain. */
export function encodeAddress(host: string, port: number): Buffer {
  const plain = host.startsWith('::ffff:') && isIPv4(host.slice(7)) ? host.slice(7) : host;
  let out: Buffer;
  if (isIPv4(plain)) {
    out = Buffer.alloc(7);
    out[0] = ATYP_IPV4;
    const parts = plain.split('.');
    for (let i = 0; i < 4; i++) out[1 + i] = Number(parts[i]);
  } else if (isIPv6(plain)) {
    out = Buffer.alloc(19);
    out[0] = ATYP_IPV6;
    const [head, tail] = plain.includes('::') ? plain.split('::') : [plain, undefined];
    const left = head === '' ? [] : head.split(':');
    const right = tail === undefined || tail === '' ? [] : tail.split(':');
    const all = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
    for (let i = 0; i < 8; i++) out.writeUInt16BE(Number.parseInt(all[i], 16), 1 + 2 * i);
  } else {
    const name = Buffer.from(plain, 'latin1');
    out = Buffer.alloc(4 + name.length);
    out[0] = ATYP_DOMAIN;
    out[1] = name.length;
    name.copy(out, 2);
  }
  out.writeUInt16BE(port, out.length - 2);
  return out;
}

/** A reply (RFC 1928 §6): VER REP RSV and the bound address (0.0.0.0:0 when there is none). */
export function encodeReply(rep: number, bound: SocksAddress = { host: '0.0.0.0', port: 0 }): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, rep, 0x00]), encodeAddress(bound.host, bound.port)]);
}

/** A UDP datagram's header (RFC 1928 §7): the fragment number, the destination, where the data starts. */
export interface UdpHeader {
  readonly frag: number;
  readonly destination: SocksAddress;
  readonly dataOffset: number;
}

/** The header of a client's UDP datagram; a fault for one that is malformed or incomplete (a datagram never grows). */
export function parseUdpHeader(b: Buffer): UdpHeader | SocksFault {
  if (b.length < 4) return { fault: 'a datagram shorter than its header' };
  if (b[0] !== 0 || b[1] !== 0) return { fault: 'non-zero reserved bytes' };
  const address = parseAddress(b, 3);
  if (address === undefined) return { fault: 'a datagram shorter than its header' };
  if (isFault(address)) return address;
  return { frag: b[2], destination: address.value, dataOffset: address.length };
}

/** The header a reply datagram from `source` gets before its data. */
export function encodeUdpHeader(source: SocksAddress): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0]), encodeAddress(source.host, source.port)]);
}
