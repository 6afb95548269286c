/**
 * A `protocol: udp` listener: datagrams from one client address:port make a session held by one
 * endpoint of the listener's upstream (the same balancer modules and health state as HTTP and TCP),
 * with a connected upstream socket of its own, so the endpoint's replies go back to that client.
 *
 *   datagram ─► session of (address, port)? ─► yes: stamp the time, send on its upstream socket
 *            └► no: maxSessions reached ─► dropped (counted)
 *                   Selection.next() (client address as hash key) ─► new session, connected socket
 *   reply on a session socket ─► stamp the time, send to its client from the listener socket
 *
 * Per datagram the work is two map lookups, a timestamp and a byte count: one sweep timer (every sessionIdle/4)
 * ends sessions silent both ways for sessionIdle, so a session ends within 1.25 × sessionIdle. An
 * error on a session socket (an ICMP port unreachable from the endpoint) ends the session at once.
 *
 * Reload: new sessions use the new generation's upstream; sessions of the old one keep their
 * endpoint until they end or the drain timeout passes. Stop closes every session.
 */
import dgram, { type RemoteInfo } from 'node:dgram';
import { isIP, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { bindError } from './bind.ts';
import type { ListenerConfig, UdpListenerConfig } from '../config/types.ts';
import { udpSession } from '../observability/events.ts';
import type { ConnectionRecord } from '../observability/access-log.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import type { Upstream } from '../upstream/upstream.ts';
import type { GenerationTracker } from '../http/listener-generation.ts';
import { Selection } from '../upstream/selection.ts';

/** What a udp listener's new sessions depend on that a reload may change. One per generation. */
export interface UdpGeneration {
  readonly name: string;
  readonly upstream: Upstream;
  readonly generation: GenerationTracker;
  /** ms the sessions of a replaced generation may live on. */
  readonly drainTimeout: number;
  /** The access log's hook for an ended session; undefined when it is off. */
  readonly onSessionEnd: ((c: ConnectionRecord) => void) | undefined;
}

/** What `udpSession` publishes: a session opened, or ended (and why). */
export interface UdpSessionEvent {
  listener: string;
  event: 'open' | 'close';
  /** The client's `address:port`. */
  client: string;
  /** The endpoint's origin, `udp://host:port`. */
  endpoint: string;
  reason?: 'idle' | 'error' | 'drain' | 'stop';
}

/** Datagrams a session holds while its upstream socket connects; more are dropped. */
const PENDING_MAX = 64;

interface Session {
  readonly address: string;
  readonly port: number;
  readonly endpoint: Endpoint;
  readonly rt: UdpGeneration;
  readonly socket: dgram.Socket;
  /** performance.now() of the last datagram either way. */
  last: number;
  /** performance.now() of the first datagram. */
  readonly started: number;
  /** Bytes of the client's datagrams, and of the replies sent to it (for the access log: one add per datagram). */
  bytesIn: number;
  bytesOut: number;
  /** The session socket's error code (ECONNREFUSED: the endpoint's ICMP port unreachable). */
  errorCode: string | undefined;
  /** Datagrams that arrived before the socket was connected; undefined once it is. */
  pending: Buffer[] | undefined;
  answered: boolean;
  ended: boolean;
}

export class UdpListener {
  readonly name: string;
  /** The listening socket (named like the other listeners' servers). */
  readonly server: dgram.Socket;
  config: ListenerConfig;
  /** Datagrams from new clients dropped: over maxSessions, or no endpoint available. */
  dropped = 0;
  #generation: UdpGeneration;
  #settings: UdpListenerConfig;
  /** Sessions by client address, then port (no string is built per datagram). */
  readonly #sessions = new Map<string, Map<number, Session>>();
  #count = 0;
  #sweep: NodeJS.Timeout | undefined;
  readonly #log: Logger;
  readonly #reusePort: boolean;

  /** Datagram sessions are not tunnels: they end with the socket. Present so every listener drains alike. */
  readonly tunnels = { drained: (): Promise<void> => Promise.resolve() };

  /**
   * `reusePort`: bind with SO_REUSEPORT, as its own socket in a worker (`exclusive`): the kernel
   * then sends each client's datagrams (hashed by address and port) to the same worker, so a
   * session stays in one process. Without it the address is this process's alone.
   */
  constructor(config: ListenerConfig, generation: UdpGeneration, log: Logger, reusePort = config.reusePort) {
    this.name = config.name;
    this.config = config;
    this.#generation = generation;
    this.#settings = config.udp!;
    this.#log = log;
    this.#reusePort = reusePort;
    this.server = dgram.createSocket({ type: isIP(config.address.host) === 6 ? 'udp6' : 'udp4', reusePort });
    this.server.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
    this.server.on('error', (err) => this.#log.warn({ err, listener: this.name }, 'udp listener socket error'));
  }

  get generation(): UdpGeneration {
    return this.#generation;
  }

  /** Sessions open now (every generation's). */
  get sessions(): number {
    return this.#count;
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    const now = performance.now();
    const s = this.#sessions.get(rinfo.address)?.get(rinfo.port) ?? this.#open(rinfo, now);
    if (s === undefined) return;
    s.last = now;
    s.bytesIn += msg.length;
    if (s.pending === undefined) s.socket.send(msg);
    else if (s.pending.length < PENDING_MAX) s.pending.push(msg);
  }

  #open(rinfo: RemoteInfo, now: number): Session | undefined {
    const rt = this.#generation;
    const upstream = rt.upstream;
    if (this.#count >= this.#settings.maxSessions) return void this.dropped++;
    const remote = rinfo.address;
    // The one selection loop, for its pick only: a datagram session has no connect to fail and retry.
    const endpoint = new Selection(upstream, upstream.hashes ? (remote.startsWith('::ffff:') ? remote.slice(7) : remote) : undefined, undefined, 'CONNECT').next();
    if (endpoint === undefined) return void this.dropped++;
    const { host, port } = endpoint.address;
    const socket = dgram.createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
    const s: Session = {
      address: remote,
      port: rinfo.port,
      endpoint,
      rt,
      socket,
      last: now,
      started: now,
      bytesIn: 0,
      bytesOut: 0,
      errorCode: undefined,
      pending: [],
      answered: false,
      ended: false,
    };
    let byPort = this.#sessions.get(remote);
    if (byPort === undefined) {
      byPort = new Map();
      this.#sessions.set(remote, byPort);
    }
    byPort.set(rinfo.port, s);
    this.#count++;
    endpoint.state.begin();
    rt.generation.enter();
    socket.on('message', (reply) => {
      s.last = performance.now();
      if (!s.answered) {
        s.answered = true;
        upstream.state.record(endpoint.state, false);
      }
      s.bytesOut += reply.length;
      this.server.send(reply, s.port, s.address);
    });
    // ECONNREFUSED (ICMP port unreachable) and the like: the endpoint is not there.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      s.errorCode = err.code;
      if (!s.answered) upstream.state.record(endpoint.state, true);
      this.#end(s, 'error');
    });
    socket.connect(port, host, () => {
      const pending = s.pending!;
      s.pending = undefined;
      for (const m of pending) socket.send(m);
    });
    this.#publish(s, 'open');
    return s;
  }

  #end(s: Session, reason: NonNullable<UdpSessionEvent['reason']>): void {
    if (s.ended) return;
    s.ended = true;
    const byPort = this.#sessions.get(s.address);
    if (byPort?.get(s.port) === s) {
      byPort.delete(s.port);
      if (byPort.size === 0) this.#sessions.delete(s.address);
    }
    this.#count--;
    s.endpoint.state.end();
    s.rt.generation.leave();
    s.socket.close();
    this.#publish(s, 'close', reason);
    if (s.rt.onSessionEnd !== undefined) s.rt.onSessionEnd(this.#record(s, reason));
  }

  /** The access log's record of an ended session. */
  #record(s: Session, reason: NonNullable<UdpSessionEvent['reason']>): ConnectionRecord {
    return {
      protocol: 'udp',
      clientIp: s.address.startsWith('::ffff:') ? s.address.slice(7) : s.address,
      clientPort: s.port,
      listener: this.name,
      upstream: s.rt.upstream.config.name,
      endpoint: s.endpoint.origin,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
      startedAt: s.started,
      error: reason !== 'error' ? undefined : s.errorCode === 'ECONNREFUSED' ? 'UPSTREAM_CONNECT_REFUSED' : 'UPSTREAM_UNREACHABLE',
    };
  }

  #publish(s: Session, event: UdpSessionEvent['event'], reason?: UdpSessionEvent['reason']): void {
    if (!udpSession.hasSubscribers) return;
    const message: UdpSessionEvent = { listener: this.name, event, client: `${s.address}:${s.port}`, endpoint: s.endpoint.origin, reason };
    udpSession.publish(message);
  }

  /** Ends the sessions `which` selects (deleting visited Map entries while iterating is safe). */
  #endWhere(which: (s: Session) => boolean, reason: NonNullable<UdpSessionEvent['reason']>): void {
    for (const byPort of this.#sessions.values()) for (const s of byPort.values()) if (which(s)) this.#end(s, reason);
  }

  #startSweep(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    const idle = this.#settings.sessionIdle;
    this.#sweep = setInterval(
      () => {
        const cutoff = performance.now() - idle;
        this.#endWhere((s) => s.last <= cutoff, 'idle');
      },
      Math.max(10, Math.floor(idle / 4)),
    );
    this.#sweep.unref();
  }

  /** New sessions follow `generation`; the old one's sessions live on until idle, or its drain timeout. */
  swap(generation: UdpGeneration, config: ListenerConfig): void {
    const old = this.#generation;
    const idleChanged = config.udp!.sessionIdle !== this.#settings.sessionIdle;
    this.config = config;
    this.#settings = config.udp!;
    this.#generation = generation;
    if (idleChanged && this.#sweep !== undefined) this.#startSweep();
    if (old === generation) return;
    setTimeout(() => this.#endWhere((s) => s.rt === old, 'drain'), generation.drainTimeout).unref();
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException): void => reject(bindError(err, this.config.address));
      this.server.once('error', failed);
      this.server.bind({ address: this.config.address.host, port: this.config.address.port, exclusive: this.#reusePort }, () => {
        this.server.off('error', failed);
        this.#startSweep();
        resolve(this.server.address());
      });
    });
  }

  address(): AddressInfo | undefined {
    try {
      return this.server.address();
    } catch {
      return undefined; // not bound, or closed
    }
  }

  /** Closes the socket and every session (datagram sessions cannot outlive it: replies leave by it). */
  stopAccepting(): Promise<void> {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#endWhere(() => true, 'stop');
    return new Promise<void>((resolve) => {
      try {
        this.server.close(() => resolve());
      } catch {
        resolve(); // closed already
      }
    });
  }

  /** Ends every session now. */
  destroyConnections(): void {
    this.#endWhere(() => true, 'stop');
  }
}
