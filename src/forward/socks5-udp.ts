/**
 * A SOCKS5 UDP association (RFC 1928 §7): the relay a UDP ASSOCIATE request opens, for as long as
 * the TCP connection that asked for it lives.
 *
 *   client ──[RSV FRAG ATYP DST PORT | data]──► relay (listener's host, port 0)
 *            only from the control connection's peer IP, and from the port the request declared
 *            (or, when it declared 0, the port of the first datagram); FRAG ≠ 0 dropped
 *          ─► guard.check (method UDP, scheme udp; decisions cached per association)
 *          ─► outbound socket (any address, port 0) ──data──► a checked address of the destination
 *   client ◄──[header naming the source | data]── relay ◄── outbound, only from destinations this
 *            association sent to
 *
 * The association ends when its TCP connection closes (or sends FIN), or after
 * forward.tunnelIdleTimeout without a datagram either way (the TCP connection is then closed).
 * State is per association, so per worker: the worker that accepted the TCP connection holds it.
 */
import dgram from 'node:dgram';
import { isIPv6, type Socket } from 'node:net';
import type { ConnectionRecord } from '../observability/access-log.ts';
import type { Consumer } from '../policies/filter.ts';
import { clientAddressOf, plainAddress } from '../transport/connection-info.ts';
import type { Decision } from './destination-guard.ts';
import { encodeReply, encodeUdpHeader, parseUdpHeader, REP, type SocksAddress } from './socks5.ts';
import type { SocksGeneration } from './socks5-generation.ts';

/** Destinations whose decision an association remembers; past it the cache starts over. */
const DECISIONS = 256;
/** Destinations an association accepts replies from; past it the oldest are forgotten. */
const PEERS = 1024;

const ignore = (): void => undefined;

function bind(socket: dgram.Socket, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address, port: 0, exclusive: true }, () => {
      socket.off('error', reject);
      socket.on('error', ignore);
      resolve();
    });
  });
}

/** One association: opened by `open` for a UDP ASSOCIATE request, closed with its control connection. */
export class UdpAssociation {
  /** Payload bytes from the client, and to it. */
  bytesIn = 0;
  bytesOut = 0;
  readonly #gen: SocksGeneration;
  readonly #control: Socket;
  readonly #relay: dgram.Socket;
  readonly #consumer: Consumer | undefined;
  /** The access log's record of the control connection: it shows the first destination and its rule. */
  readonly #record: ConnectionRecord | undefined;
  readonly #clientIp: string;
  /** `#clientIp` as the relay socket sends to it (IPv4-mapped on an IPv6 relay). */
  readonly #clientTo: string;
  /** The client's UDP port: the declared one, or the first datagram's; 0 until known. */
  #clientPort: number;
  readonly #decisions = new Map<string, Promise<Decision>>();
  /** `address|port` of the destinations datagrams went to: the only sources whose datagrams are relayed back. */
  readonly #peers = new Set<string>();
  #out4: Promise<dgram.Socket> | undefined;
  #out6: Promise<dgram.Socket> | undefined;
  #active = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(
    gen: SocksGeneration,
    control: Socket,
    relay: dgram.Socket,
    v6: boolean,
    declared: SocksAddress,
    consumer: Consumer | undefined,
    record: ConnectionRecord | undefined,
  ) {
    this.#record = record;
    this.#gen = gen;
    this.#control = control;
    this.#relay = relay;
    this.#consumer = consumer;
    // The TCP peer's own address: a PROXY header's source cannot send datagrams to this relay.
    this.#clientIp = plainAddress(control.remoteAddress);
    this.#clientTo = v6 && !isIPv6(this.#clientIp) ? `::ffff:${this.#clientIp}` : this.#clientIp;
    this.#clientPort = declared.port;
  }

  /** Binds the relay, answers the request with its address, and relays until `control` closes. Rejects when the relay cannot bind. */
  static async open(
    gen: SocksGeneration,
    control: Socket,
    host: string,
    declared: SocksAddress,
    consumer: Consumer | undefined,
    record: ConnectionRecord | undefined,
  ): Promise<UdpAssociation> {
    const v6 = isIPv6(host);
    const relay = dgram.createSocket(v6 ? 'udp6' : 'udp4');
    await bind(relay, host);
    const a = new UdpAssociation(gen, control, relay, v6, declared, consumer, record);
    gen.associations.add(a);
    control.once('close', () => a.close());
    if (control.destroyed) {
      a.close();
      return a;
    }
    relay.on('message', a.#fromClient);
    // The control connection carries nothing more: whatever comes is read and dropped; its FIN ends the association.
    control.on('data', ignore);
    control.once('end', () => control.destroy());
    control.resume();
    const idle = gen.forward.tunnelIdleTimeout;
    if (idle > 0) a.#timer = setInterval(a.#checkIdle, idle);
    control.write(encodeReply(REP.succeeded, { host: plainAddress(control.localAddress) || host, port: relay.address().port }));
    return a;
  }

  /** Closes the relay and the outbound sockets (the control connection closing calls it). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gen.associations.delete(this);
    clearInterval(this.#timer);
    this.#relay.close();
    void this.#out4?.then((s) => s.close(), ignore);
    void this.#out6?.then((s) => s.close(), ignore);
    this.#control.destroy();
  }

  readonly #checkIdle = (): void => {
    if (this.#active) this.#active = false;
    else this.close();
  };

  readonly #fromClient = (msg: Buffer, from: dgram.RemoteInfo): void => {
    if (plainAddress(from.address) !== this.#clientIp) return;
    if (this.#clientPort !== 0 && from.port !== this.#clientPort) return;
    const header = parseUdpHeader(msg);
    if ('fault' in header || header.frag !== 0) return;
    if (this.#clientPort === 0) this.#clientPort = from.port;
    this.#active = true;
    const { host, port } = header.destination;
    const key = `${host}|${port}`;
    let decision = this.#decisions.get(key);
    if (decision === undefined) {
      if (this.#decisions.size >= DECISIONS) this.#decisions.clear();
      decision = this.#gen.guard.check({
        client: clientAddressOf(this.#control),
        consumer: this.#consumer?.name,
        groups: this.#consumer?.groups ?? [],
        method: 'UDP',
        scheme: 'udp',
        host,
        port,
      });
      this.#decisions.set(key, decision);
      const r = this.#record;
      if (r !== undefined && r.destination === undefined) {
        r.destination = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
        void decision.then((d) => {
          r.rule = d.rule;
        });
      }
    }
    const payload = msg.subarray(header.dataOffset);
    void decision.then((d) => this.#send(d, payload));
  };

  async #send(d: Decision, payload: Buffer): Promise<void> {
    if (!d.allowed || this.#closed) return;
    const address = d.addresses[0];
    const out = await this.#outbound(isIPv6(address));
    if (this.#closed) return;
    const peer = `${address}|${d.port}`;
    if (!this.#peers.has(peer)) {
      if (this.#peers.size >= PEERS) this.#peers.delete(this.#peers.values().next().value!);
      this.#peers.add(peer);
    }
    this.bytesIn += payload.length;
    out.send(payload, d.port, address);
  }

  #outbound(v6: boolean): Promise<dgram.Socket> {
    if (v6) {
      this.#out6 ??= this.#bindOutbound('udp6', '::');
      return this.#out6;
    }
    this.#out4 ??= this.#bindOutbound('udp4', '0.0.0.0');
    return this.#out4;
  }

  async #bindOutbound(type: 'udp4' | 'udp6', any: string): Promise<dgram.Socket> {
    const s = dgram.createSocket(type);
    await bind(s, any);
    s.on('message', this.#fromDestination);
    if (this.#closed) s.close();
    return s;
  }

  readonly #fromDestination = (msg: Buffer, from: dgram.RemoteInfo): void => {
    if (this.#closed) return;
    const source = plainAddress(from.address);
    if (!this.#peers.has(`${source}|${from.port}`)) return;
    this.#active = true;
    this.bytesOut += msg.length;
    this.#relay.send([encodeUdpHeader({ host: source, port: from.port }), msg], this.#clientPort, this.#clientTo);
  };
}
