/**
 * A Binding: the one listening socket of a stream listener's address (host:port), separate from the
 * protocol servers (node:http, node:https, node:tls, node:net) that serve its connections. The
 * binding accepts and hands each connection to whichever listener is attached now
 * (`server.emit('connection', socket)`, node's documented way to feed a server), so a reload that
 * replaces a listener's servers (a new protocol, new HTTP/2 settings) re-points the binding and
 * never binds the address twice: no connection is refused and no `reusePort` is needed.
 *
 * Sharing: the socket binds without SO_REUSEPORT, so a second Switchboard (or any program) on a used
 * address fails with EADDRINUSE instead of silently taking a share of the traffic. With
 * `reusePort: true` (the listener says it may share) it binds with SO_REUSEPORT, and in a worker
 * process its own socket (`exclusive`). In a worker without reusePort, node:cluster hands every
 * worker the one socket the supervisor holds (docs/architecture.md, "Workers").
 *
 * State scope: per process. One Binding per address in a process; the socket itself is per machine
 * when workers share it through the supervisor.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import type { ListenAddress } from '../config/types.ts';

/** Takes an accepted connection; a listener's `accept`. */
export type Acceptor = (socket: Socket) => void;

export class Binding {
  readonly address: ListenAddress;
  readonly reusePort: boolean;
  /** The listening socket; it accepts and passes on, and serves nothing itself. */
  readonly server: net.Server;
  /**
   * A listening socket inherited from the Switchboard this process upgrades (process/handover.ts):
   * its descriptor, listened on instead of binding the address (in a worker, the supervisor's
   * descriptor, which node:cluster opens there and shares like any other socket).
   */
  readonly #fd: number | undefined;
  #accept: Acceptor | undefined;

  constructor(address: ListenAddress, reusePort: boolean, fd?: number) {
    this.address = address;
    this.reusePort = reusePort;
    this.#fd = fd;
    // noDelay as node:http sets it on the sockets it accepts itself.
    this.server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      const accept = this.#accept;
      if (accept === undefined) socket.destroy();
      else accept(socket);
    });
  }

  /** Binds; resolves with the bound address (port 0 resolved), rejects with a clear error when the address is in use. */
  listen(): Promise<AddressInfo> {
    const { host, port } = this.address;
    return new Promise((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException): void => reject(bindError(err, this.address));
      this.server.once('error', failed);
      const where = this.#fd !== undefined ? { fd: this.#fd } : { host, port, reusePort: this.reusePort, exclusive: this.reusePort };
      this.server.listen(where, () => {
        this.server.off('error', failed);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Sends new connections to `accept` from now on. Attach before `listen`: a socket shared with
   * other workers accepts as soon as it listens, and a connection with no listener is closed.
   */
  attach(accept: Acceptor): void {
    this.#accept = accept;
  }

  /** The listening socket's descriptor in this process (for a handover), or undefined when not listening. */
  fd(): number | undefined {
    const fd = (this.handle() as { fd?: number } | undefined)?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /** The listening socket's native handle (what `process.send` passes to another process), or undefined. */
  handle(): unknown {
    return (this.server as unknown as { _handle?: unknown })._handle ?? undefined;
  }

  /** The bound address, or undefined when not listening. */
  bound(): AddressInfo | undefined {
    return boundAddress(this.server);
  }

  /** Stops accepting (connections already accepted live on with their listener). Idempotent. */
  close(): void {
    // Closing the handle is synchronous; close()'s callback would wait for every connection this
    // socket accepted, which belong to their listeners now.
    if (this.server.listening) this.server.close();
  }
}

/** `host:port` of an address, as bindings are keyed (IPv6 hosts in brackets). */
export function addressKey(a: ListenAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** A bind error that says what to do about it. */
export function bindError(err: NodeJS.ErrnoException, address: ListenAddress): Error {
  if (err.code === 'EADDRINUSE') {
    return Object.assign(
      new Error(
        `${addressKey(address)} is already in use (another Switchboard, or another program): stop it, or set reusePort: true on both listeners to share the port on purpose`,
      ),
      { code: err.code },
    );
  }
  if (err.code === 'EACCES') return Object.assign(new Error(`${addressKey(address)}: permission denied (ports below 1024 need privileges)`), { code: err.code });
  return err;
}

/** The bound address of `server`, or undefined when it is not listening. */
export function boundAddress(server: net.Server): AddressInfo | undefined {
  const a = server.address();
  return a && typeof a === 'object' ? a : undefined;
}
