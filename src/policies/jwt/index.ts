/**
 * `jwt`: identifies the caller by a JSON Web Token (RFC 7519) signed by one identity provider,
 * verified with jose against keys from the config only (a JWKS fetched from the provider, a JWKS
 * file, PEM public keys, or an HMAC secret). Combines with the other authentication policies of a
 * route as auth-common.ts says (any-of, `required`, `anonymous`, identity headers upstream).
 *
 * - Envoy `jwt_authn` / Kong `jwt`: issuer, audiences, a remote JWKS with a cache, the token from a
 *   header, query parameter or cookie, claims to headers. Kong needs a consumer per key; here a
 *   token's subject maps to a consumer through `consumers.*.credentials: [{ type: jwt, subject }]`,
 *   and with `consumerRequired: false` (the default) an unmapped subject is a consumer of its own
 *   (named by the subject, no groups): rate limits per consumer then work per subject.
 * - Algorithms are pinned by `algorithms` (never `none`); HMAC only with a `secret`, never with a
 *   public key, so a token signed with the provider's public key as an HMAC secret is refused.
 *   `exp` is required; `nbf`, `iat` checked with `clockSkew`; `maxLifetime` bounds `iat`'s age.
 * - Header parameters `jku`, `x5u`, `jwk`, `x5c` are never used: keys come only from the config.
 * - Several providers on one route: one `jwt` policy each; a policy finding a token of another
 *   issuer (its unverified `iss`) passes it on when another authentication policy follows.
 * - Verified tokens are cached, keyed by the SHA-256 of the whole token, never past `exp` (nor the
 *   `maxLifetime`), at most CACHE_TTL and CACHE_SIZE entries; concurrent requests with one token
 *   share one verification. Failures are never cached. The cache belongs to the filter: per worker
 *   and per config generation (a reload starts empty).
 * - A remote JWKS is fetched once for the machine and shared by its workers and generations
 *   through the machine's state; each worker keeps its parsed copy (keys.ts).
 * - No token → 401 AUTH_REQUIRED with `WWW-Authenticate: Bearer`; a token that does not verify, for
 *   whatever reason → 401 AUTH_INVALID with `Bearer error="invalid_token"` (RFC 6750 §3.1), the same
 *   answer every time; the provider's keys unavailable → 503 AUTH_UNAVAILABLE.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import type * as Jose from 'jose';
import type { CryptoKey, JSONWebKeySet, JWTVerifyOptions, JWTPayload } from 'jose';
import { lazyModule } from '../../util/lazy-module.ts';

const jose = lazyModule<typeof Jose>('jose');
import { parseDuration } from '../../util/units.ts';
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
import { Authenticator, authOptions, type AuthOptions, type TokenFacts } from '../auth-common.ts';
import type { Consumer, Filter, PolicyType, Reply, ResolveContext, Session } from '../filter.ts';
import { ASYMMETRIC, HMAC, jwtConfig, type RawJwt } from './config.ts';
import { KeysUnavailable, type KeyLookup, RemoteKeys } from './keys.ts';

/** Verified tokens remembered, per filter (per worker, per generation). */
export const CACHE_SIZE = 10_000;
/** ms a verified token is remembered at most (less when it expires sooner). */
export const CACHE_TTL = 5 * 60_000;

type Source =
  | { readonly kind: 'remote'; readonly url: string; readonly cacheTtl: number; readonly cooldown: number; readonly timeout: number }
  | { readonly kind: 'local'; readonly jwks: JSONWebKeySet }
  /** PEM keys carry no `kid`: each one fitting the token's algorithm is tried (jose checks the fit). */
  | { readonly kind: 'pem'; readonly keys: readonly KeyObject[] }
  | { readonly kind: 'secret'; readonly secret: Uint8Array };

export interface ResolvedJwt extends AuthOptions {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly source: Source;
  /** Seconds (jose's unit). */
  readonly clockSkew: number;
  /** Seconds, or undefined. */
  readonly maxLifetime: number | undefined;
  readonly from: TokenFrom;
  readonly claimHeaders: readonly ClaimHeader[];
  readonly subjectClaim: string;
  readonly scopesClaim: string | undefined;
  readonly consumerRequired: boolean;
}

/** A filter of this policy, with counters for tests and diagnostics (per worker, per generation). */
export interface JwtFilter extends Filter {
  readonly stats: { verifications: number; readonly jwksFetches: number };
}

interface Verified extends TokenFacts {
  readonly consumer: Consumer;
  readonly credential: string;
  /** ms since the epoch after which the entry must not be used. */
  readonly expires: number;
}

const INVALID: Reply = Object.freeze({
  status: 401,
  headers: Object.freeze({ 'www-authenticate': 'Bearer error="invalid_token"' }),
  error: Object.freeze({ code: 'AUTH_INVALID', message: 'the credential was not accepted' }),
});

/** PEM public keys or certificates; problems reported at `keys[i]`. */
function pemKeys(pems: readonly string[], ctx: ResolveContext): KeyObject[] {
  const keys: KeyObject[] = [];
  pems.forEach((pem, i) => {
    if (pem.includes('PRIVATE KEY')) {
      ctx.problem({ path: ['keys', i], expected: 'a public key or certificate in PEM', found: 'a private key (keep it out of the gateway)' });
      return;
    }
    try {
      keys.push(createPublicKey(pem));
    } catch {
      ctx.problem({ path: ['keys', i], expected: 'a public key or certificate in PEM', found: 'text that does not parse as one' });
    }
  });
  return keys;
}

function fileJwks(file: string, ctx: ResolveContext): JSONWebKeySet {
  let doc: JSONWebKeySet;
  try {
    doc = JSON.parse(readFileSync(isAbsolute(file) ? file : resolvePath(ctx.baseDir, file), 'utf8')) as JSONWebKeySet;
    jose().createLocalJWKSet(doc); // throws when it is not a JWKS
  } catch (err) {
    ctx.problem({ path: ['jwks', 'file'], expected: 'a readable JWKS file ({"keys": [...]})', found: err instanceof Error ? err.message : String(err) });
    return { keys: [] };
  }
  return doc;
}

function resolveSource(raw: RawJwt, algorithms: readonly string[], ctx: ResolveContext): Source {
  const given = (['jwks', 'keys', 'secret'] as const).filter((k) => raw[k] !== undefined);
  if (given.length !== 1) {
    ctx.problem({ path: [], expected: 'exactly one of jwks, keys, secret', found: given.length === 0 ? 'none of them' : given.join(' and ') });
    return { kind: 'local', jwks: { keys: [] } };
  }
  const hmac = algorithms.filter((a) => (HMAC as readonly string[]).includes(a));
  if (raw.secret !== undefined) {
    if (hmac.length !== algorithms.length) {
      ctx.problem({ path: ['algorithms'], expected: 'HMAC algorithms only (HS256, HS384, HS512) with a secret', found: algorithms.join(', ') });
    }
    return { kind: 'secret', secret: new TextEncoder().encode(raw.secret) };
  }
  if (hmac.length > 0) {
    ctx.problem({
      path: ['algorithms'],
      expected: `asymmetric algorithms (${ASYMMETRIC.join(', ')}) with public keys: an HMAC algorithm needs a secret`,
      found: hmac.join(', '),
    });
  }
  if (raw.keys !== undefined) return { kind: 'pem', keys: pemKeys(raw.keys, ctx) };
  const jwks = raw.jwks!;
  if ('file' in jwks) return { kind: 'local', jwks: fileJwks(jwks.file, ctx) };
  return {
    kind: 'remote',
    url: jwks.url,
    cacheTtl: parseDuration(jwks.cacheTtl ?? '10m'),
    cooldown: parseDuration(jwks.cooldown ?? '30s'),
    timeout: parseDuration(jwks.timeout ?? '5s'),
  };
}

/** The scopes of a token: `scope` as a space-separated string or an array of strings. */
function scopesOf(payload: JWTPayload, claim: string | undefined): readonly string[] {
  const value = claim === undefined ? (payload.scope ?? payload.scp) : payload[claim];
  if (typeof value === 'string') return Object.freeze(value.split(' ').filter((s) => s !== ''));
  if (Array.isArray(value)) return Object.freeze(value.filter((s): s is string => typeof s === 'string'));
  return Object.freeze([]);
}

/** The payload of the first key that verifies `token`, or undefined. */
async function tryEach(token: string, keys: AsyncIterable<CryptoKey>, options: JWTVerifyOptions): Promise<JWTPayload | undefined> {
  for await (const key of keys) {
    try {
      return (await jose().jwtVerify(token, key, options)).payload;
    } catch {
      // the next one
    }
  }
  return undefined;
}

export const jwtPolicy = {
  type: 'jwt',
  description:
    'Identifies the caller by a JSON Web Token verified against the provider’s keys (a JWKS fetched and cached, a JWKS file, PEM keys or an HMAC secret), with pinned algorithms, issuer, audiences and lifetime checks; verified tokens cached. 401 with `WWW-Authenticate: Bearer` otherwise, 503 AUTH_UNAVAILABLE when the keys cannot be fetched. Upstream gets X-Consumer-Name, claim headers and, by default, not the token.',
  config: jwtConfig,
  onListeners: false,

  resolve(raw, ctx): ResolvedJwt {
    const algorithms = raw.algorithms ?? ['RS256', 'ES256'];
    return {
      ...authOptions(raw),
      issuer: raw.issuer,
      audiences: raw.audiences,
      algorithms,
      source: resolveSource(raw, algorithms, ctx),
      clockSkew: parseDuration(raw.clockSkew ?? '30s') / 1000,
      maxLifetime: raw.maxLifetime === undefined || raw.maxLifetime === 0 ? undefined : parseDuration(raw.maxLifetime) / 1000,
      from: parseTokenFrom(raw.from),
      claimHeaders: parseClaimHeaders(raw.claimHeaders),
      subjectClaim: raw.subjectClaim ?? 'sub',
      scopesClaim: raw.scopesClaim,
      consumerRequired: raw.consumerRequired ?? false,
    };
  },

  create(config, deps): JwtFilter {
    const { issuer, from, claimHeaders, subjectClaim, scopesClaim, consumerRequired, hideCredentials, maxLifetime } = config;
    const auth = new Authenticator(deps, config, 'Bearer');
    const consumers = deps.consumers;
    const policy = deps.name;
    const source = config.source;
    // The JWKS is shared by the machine's workers through the machine's state (keys.ts says why
    // not the fleet's); `failOpen`: while it cannot be reached, each worker fetches for itself.
    const remote =
      source.kind === 'remote'
        ? new RemoteKeys({ ...source, policy }, (obj, msg) => deps.log.warn({ policy, ...obj }, msg), (deps.state.machine ?? deps.state).user('failOpen'))
        : undefined;
    const keys: ReadonlyArray<KeyLookup | Uint8Array | KeyObject> =
      source.kind === 'remote'
        ? [remote!.key]
        : source.kind === 'local'
          ? [jose().createLocalJWKSet(source.jwks) as KeyLookup]
          : source.kind === 'pem'
            ? source.keys
            : [source.secret];
    const options = {
      algorithms: [...config.algorithms],
      issuer,
      audience: [...config.audiences],
      clockTolerance: config.clockSkew,
      maxTokenAge: maxLifetime,
      requiredClaims: ['exp'],
    };
    const stats = {
      verifications: 0,
      get jwksFetches(): number {
        return remote?.fetches ?? 0;
      },
    };
    // Per worker and per generation (see above): verifications by token hash, and those under way.
    const results = new TokenResults<Verified, KeysUnavailable | undefined>(CACHE_SIZE);

    async function check(token: string, hash: string): Promise<Verified | KeysUnavailable | undefined> {
      stats.verifications++;
      let payload: JWTPayload | undefined;
      for (const key of keys) {
        try {
          payload = (await jose().jwtVerify(token, key as KeyLookup, options)).payload;
          break;
        } catch (err) {
          if (err instanceof KeysUnavailable) return err;
          // Several keys of the JWKS fit a token without `kid` (jose leaves trying them to the caller).
          if (err instanceof jose().errors.JWKSMultipleMatchingKeys) payload = await tryEach(token, err as unknown as AsyncIterable<CryptoKey>, options);
          if (payload !== undefined) break;
        }
      }
      if (payload === undefined) return undefined;
      const subject = payload[subjectClaim];
      if (typeof subject !== 'string' || subject === '') return undefined;
      const who = subjectConsumer(consumers, issuer, subject, consumerRequired);
      if (who === undefined) return undefined;
      const now = Date.now();
      let expires = Math.min((payload.exp as number) * 1000, now + CACHE_TTL);
      if (maxLifetime !== undefined && typeof payload.iat === 'number') expires = Math.min(expires, (payload.iat + maxLifetime) * 1000);
      const verified: Verified = Object.freeze({
        consumer: who.consumer,
        credential: who.credential ?? `jwt:${issuer}:${subject}`,
        scopes: scopesOf(payload, scopesClaim),
        claims: Object.freeze(payload),
        expires,
      });
      return results.remember(hash, verified);
    }

    async function verify(s: Session, token: string, hash: string): Promise<Reply | undefined> {
      const v = await results.once(hash, () => check(token, hash));
      if (v === undefined) return auth.invalid(INVALID);
      if (v instanceof KeysUnavailable) return auth.unavailable();
      return auth.identify(s, v.consumer, v.credential, v);
    }

    return {
      stats,
      // A token in the query string is a credential in the request target: the access log redacts it.
      secretQueryParams: from.kind === 'query' ? [from.name] : undefined,
      onRequest(s) {
        if (auth.done(s)) return undefined; // an earlier authentication policy identified it
        const token = tokenOf(s, from);
        if (token === undefined) return auth.missing(s);
        const hash = tokenHash(token);
        const hit = results.fresh(hash);
        if (hit !== undefined) return auth.identify(s, hit.consumer, hit.credential, hit);
        // Another provider's token (by its unverified iss) is left to the next authentication policy of the route.
        if (auth.followed(s)) {
          let iss: unknown;
          try {
            iss = jose().decodeJwt(token).iss;
          } catch {
            iss = undefined;
          }
          if (iss !== issuer) return auth.missing(s);
        }
        return verify(s, token, hash);
      },
      onUpstreamRequest: tokenUpstream(auth, policy, claimHeaders, from, hideCredentials),
    };
  },
} satisfies PolicyType<typeof jwtConfig, ResolvedJwt>;
