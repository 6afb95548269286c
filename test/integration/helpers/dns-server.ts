/**
 * A tiny authoritative DNS server over UDP on 127.0.0.1 port 0, for tests that must control what a
 * name resolves to (the forward proxy's `resolver.servers`; DNS rebinding). Answers A and AAAA
 * queries from a function of the query, counts every query, and can stay silent (a timeout) or
 * answer NXDOMAIN/SERVFAIL. RFC 1035 §4: one question per query; the answer echoes it and points
 * at its name; EDNS (an OPT record in the query) is ignored.
 */
import { createSocket, type Socket } from 'node:dgram';
import ipaddr from 'ipaddr.js';

/** One query as the server received it. `n` counts this name and type's queries, from 1. */
export interface DnsQuery {
  readonly name: string;
  readonly type: 'A' | 'AAAA' | number;
  readonly n: number;
}

/**
 * What to answer: addresses (each goes to the query of its family; none of the asked family is an
 * empty NOERROR answer), with their TTL (default 0: resolvers do not cache), or an error code,
 * or `drop` to answer nothing. `undefined` from the function is NXDOMAIN.
 */
export type DnsReply = { readonly addresses: readonly string[]; readonly ttl?: number } | { readonly rcode: 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED' } | 'drop';

export interface DnsServer {
  /** `127.0.0.1:port`, as `resolver.servers` takes it. */
  readonly address: string;
  readonly port: number;
  /** Every query, in arrival order. */
  readonly queries: readonly DnsQuery[];
  /** How many queries for `name` (lower case), of `type` if given. */
  count(name: string, type?: DnsQuery['type']): number;
  close(): Promise<void>;
}

const RCODES = { NXDOMAIN: 3, SERVFAIL: 2, REFUSED: 5 } as const;

/** Starts the server; `answer` is called once per query. */
export async function startDnsServer(answer: (q: DnsQuery) => DnsReply | undefined): Promise<DnsServer> {
  const socket: Socket = createSocket('udp4');
  const queries: DnsQuery[] = [];
  socket.on('message', (msg, peer) => {
    const q = readQuery(msg, queries);
    if (q === undefined) return;
    queries.push(q.query);
    const reply = answer(q.query);
    if (reply === 'drop') return;
    socket.send(writeReply(msg, q.questionEnd, q.query, reply), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    queries,
    count: (name, type) => queries.filter((q) => q.name === name && (type === undefined || q.type === type)).length,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/**
 * An answer function from a table: each name's list of replies, used one per query of each type in
 * turn (the last one repeats). `sequence({ 'a.test': [{ addresses: ['127.0.0.2'] }, { addresses: ['127.0.0.1'] }] })`.
 */
export function sequence(table: Record<string, readonly DnsReply[]>): (q: DnsQuery) => DnsReply | undefined {
  return (q) => {
    const list = table[q.name];
    return list?.[Math.min(q.n, list.length) - 1];
  };
}

function readQuery(msg: Buffer, seen: readonly DnsQuery[]): { query: DnsQuery; questionEnd: number } | undefined {
  if (msg.length < 17 || (msg[2] & 0x80) !== 0 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at];
    if (len > 63 || at + 1 + len >= msg.length) return undefined;
    labels.push(msg.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  if (at + 5 > msg.length) return undefined;
  const code = msg.readUInt16BE(at + 1);
  const type = code === 1 ? 'A' : code === 28 ? 'AAAA' : code;
  const name = labels.join('.').toLowerCase();
  const n = seen.filter((q) => q.name === name && q.type === type).length + 1;
  return { query: { name, type, n }, questionEnd: at + 5 };
}

function writeReply(msg: Buffer, questionEnd: number, q: DnsQuery, reply: Exclude<DnsReply, 'drop'> | undefined): Buffer {
  const rcode = reply === undefined ? RCODES.NXDOMAIN : 'rcode' in reply ? RCODES[reply.rcode] : 0;
  const records: Buffer[] = [];
  if (reply !== undefined && 'addresses' in reply) {
    for (const text of reply.addresses) {
      const addr = ipaddr.parse(text);
      if ((q.type === 'A') !== (addr.kind() === 'ipv4') || (q.type !== 'A' && q.type !== 'AAAA')) continue;
      const data = Buffer.from(addr.toByteArray());
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the question's name
      rr.writeUInt16BE(q.type === 'A' ? 1 : 28, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(reply.ttl ?? 0, 6);
      rr.writeUInt16BE(data.length, 10);
      records.push(rr, data);
    }
  }
  const head = Buffer.alloc(12);
  msg.copy(head, 0, 0, 2); // id
  head.writeUInt16BE(0x8400 | ((msg[2] & 0x01) << 8) | 0x80 | rcode, 2); // QR, AA, RD copied, RA, rcode
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(records.length / 2, 6);
  return Buffer.concat([head, msg.subarray(12, questionEnd), ...records]);
}
