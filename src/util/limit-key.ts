/**
 * The keys that rate limits, quotas and in-flight limits count by: `consumer`, `credential`, `ip`,
 * `header:NAME`, `path`, `route`, or a list of them (one count per combination). Shared by the
 * rate-limit, concurrency-limit and quota policies (src/policies/).
 *
 * A key never holds a secret: `consumer` is the consumer's name and `credential` the credential's
 * id (`Identity.credential`, e.g. `alice/api-key/0`), both set by an authentication policy earlier
 * in the route's list. Without an identity (no authentication policy ran, or it let an anonymous
 * request through without one) both fall back to the client address, so an unauthenticated client
 * is still limited, by address. A missing header counts as the empty value: every request without
 * it shares one count. Long values (a header, a path) are hashed so that a key stays short.
 */
import { hash } from 'node:crypto';
import { z } from 'zod';

/** What a key reads of a request: the shape of the policies' `Session` (util imports no layer above it). */
export interface KeySource {
  readonly identity: { readonly consumer: { readonly name: string }; readonly credential: string } | undefined;
  readonly client: { readonly ip: string };
  readonly request: { readonly path: string; readonly headers: Readonly<Record<string, string | string[] | undefined>> };
  readonly route: string | undefined;
}

const KEY_PATTERN = /^(consumer|credential|ip|path|route|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$/;

const part = z.string().regex(KEY_PATTERN, 'consumer, credential, ip, path, route or header:NAME');

/** The schema of a `key:` (one part or a list). */
export const limitKey = z.union([part, z.array(part).min(1)]).meta({
  description:
    'What is counted separately: `consumer` (the consumer an authentication policy before this one identified), `credential` (its credential id, never the secret), `ip` (the client address after trusted proxies), `header:NAME` (a request header’s value), `path` (the request path), `route` (the route’s name), or a list of them (one count per combination). Without an identity, `consumer` and `credential` count by client address.',
});

/** Values longer than this are replaced by their SHA-256 (a state key stays short whatever a client sends). */
const MAX_VALUE = 64;

/** Turns one key part into a function from the session to its value (with a prefix per kind). */
function partOf(name: string): (s: KeySource) => string {
  switch (name) {
    case 'consumer':
      return (s) => {
        const id = s.identity;
        return id === undefined ? `ip=${s.client.ip}` : `c=${id.consumer.name}`;
      };
    case 'credential':
      return (s) => {
        const id = s.identity;
        return id === undefined ? `ip=${s.client.ip}` : `k=${bounded(id.credential)}`;
      };
    case 'ip':
      return (s) => `ip=${s.client.ip}`;
    case 'path':
      return (s) => `p=${bounded(s.request.path)}`;
    case 'route':
      return (s) => `r=${s.route ?? ''}`;
    default: {
      const header = name.slice('header:'.length).toLowerCase();
      return (s) => {
        const v = s.request.headers[header];
        return `h=${bounded(v === undefined ? '' : typeof v === 'string' ? v : v.join(', '))}`;
      };
    }
  }
}

function bounded(value: string): string {
  return value.length <= MAX_VALUE ? value : `#${hash('sha256', value, 'base64url')}`;
}

/** Compiles a `key:` into the function the filter calls per request (parts joined by U+001F, which no header value holds). */
export function compileKey(key: string | readonly string[]): (s: KeySource) => string {
  const parts = (typeof key === 'string' ? [key] : key).map(partOf);
  if (parts.length === 1) return parts[0]!;
  return (s) => {
    let out = parts[0]!(s);
    for (let i = 1; i < parts.length; i++) out += `\u001f${parts[i]!(s)}`;
    return out;
  };
}
