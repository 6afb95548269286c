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
import { kProxied, plainAddress as plain, type ProxiedAddress } from '../transport/connection-info.ts';

const ignore = (): void => undefined;

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
