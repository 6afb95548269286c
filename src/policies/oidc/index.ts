/**
 * `oidc`: browser login for web apps with OpenID Connect: the authorization code flow with PKCE
 * (S256), `state` and `nonce` (OpenID Connect Core 1.0 §3.1, RFC 7636, RFC 9700), the provider's
 * metadata by discovery, a session in an encrypted cookie, refresh, and RP-initiated logout. What
 * oauth2-proxy, APISIX `openid-connect` and the paid editions of Kong and Traefik offer. Combines
 * with the other authentication policies of a route as auth-common.ts says (any-of, `required`,
 * `anonymous`, identity headers upstream).
 *
 * - **No session**: a browser navigation (browser.ts) is sent to the provider's authorization
 *   endpoint (302) with a new login cookie (cookies.ts); anything else gets 401 AUTH_REQUIRED with
 *   `WWW-Authenticate: OIDC login="<loginPath>"`. When another authentication policy follows on
 *   the route, the request is passed on as auth-common.ts says (put `oidc` last: a browser then
 *   reaches the login after the others found nothing).
 * - **Callback** (`redirectPath`): the login cookie named after the `state` must open and match
 *   (else 400 OIDC_STATE_INVALID); the provider's error (`?error=access_denied`) is 401
 *   OIDC_LOGIN_DENIED; the code is exchanged and the ID token validated (provider.ts; else 401
 *   AUTH_INVALID); then the session cookie is set and the browser sent back to the path it came
 *   for (same site only).
 * - **Session**: the cookie opens (else 401 AUTH_INVALID, or a new login for a navigation), its
 *   subject maps to a consumer as the `jwt` policy's does (`subjectConsumer`), and the request is
 *   identified with the ID token's claims and the granted scopes. When the tokens expire it is
 *   refreshed with the refresh token if there is one (the new cookie set on the response), else,
 *   or when the refresh fails, or after `sessionMaxAge`, it is over: a navigation logs in again,
 *   anything else gets 401 AUTH_REQUIRED; either way the cookie is cleared.
 * - **Logout** (`logoutPath`): the cookie cleared, the refresh token revoked (when the provider has
 *   a revocation endpoint), and the browser sent to the provider's `end_session_endpoint` (with
 *   `id_token_hint`, `client_id` and `post_logout_redirect_uri`), or, without one, to
 *   `postLogoutPath`.
 * - Upstream: the identity headers and `claimHeaders`; the session cookie is removed from the
 *   Cookie header (`hideCredentials`, default true).
 *
 * State: sessions live in their cookies (nothing on the gateway: every worker and instance with the
 * same `cookieSecret` reads them). Per filter, so per worker and per config generation: the
 * provider's metadata (provider.ts) and the sessions already opened, by the SHA-256 of the cookie
 * (`TokenResults`, until the tokens expire; concurrent requests with one expired cookie share one
 * refresh). Not shared between workers: a miss costs one decryption, and a refresh one round trip.
 */
import { generateRandomCodeVerifier, generateRandomNonce, generateRandomState, calculatePKCECodeChallenge, type AuthorizationServer } from 'oauth4webapi';
import { cookieValue, queryValue } from '../../util/request-values.ts';
import { parseDuration } from '../../util/units.ts';
import { Authenticator, authOptions, type AuthOptions, checkProviderUrl, type TokenFacts } from '../auth-common.ts';
import { type ClaimHeader, parseClaimHeaders, subjectConsumer, tokenHash, TokenResults, tokenUpstream } from '../bearer-token.ts';
import type { Consumer, Filter, PolicyType, Reply, Session } from '../filter.ts';
import { isNavigation, returnPath } from './browser.ts';
import { oidcConfig, type RawOidc } from './config.ts';
import {
  clearCookie,
  cookieKeys,
  isLoginState,
  isSessionState,
  keptClaims,
  type LoginState,
  seal,
  sealSession,
  type SessionState,
  setCookie,
  unseal,
} from './cookies.ts';
import { failed, ProviderClient, type Tokens } from './provider.ts';

/** Sessions remembered, per filter (per worker, per generation). */
export const CACHE_SIZE = 10_000;

/** Parameters of the authorization request the policy sets itself (refused in `authorizationParams`). */
const OWN_PARAMS = new Set(['client_id', 'redirect_uri', 'response_type', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method']);

export interface ResolvedOidc extends AuthOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly clientAuth: 'basic' | 'post';
  /** Whether the issuer is plain http:// to a loopback host (allowed only then). */
  readonly insecure: boolean;
  readonly redirectPath: string;
  readonly loginPath: string;
  readonly logoutPath: string;
  readonly postLogoutPath: string;
  /** The site's origin as configured (`URL.origin`), or undefined: the request's own. */
  readonly publicOrigin: string | undefined;
  /** Space-separated, `openid` first. */
  readonly scope: string;
  readonly authorizationParams: ReadonlyArray<readonly [string, string]>;
  readonly cookieSecret: string;
  readonly cookieName: string | undefined;
  readonly cookieSecure: boolean;
  /** ms */
  readonly sessionMaxAge: number;
  /** ms */
  readonly loginTimeout: number;
  /** ms */
  readonly timeout: number;
  readonly claimHeaders: readonly ClaimHeader[];
  readonly consumerRequired: boolean;
}

/** A filter of this policy, with counters for tests and diagnostics (per worker, per generation). */
export interface OidcFilter extends Filter {
  readonly stats: { readonly discoveries: number; refreshes: number; logins: number };
}

/** An opened session, as remembered by cookie hash. */
interface Opened extends TokenFacts {
  readonly consumer: Consumer;
  readonly credential: string;
  /** ms since the epoch after which the cookie must be opened again (the tokens expire, or the session ends). */
  readonly expires: number;
  /** A Set-Cookie for the response: the refreshed session replacing the cookie the request came with. */
  readonly setCookie?: string;
}

/** Why a cookie gave no session: not ours (changed, another key), over (expired, refresh refused, not allowed any more), or the provider unreachable for a refresh. */
type Closed = 'invalid' | 'over' | 'unavailable';

const STATE_INVALID: Reply = Object.freeze({
  status: 400,
  headers: Object.freeze({ 'cache-control': 'no-store' }),
  error: Object.freeze({ code: 'OIDC_STATE_INVALID', message: 'the login’s state is missing, expired or does not match: start the login again' }),
});
const NO_HOST: Reply = Object.freeze({
  status: 400,
  error: Object.freeze({ code: 'BAD_REQUEST', message: 'the request names no host: a login cannot be started' }),
});

const now = (): number => Math.floor(Date.now() / 1000);

/** A Reply with a Set-Cookie (or several) added. */
function withCookies(reply: Reply, cookies: readonly string[]): Reply {
  return { ...reply, headers: { ...reply.headers, 'set-cookie': cookies } };
}

/** The granted scopes of a session. */
function scopesOf(state: SessionState): readonly string[] {
  return Object.freeze(state.sc === undefined ? [] : state.sc.split(' ').filter((x) => x !== ''));
}

/** A token of the cookie name's alphabet from a policy name. */
function cookieToken(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_');
}

export const oidcPolicy = {
  type: 'oidc',
  description:
    'Browser login with OpenID Connect (authorization code flow with PKCE, state and nonce; the provider found by discovery): browser navigations without a session are sent to the provider, other requests get 401; the session lives in an encrypted cookie, is refreshed with the refresh token, and ends at `logoutPath` (with the provider’s end-session endpoint). Upstream gets X-Consumer-Name, claim headers and, by default, not the cookie.',
  config: oidcConfig,
  onListeners: false,

  resolve(raw: RawOidc, ctx): ResolvedOidc {
    const insecure = checkProviderUrl(raw.issuer, 'issuer', ctx);
    const paths = {
      redirectPath: raw.redirectPath ?? '/oauth2/callback',
      loginPath: raw.loginPath ?? '/oauth2/login',
      logoutPath: raw.logoutPath ?? '/oauth2/logout',
      postLogoutPath: raw.postLogoutPath ?? '/',
    };
    const seen = new Map<string, string>();
    for (const [key, path] of Object.entries(paths)) {
      const other = seen.get(path);
      if (other !== undefined) ctx.problem({ path: [key], expected: `a path other than ${other}'s`, found: JSON.stringify(path) });
      seen.set(path, key);
    }
    let publicOrigin: string | undefined;
    if (raw.publicUrl !== undefined) {
      const u = new URL(raw.publicUrl);
      publicOrigin = u.origin;
      if ((u.pathname !== '/' && u.pathname !== '') || u.search !== '' || u.hash !== '' || u.username !== '') {
        ctx.problem({ path: ['publicUrl'], expected: 'an origin only (scheme, host and port: https://app.example.com)', found: JSON.stringify(raw.publicUrl) });
      }
    }
    const params = Object.entries(raw.authorizationParams ?? {});
    for (const [name] of params) {
      if (OWN_PARAMS.has(name)) {
        ctx.problem({ path: ['authorizationParams', name], expected: 'a parameter the policy does not set itself', found: JSON.stringify(name), atKey: true });
      }
    }
    const scopes = raw.scopes ?? ['openid', 'profile', 'email'];
    return {
      ...authOptions(raw),
      issuer: raw.issuer,
      clientId: raw.clientId,
      clientSecret: raw.clientSecret,
      clientAuth: raw.clientAuth ?? 'basic',
      insecure,
      ...paths,
      publicOrigin,
      scope: ['openid', ...scopes.filter((s) => s !== 'openid')].join(' '),
      authorizationParams: params,
      // Without cookieSecret, the client secret is the key material, under a use of its own.
      cookieSecret: raw.cookieSecret ?? `client-secret\n${raw.clientSecret}`,
      cookieName: raw.cookieName,
      cookieSecure: raw.cookieSecure ?? true,
      sessionMaxAge: parseDuration(raw.sessionMaxAge ?? '12h'),
      loginTimeout: parseDuration(raw.loginTimeout ?? '10m'),
      timeout: parseDuration(raw.timeout ?? '5s'),
      claimHeaders: parseClaimHeaders(raw.claimHeaders),
      consumerRequired: raw.consumerRequired ?? false,
    };
  },

  create(config, deps): OidcFilter {
    const { issuer, clientId, redirectPath, loginPath, logoutPath, postLogoutPath, publicOrigin, cookieSecure: secure, consumerRequired } = config;
    const policy = deps.name;
    const consumers = deps.consumers;
    const warn = (obj: object, msg: string): void => deps.log.warn({ policy, ...obj }, msg);
    const auth = new Authenticator(deps, config, `OIDC login="${loginPath}"`);
    const provider = new ProviderClient(config, warn, deps.name);
    const keys = cookieKeys(config.cookieSecret, issuer, clientId);
    const base = (config.cookieName ?? `sb-oidc-${cookieToken(policy)}`).replace(/^__(Host|Secure)-/, '');
    /** The session cookie: `__Host-` when Secure (Path=/, no Domain: no other host can set it). */
    const sessionName = secure ? `__Host-${base}` : base;
    const loginName = (state: string): string => `${secure ? '__Secure-' : ''}${base}-login-${state.slice(0, 12)}`;
    const clearSession = clearCookie(sessionName, '/', secure);
    const invalidSession: Reply = Object.freeze(withCookies(auth.invalid(), [clearSession]));
    const loginTtl = Math.max(1, Math.floor(config.loginTimeout / 1000));
    const sessionTtl = Math.max(1, Math.floor(config.sessionMaxAge / 1000));
    /** Per-request: a Set-Cookie for the response of a request passed on (a refreshed or cleared session). */
    const pendingCookie: object = Object.freeze({ name: `oidc ${policy} cookie` });
    const stats = {
      get discoveries(): number {
        return provider.discoveries;
      },
      refreshes: 0,
      logins: 0,
    };
    // Per worker and per generation (see above): sessions opened, by cookie hash, and refreshes under way.
    const results = new TokenResults<Opened, Closed>(CACHE_SIZE);

    /** The site's origin: configured, or the request's scheme and Host; undefined without a Host. */
    function originOf(s: Session): string | undefined {
      if (publicOrigin !== undefined) return publicOrigin;
      if (s.request.authority === '') return undefined;
      try {
        return new URL(`${s.request.scheme}://${s.request.authority}`).origin;
      } catch {
        return undefined;
      }
    }

    function cookieHeader(s: Session): string | undefined {
      const c = s.request.headers.cookie;
      return typeof c === 'string' ? c : undefined;
    }

    /** A 302 to the provider's authorization endpoint with a new login cookie (and `also`, e.g. clearing a dead session). */
    async function startLogin(s: Session, returnTo: string | undefined, also: readonly string[] = []): Promise<Reply> {
      const origin = originOf(s);
      if (origin === undefined) return NO_HOST;
      const as = await provider.metadata();
      if (as === undefined) return auth.unavailable();
      const login: LoginState = {
        s: generateRandomState(),
        v: generateRandomCodeVerifier(),
        n: generateRandomNonce(),
        u: origin + redirectPath,
        r: returnPath(returnTo, origin),
      };
      const url = new URL(as.authorization_endpoint!);
      const q = url.searchParams;
      for (const [k, v] of config.authorizationParams) q.set(k, v);
      q.set('client_id', clientId);
      q.set('redirect_uri', login.u);
      q.set('response_type', 'code');
      q.set('scope', config.scope);
      q.set('state', login.s);
      q.set('nonce', login.n);
      q.set('code_challenge', await calculatePKCECodeChallenge(login.v));
      q.set('code_challenge_method', 'S256');
      const sealed = await seal(login, keys.login, now() + loginTtl);
      stats.logins++;
      return {
        status: 302,
        headers: { location: url.href, 'cache-control': 'no-store', 'set-cookie': [setCookie(loginName(login.s), sealed, redirectPath, loginTtl, secure), ...also] },
      };
    }

    /** The session of a successful exchange or refresh, sealed; its Set-Cookie and what the request is identified with. */
    async function session(
      tokens: Tokens,
      previous: SessionState | undefined,
      end: number,
    ): Promise<{ cookie: string; value: string; opened: Omit<Opened, 'consumer' | 'credential'> } | undefined> {
      const t = now();
      const claims = tokens.claims === undefined ? previous?.c : keptClaims(tokens.claims);
      if (claims === undefined) return undefined;
      // The tokens expire with the new ID token (a refresh answer may have none: the old one's exp is past) or the access token.
      const idExp = tokens.claims !== undefined && typeof claims.exp === 'number' ? claims.exp : Number.POSITIVE_INFINITY;
      const atExp = tokens.expiresIn === undefined ? Number.POSITIVE_INFINITY : t + tokens.expiresIn;
      const ra = Math.min(idExp, atExp, end);
      const state: SessionState = {
        c: claims,
        t: tokens.idToken ?? previous?.t,
        r: tokens.refreshToken ?? previous?.r,
        sc: tokens.scope ?? previous?.sc,
        ra,
        ae: end,
      };
      const exp = state.r === undefined ? Math.min(ra, end) : end;
      const { value, sealed, trimmed } = await sealSession(state, keys.session, exp, sessionName);
      if (trimmed !== 'none')
        warn(
          { dropped: trimmed === 'idToken' ? 'the ID token (logout without id_token_hint)' : 'the ID token and every claim but iss and sub' },
          'oidc: the session did not fit in a cookie',
        );
      return {
        cookie: setCookie(sessionName, value, '/', exp - t, secure),
        value,
        opened: { scopes: scopesOf(sealed), claims: Object.freeze(sealed.c), expires: ra * 1000 },
      };
    }

    /** The consumer of a session's subject, or undefined when it may not pass (see subjectConsumer). */
    function consumerOf(claims: Readonly<Record<string, unknown>>): { consumer: Consumer; credential: string } | undefined {
      const sub = claims.sub;
      if (typeof sub !== 'string' || sub === '') return undefined;
      const who = subjectConsumer(consumers, issuer, sub, consumerRequired);
      return who === undefined ? undefined : { consumer: who.consumer, credential: who.credential ?? `oidc:${issuer}:${sub}` };
    }

    async function callback(s: Session): Promise<Reply> {
      const params = new URLSearchParams(s.request.query);
      const state = params.get('state');
      if (state === null || !/^[A-Za-z0-9_-]{16,256}$/.test(state)) return STATE_INVALID;
      const name = loginName(state);
      const clear = [clearCookie(name, redirectPath, secure)];
      const sealed = cookieValue(cookieHeader(s), name);
      const opened = sealed === undefined || sealed === '' ? undefined : await unseal<LoginState>(sealed, keys.login);
      if (opened === undefined || !opened.ok || !isLoginState(opened.payload) || opened.payload.s !== state) {
        return opened === undefined ? STATE_INVALID : withCookies(STATE_INVALID, clear);
      }
      const login = opened.payload;
      const as = await provider.metadata();
      if (as === undefined) return auth.unavailable();
      const tokens = await provider.exchange(as, params, { state, verifier: login.v, nonce: login.n, redirectUri: login.u });
      if (failed(tokens)) {
        if (tokens.kind === 'unavailable') return withCookies(auth.unavailable(), clear);
        if (tokens.kind === 'invalid') return withCookies(auth.invalid(), clear);
        return {
          status: 401,
          headers: { 'cache-control': 'no-store', 'set-cookie': clear },
          error: { code: 'OIDC_LOGIN_DENIED', message: `the identity provider did not complete the login (${tokens.error})` },
        };
      }
      const who = tokens.claims === undefined ? undefined : consumerOf(tokens.claims);
      const made = who === undefined ? undefined : await session(tokens, undefined, now() + sessionTtl);
      if (who === undefined || made === undefined) return withCookies(auth.invalid(), clear);
      results.remember(tokenHash(made.value), { ...who, ...made.opened });
      return { status: 302, headers: { location: login.r, 'cache-control': 'no-store', 'set-cookie': [made.cookie, ...clear] } };
    }

    async function logout(s: Session): Promise<Reply> {
      const origin = originOf(s);
      if (origin === undefined) return NO_HOST;
      const cookie = cookieValue(cookieHeader(s), sessionName);
      const opened = cookie === undefined || cookie === '' ? undefined : await unseal<SessionState>(cookie, keys.session);
      const state = opened?.ok === true && isSessionState(opened.payload) ? opened.payload : undefined;
      const as: AuthorizationServer | undefined = await provider.metadata();
      if (as !== undefined && state?.r !== undefined) await provider.revoke(as, state.r);
      let location = postLogoutPath;
      if (typeof as?.end_session_endpoint === 'string') {
        const url = new URL(as.end_session_endpoint);
        url.searchParams.set('client_id', clientId);
        url.searchParams.set('post_logout_redirect_uri', origin + postLogoutPath);
        if (state?.t !== undefined) url.searchParams.set('id_token_hint', state.t);
        location = url.href;
      }
      return { status: 302, headers: { location, 'cache-control': 'no-store', 'set-cookie': clearSession } };
    }

    /** Opens a session cookie, refreshing it when its tokens expired. */
    async function open(cookie: string, hash: string): Promise<Opened | Closed> {
      const opened = await unseal<SessionState>(cookie, keys.session);
      if (!opened.ok) return opened.expired ? 'over' : 'invalid';
      const state = opened.payload;
      if (!isSessionState(state)) return 'invalid';
      const who = consumerOf(state.c);
      if (who === undefined) return 'over';
      const t = now();
      if (t >= state.ae) return 'over';
      if (t < state.ra) {
        return results.remember(hash, {
          ...who,
          scopes: scopesOf(state),
          claims: Object.freeze(state.c),
          expires: Math.min(state.ra, state.ae) * 1000,
        });
      }
      if (state.r === undefined) return 'over';
      const as = await provider.metadata();
      if (as === undefined) return 'unavailable';
      stats.refreshes++;
      const tokens = await provider.refresh(as, state.r);
      if (failed(tokens)) return tokens.kind === 'unavailable' ? 'unavailable' : 'over';
      if (tokens.claims !== undefined && tokens.claims.sub !== state.c.sub) return 'over';
      const made = await session(tokens, state, state.ae);
      if (made === undefined) return 'over';
      results.remember(tokenHash(made.value), { ...who, ...made.opened });
      // The cookie the request came with now stands for the refreshed session: requests still sending it get the new one.
      return results.remember(hash, { ...who, ...made.opened, setCookie: made.cookie });
    }

    /** No session (none, or a dead one, whose cookie `clear` removes): pass on, anonymous, a login, or 401. */
    function unauthenticated(s: Session, clear: boolean): Reply | undefined | Promise<Reply> {
      const verdict = auth.missing(s);
      if (verdict === undefined) {
        if (clear) s.local(pendingCookie, clearSession);
        return undefined;
      }
      if (verdict.status === 401 && isNavigation(s)) return startLogin(s, s.request.path + s.request.query, clear ? [clearSession] : []);
      return clear ? withCookies(verdict, [clearSession]) : verdict;
    }

    function identified(s: Session, o: Opened): Reply | undefined {
      if (o.setCookie !== undefined) s.local(pendingCookie, o.setCookie);
      return auth.identify(s, o.consumer, o.credential, o);
    }

    async function resume(s: Session, cookie: string, hash: string): Promise<Reply | undefined> {
      const o = await results.once(hash, () => open(cookie, hash));
      if (o === 'unavailable') return auth.unavailable();
      if (o === 'over') return unauthenticated(s, true);
      // A cookie that is not ours: an API client is refused; a browser (e.g. after cookieSecret changed) logs in again.
      if (o === 'invalid') return isNavigation(s) ? unauthenticated(s, true) : invalidSession;
      return identified(s, o);
    }

    return {
      stats,
      onRequest(s) {
        const path = s.request.path;
        if (path === redirectPath) return callback(s);
        if (path === logoutPath) return logout(s);
        if (path === loginPath) {
          const origin = originOf(s);
          return origin === undefined ? NO_HOST : startLogin(s, returnPath(queryValue(s.request.query, 'rd'), origin));
        }
        if (auth.done(s)) return undefined; // an earlier authentication policy identified it
        const cookie = cookieValue(cookieHeader(s), sessionName);
        if (cookie === undefined || cookie === '') return unauthenticated(s, cookie === '');
        const hash = tokenHash(cookie);
        const hit = results.fresh(hash);
        if (hit !== undefined) return identified(s, hit);
        return resume(s, cookie, hash);
      },
      onUpstreamRequest: tokenUpstream(auth, policy, config.claimHeaders, { kind: 'cookie', name: sessionName }, config.hideCredentials),
      onResponse(s, head) {
        const cookie = s.local<string>(pendingCookie);
        if (cookie !== undefined) head.headers.append('set-cookie', cookie);
        return undefined;
      },
    };
  },
} satisfies PolicyType<typeof oidcConfig, ResolvedOidc>;
