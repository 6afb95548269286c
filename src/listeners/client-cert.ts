/**
 * Downstream mutual TLS: what a verified client certificate tells the upstream. Computed once per
 * connection, at the handshake, and kept on the socket; every request on it reads it from there.
 */
import type { TLSSocket } from 'node:tls';
import type { VerifiedCertificate as ClientCertInfo } from '../transport/connection-info.ts';

/**
 * The verified client certificate of a connection; undefined when the client presented none, and
 * false when it presented one that did not verify against the listener's CA.
 */
export function verifiedClientCert(socket: TLSSocket): ClientCertInfo | undefined | false {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return undefined;
  if (!socket.authorized) return false;
  return {
    // The subject's RDNs in OpenSSL's order, comma-separated: `C=DE,O=Example,CN=client-1`.
    subject: cert.subject.split('\n').join(','),
    fingerprint: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
  };
}
