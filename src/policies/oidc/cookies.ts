/**
 * The `oidc` policy's cookies: what they hold, how they are sealed, and their Set-Cookie lines.
 *
 * Both cookies are JWTs encrypted with JWE `dir` + `A256GCM` (jose): authenticated encryption, so
 * the browser can neither read nor change them, and a changed byte fails to open. Their keys are
 * derived from the configured `cookieSecret` with HKDF-SHA256, one per use (session, login) and per
 * provider and client, so a login cookie never opens as a session and one policy's session never
 * opens in another policy with the same secret. Nothing is kept on the gateway: a session lives in
 * its cookie alone (so every worker and instance sharing the secret reads it, and a restart or a
 * reload keeps it).
 *
 * - The **login cookie** (one per login under way, named after its state, Path = the callback
 *   path, lifetime `loginTimeout`): the state, the PKCE verifier, the nonce, the redirect URI
 *   used and the path to return to.
 * - The **session cookie** (Path=/): the ID token's claims, the refresh token if one was issued,
 *   the ID token itself for the logout's `id_token_hint` when it fits, the granted scopes, when to
 *   refresh and when the session ends for good. Kept under MAX_COOKIE bytes: the ID token goes
 *   first, then every claim but `iss` and `sub`.
 */
import { hkdfSync } from 'node:crypto';
import type * as Jose from 'jose';
import type { JWTPayload } from 'jose';
import { lazyModule } from '../../util/lazy-module.ts';

const jose = lazyModule<typeof Jose>('jose');

/** Bytes of `name=value` a session cookie may take (browsers keep at least 4096 per cookie, attributes included). */
export const MAX_COOKIE = 3800;

/** What the login cookie holds. */
export interface LoginState {
  /** state */
  readonly s: string;
  /** PKCE code verifier */
  readonly v: string;
  /** nonce */
  readonly n: string;
  /** the redirect URI sent with the authorization request (the token request must repeat it) */
  readonly u: string;
  /** the path (and query) of this site to return to */
  readonly r: string;
}

/** What the session cookie holds. */
export interface SessionState {
  /** The ID token's claims (without the nonce and the hashes, which served their purpose). */
  readonly c: Readonly<Record<string, unknown>>;
  /** The ID token, for the logout's id_token_hint (absent when it did not fit). */
  readonly t?: string;
  /** The refresh token, when the provider issued one. */
  readonly r?: string;
  /** The granted scopes, space-separated. */
  readonly sc?: string;
  /** When (s since the epoch) the tokens expire: refresh then, or end the session without a refresh token. */
  readonly ra: number;
  /** When (s since the epoch) the session ends whatever happens (login time + sessionMaxAge). */
  readonly ae: number;
}

/** The two keys of one policy. */
export interface CookieKeys {
  readonly session: Uint8Array;
  readonly login: Uint8Array;
}

/** Keys for the session and login cookies, from `cookieSecret`, bound to the provider and the client. */
export function cookieKeys(secret: string, issuer: string, clientId: string): CookieKeys {
  const derive = (use: string): Uint8Array => new Uint8Array(hkdfSync('sha256', secret, 'switchboard oidc cookie', `${use}\n${issuer}\n${clientId}`, 32));
  return { session: derive('session'), login: derive('login') };
}

/** `payload` sealed (encrypted and authenticated) with `key`, expiring at `exp` (s since the epoch). */
export function seal(payload: object, key: Uint8Array, exp: number): Promise<string> {
  return new (jose().EncryptJWT)(payload as JWTPayload).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).setExpirationTime(exp).encrypt(key);
}

/** Why a cookie did not open: it has expired, or it is not one of ours (changed, another key, garbage). */
export type Unsealed<T> = { readonly ok: true; readonly payload: T } | { readonly ok: false; readonly expired: boolean };

/** Opens a sealed cookie; never throws. */
export async function unseal<T>(value: string, key: Uint8Array): Promise<Unsealed<T>> {
  try {
    const { payload } = await jose().jwtDecrypt(value, key, { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'], requiredClaims: ['exp'] });
    return { ok: true, payload: payload as T };
  } catch (err) {
    return { ok: false, expired: err instanceof jose().errors.JWTExpired };
  }
}

/** Whether an opened session has the shape this module writes (a cookie of an older format is not trusted further). */
export function isSessionState(p: unknown): p is SessionState {
  if (typeof p !== 'object' || p === null) return false;
  const s = p as Record<string, unknown>;
  return (
    typeof s.c === 'object' &&
    s.c !== null &&
    typeof (s.c as Record<string, unknown>).sub === 'string' &&
    typeof s.ra === 'number' &&
    typeof s.ae === 'number' &&
    (s.t === undefined || typeof s.t === 'string') &&
    (s.r === undefined || typeof s.r === 'string') &&
    (s.sc === undefined || typeof s.sc === 'string')
  );
}

/** Whether an opened login cookie has the shape this module writes. */
export function isLoginState(p: unknown): p is LoginState {
  if (typeof p !== 'object' || p === null) return false;
  const l = p as Record<string, unknown>;
  return typeof l.s === 'string' && typeof l.v === 'string' && typeof l.n === 'string' && typeof l.u === 'string' && typeof l.r === 'string';
}

/** ID token claims not worth keeping once the token was validated. */
const SPENT_CLAIMS = new Set(['nonce', 'at_hash', 'c_hash', 's_hash']);

/** The claims a session keeps of an ID token. */
export function keptClaims(claims: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(claims)) if (!SPENT_CLAIMS.has(k)) out[k] = v;
  return out;
}

/**
 * The session sealed into a cookie value of at most MAX_COOKIE bytes with its name: the whole
 * state, else without the ID token, else with only `iss` and `sub` of the claims. `sealed` is the
 * state the cookie holds; `trimmed` says what had to go (for a log line).
 */
export async function sealSession(
  state: SessionState,
  key: Uint8Array,
  exp: number,
  name: string,
): Promise<{ value: string; sealed: SessionState; trimmed: 'none' | 'idToken' | 'claims' }> {
  const fits = (value: string): boolean => name.length + 1 + value.length <= MAX_COOKIE;
  const whole = await seal(state, key, exp);
  if (fits(whole)) return { value: whole, sealed: state, trimmed: 'none' };
  const noToken: SessionState = { ...state, t: undefined };
  const smaller = await seal(noToken, key, exp);
  if (fits(smaller)) return { value: smaller, sealed: noToken, trimmed: 'idToken' };
  const minimal: SessionState = { ...noToken, c: { iss: state.c.iss, sub: state.c.sub } };
  return { value: await seal(minimal, key, exp), sealed: minimal, trimmed: 'claims' };
}

/** Attributes every cookie of the policy has. */
function attributes(path: string, maxAge: number, secure: boolean): string {
  return `; Path=${path}; Max-Age=${Math.max(0, Math.floor(maxAge))}; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}

/** A Set-Cookie value: HttpOnly, SameSite=Lax, Secure when asked. */
export function setCookie(name: string, value: string, path: string, maxAge: number, secure: boolean): string {
  return `${name}=${value}${attributes(path, maxAge, secure)}`;
}

/** A Set-Cookie value that removes cookie `name` of `path`. */
export function clearCookie(name: string, path: string, secure: boolean): string {
  return `${name}=${attributes(path, 0, secure)}`;
}
