/**
 * The built-in safe defaults that follow a forward listener's rules (Squid's recommended config,
 * `http_access deny !Safe_ports`, `deny CONNECT !SSL_ports`, `deny to_localhost`, made stricter):
 * ports first, then the address classes a proxy must not reach on a client's behalf (SSRF: the
 * proxy's own loopback, cloud metadata on link-local, private networks), in every IPv6 form that
 * carries an IPv4 address (EDGE-CASES 34). Pure functions over tables built at load: no state.
 */
import type { PortRange } from '../config/types.ts';
import type { ParsedAddress } from '../util/ip-address.ts';

/** An address class the defaults refuse: the refusal's rule (`default:<class>`) and words for its reason. */
export interface AddressClass {
  readonly rule: string;
  readonly what: string;
}

const LOOPBACK: AddressClass = { rule: 'default:loopback', what: 'a loopback address' };
const UNSPECIFIED: AddressClass = { rule: 'default:unspecified', what: 'an unspecified ("this network") address' };
const LINK_LOCAL: AddressClass = { rule: 'default:link-local', what: 'a link-local address (cloud metadata lives there)' };
const PRIVATE: AddressClass = { rule: 'default:private', what: 'a private address' };
const MULTICAST: AddressClass = { rule: 'default:multicast', what: 'a multicast or broadcast address' };
const RESERVED: AddressClass = { rule: 'default:reserved', what: 'a reserved address' };

/** IPv4 ranges (first, last, class), disjoint; a linear scan of a dozen entries beats anything cleverer. */
const V4: ReadonlyArray<readonly [number, number, AddressClass]> = [
  v4('0.0.0.0', 8, UNSPECIFIED), // RFC 791 "this network"; 0.0.0.0 reaches the local host on Linux
  v4('10.0.0.0', 8, PRIVATE), // RFC 1918
  v4('100.64.0.0', 10, PRIVATE), // RFC 6598 shared address space (carrier-grade NAT; Alibaba's metadata 100.100.100.200)
  v4('127.0.0.0', 8, LOOPBACK),
  v4('169.254.0.0', 16, LINK_LOCAL), // RFC 3927; 169.254.169.254 is AWS, GCP and Azure metadata
  v4('172.16.0.0', 12, PRIVATE), // RFC 1918
  v4('192.0.0.0', 24, RESERVED), // RFC 6890 IETF protocol assignments; Oracle Cloud's metadata 192.0.0.192
  v4('192.168.0.0', 16, PRIVATE), // RFC 1918
  v4('198.18.0.0', 15, RESERVED), // RFC 2544 benchmarking, used inside data centres
  v4('224.0.0.0', 4, MULTICAST),
  v4('240.0.0.0', 4, RESERVED), // RFC 1112 future use, 255.255.255.255 broadcast included
];

function v4(text: string, prefix: number, cls: AddressClass): readonly [number, number, AddressClass] {
  const first = text.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  return [first, first + 2 ** (32 - prefix) - 1, cls];
}

/** The class of an IPv4 address (unsigned 32-bit) the defaults refuse, or undefined. */
export function v4Class(address: number): AddressClass | undefined {
  for (const [first, last, cls] of V4) if (address >= first && address <= last) return cls;
  return undefined;
}

/**
 * The class of an address the defaults refuse, or undefined when they let it through. IPv4-mapped
 * IPv6 already reads as IPv4 (ParsedAddress). For other IPv6 addresses, the IPv6 classes, then the
 * IPv4 address embedded by IPv4-compatible (`::a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`,
 * RFC 2765), NAT64 (`64:ff9b::/96`, RFC 6052), 6to4 (`2002:aabb:ccdd::/48`, RFC 3056) and Teredo
 * (`2001:0::/32`, RFC 4380: the client address inverted in the last 32 bits, the server in bits 32-63).
 */
export function addressClass(a: ParsedAddress): AddressClass | undefined {
  if (a.family === 4) return v4Class(a.v4);
  if (a.family !== 6) return RESERVED;
  const [w0, w1, w2, w3] = a.v6;
  if (w0 === 0 && w1 === 0 && w2 === 0) {
    if (w3 === 0) return UNSPECIFIED; // ::
    if (w3 === 1) return LOOPBACK; // ::1
    return v4Class(w3) ?? RESERVED; // IPv4-compatible, deprecated (RFC 4291 §2.5.5.1): never a real destination
  }
  const top = w0 >>> 16;
  if (top >= 0xfe80 && top <= 0xfebf) return LINK_LOCAL; // fe80::/10
  if (top >= 0xfec0 && top <= 0xfeff) return PRIVATE; // fec0::/10, site-local (deprecated)
  if (top >= 0xfc00 && top <= 0xfdff) return PRIVATE; // fc00::/7 unique local (AWS metadata fd00:ec2::254)
  if (top >= 0xff00) return MULTICAST; // ff00::/8
  if (w0 === 0 && w1 === 0 && w2 === 0xffff0000) return v4Class(w3); // ::ffff:0:a.b.c.d
  if (w0 === 0x0064ff9b) {
    if (w1 === 0 && w2 === 0) return v4Class(w3); // 64:ff9b::/96 well-known NAT64 prefix
    if (w1 >>> 16 === 1) return PRIVATE; // 64:ff9b:1::/48 local-use NAT64 (RFC 8215)
  }
  if (w0 === 0x01000000 && w1 === 0) return RESERVED; // 100::/64 discard-only (RFC 6666)
  if (top === 0x2002) return v4Class((((w0 & 0xffff) << 16) | (w1 >>> 16)) >>> 0); // 6to4
  if (w0 === 0x20010000) return v4Class(w1) ?? v4Class(~w3 >>> 0); // Teredo server, then client
  return undefined;
}

/** Whether `port` is in one of `ranges` (a config's handful: a scan). */
export function portIn(ranges: readonly PortRange[], port: number): boolean {
  for (const r of ranges) if (port >= r.from && port <= r.to) return true;
  return false;
}
