/**
 * `basic-auth`: identifies the caller by `Authorization: Basic` (RFC 7617) against the consumers'
 * basic credentials, whose passwords the config holds only as bcrypt or argon2 hashes.
 *
 * - nginx `auth_basic` / Traefik `basicAuth`: an htpasswd-style user list, a realm in the
 *   challenge. Here the users are consumers, so a route's upstream and rate limits see who called.
 *   An htpasswd file (`htpasswd`, read and checked by src/config/resolve-consumers.ts on every
 *   load) adds its users, each a consumer named by its username; only the policies naming that
 *   file accept them (nginx's `auth_basic_user_file` is per location too).
 * - bcrypt and argon2 are slow on purpose (tens of milliseconds a check). Successful checks are
 *   cached, keyed by the SHA-256 of the whole header value (never the header itself), for
 *   CACHE_TTL and at most CACHE_SIZE entries, so a client sending the same credentials on every
 *   request pays for one check; concurrent requests with the same header share one check. Failed
 *   checks are never cached (a changed password works at once after the reload that sets it; a
 *   wrong one costs its sender a check each time). The cache belongs to the filter, so it is per
 *   worker and per config generation: a reload starts empty, and a removed user is out at once.
 * - An unknown username is checked against a dummy bcrypt hash, so the answer takes as long as
 *   for a known one with a wrong password: the timing does not tell which usernames exist.
 * - `checkPassword` serves a socks5 listener's RFC 1929 username/password with the same lookup,
 *   hashes and cache (keyed apart from any header).
 * - No `Authorization: Basic` → 401 AUTH_REQUIRED (or the next authentication policy, or
 *   `anonymous`: auth-common.ts); a wrong user or password, or a header that does not decode →
 *   401 AUTH_INVALID. Both with `WWW-Authenticate: Basic realm="…", charset="UTF-8"`.
 * - On a forward-proxy listener (`RequestView.proxyAuthentication`, RFC 9110 §11.7): the credential
 *   is read from `Proxy-Authorization`, the answers are 407 (PROXY_AUTH_REQUIRED, AUTH_INVALID)
 *   with `Proxy-Authenticate`, and the client's own `Authorization` (meant for the destination) is
 *   left alone. `Proxy-Authorization` is hop-by-hop: it is never forwarded.
 */
import { createHash } from 'node:crypto';
import { resolve as resolvePath } from 'node:path';
import type { CredentialMatch, Filter, PolicyType, Reply, Session } from '../filter.ts';
import { Authenticator, authOptions, type AuthOptions } from '../auth-common.ts';
import { basicAuthConfig } from './config.ts';
import { verifyPassword } from './verify.ts';

export interface ResolvedBasicAuth extends AuthOptions {
  readonly realm: string;
  /** The htpasswd file's absolute path (its users are in the consumer directory under it), or undefined. */
  readonly htpasswd: string | undefined;
}

/** Successful checks remembered, per filter (per worker, per generation). */
export const CACHE_SIZE = 10_000;
/** ms a successful check is remembered. */
export const CACHE_TTL = 5 * 60_000;
/** bcrypt of a random string (cost 10): what unknown usernames are checked against. */
const DUMMY = { kind: 'bcrypt', hash: '$2b$10$LSUgodmzPaB33n3k12UcbOXQQPmmzf8rocA96eT2ylH0/Ya777EIi' } as const;

interface Cached {
  readonly match: CredentialMatch;
  readonly expires: number;
}

/** Whether an Authorization value is of the Basic scheme (`Basic`, then a space or nothing). */
function isBasic(value: string): boolean {
  return value.slice(0, 5).toLowerCase() === 'basic' && (value.length === 5 || value[5] === ' ');
}

/** `user:password` of a Basic header value, or undefined when it is not one. */
export function decodeBasic(value: string): { user: string; password: string } | undefined {
  const text = Buffer.from(value.slice(6).trim(), 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

export const basicAuthPolicy = {
  type: 'basic-auth',
  description:
    'Identifies the caller by `Authorization: Basic` against the consumers’ basic credentials and, with `htpasswd`, the users of an htpasswd file (bcrypt or argon2 hashes; successful checks cached); 401 with `WWW-Authenticate: Basic realm="…"` otherwise. Upstream gets X-Consumer-Name/-Groups and, by default, not the Authorization header.',
  config: basicAuthConfig,
  onListeners: false,

  resolve(raw, ctx): ResolvedBasicAuth {
    return { ...authOptions(raw), realm: raw.realm ?? 'switchboard', htpasswd: raw.htpasswd === undefined ? undefined : resolvePath(ctx.baseDir, raw.htpasswd) };
  },

  create(config, deps): Filter {
    const auth = new Authenticator(deps, config, `Basic realm="${config.realm}", charset="UTF-8"`);
    const consumers = deps.consumers;
    // The users of this policy's htpasswd file (none when it names none, or the file has none).
    const fileUsers = config.htpasswd === undefined ? undefined : consumers.htpasswd(config.htpasswd);
    const hide = config.hideCredentials;
    // Per worker and per generation (see above): header hash → a successful check, oldest first.
    const cache = new Map<string, Cached>();
    // Checks under way, so that concurrent requests with one header run one check.
    const running = new Map<string, Promise<CredentialMatch | undefined>>();

    async function check(basic: { user: string; password: string } | undefined, key: string): Promise<CredentialMatch | undefined> {
      if (basic === undefined) return undefined;
      const credential = consumers.basic(basic.user) ?? fileUsers?.get(basic.user);
      const ok = await verifyPassword(basic.password, credential?.password ?? DUMMY);
      if (!ok || credential === undefined) return undefined;
      if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
      cache.set(key, { match: credential, expires: Date.now() + CACHE_TTL });
      return credential;
    }

    /** The cached or checked match of `key` (a hash of the whole credential); `decode` gives the user and password on a miss. */
    function lookup(key: string, decode: () => { user: string; password: string } | undefined): Promise<CredentialMatch | undefined> {
      const hit = cache.get(key);
      if (hit !== undefined) {
        if (hit.expires > Date.now()) return Promise.resolve(hit.match);
        cache.delete(key);
      }
      let pending = running.get(key);
      if (pending === undefined) {
        pending = check(decode(), key).finally(() => running.delete(key));
        running.set(key, pending);
      }
      return pending;
    }

    async function verify(s: Session, header: string): Promise<Reply | undefined> {
      const key = createHash('sha256').update(header).digest('hex');
      const hit = cache.get(key);
      // The common case answered without waiting on a promise.
      if (hit !== undefined && hit.expires > Date.now()) return auth.identify(s, hit.match.consumer, hit.match.credential);
      const match = await lookup(key, () => decodeBasic(header));
      if (match === undefined) return auth.invalid(undefined, s);
      return auth.identify(s, match.consumer, match.credential);
    }

    return {
      onRequest(s) {
        if (auth.done(s)) return undefined; // an earlier authentication policy identified it
        const request = s.request;
        const header = (request.proxyAuthentication === true ? request.headers['proxy-authorization'] : request.headers.authorization) as string | undefined;
        if (header === undefined || !isBasic(header)) return auth.missing(s);
        return verify(s, header);
      },
      checkPassword(user, password) {
        // Keyed apart from every Authorization header (a NUL never starts one), the username's length
        // making the split unambiguous; the same cache and checks as for a header.
        const key = createHash('sha256').update(`\0socks\0${user.length}\0${user}\0${password}`).digest('hex');
        return lookup(key, () => ({ user, password })).catch(() => undefined);
      },
      onUpstreamRequest(s, head) {
        auth.upstream(s, head);
        if (!hide || s.request.proxyAuthentication === true) return;
        const value = head.headers.get('authorization');
        if (value !== undefined && isBasic(value)) head.headers.delete('authorization');
      },
    };
  },
} satisfies PolicyType<typeof basicAuthConfig, ResolvedBasicAuth>;
