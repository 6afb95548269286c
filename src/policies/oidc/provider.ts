/**
 * The `oidc` policy's conversations with the OpenID provider, with oauth4webapi: discovery (once
 * per filter, i.e. per worker and per config generation, until it succeeds), the authorization
 * code exchange with PKCE and the ID token's validation (iss, aud, exp, iat, nonce, azp), the
 * refresh token grant, and revoking a refresh token at logout.
 *
 * The ID token comes straight from the token endpoint over a connection the gateway opened (TLS,
 * or loopback), so, as OpenID Connect Core 3.1.3.7 allows and oauth4webapi does, its issuer is
 * established by that connection and its signature is not checked against the JWKS.
 *
 * Failures are sorted for the answer: the provider said no (`invalid`: a code already used, a
 * nonce that does not match, an ID token for another client), the user or the provider ended the
 * login (`denied`, with the provider's error code), or the provider could not be asked (`unavailable`:
 * refused, timed out, 5xx, not JSON, or the gateway's own client credentials refused). Each is
 * logged with its reason, never a code, a token or the client secret.
 */
import {
  allowInsecureRequests,
  type AuthorizationServer,
  AuthorizationResponseError,
  authorizationCodeGrantRequest,
  type Client,
  type ClientAuth,
  ClientSecretBasic,
  ClientSecretPost,
  discoveryRequest,
  getValidatedIdTokenClaims,
  OperationProcessingError,
  processAuthorizationCodeResponse,
  processDiscoveryResponse,
  processRefreshTokenResponse,
  processRevocationResponse,
  RESPONSE_IS_NOT_CONFORM,
  RESPONSE_IS_NOT_JSON,
  ResponseBodyError,
  refreshTokenGrantRequest,
  revocationRequest,
  type TokenEndpointResponse,
  validateAuthResponse,
  WWWAuthenticateChallengeError,
} from 'oauth4webapi';
import { observeFetch } from '../events.ts';

export interface ProviderOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly clientAuth: 'basic' | 'post';
  /** Plain http:// to a loopback issuer (oauth4webapi refuses it otherwise). */
  readonly insecure: boolean;
  /** ms a request to the provider may take. */
  readonly timeout: number;
}

/** What a successful code exchange or refresh gives. */
export interface Tokens {
  /** The validated ID token's claims (absent from a refresh answer without an ID token). */
  readonly claims: Readonly<Record<string, unknown>> | undefined;
  readonly idToken: string | undefined;
  readonly refreshToken: string | undefined;
  /** s, when the answer said. */
  readonly expiresIn: number | undefined;
  readonly scope: string | undefined;
}

export type Failure = { readonly kind: 'invalid' } | { readonly kind: 'unavailable' } | { readonly kind: 'denied'; readonly error: string };

const INVALID: Failure = Object.freeze({ kind: 'invalid' });
const UNAVAILABLE: Failure = Object.freeze({ kind: 'unavailable' });

/** An error code of the provider fit to show (it came in a URL anyone can write). */
function providerError(code: string): string {
  return /^[a-z_]{1,64}$/.test(code) ? code : 'error';
}

/** Whether a failed exchange means the provider could not be asked (503) rather than that it refused (401). */
function unavailable(err: unknown): boolean {
  if (err instanceof ResponseBodyError) return err.status >= 500 || err.error === 'invalid_client';
  if (err instanceof WWWAuthenticateChallengeError) return true; // the gateway's client credentials refused
  if (err instanceof OperationProcessingError) return err.code === RESPONSE_IS_NOT_CONFORM || err.code === RESPONSE_IS_NOT_JSON;
  return true; // refused, reset, timed out, DNS
}

/** The reason of a failure for the log: what failed, never a token, a code or the secret. */
function reason(err: unknown): string {
  if (err instanceof ResponseBodyError) return `${err.status} ${err.error}`;
  if (err instanceof Error) return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
  return 'unknown';
}

/** One provider and the gateway's client there; per filter (per worker, per config generation). */
export class ProviderClient {
  readonly #options: ProviderOptions;
  readonly #warn: (obj: object, msg: string) => void;
  readonly #client: Client;
  readonly #auth: ClientAuth;
  readonly #http: { signal: () => AbortSignal; [allowInsecureRequests]: boolean };
  /** The provider's metadata once discovery succeeded (then never fetched again by this filter). */
  #metadata: AuthorizationServer | undefined;
  #pending: Promise<AuthorizationServer | undefined> | undefined;
  /** Discovery requests made (for tests and diagnostics). */
  discoveries = 0;

  /** The policy's name, for the metrics of its requests to the provider (events.ts). */
  readonly #policy: string;

  constructor(options: ProviderOptions, warn: (obj: object, msg: string) => void, policy = 'oidc') {
    this.#policy = policy;
    this.#options = options;
    this.#warn = warn;
    this.#client = { client_id: options.clientId };
    this.#auth = options.clientAuth === 'post' ? ClientSecretPost(options.clientSecret) : ClientSecretBasic(options.clientSecret);
    this.#http = { signal: () => AbortSignal.timeout(options.timeout), [allowInsecureRequests]: options.insecure };
  }

  /** The provider's metadata, discovered on first use; undefined while it cannot be had (concurrent callers share one request). */
  metadata(): Promise<AuthorizationServer | undefined> | AuthorizationServer {
    if (this.#metadata !== undefined) return this.#metadata;
    this.#pending ??= this.#discover().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #discover(): Promise<AuthorizationServer | undefined> {
    this.discoveries++;
    const issuer = new URL(this.#options.issuer);
    try {
      const as = await observeFetch(this.#policy, 'discovery', async () =>
        processDiscoveryResponse(issuer, await discoveryRequest(issuer, { ...this.#http, algorithm: 'oidc' })),
      );
      if (typeof as.authorization_endpoint !== 'string' || typeof as.token_endpoint !== 'string') {
        throw new Error('the metadata has no authorization_endpoint or token_endpoint');
      }
      this.#metadata = as;
      return as;
    } catch (err) {
      this.#warn({ issuer: this.#options.issuer, reason: reason(err) }, 'oidc: discovery failed: requests that need the provider get 503 AUTH_UNAVAILABLE');
      return undefined;
    }
  }

  /**
   * The callback's parameters checked (state, `iss` when the provider sends it, no `error`), the
   * code exchanged with the PKCE verifier, and the ID token validated with the nonce.
   */
  async exchange(
    as: AuthorizationServer,
    params: URLSearchParams,
    login: { readonly state: string; readonly verifier: string; readonly nonce: string; readonly redirectUri: string },
  ): Promise<Tokens | Failure> {
    let checked: URLSearchParams;
    try {
      checked = validateAuthResponse(as, this.#client, params, login.state);
    } catch (err) {
      if (err instanceof AuthorizationResponseError) return { kind: 'denied', error: providerError(err.error) };
      this.#warn({ issuer: this.#options.issuer, reason: reason(err) }, 'oidc: the callback was refused');
      return INVALID;
    }
    try {
      const result = await observeFetch(this.#policy, 'token', async () => {
        const response = await authorizationCodeGrantRequest(as, this.#client, this.#auth, checked, login.redirectUri, login.verifier, this.#http);
        return processAuthorizationCodeResponse(as, this.#client, response, { expectedNonce: login.nonce, requireIdToken: true });
      });
      return tokens(result);
    } catch (err) {
      return this.#failed(err, 'oidc: the code exchange failed');
    }
  }

  /** A refresh token grant; the new ID token (if any) validated. */
  async refresh(as: AuthorizationServer, refreshToken: string): Promise<Tokens | Failure> {
    try {
      const result = await observeFetch(this.#policy, 'token', async () => {
        const response = await refreshTokenGrantRequest(as, this.#client, this.#auth, refreshToken, this.#http);
        return processRefreshTokenResponse(as, this.#client, response);
      });
      return tokens(result);
    } catch (err) {
      return this.#failed(err, 'oidc: the refresh failed');
    }
  }

  /** Revokes a refresh token (RFC 7009) when the provider can; best effort (a failure is logged). */
  async revoke(as: AuthorizationServer, refreshToken: string): Promise<void> {
    if (typeof as.revocation_endpoint !== 'string') return;
    try {
      await processRevocationResponse(
        await revocationRequest(as, this.#client, this.#auth, refreshToken, { ...this.#http, additionalParameters: { token_type_hint: 'refresh_token' } }),
      );
    } catch (err) {
      this.#warn({ issuer: this.#options.issuer, reason: reason(err) }, 'oidc: revoking the refresh token at logout failed');
    }
  }

  #failed(err: unknown, msg: string): Failure {
    const down = unavailable(err);
    this.#warn({ issuer: this.#options.issuer, reason: reason(err) }, down ? `${msg}: requests get 503 AUTH_UNAVAILABLE` : msg);
    return down ? UNAVAILABLE : INVALID;
  }
}

function tokens(result: TokenEndpointResponse): Tokens {
  return {
    claims: getValidatedIdTokenClaims(result),
    idToken: result.id_token,
    refreshToken: result.refresh_token,
    expiresIn: result.expires_in,
    scope: result.scope,
  };
}

/** Whether an outcome is a failure. */
export function failed(r: Tokens | Failure): r is Failure {
  return 'kind' in r;
}
