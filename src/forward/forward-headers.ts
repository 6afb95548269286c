/**
 * The forward proxy's header rules on top of the reverse proxy's hygiene (transport/headers.ts:
 * hop-by-hop out, Proxy-Authorization and Proxy-Connection included, Host from the destination):
 *
 *   anonymity    transparent   X-Forwarded-For/-Proto/-Host, Forwarded, X-Request-Id, Via
 *                anonymous     Via only (the default): no client address reaches the destination
 *                elite         nothing: the client's own Via, X-Forwarded-* and Forwarded are removed too
 *
 * Client-sent X-Forwarded-* and Forwarded are never passed on (the reverse proxy replaces them;
 * here they are replaced, transparent, or dropped). `Via: <version> <pseudonym>` (RFC 9110 §7.6.3)
 * is added to the request and to the response, after any the client or destination sent.
 */
import { forwardHeaders } from '../http/proxy.ts';
import type { RequestSession } from '../http/session.ts';
import type { ForwardConfig } from '../config/types.ts';

/** The Via value this proxy adds for a request received as `version` (`HTTP/1.1` → `1.1 name`, `HTTP/2` → `2 name`). */
export function viaValue(version: string, pseudonym: string): string {
  return `${version.startsWith('HTTP/') ? version.slice(5) : version} ${pseudonym}`;
}

/** Whether this forward config adds Via (not elite, and a pseudonym configured). */
export function addsVia(f: ForwardConfig): boolean {
  return f.anonymity !== 'elite' && f.via !== undefined;
}

/**
 * The request headers for the destination, or undefined when a header name breaks the listener's
 * underscore policy `reject`. Host is the destination the client named.
 */
export function destinationHeaders(s: RequestSession, f: ForwardConfig): string[] | undefined {
  // Only transparent names the client; the client's own forwarding headers are dropped at every level.
  const headers = forwardHeaders(s, f.anonymity === 'transparent');
  if (headers === undefined) return undefined;
  if (f.anonymity === 'elite') {
    let w = 2;
    for (let i = 2; i < headers.length; i += 2) {
      if (headers[i].length === 3 && headers[i].toLowerCase() === 'via') continue;
      headers[w] = headers[i];
      headers[w + 1] = headers[i + 1];
      w += 2;
    }
    headers.length = w;
  }
  if (addsVia(f)) headers.push('via', viaValue(s.down.version, f.via!));
  return headers;
}
