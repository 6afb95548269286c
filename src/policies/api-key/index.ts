/**
 * `api-key`: identifies the caller by an API key from a header, a query parameter or a cookie,
 * looked up among the `consumers`' api-key credentials (src/policies/consumers.ts keeps only their
 * SHA-256 hashes). Combines with the other authentication policies of a route as auth-common.ts
 * says (any-of, `anonymous`, identity headers upstream).
 *
 * - Kong `key-auth`: `key_names` looked for in headers, query and body, `hide_credentials`,
 *   `anonymous`; keys kept hashed only in Konnect. Here keys are always hashed, and looked for in
 *   one header, one query parameter and one cookie, in that order.
 * - The comparison is of SHA-256 hashes, by a hash-map lookup: timing can tell an attacker at most
 *   something about the hash of what they sent, never about a stored key (see Consumers.apiKey in ../consumers.ts).
 * - A missing key is 401 AUTH_REQUIRED, a wrong one 401 AUTH_INVALID; both carry
 *   `WWW-Authenticate: ApiKey header="x-api-key"` (no registered scheme exists for API keys; this
 *   tells a client where to put it) and never say more.
 */
import type { Filter, PolicyType } from '../filter.ts';
import { Authenticator, authOptions, type AuthOptions } from '../auth-common.ts';
import { apiKeyConfig } from './config.ts';
import { withoutCookie, withoutQueryParam } from '../../util/request-values.ts';

export { withoutQueryParam };

export interface ResolvedApiKey extends AuthOptions {
  /** Lower-case header name. */
  readonly header: string;
  readonly query: string | undefined;
  readonly cookie: string | undefined;
}

/** The value of query parameter `name` in `query` (with or without its `?`), decoded; undefined when absent. */
export function queryParam(query: string, name: string): string | undefined {
  // Most requests: nothing to parse (a `%` may encode the name, so it is parsed then).
  if (!query.includes(`${name}=`) && !query.includes('%')) return undefined;
  return new URLSearchParams(query).get(name) ?? undefined;
}

/** The value of cookie `name` among Cookie header values, or undefined. */
export function cookieValue(values: readonly string[] | string | undefined, name: string): string | undefined {
  if (values === undefined) return undefined;
  for (const header of typeof values === 'string' ? [values] : values) {
    if (!header.includes(name)) continue;
    for (const part of header.split(';')) {
      const eq = part.indexOf('=');
      if (eq >= 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}

export const apiKeyPolicy = {
  type: 'api-key',
  description:
    'Identifies the caller by an API key (header, query parameter or cookie) among the consumers’ api-key credentials; 401 AUTH_REQUIRED without one, 401 AUTH_INVALID for a wrong one. Upstream gets X-Consumer-Name/-Groups and, by default, not the key.',
  config: apiKeyConfig,
  onListeners: false,

  resolve(raw): ResolvedApiKey {
    return { ...authOptions(raw), header: (raw.header ?? 'x-api-key').toLowerCase(), query: raw.query, cookie: raw.cookie };
  },

  create(config, deps): Filter {
    const { header, query, cookie, hideCredentials } = config;
    const auth = new Authenticator(deps, config, `ApiKey header="${header}"`);
    const consumers = deps.consumers;
    return {
      // A key in the query string is a credential in the request target: the access log redacts it.
      secretQueryParams: query === undefined ? undefined : [query],
      onRequest(s) {
        if (auth.done(s)) return undefined; // an earlier authentication policy identified it
        const h = s.request.headers;
        let key = h[header] as string | undefined;
        if (key === undefined && query !== undefined && s.request.query !== '') key = queryParam(s.request.query, query);
        if (key === undefined && cookie !== undefined) key = cookieValue(h.cookie, cookie);
        if (key === undefined) return auth.missing(s);
        const match = consumers.apiKey(key);
        if (match === undefined) return auth.invalid();
        return auth.identify(s, match.consumer, match.credential);
      },
      onUpstreamRequest(s, head) {
        auth.upstream(s, head);
        if (!hideCredentials) return;
        head.headers.delete(header);
        if (query !== undefined) head.target = withoutQueryParam(head.target, query);
        if (cookie !== undefined) {
          const values = head.headers.getAll('cookie');
          if (values.length === 0 || cookieValue(values, cookie) === undefined) return;
          head.headers.delete('cookie');
          for (const v of values) {
            const rest = withoutCookie(v, cookie);
            if (rest !== undefined) head.headers.append('cookie', rest);
          }
        }
      },
    };
  },
} satisfies PolicyType<typeof apiKeyConfig, ResolvedApiKey>;
