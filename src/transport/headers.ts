/**
 * Header hygiene at the proxy boundary: hop-by-hop headers out (RFC 9110 §7.6.1, plus every name
 * listed in Connection), forwarding headers in (X-Forwarded-*, RFC 7239 Forwarded). Runs once per
 * request on the hot path: no regex, no per-header allocation beyond the output array.
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Never forwarded in either direction. `host` and the forwarding headers are rebuilt by us. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'http2-settings',
]);

/** Request headers Switchboard writes itself. */
const REBUILT = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-request-id']);

/** Response headers that never cross back to the client. */
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

/** Lower-cased names listed in a Connection header value (`close, X-Foo` → ['x-foo']). */
export function connectionTokens(value: string | undefined): string[] | undefined {
  if (!value || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return undefined;
  let out: string[] | undefined;
  for (const part of value.split(',')) {
    const name = part.trim().toLowerCase();
    if (name && name !== 'close' && name !== 'keep-alive') {
      out ??= [];
      out.push(name);
    }
  }
  return out;
}

export type UnderscorePolicy = 'allow' | 'drop' | 'reject';

/** What a client's forwarding headers say, when the peer is trusted to say it. */
export interface ForwardingInput {
  /** The TCP peer, normalised (no `::ffff:` prefix). */
  peer: string;
  /** Whether the peer is a trusted proxy (its X-Forwarded-* and Forwarded are extended, not replaced). */
  trusted: boolean;
  /** Host header as received. */
  host: string;
  /** `http` or `https`, as this listener terminates. */
  proto: string;
  /** Pass the client's `te: trailers` on (an HTTP/2 client's: gRPC servers need it). */
  trailers: boolean;
  /** Header names that carry the client certificate [subject, fingerprint]: client copies are dropped. */
  certHeaders: readonly [string, string] | undefined;
  /** The verified client certificate, sent in `certHeaders`. */
  cert: { readonly subject: string; readonly fingerprint: string } | undefined;
  /** Add X-Forwarded-*, Forwarded and X-Request-Id (false: a forward proxy's `anonymous` and `elite` levels, which name no client). The client's own are dropped either way. */
  identify: boolean;
}

/**
 * Builds the upstream request headers as a flat [name, value, ...] list from the client's fields
 * (HTTP/2 pseudo-headers already left out and cookies joined, by the downstream adapter): drops hop-by-hop headers and those named in Connection, applies the underscore policy,
 * rebuilds X-Forwarded-For/-Proto/-Host and Forwarded and sets X-Request-Id (unless `fwd.identify` is false:
 * then the client's copies are dropped and none are added), and sets Host.
 * Returns `undefined` when the underscore policy is `reject` and such a name is present.
 */
export function upstreamRequestHeaders(
  raw: readonly string[],
  headers: IncomingHttpHeaders,
  fwd: ForwardingInput,
  requestId: string,
  hostHeader: string,
  underscores: UnderscorePolicy,
): string[] | undefined {
  const out: string[] = ['host', hostHeader];
  const named = connectionTokens(headers.connection);
  const certHeaders = fwd.certHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || REBUILT.has(lower)) {
      // An HTTP/2 client's `te: trailers` (the only TE HTTP/2 allows) is passed on: gRPC servers need it.
      if (fwd.trailers && lower === 'te') out.push('te', 'trailers');
      continue;
    }
    if (named?.includes(lower)) continue;
    if (certHeaders !== undefined && (lower === certHeaders[0] || lower === certHeaders[1])) continue;
    if (underscores !== 'allow' && name.includes('_')) {
      if (underscores === 'reject') return undefined;
      continue;
    }
    out.push(name, raw[i + 1]);
  }
  if (fwd.identify) {
    const xff = headers['x-forwarded-for'];
    const fwdFor = fwd.peer.includes(':') ? `"[${fwd.peer}]"` : fwd.peer;
    const forwardedHere = `for=${fwdFor};host="${fwd.host}";proto=${fwd.proto}`;
    if (fwd.trusted) {
      out.push('x-forwarded-for', xff ? `${xff}, ${fwd.peer}` : fwd.peer);
      out.push('x-forwarded-proto', firstValue(headers['x-forwarded-proto']) ?? fwd.proto);
      out.push('x-forwarded-host', firstValue(headers['x-forwarded-host']) ?? fwd.host);
      const prior = headers.forwarded;
      out.push('forwarded', prior ? `${prior}, ${forwardedHere}` : forwardedHere);
    } else {
      out.push('x-forwarded-for', fwd.peer, 'x-forwarded-proto', fwd.proto, 'x-forwarded-host', fwd.host);
      out.push('forwarded', forwardedHere);
    }
    out.push('x-request-id', requestId);
  }
  if (certHeaders !== undefined && fwd.cert !== undefined) out.push(certHeaders[0], fwd.cert.subject, certHeaders[1], fwd.cert.fingerprint);
  return out;
}

/**
 * The headers of a request Switchboard makes by itself (a cache's background revalidation): the
 * given fields (lower-case names) without hop-by-hop and forwarding headers, then `host` and
 * `x-request-id`. No X-Forwarded-* or Forwarded: there is no client to speak of.
 */
export function ownRequestHeaders(fields: Readonly<Record<string, string>>, requestId: string, hostHeader: string): string[] {
  const out: string[] = ['host', hostHeader];
  for (const name in fields) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || REBUILT.has(lower)) continue;
    out.push(lower, fields[name]);
  }
  out.push('x-request-id', requestId);
  return out;
}

function firstValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Copies an upstream response's headers (undici's parsed object, lower-cased names) into a flat
 * list for `writeHead`, without hop-by-hop headers and those named in its Connection header.
 */
export function downstreamResponseHeaders(headers: Record<string, string | string[] | undefined>, requestId: string): string[] {
  const out: string[] = [];
  const named = connectionTokens(firstValue(headers.connection));
  for (const name in headers) {
    if (RESPONSE_HOP_BY_HOP.has(name)) continue;
    if (named?.includes(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  if (headers['x-request-id'] === undefined) out.push('x-request-id', requestId);
  return out;
}

/** Client address after trusted-proxy resolution: the rightmost X-Forwarded-For entry not trusted. */
export function clientAddress(peer: string, trusted: boolean, xff: string | undefined, isTrusted: (a: string) => boolean): string {
  if (!trusted || !xff) return peer;
  const parts = xff.split(',');
  for (let i = parts.length - 1; i >= 0; i--) {
    const a = parts[i].trim();
    if (a && !isTrusted(a)) return a;
  }
  return parts[0].trim() || peer;
}
