/**
 * A layer 4 listener (`protocol: tcp`, `tls` with TLS terminated first, or `tls-passthrough` with
 * the upstream chosen by the ClientHello's server name, see tls-passthrough.ts): each accepted connection goes to one endpoint of the
 * listener's upstream, chosen by the same balancer modules and health state as HTTP, and the bytes
 * are spliced both ways untouched (transport/tunnel.ts: backpressure, half-close, idle timeout).
 *
 *   accept ─► maxConnections / maxConnectionsPerClient ─► closed at once when over
 *          ─► Upstream.pick(client address as hash key) ─► dial (timeouts.connect)
 *                refused / timed out ─► next untried endpoint (retries.attempts; nothing was sent)
 *          ─► Tunnel: pipe() both ways until both sides close, or timeouts.tunnelIdle of silence
 *
 * Drain: a reload points new connections at the new generation at once; connections of the old
 * one live on until they end or the drain timeout passes, then are cut. The same on shutdown.
 */
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/types.ts';
import { ConnectionLimits } from './connection-limits.ts';
import { readProxyHeader } from './proxy-header.ts';
import { AddressSet } from '../util/cidr.ts';
import { CertificateStore, type MachineTls } from './tls-contexts.ts';
import { forwardBySni } from './tls-passthrough.ts';
import { forwardConnection, type TcpGeneration } from './tcp-forward.ts';
import type { Tunnels } from '../transport/tunnel.ts';
import { tlsHandshake } from '../observability/events.ts';
import { handshakeError, publishHandshake } from './tls-events.ts';
import type { ConnectionRecord } from '../observability/access-log.ts';
import { clientAddressOf, clientPortOf } from '../transport/connection-info.ts';

export type { TcpGeneration };

const ignore = (): void => undefined;

/** A fresh access-log record for an accepted connection (its start is now). */
function connectionRecord(client: Socket, protocol: string, listener: string): ConnectionRecord {
  return {
    protocol,
    clientIp: clientAddressOf(client),
    clientPort: clientPortOf(client),
    listener,
    upstream: undefined,
    endpoint: undefined,
    bytesIn: 0,
    bytesOut: 0,
    startedAt: performance.now(),
    error: undefined,
  };
}

export class TcpListener {
  readonly name: string;
  readonly server: net.Server;
  readonly limits: ConnectionLimits;
  config: ListenerConfig;
  #generation: TcpGeneration;
  /** proxyProtocol.trusted, compiled once per config. */
  #trusted: AddressSet | undefined;
  /** Generations replaced by a reload whose connections are still open (until their drain timeout). */
  readonly #draining = new Set<TcpGeneration>();

  /** protocol tls: the certificates (by SNI) TLS is terminated with. */
  readonly certificates: CertificateStore | undefined;

  /** `machine`: in a worker, what its TLS takes from the supervisor (ticket keys; the files are watched there). */
  constructor(config: ListenerConfig, generation: TcpGeneration, log: Logger, machine?: MachineTls) {
    this.name = config.name;
    this.config = config;
    this.#generation = generation;
    this.limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerClient);
    if (config.protocol === 'tls') {
      // TLS terminated as on an https listener (certificates by SNI, watched files), then plain TCP.
      let server: tls.Server | undefined;
      const options = (base: tls.SecureContextOptions | undefined): tls.TlsOptions => ({
        ...base,
        SNICallback: this.certificates!.sniCallback,
        requestCert: this.config.tls!.clientCertificate !== undefined,
        rejectUnauthorized: this.config.tls!.clientCertificate?.required ?? false,
        honorCipherOrder: true,
      });
      this.certificates = new CertificateStore(config.name, config.tls!, log, (opts) => server?.setSecureContext(options(opts)), machine);
      server = tls.createServer({ ...options(this.certificates.defaultOptions()), allowHalfOpen: true, handshakeTimeout: config.headerTimeout }, (client) => {
        if (tlsHandshake.hasSubscribers) publishHandshake(this.name, true);
        this.#accept(client);
      });
      // Counted on the raw TCP socket, before any handshake work; a PROXY header comes before TLS.
      const startTls = server.listeners('connection')[0] as (this: tls.Server, socket: Socket) => void;
      server.removeAllListeners('connection');
      const tlsServer = server;
      server.on('connection', (socket: Socket) => this.#admit(socket, () => startTls.call(tlsServer, socket)));
      server.on('tlsClientError', (err, socket) => {
        if (tlsHandshake.hasSubscribers) publishHandshake(this.name, false, handshakeError(err));
        socket.destroy();
      });
      this.server = server;
    } else {
      // allowHalfOpen: a client's FIN is passed on while the endpoint may still answer.
      this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => this.#admit(client, () => this.#accept(client)));
    }
  }

  /** Connection caps, then the PROXY header when the listener takes one, then `next`. */
  #admit(socket: Socket, next: () => void): void {
    socket.on('error', ignore);
    if (!this.limits.admit(socket)) return void socket.destroy();
    const pp = this.config.proxyProtocol;
    if (pp === undefined) return next();
    this.#trusted ??= new AddressSet(pp.trusted);
    readProxyHeader(socket, this.#trusted, pp.timeout, next);
  }

  #accept(client: Socket): void {
    client.on('error', ignore);
    const rt = this.#generation;
    rt.generation.enter();
    // Built only when the access log is on: per connection, never per byte.
    const record = rt.onConnectionEnd === undefined ? undefined : connectionRecord(client, this.config.protocol, this.name);
    client.once('close', () => {
      rt.generation.leave();
      if (record === undefined) return;
      record.bytesIn = client.bytesRead;
      record.bytesOut = client.bytesWritten;
      rt.onConnectionEnd!(record);
    });
    const forwarded =
      this.config.protocol === 'tls-passthrough'
        ? forwardBySni(rt, client, this.config.headerTimeout, forwardConnection, record)
        : forwardConnection(rt, client, rt.upstream!, undefined, record);
    forwarded.catch(() => client.destroy());
  }

  get generation(): TcpGeneration {
    return this.#generation;
  }

  /** The open connections of the current generation. */
  get tunnels(): Tunnels {
    return this.#generation.tunnels;
  }

  /** New connections follow `generation`; the old one's connections get its drain timeout, then are cut. */
  swap(generation: TcpGeneration, config: ListenerConfig): void {
    const old = this.#generation;
    this.config = config;
    this.#trusted = undefined;
    if (config.tls !== undefined) this.certificates?.update(config.tls);
    this.limits.update(config.maxConnections, config.maxConnectionsPerClient);
    this.#generation = generation;
    if (old === generation) return;
    this.#draining.add(old);
    void old.tunnels.drained(generation.drainTimeout).then(() => {
      old.tunnels.destroyAll();
      this.#draining.delete(old);
    });
  }

  /** Serves a connection a Binding accepted (listeners/bind.ts). */
  readonly accept = (socket: Socket): void => {
    this.server.emit('connection', socket);
  };

  /** Stops taking connections (its Binding sends them elsewhere, or is closed); open ones live on until they end or destroyConnections. */
  stopAccepting(): Promise<void> {
    void this.certificates?.close();
    return Promise.resolve();
  }

  /** Cuts every open connection now (the hard deadline). */
  destroyConnections(): void {
    this.#generation.tunnels.destroyAll();
    for (const rt of this.#draining) rt.tunnels.destroyAll();
  }
}
