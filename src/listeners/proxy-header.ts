/**
 * The PROXY protocol on accepted connections (HAProxy's `accept-proxy`): when a listener has
 * `proxyProtocol`, every connection must come from a trusted peer and start with a v1 or v2
 * header (transport/proxy-protocol.ts); the client address it carries replaces the peer's for
 * everything after (routing, ip-hash, logs, forwarding headers, a PROXY header sent upstream).
 * An untrusted peer is refused at once; a malformed header, or one not complete within the
 * timeout, closes the connection. Bytes after the header stay in the socket for what follows
 * (HTTP parser, TLS handshake, a tunnel).
 */
import type { Socket } from 'node:net';
import { parseProxyHeader } from '../transport/proxy-protocol.ts';
import { readPrefix, type Verdict } from './read-prefix.ts';
import type { AddressSet } from '../util/cidr.ts';

/** The client address a PROXY header gave this connection. */
export interface ProxiedAddress {
  readonly address: string;
  readonly port: number;
}

/** Where it is kept on the socket (read through node:http2's socket proxy too). */
export const kProxied = Symbol('switchboard.proxied');

const ignore = (): void => undefined;

/** An address as compared and logged: no `::ffff:` prefix. */
function plain(address: string | undefined): string {
  const a = address ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

type MaybeProxied = { [kProxied]?: ProxiedAddress; _parent?: MaybeProxied; remoteAddress?: string; remotePort?: number };

/** The PROXY header's address of a connection: on the socket, or on the TCP socket a TLS one wraps. */
function proxiedOf(socket: object): ProxiedAddress | undefined {
  const s = socket as MaybeProxied;
  return s[kProxied] ?? s._parent?.[kProxied];
}

/** The client's address: the PROXY header's when there was one, else the TCP peer's. */
export function clientAddressOf(socket: object): string {
  return proxiedOf(socket)?.address ?? plain((socket as MaybeProxied).remoteAddress);
}

/** The client's port, as `clientAddressOf`. */
export function clientPortOf(socket: object): number {
  return proxiedOf(socket)?.port ?? (socket as MaybeProxied).remotePort ?? 0;
}

/**
 * Reads the PROXY header of `socket`, then calls `next` with the socket paused and the bytes
 * after the header back in it. Never calls `next` for a refused or failed connection.
 */
export function readProxyHeader(socket: Socket, trusted: AddressSet, timeout: number, next: () => void): void {
  if (!trusted.has(plain(socket.remoteAddress))) {
    socket.destroy();
    return;
  }
  // Until the protocol handler takes the socket over, a reset must not go unhandled.
  socket.on('error', ignore);
  let result: ReturnType<typeof parseProxyHeader> | undefined;
  const judge = (seen: Buffer): Verdict => {
    result = parseProxyHeader(seen);
    return result.kind === 'incomplete' ? 'more' : result.kind === 'invalid' ? 'bad' : 'ok';
  };
  readPrefix(socket, timeout, judge, (seen) => {
    if (result?.kind !== 'ok') return;
    const a = result.addresses;
    // LOCAL (the balancer's own health check) and UNKNOWN keep the peer's address.
    if (result.command === 'proxy' && a.sourceAddress !== undefined && (a.family === 'tcp4' || a.family === 'tcp6')) {
      (socket as Socket & { [kProxied]?: ProxiedAddress })[kProxied] = { address: plain(a.sourceAddress), port: a.sourcePort ?? 0 };
    }
    if (seen.length > result.headerLength) socket.unshift(seen.subarray(result.headerLength));
    next();
  });
}
