/**
 * How Switchboard connects to an endpoint: the TLS options of an https:// endpoint (CA, SNI,
 * client certificate, verification) and the protocol settings its pool needs. Built once per
 * upstream config; shared by the forwarding pools, the health checker and WebSocket tunnels.
 */
import { createHash } from 'node:crypto';
import { isIP, type TcpNetConnectOpts } from 'node:net';
import { checkServerIdentity as tlsCheckServerIdentity, type ConnectionOptions } from 'node:tls';
import type { EndpointConfig, UpstreamConfig } from '../config/types.ts';

/** TLS options for one endpoint, or undefined for a cleartext (http://) endpoint. */
export function endpointTls(config: UpstreamConfig, endpoint: EndpointConfig): ConnectionOptions | undefined {
  if (!endpoint.secure) return undefined;
  const t = config.tls;
  const hostname = hostOf(endpoint.host);
  // SNI is a host name; an IP address is never sent as SNI (RFC 6066), but is still verified.
  const serverName = t.serverName ?? (isIP(hostname) === 0 ? hostname : undefined);
  const opts: ConnectionOptions = {
    rejectUnauthorized: !t.insecureSkipVerify,
    minVersion: t.minVersion,
    ALPNProtocols: config.protocol === 'h2' ? ['h2', 'http/1.1'] : ['http/1.1'],
  };
  if (serverName !== undefined) opts.servername = serverName;
  if (t.serverName !== undefined) {
    // Verify the certificate against the configured name rather than the address dialled.
    const name = t.serverName;
    opts.checkServerIdentity = (_host, cert) => tlsCheckServerIdentity(name, cert);
  }
  if (t.ca !== undefined) opts.ca = t.ca;
  if (t.cert !== undefined) opts.cert = t.cert;
  if (t.key !== undefined) opts.key = t.key;
  return opts;
}

/** Host part of `host:port` (brackets of an IPv6 literal removed). */
export function hostOf(hostPort: string): string {
  const colon = hostPort.lastIndexOf(':');
  const host = colon > hostPort.lastIndexOf(']') ? hostPort.slice(0, colon) : hostPort;
  return host.startsWith('[') ? host.slice(1, -1) : host;
}

/** Address and port to dial for an endpoint. */
export function endpointAddress(endpoint: EndpointConfig): Pick<TcpNetConnectOpts, 'host' | 'port'> {
  const url = new URL(endpoint.origin);
  return { host: hostOf(url.host), port: url.port === '' ? (endpoint.secure ? 443 : 80) : Number(url.port) };
}

/** A short digest of everything in an upstream's connection settings that makes pools differ. */
export function connectionKey(config: UpstreamConfig): string {
  const t = config.tls;
  return createHash('sha256')
    .update(JSON.stringify([config.protocol, t.ca ?? '', t.serverName ?? '', t.cert ?? '', t.key ?? '', t.minVersion, t.insecureSkipVerify]))
    .digest('base64url')
    .slice(0, 16);
}
