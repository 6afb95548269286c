/**
 * What a client connection tells about its client, kept on the socket once per connection and read
 * by every request and tunnel on it: the address a PROXY header gave (listeners/proxy-header.ts),
 * and the verified client certificate (listeners/client-cert.ts). Both are read through node:http2's
 * socket proxy and through a TLS socket's underlying TCP socket too.
 */

/** The client address a PROXY header gave a connection. */
export interface ProxiedAddress {
  readonly address: string;
  readonly port: number;
}

/** A client certificate verified at the TLS handshake (downstream mutual TLS). */
export interface VerifiedCertificate {
  /** Subject DN, `C=DE,O=Example,CN=client-1`. */
  readonly subject: string;
  /** SHA-256 of the DER certificate, lower-case hex. */
  readonly fingerprint: string;
}

/** Where the PROXY header's address is kept on the socket. */
export const kProxied = Symbol('switchboard.proxied');
/** Where the verified certificate of a TLS connection is kept. */
export const kClientCert = Symbol('switchboard.clientCert');

type Annotated = {
  [kProxied]?: ProxiedAddress;
  [kClientCert]?: VerifiedCertificate;
  _parent?: Annotated;
  remoteAddress?: string;
  remotePort?: number;
};

/** An address as compared and logged: no `::ffff:` prefix. */
export function plainAddress(address: string | undefined): string {
  const a = address ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** The PROXY header's address of a connection: on the socket, or on the TCP socket a TLS one wraps. */
function proxiedOf(socket: object): ProxiedAddress | undefined {
  const s = socket as Annotated;
  return s[kProxied] ?? s._parent?.[kProxied];
}

/** The client's address: the PROXY header's when there was one, else the TCP peer's. */
export function clientAddressOf(socket: object): string {
  return proxiedOf(socket)?.address ?? plainAddress((socket as Annotated).remoteAddress);
}

/** The client's port, as `clientAddressOf`. */
export function clientPortOf(socket: object): number {
  return proxiedOf(socket)?.port ?? (socket as Annotated).remotePort ?? 0;
}

/** The client certificate of the connection a request came on, if one was verified. */
export function clientCertOf(socket: object): VerifiedCertificate | undefined {
  return (socket as Annotated)[kClientCert];
}
