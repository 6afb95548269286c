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
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/types.ts';
import { dial } from '../transport/upgrade-exchange.ts';
import { Tunnels } from '../transport/tunnel.ts';
import type { Endpoint } from '../upstream/endpoint.ts';
import type { Upstream } from '../upstream/upstream.ts';
import { ConnectionLimits } from './connection-limits.ts';
import { boundAddress, listenOn } from './bind.ts';
import { clientAddressOf, clientPortOf, readProxyHeader } from './proxy-header.ts';
import { encodeProxyV1, encodeProxyV2, type ProxyAddresses } from '../transport/proxy-protocol.ts';
import { AddressSet } from '../util/cidr.ts';
import { CertificateStore } from './tls-contexts.ts';
import { forwardBySni } from './tls-passthrough.ts';
import type { GenerationTracker } from './http-handler.ts';

/** What a tcp listener's connections depend on that a reload may change. One per generation. */
export interface TcpRuntime {
  readonly name: string;
  /** tls-passthrough: the upstream when no `sni` entry matches (undefined: such clients are closed). */
  readonly upstream: Upstream | undefined;
  /** tls-passthrough only: server name (or `*.` wildcard) to upstream. */
  readonly sni?: ReadonlyMap<string, Upstream>;
  readonly generation: GenerationTracker;
  /** ms the connections of a replaced generation may live on. */
  readonly drainTimeout: number;
  /** This generation's open connections (cut together when its drain time is up). */
  readonly tunnels: Tunnels;
}

const ignore = (): void => undefined;

/** The PROXY header an endpoint gets first: the client's address, and the address it connected to. */
function proxyHeaderFor(client: Socket, version: 'v1' | 'v2'): Buffer {
  const source = clientAddressOf(client);
  const destination = (client.localAddress ?? '').replace(/^::ffff:/, '');
  const v6 = net.isIPv6(source) || net.isIPv6(destination);
  const addresses: ProxyAddresses = {
    family: v6 ? 'tcp6' : 'tcp4',
    sourceAddress: v6 && net.isIPv4(source) ? `::ffff:${source}` : source,
    sourcePort: clientPortOf(client),
    destinationAddress: v6 && net.isIPv4(destination) ? `::ffff:${destination}` : destination,
    destinationPort: client.localPort ?? 0,
  };
  return version === 'v1' ? encodeProxyV1(addresses) : encodeProxyV2(addresses);
}

/** Forwards one accepted connection on `rt`: pick, dial (retrying what sent nothing), splice. */
async function forward(rt: TcpRuntime, client: Socket, upstream: Upstream, head?: Buffer): Promise<void> {
  const config = upstream.config;
  const hashKey = upstream.hashes ? clientAddressOf(client) : undefined;
  let tried: Endpoint[] | undefined;
  for (let tries = 1; ; tries++) {
    const endpoint = upstream.pick(hashKey, tried);
    if (endpoint === undefined) return void client.destroy();
    const { socket, connected } = dial(endpoint, config.timeouts.connect);
    const state = endpoint.state;
    state.inFlight++;
    socket.once('close', () => state.inFlight--);
    const abandon = (): void => void socket.destroy();
    client.once('close', abandon);
    try {
      await connected;
    } catch {
      client.off('close', abandon);
      if (client.destroyed) return;
      upstream.state.record(state, true);
      (tried ??= []).push(endpoint);
      if (tries < config.retries.attempts && upstream.hasUntried(tried)) continue;
      return void client.destroy();
    }
    client.off('close', abandon);
    if (client.destroyed) return void socket.destroy();
    upstream.state.record(state, false);
    const empty = Buffer.alloc(0);
    const header = config.proxyProtocol === undefined ? empty : proxyHeaderFor(client, config.proxyProtocol);
    const clientRest = head === undefined ? header : header.length === 0 ? head : Buffer.concat([header, head]);
    rt.tunnels.open(client, socket, config.timeouts.tunnelIdle, { answer: empty, upstreamRest: empty, clientRest });
    return;
  }
}

export class TcpListener {
  readonly name: string;
  readonly server: net.Server;
  readonly limits: ConnectionLimits;
  config: ListenerConfig;
  #runtime: TcpRuntime;
  /** proxyProtocol.trusted, compiled once per config. */
  #trusted: AddressSet | undefined;
  /** Runtimes replaced by a reload whose connections are still open (until their drain timeout). */
  readonly #draining = new Set<TcpRuntime>();

  /** protocol tls: the certificates (by SNI) TLS is terminated with. */
  readonly certificates: CertificateStore | undefined;

  constructor(config: ListenerConfig, runtime: TcpRuntime, log: Logger) {
    this.name = config.name;
    this.config = config;
    this.#runtime = runtime;
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
      this.certificates = new CertificateStore(config.name, config.tls!, log, (opts) => server?.setSecureContext(options(opts)));
      server = tls.createServer({ ...options(this.certificates.defaultOptions()), allowHalfOpen: true, handshakeTimeout: config.headerTimeout }, (client) =>
        this.#accept(client),
      );
      // Counted on the raw TCP socket, before any handshake work; a PROXY header comes before TLS.
      const startTls = server.listeners('connection')[0] as (this: tls.Server, socket: Socket) => void;
      server.removeAllListeners('connection');
      const tlsServer = server;
      server.on('connection', (socket: Socket) => this.#admit(socket, () => startTls.call(tlsServer, socket)));
      server.on('tlsClientError', (_err, socket) => socket.destroy());
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
    readProxyHeader(socket, (this.#trusted ??= new AddressSet(pp.trusted)), pp.timeout, next);
  }

  #accept(client: Socket): void {
    client.on('error', ignore);
    const rt = this.#runtime;
    rt.generation.enter();
    client.once('close', () => rt.generation.leave());
    const forwarded = this.config.protocol === 'tls-passthrough' ? forwardBySni(rt, client, this.config.headerTimeout, forward) : forward(rt, client, rt.upstream!);
    forwarded.catch(() => client.destroy());
  }

  get runtime(): TcpRuntime {
    return this.#runtime;
  }

  /** The open connections of the current generation. */
  get tunnels(): Tunnels {
    return this.#runtime.tunnels;
  }

  /** New connections follow `runtime`; the old one's connections get its drain timeout, then are cut. */
  swap(runtime: TcpRuntime, config: ListenerConfig): void {
    const old = this.#runtime;
    this.config = config;
    this.#trusted = undefined;
    if (config.tls !== undefined) this.certificates?.update(config.tls);
    this.limits.update(config.maxConnections, config.maxConnectionsPerClient);
    this.#runtime = runtime;
    if (old === runtime) return;
    this.#draining.add(old);
    void old.tunnels.drained(runtime.drainTimeout).then(() => {
      old.tunnels.destroyAll();
      this.#draining.delete(old);
    });
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.server, this.config.address);
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.server);
  }

  /** Stops accepting; open connections live on until they end or destroyConnections. */
  stopAccepting(): Promise<void> {
    void this.certificates?.close();
    return new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Cuts every open connection now (the hard deadline). */
  destroyConnections(): void {
    this.#runtime.tunnels.destroyAll();
    for (const rt of this.#draining) rt.tunnels.destroyAll();
  }
}
