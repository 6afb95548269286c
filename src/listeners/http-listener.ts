/**
 * An HTTP listener: the socket, TLS and protocol layers in front of the request pipeline.
 *
 *   protocol http:  Switchboard's own HTTP/1.1 server (http/h1-server.ts); with `h2c`, connections
 *                   that open with the HTTP/2 preface go to a node:http2 server instead (prior knowledge).
 *   protocol https: node:tls's server (certificates by SNI, optional client certificates);
 *                   after the handshake, ALPN `h2` goes to the node:http2 server, the rest to the
 *                   own HTTP/1.1 server. (node:http itself never parses a request here.)
 *
 *   protocol forward: as http (h2c too), but the last step is the forward proxy's (forward/):
 *                   absolute-form requests, CONNECT (HTTP/1.1, and HTTP/2 CONNECT streams),
 *                   WebSocket upgrades to absolute-form targets.
 *
 * Both protocols feed the same pipeline (http/pipeline.ts) through their downstream adapters
 * (http/h1-server.ts, h2-downstream.ts, upgrade.ts), reading a swappable ListenerGeneration: a
 * reload swaps it (new requests see the new config at once, in-flight ones keep theirs); the
 * socket stays open, so no connection is refused.
 */
import tls from 'node:tls';
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/types.ts';
import type { ErrorCode } from '../errors.ts';
import { writeRawError } from '../http/error-response.ts';
import { H1Connections, type H1Exchange, type H1Host } from '../http/h1-server.ts';
import type { H1Head } from '../http/h1-request.ts';
import { H2Downstream } from '../http/h2-downstream.ts';
import type { ListenerGeneration } from '../http/listener-generation.ts';
import { runPipeline } from '../http/pipeline.ts';
import { proxy } from '../http/proxy.ts';
import type { ForwardStep } from '../http/pipeline.ts';
import { WsDownstream } from '../http/ws-downstream.ts';
import { forwardStep } from '../forward/http-forward.ts';
import { forwardUpgrade } from '../forward/websocket.ts';
import { handleUpgrade } from '../http/upgrade.ts';
import { Tunnels } from '../transport/tunnel.ts';
import { kClientCert } from '../transport/connection-info.ts';
import { ConnectionLimits } from './connection-limits.ts';
import { CertificateStore, type MachineTls } from './tls-contexts.ts';
import { clientSocketOf, H2Sessions, h2ServerOptions, malformedStream } from './h2-sessions.ts';
import { verifiedClientCert } from './client-cert.ts';
import { readProxyHeader } from './proxy-header.ts';
import { readPrefix, type Verdict } from './read-prefix.ts';
import { AddressSet } from '../util/cidr.ts';
import { tlsHandshake } from '../observability/events.ts';
import { handshakeError, publishHandshake } from './tls-events.ts';

/** Settings that can only be set when the server is created; a change means a new server. */
export function bindingKey(c: ListenerConfig): string {
  const t = c.tls;
  const h = c.http2;
  return [
    c.protocol,
    c.address.host,
    c.address.port,
    c.maxHeaderSize,
    c.h2c,
    t ? `${t.alpn.join(',')}|${t.strictSni}|${t.clientCertificate ? t.clientCertificate.required : 'none'}` : '',
    `${h.maxConcurrentStreams}|${h.initialWindowSize}|${h.maxResets}|${h.resetWindow}`,
  ].join('|');
}

/** Switchboard's own error on a socket that has no request (yet): JSON body, then closed. */
function rawError(socket: Socket, code: ErrorCode): void {
  writeRawError(socket, code, undefined);
}

/** The HTTP/2 connection preface a client with prior knowledge opens with (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

const ignore = (): void => undefined;

export class HttpListener {
  readonly name: string;
  /** The TLS side (https only): node:tls's server, which only makes the TLS sockets (the own server and node:http2 speak over them). */
  readonly #tls: tls.Server | undefined;
  /** node:tls's handler of a new TCP connection (the handshake), taken off its 'connection' event. */
  readonly #startTls: ((this: tls.Server, socket: Socket) => void) | undefined;
  /** The HTTP/2 side, when the listener speaks HTTP/2 (h2 in ALPN, or h2c). */
  readonly h2: http2.Http2Server | undefined;
  readonly h2Sessions: H2Sessions | undefined;
  /** Certificates by SNI (https only). */
  readonly certificates: CertificateStore | undefined;
  config: ListenerConfig;
  #generation: ListenerGeneration;
  readonly limits: ConnectionLimits;
  /** Open WebSocket tunnels: they outlive their generation and are cut by destroyConnections. */
  readonly tunnels = new Tunnels();
  /** proxyProtocol.trusted, compiled once per config. */
  #trusted: AddressSet | undefined;
  /** The pipeline's last step: the reverse proxy's, or the forward proxy's (protocol forward). */
  readonly #step: ForwardStep;
  /** HTTP/1.1 connections served by Switchboard's own server (http/h1-server.ts). */
  readonly #own = new H1Connections();
  readonly #ownHost: H1Host;

  /** `machine`: in a worker, what its TLS takes from the supervisor (ticket keys; the files are watched there). */
  constructor(config: ListenerConfig, generation: ListenerGeneration, log: Logger, machine?: MachineTls) {
    this.name = config.name;
    this.config = config;
    this.#generation = generation;
    this.limits = new ConnectionLimits(config.maxConnections, config.maxConnectionsPerClient);
    const forward = config.protocol === 'forward';
    this.#step = forward ? forwardStep : proxy;
    const listener = this;
    this.#ownHost = {
      get settings() {
        return listener.config;
      },
      start: (ex: H1Exchange) => runPipeline(this.#generation, ex, ex.req.expect === 1, this.#step),
      upgrade: (req: H1Head, rest: Buffer) => this.#onUpgrade(req, rest),
    };
    const speaksH2 = config.protocol === 'https' ? config.tls!.alpn.includes('h2') : config.h2c;
    if (speaksH2) {
      this.h2 = http2.createServer(h2ServerOptions(config));
      this.h2Sessions = new H2Sessions(this.h2, config);
      // Streams are served directly (http/h2-downstream.ts), not through node:http2's compat 'request'.
      this.h2.on('stream', (stream, headers, _flags, rawHeaders) => {
        const session = stream.session;
        const down = new H2Downstream(
          stream,
          headers,
          rawHeaders,
          this.config.maxHeaderSize,
          session === undefined ? undefined : clientSocketOf(session),
          malformedStream(stream),
          forward,
        );
        runPipeline(this.#generation, down, down.expectContinue, this.#step);
      });
    }
    if (config.protocol === 'https') {
      let server: tls.Server | undefined;
      this.certificates = new CertificateStore(config.name, config.tls!, log, (opts) => server?.setSecureContext(this.#tlsOptions(opts)), machine);
      server = tls.createServer({ ...this.#tlsOptions(this.certificates.defaultOptions()), handshakeTimeout: config.headerTimeout });
      this.#tls = server;
      this.#startTls = server.listeners('connection')[0] as (this: tls.Server, socket: Socket) => void;
      server.removeAllListeners('connection');
      server.on('secureConnection', (socket: TLSSocket) => this.#onSecureConnection(socket));
      server.on('tlsClientError', (err, socket) => {
        if (tlsHandshake.hasSubscribers) publishHandshake(this.name, false, handshakeError(err));
        socket.destroy();
      });
    }
    this.applyTunables(config);
  }

  /** Serves a connection a Binding accepted. */
  readonly accept = (socket: Socket): void => {
    const server = this.#tls;
    if (server === undefined) return this.#onConnection(socket);
    // Counted on the raw TCP socket, before any handshake work; refused ones are just closed. A
    // PROXY header comes before the TLS handshake.
    if (!this.limits.admit(socket)) return void socket.destroy();
    this.#proxyHeaderThen(socket, () => this.#startTls!.call(server, socket));
  };

  /**
   * A head the own server hands over: a WebSocket upgrade (the upgrade pipeline: a tunnel, or an
   * answer that closes), or a CONNECT (a forward listener's tunnel; 405 on any other listener).
   */
  #onUpgrade(req: H1Head, rest: Buffer): void {
    const socket = req.socket;
    if (req.method !== 'CONNECT') {
      handleUpgrade(this.#generation, req, rest, this.tunnels, this.config.protocol === 'forward' ? forwardUpgrade : undefined);
      return;
    }
    // The socket is no HTTP connection any more; a reset must not throw.
    socket.on('error', ignore);
    if (this.config.protocol !== 'forward') return rawError(socket, 'METHOD_NOT_ALLOWED');
    runPipeline(this.#generation, new WsDownstream(req, socket, rest, this.tunnels, false), false, this.#step);
  }

  /** TLS server options beyond the certificate: SNI, ALPN, client certificates. */
  #tlsOptions(base: SecureContextOptions | undefined): TlsOptions {
    const t = this.config.tls!;
    const cc = t.clientCertificate;
    return {
      ...base,
      SNICallback: this.certificates!.sniCallback,
      ALPNProtocols: t.alpn,
      requestCert: cc !== undefined,
      rejectUnauthorized: cc?.required ?? false,
      honorCipherOrder: true,
    };
  }

  #onSecureConnection(socket: TLSSocket): void {
    if (this.config.tls!.clientCertificate !== undefined) {
      const cert = verifiedClientCert(socket);
      // Optional client certificates: none is fine, an invalid one is refused (as nginx's
      // `ssl_verify_client optional`).
      if (cert === false) {
        if (tlsHandshake.hasSubscribers) publishHandshake(this.name, false, 'CLIENT_CERTIFICATE');
        socket.destroy();
        return;
      }
      if (cert !== undefined) (socket as TLSSocket & { [kClientCert]?: unknown })[kClientCert] = cert;
    }
    if (tlsHandshake.hasSubscribers) publishHandshake(this.name, true);
    if (socket.alpnProtocol === 'h2' && this.h2 !== undefined) this.h2.emit('connection', socket);
    else this.#own.serve(socket, this.#ownHost);
  }

  /** Plain listeners: admission, the PROXY header if any, then HTTP/1.1, or HTTP/2 when h2c is on and the preface arrives. */
  #onConnection(socket: Socket): void {
    const admitted = this.limits.admit(socket);
    if (!admitted) {
      // What the refused client sends is read and dropped, so that closing does not reset the
      // connection under the answer.
      socket.on('data', ignore);
      socket.on('error', ignore);
      rawError(socket, 'TOO_MANY_CONNECTIONS');
      return;
    }
    if (this.config.proxyProtocol === undefined) return this.#serve(socket);
    this.#proxyHeaderThen(socket, () => {
      this.#serve(socket);
      socket.resume();
    });
  }

  #serve(socket: Socket): void {
    if (this.h2 === undefined) this.#own.serve(socket, this.#ownHost);
    else this.#sniff(socket, this.h2);
  }

  /** The PROXY header when the listener takes one (listeners/proxy-header.ts), then `next`. */
  #proxyHeaderThen(socket: Socket, next: () => void): void {
    const pp = this.config.proxyProtocol;
    if (pp === undefined) return next();
    this.#trusted ??= new AddressSet(pp.trusted);
    readProxyHeader(socket, this.#trusted, pp.timeout, next);
  }

  /** Reads until the first bytes tell HTTP/2's preface from an HTTP/1.1 request line. */
  #sniff(socket: Socket, h2: http2.Http2Server): void {
    let preface = false;
    const judge = (seen: Buffer): Verdict => {
      const n = Math.min(seen.length, PREFACE.length);
      preface = seen.compare(PREFACE, 0, n, 0, n) === 0;
      return preface && seen.length < PREFACE.length ? 'more' : 'ok';
    };
    readPrefix(socket, this.config.headerTimeout, judge, (seen) => {
      socket.unshift(seen);
      // The HTTP/2 session reads the bytes already buffered when it starts; the own server, once resumed.
      if (preface) h2.emit('connection', socket);
      else {
        this.#own.serve(socket, this.#ownHost);
        socket.resume();
      }
    });
  }

  /** Settings a running server accepts changes to. */
  applyTunables(config: ListenerConfig): void {
    this.config = config;
    this.#trusted = undefined;
    this.limits.update(config.maxConnections, config.maxConnectionsPerClient);
    this.h2Sessions?.update(config);
  }

  /** The generation new requests use. */
  get generation(): ListenerGeneration {
    return this.#generation;
  }

  /** Points new requests at a new config generation; in-flight ones keep the old. */
  swap(generation: ListenerGeneration, config: ListenerConfig): void {
    this.applyTunables(config);
    if (config.tls !== undefined) this.certificates?.update(config.tls);
    this.#generation = generation;
  }

  /**
   * Stops taking connections (its Binding already sends them elsewhere, or is closed), marks
   * HTTP/1.1 responses `Connection: close`, closes idle keep-alive connections, and sends every
   * HTTP/2 client a GOAWAY. `lingerIdle`: leave idle keep-alive connections to their
   * keepAliveTimeout (a draining worker): the client, told the timeout in `Keep-Alive`, closes
   * first, so no request races a close (a closed idle connection can meet a request already sent).
   */
  stopAccepting(lingerIdle = false): Promise<void> {
    this.#generation.settings.draining = true;
    // HTTP/1.1 connections with no request in flight close now (node:http's closeIdleConnections).
    if (!lingerIdle) this.#own.closeIdle();
    this.h2Sessions?.goAwayAll();
    void this.certificates?.close();
    return Promise.resolve();
  }

  /** Ends every connection now (after the drain timeout). */
  destroyConnections(): void {
    this.#own.closeAll();
    this.tunnels.destroyAll();
    this.h2Sessions?.destroyAll();
  }
}
