/**
 * `oauth2-introspection`: identifies the caller by an opaque access token, asking the
 * authorization server whether it is active (OAuth 2.0 Token Introspection, RFC 7662) with
 * oauth4webapi, the gateway authenticating as a client (`client_secret_basic` or
 * `client_secret_post`). Combines with the other authentication policies of a route as
 * auth-common.ts says (any-of, `required`, `anonymous`, identity headers upstream).
 *
 * - Kong's `oauth2-introspection` (Enterprise), APISIX `openid-connect` with `introspection_endpoint`,
 *   Envoy needs an ext_authz service. Here the token's subject (`sub`, else `client_id` for a
 *   client_credentials token, which has no user) maps to a consumer through
 *   `consumers.*.credentials: [{ type: jwt, subject }]`, the issuer being the answer's `iss` (the
 *   same directory the `jwt` policy uses, so one consumer can hold a user's JWTs and opaque tokens).
 *   With `consumerRequired: false` (the default) an unmapped subject is a consumer of its own.
 *   `username` is a display name, not an identifier: it is never used to pick a consumer.
 * - Identity: scopes from `scope` (space-separated), claims = the introspection answer (for
 *   `authorize` and `claimHeaders`).
 * - `active: false` → 401 AUTH_INVALID with `Bearer error="invalid_token"`; so is an active answer
 *   whose `exp` has passed. The endpoint unreachable, slower than `timeout`, answering other than
 *   200 with a JSON object carrying a boolean `active` (a 5xx, a 401 because the gateway's client
 *   credentials are wrong, HTML) → 503 AUTH_UNAVAILABLE, with a log line (never the token, never
 *   the client secret), and nothing cached.
 * - Answers are cached, keyed by the SHA-256 of the token: active ones for at most `cacheTtl` and
 *   never past `exp`; `active: false` for `negativeCacheTtl`. At most CACHE_SIZE entries (the
 *   oldest dropped). Concurrent requests with one token share one introspection. The cache belongs
 *   to the filter: per worker and per config generation (a reload starts empty); not shared between
 *   workers or machines because a miss costs one round trip and a shared cache would cost one too.
 * - `http://` endpoints are refused by oauth4webapi; the policy allows them (its
 *   `allowInsecureRequests`) only when the config names a loopback host.
 */
import {
  allowInsecureRequests,
  type AuthorizationServer,
  type Client,
  type ClientAuth,
  ClientSecretBasic,
  ClientSecretPost,
  type IntrospectionResponse,
  introspectionRequest,
  processIntrospectionResponse,
  ResponseBodyError,
} from 'oauth4webapi';
import { parseDuration } from '../../util/units.ts';
import { Authenticator, authOptions, type AuthOptions, checkProviderUrl, type TokenFacts } from '../auth-common.ts';
import {
  type ClaimHeader,
  parseClaimHeaders,
  parseTokenFrom,
  subjectConsumer,
  type TokenFrom,
  tokenHash,
  tokenOf,
  TokenResults,
  tokenUpstream,
} from '../bearer-token.ts';
import { observeFetch } from '../events.ts';
import type { Consumer, Filter, PolicyType, Reply, Session } from '../filter.ts';
import { introspectionConfig } from './config.ts';

/** Introspection answers remembered, per filter (per worker, per generation). */
export const CACHE_SIZE = 10_000;

export interface ResolvedIntrospection extends AuthOptions {
  readonly endpoint: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly clientAuth: 'basic' | 'post';
  /** Whether the endpoint is plain http:// to a loopback host (allowed only then). */
  readonly insecure: boolean;
  /** ms */
  readonly timeout: number;
  /** ms */
  readonly cacheTtl: number;
  /** ms */
  readonly negativeCacheTtl: number;
  readonly from: TokenFrom;
  readonly claimHeaders: readonly ClaimHeader[];
  readonly consumerRequired: boolean;
}

/** A filter of this policy, with a counter for tests and diagnostics (per worker, per generation). */
export interface IntrospectionFilter extends Filter {
  readonly stats: { introspections: number };
}

interface Active extends TokenFacts {
  readonly consumer: Consumer;
  readonly credential: string;
}

/** A cached answer: an active token's identity, or undefined for one that is not (negative cache). */
interface Entry {
  readonly active: Active | undefined;
  /** ms since the epoch after which the entry must not be used. */
  readonly expires: number;
}

/** The endpoint could not give an answer (not cached). */
const UNAVAILABLE_RESULT: unique symbol = Symbol('unavailable');

const INVALID: Reply = Object.freeze({
  status: 401,
  headers: Object.freeze({ 'www-authenticate': 'Bearer error="invalid_token"' }),
  error: Object.freeze({ code: 'AUTH_INVALID', message: 'the credential was not accepted' }),
});

/** The subject of an answer: `sub`, else `client_id` (a client_credentials token). */
function subjectOf(r: IntrospectionResponse): string | undefined {
  if (typeof r.sub === 'string' && r.sub !== '') return r.sub;
  if (typeof r.client_id === 'string' && r.client_id !== '') return r.client_id;
  return undefined;
}

export const introspectionPolicy = {
  type: 'oauth2-introspection',
  description:
    'Identifies the caller by an opaque access token, asking the authorization server’s introspection endpoint (RFC 7662) as an authenticated client; answers cached (active ones never past `exp`, inactive ones briefly). `active: false` → 401 with `WWW-Authenticate: Bearer error="invalid_token"`; the endpoint down or failing → 503 AUTH_UNAVAILABLE. Upstream gets X-Consumer-Name, claim headers and, by default, not the token.',
  config: introspectionConfig,
  onListeners: false,

  resolve(raw, ctx): ResolvedIntrospection {
    const insecure = checkProviderUrl(raw.endpoint, 'endpoint', ctx);
    return {
      ...authOptions(raw),
      endpoint: raw.endpoint,
      clientId: raw.clientId,
      clientSecret: raw.clientSecret,
      clientAuth: raw.clientAuth ?? 'basic',
      insecure,
      timeout: parseDuration(raw.timeout ?? '5s'),
      cacheTtl: parseDuration(raw.cacheTtl ?? '5m'),
      negativeCacheTtl: parseDuration(raw.negativeCacheTtl ?? '10s'),
      from: parseTokenFrom(raw.from),
      claimHeaders: parseClaimHeaders(raw.claimHeaders),
      consumerRequired: raw.consumerRequired ?? false,
    };
  },

  create(config, deps): IntrospectionFilter {
    const { endpoint, from, claimHeaders, consumerRequired, hideCredentials, cacheTtl, negativeCacheTtl, timeout } = config;
    const auth = new Authenticator(deps, config, 'Bearer');
    const consumers = deps.consumers;
    const policy = deps.name;
    const as: AuthorizationServer = { issuer: new URL(endpoint).origin, introspection_endpoint: endpoint };
    const client: Client = { client_id: config.clientId };
    const clientAuth: ClientAuth = config.clientAuth === 'post' ? ClientSecretPost(config.clientSecret) : ClientSecretBasic(config.clientSecret);
    const options = {
      signal: () => AbortSignal.timeout(timeout),
      [allowInsecureRequests]: config.insecure,
    };
    const stats = { introspections: 0 };
    // Per worker and per generation (see above): answers by token hash, and introspections under way.
    const results = new TokenResults<Entry, typeof UNAVAILABLE_RESULT>(CACHE_SIZE);
    const remember = (hash: string, entry: Entry): Entry => results.remember(hash, entry);

    async function introspect(token: string, hash: string): Promise<Entry | typeof UNAVAILABLE_RESULT> {
      stats.introspections++;
      let answer: IntrospectionResponse;
      try {
        answer = await observeFetch(policy, 'introspection', async () =>
          processIntrospectionResponse(as, client, await introspectionRequest(as, client, clientAuth, token, options)),
        );
      } catch (err) {
        // The message says what failed (status, content type, timeout, refused); never the token or the secret.
        const reason =
          err instanceof ResponseBodyError
            ? `${err.status} ${err.error}`
            : err instanceof Error
              ? err.cause instanceof Error
                ? err.cause.message
                : err.message
              : 'unknown';
        deps.log.warn({ policy, endpoint, reason }, 'token introspection failed: requests get 503 AUTH_UNAVAILABLE');
        return UNAVAILABLE_RESULT;
      }
      const now = Date.now();
      const inactive = { active: undefined, expires: now + negativeCacheTtl };
      if (answer.active !== true) return remember(hash, inactive);
      const exp = typeof answer.exp === 'number' ? answer.exp * 1000 : Number.POSITIVE_INFINITY;
      if (exp <= now) return remember(hash, inactive);
      const subject = subjectOf(answer);
      if (subject === undefined) return remember(hash, inactive);
      const who = subjectConsumer(consumers, typeof answer.iss === 'string' ? answer.iss : '', subject, consumerRequired);
      if (who === undefined) return remember(hash, inactive);
      const active: Active = Object.freeze({
        consumer: who.consumer,
        credential: who.credential ?? `introspection:${endpoint}:${subject}`,
        scopes: Object.freeze(typeof answer.scope === 'string' ? answer.scope.split(' ').filter((s) => s !== '') : []),
        claims: Object.freeze(answer),
      });
      // Not remembered (but used once) when cacheTtl is 0.
      return remember(hash, { active, expires: Math.min(exp, now + cacheTtl) });
    }

    function answer(s: Session, entry: Entry): Reply | undefined {
      const a = entry.active;
      return a === undefined ? auth.invalid(INVALID) : auth.identify(s, a.consumer, a.credential, a);
    }

    async function check(s: Session, token: string, hash: string): Promise<Reply | undefined> {
      const entry = await results.once(hash, () => introspect(token, hash));
      return entry === UNAVAILABLE_RESULT ? auth.unavailable() : answer(s, entry);
    }

    return {
      stats,
      // A token in the query string is a credential in the request target: the access log redacts it.
      secretQueryParams: from.kind === 'query' ? [from.name] : undefined,
      onRequest(s) {
        if (auth.done(s)) return undefined; // an earlier authentication policy identified it
        const token = tokenOf(s, from);
        if (token === undefined) return auth.missing(s);
        if (token === '') return auth.invalid(INVALID);
        const hash = tokenHash(token);
        const hit = results.fresh(hash);
        if (hit !== undefined) return answer(s, hit);
        return check(s, token, hash);
      },
      onUpstreamRequest: tokenUpstream(auth, policy, claimHeaders, from, hideCredentials),
    };
  },
} satisfies PolicyType<typeof introspectionConfig, ResolvedIntrospection>;
