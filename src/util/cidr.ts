/** IP address and CIDR parsing, and a compiled allow list for the hot path (node:net BlockList). */
import { BlockList, isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** `10.0.0.0/8`, `::1`, `192.168.1.1` → a range, or undefined when it is not one. */
export function parseCidr(text: string): Cidr | undefined {
  try {
    if (text.includes('/')) {
      const [addr, prefix] = ipaddr.parseCIDR(text);
      return { address: addr.toString(), prefix, family: addr.kind() };
    }
    if (!ipaddr.isValid(text) || isIP(text) === 0) return undefined;
    const addr = ipaddr.parse(text);
    return { address: addr.toString(), prefix: addr.kind() === 'ipv4' ? 32 : 128, family: addr.kind() };
  } catch {
    return undefined;
  }
}

/** A set of ranges, asked once per request: "is this peer one of ours?". */
export class AddressSet {
  readonly #list = new BlockList();
  readonly empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const text of cidrs) {
      const c = parseCidr(text);
      if (c) this.#list.addSubnet(c.address, c.prefix, c.family);
    }
    this.empty = cidrs.length === 0;
  }

  /** True when `address` (as Node reports a peer, IPv4-mapped forms included) is in the set. */
  has(address: string | undefined): boolean {
    if (this.empty || !address) return false;
    if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) {
      return this.#list.check(address.slice(7), 'ipv4');
    }
    return this.#list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
}
