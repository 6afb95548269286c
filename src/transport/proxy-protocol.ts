/**
 * The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy specifies it
 * (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt): the header a load balancer in front
 * of us writes first on a connection to say whose connection it is. Parsing is strict (anything the
 * spec does not define is invalid) and incremental: give it the bytes received so far and it says
 * whether they are a complete header, can still become one, or cannot. No I/O, no state.
 */
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * What a header says about a connection. `family` uses Go's network names, one per address block
 * the protocol defines; `unknown` means "no addresses: use the connection's own" (v1 `UNKNOWN`,
 * v2 `UNSPEC` or `LOCAL`). Addresses are set for every other family (IPv6 in Node's canonical
 * compressed form, IPv4-mapped IPv6 kept as IPv6; a unix path as sent, `''` when unnamed, `'\0…'`
 * when abstract), ports for the IP families only.
 */
export interface ProxyAddresses {
  family: 'tcp4' | 'tcp6' | 'udp4' | 'udp6' | 'unix' | 'unixgram' | 'unknown';
  sourceAddress?: string;
  sourcePort?: number;
  destinationAddress?: string;
  destinationPort?: number;
}

/** A v2 Type-Length-Value extension (PP2_TYPE_ALPN = 0x01, AUTHORITY = 0x02, SSL = 0x20, …). */
export interface ProxyTlv {
  type: number;
  value: Buffer;
}

/**
 * `incomplete`: the bytes are a valid beginning; call again with more (a v1 header ends within
 * 107 bytes, a v2 one within 16 + 65535, so the caller's buffer is bounded). `invalid`: close the
 * connection; `reason` is for the log. `ok`: the header is the first `headerLength` bytes, the rest
 * belongs to the proxied stream. `tlvs` (copies, in wire order) is set for a v2 PROXY header only.
 */
export type ParseResult =
  | { kind: 'incomplete' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'ok'; version: 1 | 2; command: 'proxy' | 'local'; addresses: ProxyAddresses; headerLength: number; tlvs?: ProxyTlv[] };

type Family = ProxyAddresses['family'];

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V1_MAX = 107;
const V1_PROTOCOLS = ['TCP4', 'TCP6', 'UNKNOWN'];
const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1');
/** The seven family/transport bytes v2 defines (any other is invalid), with their address block sizes. */
const V2_FAMILIES: ReadonlyArray<[byte: number, family: Family, size: number]> = [
  [0x00, 'unknown', 0],
  [0x11, 'tcp4', 12],
  [0x12, 'udp4', 12],
  [0x21, 'tcp6', 36],
  [0x22, 'udp6', 36],
  [0x31, 'unix', 216],
  [0x32, 'unixgram', 216],
];
const V2_BY_BYTE = new Map(V2_FAMILIES.map(([byte, family, size]) => [byte, { family, size }]));
const V2_BY_FAMILY = new Map(V2_FAMILIES.map(([byte, family, size]) => [family, { byte, size }]));
const INCOMPLETE: ParseResult = Object.freeze({ kind: 'incomplete' });
const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const PORT = /^(0|[1-9]\d{0,4})$/;

/**
 * Parses the header at the start of a connection: `buf` is every byte received so far, from the
 * first. Called again with more bytes after each `incomplete`. Pure: never throws, never keeps or
 * changes `buf`, and reads at most 107 bytes (v1) or 16 + 65535 (v2) of it.
 */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (agrees(buf, V2_SIGNATURE)) return parseV2(buf);
  if (agrees(buf, V1_PREFIX)) return parseV1(buf);
  return invalid('not a PROXY protocol header');
}

/**
 * `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (or TCP6, the address canonical so the line stays
 * within 107 bytes); `PROXY UNKNOWN\r\n` for every other family, which v1 cannot carry. Throws
 * RangeError on an address invalid for its family or a port outside 0–65535.
 */
export function encodeProxyV1(a: ProxyAddresses): Buffer {
  const family = a.family;
  if (family !== 'tcp4' && family !== 'tcp6') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const [src, dst] = [a.sourceAddress, a.destinationAddress].map((x) => checkedAddress(x, family));
  const [sport, dport] = [a.sourcePort, a.destinationPort].map(checkedPort);
  return Buffer.from(`PROXY ${family.toUpperCase()} ${src} ${dst} ${sport} ${dport}\r\n`, 'latin1');
}

/**
 * A v2 header: the addresses of `a` (none for `unknown`), then `tlvs` in order. `command: 'local'`
 * (a connection of the proxy's own, e.g. a health check) ignores `a` and carries no block, so it
 * takes no TLVs. Throws RangeError on an address invalid for its family, a port outside
 * 0–65535, a unix path over 108 bytes, or TLVs that do not fit.
 */
export function encodeProxyV2(a: ProxyAddresses, opts: { command?: 'proxy' | 'local'; tlvs?: ProxyTlv[] } = {}): Buffer {
  const head = Buffer.alloc(16);
  V2_SIGNATURE.copy(head);
  if (opts.command === 'local') {
    if (opts.tlvs?.length) throw new RangeError('a LOCAL header carries no TLVs');
    head[12] = 0x20;
    return head;
  }
  const entry = V2_BY_FAMILY.get(a.family);
  if (!entry) throw new RangeError(`unknown family ${String(a.family)}`);
  const block = Buffer.alloc(entry.size);
  if (a.family === 'unix' || a.family === 'unixgram') {
    for (const [i, path] of [a.sourceAddress, a.destinationAddress].entries()) {
      if (Buffer.byteLength(path ?? '') > 108) throw new RangeError(`unix path over 108 bytes: ${path}`);
      block.write(path ?? '', i * 108);
    }
  } else if (entry.size > 0) {
    const width = entry.size === 12 ? 4 : 16;
    const ip = a.family === 'tcp4' || a.family === 'udp4' ? 'tcp4' : 'tcp6';
    block.set(ipaddr.parse(checkedAddress(a.sourceAddress, ip)).toByteArray(), 0);
    block.set(ipaddr.parse(checkedAddress(a.destinationAddress, ip)).toByteArray(), width);
    block.writeUInt16BE(checkedPort(a.sourcePort), 2 * width);
    block.writeUInt16BE(checkedPort(a.destinationPort), 2 * width + 2);
  }
  const parts: Buffer[] = [head, block];
  let length = block.length;
  for (const { type, value } of opts.tlvs ?? []) {
    if (!Number.isInteger(type) || type < 0 || type > 255) throw new RangeError(`TLV type ${type} is not a byte`);
    if (value.length > 0xffff) throw new RangeError(`TLV 0x${type.toString(16)} longer than 65535 bytes`);
    parts.push(Buffer.from([type, value.length >> 8, value.length & 0xff]), value);
    length += 3 + value.length;
  }
  if (length > 0xffff) throw new RangeError(`v2 header block of ${length} bytes exceeds 65535`);
  head[12] = 0x21;
  head[13] = entry.byte;
  head.writeUInt16BE(length, 14);
  return Buffer.concat(parts);
}

function parseV1(buf: Buffer): ParseResult {
  if (buf.length < V1_PREFIX.length) return INCOMPLETE;
  const window = Math.min(buf.length, V1_MAX);
  const lf = buf.subarray(0, window).indexOf(0x0a);
  if (lf === -1 && buf.length >= V1_MAX) return invalid('v1 header: no CRLF within 107 bytes');
  if (lf !== -1 && buf[lf - 1] !== 0x0d) return invalid('v1 header: LF without CR');
  // The line ends at its CR; a CR as the last byte received ends it too, only the LF is missing.
  const cr = lf !== -1 ? lf - 1 : buf[window - 1] === 0x0d ? window - 1 : -1;
  const line = buf.toString('latin1', V1_PREFIX.length, cr === -1 ? window : cr);
  if (!/^[\x20-\x7e]*$/.test(line)) return invalid('v1 header: a byte that is not printable ASCII');
  const fields = line.split(' ');
  const problem = v1Problem(fields, cr !== -1);
  if (problem) return invalid(`v1 header: ${problem}`);
  if (lf === -1) return INCOMPLETE;
  const [proto, src, dst, sport, dport] = fields;
  const family = proto === 'TCP4' ? 'tcp4' : 'tcp6';
  const addresses: ProxyAddresses =
    proto === 'UNKNOWN'
      ? { family: 'unknown' }
      : {
          family,
          sourceAddress: canonical(src, family),
          destinationAddress: canonical(dst, family),
          sourcePort: Number(sport),
          destinationPort: Number(dport),
        };
  return { kind: 'ok', version: 1, command: 'proxy', addresses, headerLength: lf + 1 };
}

/**
 * Why the fields after `PROXY ` are not a valid line, or undefined. Before the line is complete
 * the last field may be cut short and later ones missing, so only what can no longer become valid
 * is rejected. After `UNKNOWN`, anything up to the CRLF is ignored, as the spec requires.
 */
function v1Problem([proto, ...rest]: string[], complete: boolean): string | undefined {
  if (!complete && rest.length === 0) {
    return V1_PROTOCOLS.some((p) => p.startsWith(proto)) ? undefined : `unknown protocol ${JSON.stringify(proto)}`;
  }
  if (proto === 'UNKNOWN') return undefined;
  if (proto !== 'TCP4' && proto !== 'TCP6') return `protocol ${JSON.stringify(proto)} is not TCP4, TCP6 or UNKNOWN`;
  if (rest.length > 4 || (complete && rest.length < 4)) {
    return `${proto} needs source, destination, source port and destination port, each after one space`;
  }
  const family = proto === 'TCP4' ? 'tcp4' : 'tcp6';
  const names = ['source address', 'destination address', 'source port', 'destination port'];
  for (const [i, field] of rest.entries()) {
    const partial = !complete && i === rest.length - 1;
    const ok = i < 2 ? isAddress(field, family, partial) : isPort(field) || (partial && field === '');
    if (!ok) return `bad ${proto} ${names[i]} ${JSON.stringify(field)}`;
  }
  return undefined;
}

function parseV2(buf: Buffer): ParseResult {
  const [verCmd, fam] = [buf[12], buf[13]];
  if (verCmd !== undefined && verCmd >> 4 !== 2) return invalid(`v2 header: version ${verCmd >> 4}, not 2`);
  if (verCmd !== undefined && (verCmd & 0xf) > 1) return invalid(`v2 header: command ${verCmd & 0xf} is not LOCAL or PROXY`);
  const local = verCmd === 0x20; // LOCAL: the spec has the family and the whole block ignored
  const block = V2_BY_BYTE.get(fam);
  if (fam !== undefined && !local && !block) return invalid(`v2 header: family/transport 0x${hex(fam)} is not defined`);
  if (buf.length < 16) return INCOMPLETE;
  const headerLength = 16 + buf.readUInt16BE(14);
  if (block && !local && headerLength < 16 + block.size) {
    return invalid(`v2 header: ${headerLength - 16}-byte block is too short for ${block.family} addresses`);
  }
  if (buf.length < headerLength) return INCOMPLETE;
  if (local) return { kind: 'ok', version: 2, command: 'local', addresses: { family: 'unknown' }, headerLength };
  const { family, size } = block!; // byte 13 was checked above
  const tlvs: ProxyTlv[] = [];
  for (let at = 16 + size; at < headerLength; ) {
    const end = at + 3 + (at + 3 <= headerLength ? buf.readUInt16BE(at + 1) : 0);
    if (end > headerLength) return invalid(`v2 header: TLV 0x${hex(buf[at])} runs past the end of the header`);
    tlvs.push({ type: buf[at], value: Buffer.from(buf.subarray(at + 3, end)) });
    at = end;
  }
  return { kind: 'ok', version: 2, command: 'proxy', addresses: v2Addresses(buf, family), headerLength, tlvs };
}

function v2Addresses(buf: Buffer, family: Family): ProxyAddresses {
  if (family === 'unix' || family === 'unixgram') {
    return { family, sourceAddress: unixPath(buf.subarray(16, 124)), destinationAddress: unixPath(buf.subarray(124, 232)) };
  }
  if (family === 'unknown') return { family };
  const width = family === 'tcp4' || family === 'udp4' ? 4 : 16;
  const address = (at: number): string =>
    width === 4 ? buf.subarray(at, at + 4).join('.') : canonical(Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(at + 2 * i).toString(16)).join(':'), 'tcp6');
  return {
    family,
    sourceAddress: address(16),
    destinationAddress: address(16 + width),
    sourcePort: buf.readUInt16BE(16 + 2 * width),
    destinationPort: buf.readUInt16BE(18 + 2 * width),
  };
}

/** A NUL-padded sun_path: up to its first NUL, or (Linux abstract names, leading NUL) its trailing NULs trimmed. */
function unixPath(bytes: Buffer): string {
  if (bytes[0] !== 0) return bytes.toString('utf8', 0, bytes.includes(0) ? bytes.indexOf(0) : bytes.length);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.toString('utf8', 0, end);
}

/** A full address (or, when `partial`, a beginning of one) in the textual form its family uses. */
function isAddress(text: string, family: 'tcp4' | 'tcp6', partial: boolean): boolean {
  if (family === 'tcp4') {
    if (!partial) return isIPv4(text) && text.split('.').every((o) => OCTET.test(o)); // no leading zeros
    const octets = text.split('.');
    return octets.length <= 4 && octets.every((o, i) => OCTET.test(o) || (o === '' && i === octets.length - 1));
  }
  if (partial) return text.length <= 45 && /^[0-9a-fA-F:.]*$/.test(text);
  return isIPv6(text) && !text.includes('%'); // no zone index: it means nothing to the receiver
}

function isPort(text: string): boolean {
  return PORT.test(text) && Number(text) <= 0xffff;
}

function canonical(text: string, family: 'tcp4' | 'tcp6'): string {
  return family === 'tcp4' ? text : new SocketAddress({ address: text, family: 'ipv6' }).address;
}

function checkedAddress(text: string | undefined, family: 'tcp4' | 'tcp6'): string {
  if (text === undefined || !isAddress(text, family, false)) throw new RangeError(`not a ${family} address: ${text}`);
  return canonical(text, family);
}

function checkedPort(port: number | undefined): number {
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`not a port: ${port}`);
  }
  return port;
}

/** True when `buf` and `prefix` agree on their common length (so either may be the longer). */
function agrees(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.compare(prefix, 0, n, 0, n) === 0;
}

function invalid(reason: string): ParseResult {
  return { kind: 'invalid', reason };
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
