/**
 * A SOCKS5 listener (`protocol: socks5`, RFC 1928 with RFC 1929 username/password): each accepted
 * connection is served by forward/socks5-session.ts under the listener's `forward` rules and its
 * destination guard, CONNECT tunnels and UDP associations alike.
 *
 *   accept ─► maxConnections / maxConnectionsPerClient ─► closed at once when over
 *          ─► PROXY header (when the listener takes one)
 *          ─► handshake within headerTimeout ─► guard ─► tunnel or UDP relay
 *
 * Like a tcp listener it is fed by a Binding (listeners/bind.ts), so workers share its socket the
 * same way. A reload points new connections at the new generation (new rules, new credentials) at
 * once; tunnels and associations keep the generation they began in until they end or its drain
 * timeout passes, then are cut. The same on shutdown.
 */
import net, { type Socket } from 'node:net';
import type { ListenerConfig } from '../config/types.ts';
import type { SocksGeneration } from '../forward/socks5-generation.ts';
import { serveSocks, type SocksSettings } from '../forward/socks5-session.ts';
import type { ConnectionRecord } from '../observability/access-log.ts';
import { clientAddressOf, clientPortOf } from '../transport/connection-info.ts';
import type { Tunnels } from '../transport/tunnel.ts';
import { AddressSet } from '../util/cidr.ts';
import { ConnectionLimits } from './connection-limits.ts';
import { readProxyHeader } from './proxy-header.ts';

export type { SocksGeneration };

const ignore = (): void => undefined;

/** The settings a connection reads of the listener's config. */
function settingsOf(config: ListenerConfig): SocksSettings {
  return { handshakeTimeout: config.headerTimeout, udpHost: config.address.host === '' ? '0.0.0.0' : config.address.host };
}

/** One socks5 listener: created by the gateway when the listener appears, swapped on reload, stopped with it. */
export class SocksListener {
  readonly name: string;
  readonly server: net.Server;
  readonly limits: ConnectionLimits;
  config: ListenerConfig;
  #settings: SocksSettings;
  #generation: SocksGeneration;
  /** proxyProtocol.trusted, compiled once per config. */
  #trusted: AddressSet | undefined;
  /** Generations replaced by a reload whose connections are still open (until their drain timeout). */
  readonly #draining = new Set<SocksGeneration>();
  /**
   * Every connection open now, in handshake or not (per listener, per worker): the hard deadline
   * cuts them all, also those still resolving or connecting when the tunnels were cut.
   */
  readonly #clients = new Set<Socket>();
  /** A SOCKS listener terminates no TLS (gateway.reloadCertificates asks every listener). */
  readonly certificates: undefined;

  constructor(config: ListenerConfig, generation: SocksGeneration) {
    this.name = config.name;
    this.config = config;
    this.#settings = settingsOf(config);
    this.#generation = generation;
    this.limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerClient);
    // allowHalfOpen: a client's FIN is passed on through a tunnel while the destination may still answer.
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => this.#admit(client));
  }

  #admit(socket: Socket): void {
    socket.on('error', ignore);
    if (!this.limits.admit(socket)) return void socket.destroy();
    const pp = this.config.proxyProtocol;
    if (pp === undefined) return this.#accept(socket);
    this.#trusted ??= new AddressSet(pp.trusted);
    readProxyHeader(socket, this.#trusted, pp.timeout, () => this.#accept(socket));
  }

  #accept(client: Socket): void {
    const gen = this.#generation;
    gen.generation.enter();
    const record: ConnectionRecord | undefined =
      gen.onConnectionEnd === undefined
        ? undefined
        : {
            protocol: 'socks5',
            clientIp: clientAddressOf(client),
            clientPort: clientPortOf(client),
            listener: this.name,
            upstream: undefined,
            endpoint: undefined,
            bytesIn: 0,
            bytesOut: 0,
            startedAt: performance.now(),
            error: undefined,
          };
    // First, so that its own 'close' listener (added before its first await) fills the record in before the one below writes it.
    void serveSocks(gen, client, this.#settings, record);
    this.#clients.add(client);
    client.once('close', () => {
      this.#clients.delete(client);
      gen.generation.leave();
      if (record !== undefined) gen.onConnectionEnd!(record);
    });
  }

  get generation(): SocksGeneration {
    return this.#generation;
  }

  /** The open tunnels of the current generation. */
  get tunnels(): Tunnels {
    return this.#generation.tunnels;
  }

  /** New connections follow `generation`; the old one's tunnels and associations get its drain timeout, then are cut. */
  swap(generation: SocksGeneration, config: ListenerConfig): void {
    const old = this.#generation;
    this.config = config;
    this.#settings = settingsOf(config);
    this.#trusted = undefined;
    this.limits.update(config.maxConnections, config.maxConnectionsPerClient);
    this.#generation = generation;
    if (old === generation) return;
    this.#draining.add(old);
    void drained(old, generation.drainTimeout).then(() => {
      cut(old);
      this.#draining.delete(old);
    });
  }

  /** Serves a connection a Binding accepted (listeners/bind.ts). */
  readonly accept = (socket: Socket): void => {
    this.server.emit('connection', socket);
  };

  /** Stops taking connections (its Binding sends them elsewhere, or is closed); open ones live on until they end or destroyConnections. */
  stopAccepting(): Promise<void> {
    return Promise.resolve();
  }

  /** Cuts every open tunnel and association now (the hard deadline). */
  destroyConnections(): void {
    cut(this.#generation);
    for (const g of this.#draining) cut(g);
    for (const c of this.#clients) c.destroy();
  }
}

/**
 * Resolves once the generation's tunnels have ended, or after `ms`; while UDP associations are open
 * (they end only with their client), after `ms` in any case.
 */
function drained(gen: SocksGeneration, ms: number): Promise<void> {
  const tunnels = gen.tunnels.drained(ms);
  if (gen.associations.size === 0 || ms <= 0) return tunnels;
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function cut(gen: SocksGeneration): void {
  gen.tunnels.destroyAll();
  for (const a of [...gen.associations]) a.close();
}
