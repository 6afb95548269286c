// Micro-benchmark of the ip-filter lookup (src/util/address-ranges.ts): what one request pays to
// parse its client address and binary-search a list, for 10 and 100,000 random CIDRs, IPv4 and
// IPv6; node:net's BlockList (used by src/util/cidr.ts; a scan of its rules on Node 20, constant
// time on Node 24.21) beside it for scale.
// Not a test: no assertions, numbers vary with the machine.
// Usage: node bench/ip-ranges.ts [--seconds=0.5]   prints one table on stdout.
import { BlockList } from 'node:net';
import { AddressRanges, parseAddressRange } from '../src/util/address-ranges.ts';
import { ParsedAddress } from '../src/util/ip-address.ts';

const seconds = Number(/^--seconds=(.+)$/.exec(process.argv[2] ?? '')?.[1] ?? 0.5);

let seed = 1;
/** Deterministic (mulberry32), so runs compare. */
function rand(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
const v4 = (): string => [0, 0, 0, 0].map(() => Math.floor(rand() * 256)).join('.');
const v6 = (): string => `2001:db8:${Array.from({ length: 6 }, () => Math.floor(rand() * 0x10000).toString(16)).join(':')}`;
/** A flat copy, as a socket's remoteAddress is (built-up strings are ropes until first read). */
const flat = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');

function cidrs(n: number, family: 4 | 6): string[] {
  return Array.from({ length: n }, () => (family === 4 ? `${v4()}/${16 + Math.floor(rand() * 17)}` : `${v6()}/${48 + Math.floor(rand() * 81)}`));
}

/** ns per call of `lookup` over `addresses` in turn, after a warm-up; `sink` keeps the JIT honest. */
function measure(addresses: string[], lookup: (a: string) => boolean): { ns: number; hits: number } {
  let hits = 0;
  const warm = performance.now() + seconds * 200;
  for (let i = 0; performance.now() < warm; i++) if (lookup(addresses[i % addresses.length])) hits++;
  let calls = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < addresses.length; i++) if (lookup(addresses[i])) hits++;
    calls += addresses.length;
  }
  return { ns: ((performance.now() - start) * 1e6) / calls, hits };
}

const rows: string[][] = [['family', 'CIDRs', 'build ms', 'ranges', 'ranges ns/lookup', 'BlockList ns/lookup']];
for (const family of [4, 6] as const) {
  const addresses = Array.from({ length: 4096 }, () => flat(family === 4 ? v4() : v6()));
  for (const n of [10, 100_000]) {
    const texts = cidrs(n, family);
    const t0 = performance.now();
    const set = new AddressRanges(texts.map((t) => parseAddressRange(t)!));
    const buildMs = performance.now() - t0;
    const parsed = new ParsedAddress();
    const ranges = measure(addresses, (a) => parsed.parse(a) && set.includes(parsed));
    // Fewer addresses at 100,000 rules, in case this Node's BlockList scans them (Node 20 does).
    const list = new BlockList();
    for (const t of texts) {
      const [address, prefix] = t.split('/');
      list.addSubnet(address, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    }
    const type = family === 4 ? 'ipv4' : 'ipv6';
    const blockList = measure(n > 1000 ? addresses.slice(0, 64) : addresses, (a) => list.check(a, type));
    rows.push([`IPv${family}`, n.toLocaleString('en'), buildMs.toFixed(1), String(set.size), ranges.ns.toFixed(1), blockList.ns.toFixed(1)]);
  }
}

const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
for (const r of rows) console.log(r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  '));
console.log(`(node ${process.version}, ${seconds}s per cell; lookup = parse the address string + binary search)`);
