/**
 * The `oidc` policy's keys (the config schema adds `type: oidc`): the provider and the gateway's
 * client there, the paths the policy answers itself (callback, login, logout), the cookies, the
 * session's lifetime, what goes upstream, and the keys every authentication policy has
 * (src/policies/auth-common.ts).
 */
import { z } from 'zod';
import { duration, headerName } from '../../util/config-primitives.ts';
import { authKeys } from '../auth-common.ts';
import { claimHeadersKey } from '../bearer-token.ts';

/** A path on the gateway's site: RFC 3986 path characters, one leading `/` (never protocol-relative), no query. */
const sitePath = z.string().regex(/^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/);
/** A cookie name: an HTTP token. */
const cookieName = headerName;

export const oidcConfig = z.strictObject({
  issuer: z.url({ protocol: /^https?$/ }).meta({
    description:
      'The OpenID provider’s issuer identifier (`https://idp.example.com`): its metadata is read from `<issuer>/.well-known/openid-configuration` on first use. Plain `http://` only to a loopback address (127.0.0.0/8, `::1`, `localhost`).',
  }),
  clientId: z.string().min(1).meta({ description: 'The gateway’s client id at the provider (a confidential client using the authorization code flow).' }),
  clientSecret: z
    .string()
    .min(1)
    .meta({ description: 'The gateway’s client secret (take it from an environment variable). Never shown in logs, errors or `switchboard validate`.' }),
  clientAuth: z.enum(['basic', 'post']).optional().meta({
    description: 'How the client authenticates at the token endpoint: `basic` (`client_secret_basic`, HTTP Basic; the default) or `post` (`client_secret_post`).',
  }),
  redirectPath: sitePath.optional().meta({
    description:
      'The callback path the provider sends the browser back to (`<origin><redirectPath>` must be a registered redirect URI of the client). Answered by the policy; must be matched by a route that has it. Default `/oauth2/callback`.',
  }),
  loginPath: sitePath.optional().meta({
    description:
      'A path that starts a login and then returns to `?rd=<path on this site>` (default `/`): for a "log in" link, or a script that got a 401. Default `/oauth2/login`.',
  }),
  logoutPath: sitePath.optional().meta({
    description:
      'A path that ends the session: clears the cookie, then sends the browser to the provider’s `end_session_endpoint` (when it has one) and from there to `postLogoutPath`. Default `/oauth2/logout`.',
  }),
  postLogoutPath: sitePath.optional().meta({
    description: 'Where the browser lands after logging out (`<origin><postLogoutPath>` must be a registered post-logout redirect URI of the client). Default `/`.',
  }),
  publicUrl: z
    .url({ protocol: /^https?$/ })
    .optional()
    .meta({
      description:
        'The origin browsers reach this site at (`https://app.example.com`), for the redirect URIs and the same-origin check of return URLs. Default: the request’s own scheme and Host (set it when another proxy terminates TLS in front of the gateway).',
    }),
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/))
    .min(1)
    .optional()
    .meta({
      description:
        'Scopes asked for (`openid` is always added). Default `[openid, profile, email]`. Add `offline_access` (with `authorizationParams: { prompt: consent }` where the provider wants it) to get a refresh token.',
    }),
  authorizationParams: z
    .record(z.string().regex(/^[A-Za-z0-9_.-]+$/), z.string())
    .optional()
    .meta({
      description:
        'Extra parameters of the authorization request (`{ prompt: consent, audience: api }`). The ones the policy sets itself (`client_id`, `redirect_uri`, `response_type`, `scope`, `state`, `nonce`, `code_challenge`, `code_challenge_method`) are refused.',
    }),
  cookieSecret: z.string().min(32).optional().meta({
    description:
      'The secret the session and login cookies are encrypted and authenticated with (at least 32 characters, e.g. `openssl rand -base64 32`; take it from the environment). Every worker and instance of the fleet needs the same one; changing it ends every session. Default: keys derived from `clientSecret` (HKDF, a different use than `cookieSecret` would give), so a config with only the client credentials works on every worker and instance; then changing the client secret ends every session, and the provider, which knows the client secret, could make session cookies (it can sign anyone in already). Never shown in logs, errors or `switchboard validate`.',
  }),
  cookieName: cookieName.optional().meta({
    description:
      'The session cookie’s name. Default `sb-oidc-<policy name>`; with `cookieSecure` it gets the `__Host-` prefix (no Domain, Path=/, Secure: no subdomain can set it).',
  }),
  cookieSecure: z.boolean().optional().meta({
    description: 'Mark the cookies `Secure` (sent over HTTPS only; browsers also accept them from `http://localhost`). Default true; false only for plain-HTTP sites.',
  }),
  sessionMaxAge: duration.optional().meta({
    description:
      'The longest a session lasts after the login, refreshed or not; then the browser logs in again. Default `12h`. Without a refresh token a session ends earlier: when the ID token or access token expires.',
  }),
  loginTimeout: duration.optional().meta({ description: 'Time a login may take at the provider (the login cookie’s lifetime). Default `10m`.' }),
  timeout: duration.optional().meta({
    description: 'Time a request to the provider (discovery, code exchange, refresh) may take; beyond it the request gets 503 AUTH_UNAVAILABLE. Default `5s`.',
  }),
  claimHeaders: claimHeadersKey,
  consumerRequired: z.boolean().optional().meta({
    description:
      'Only users whose ID token subject is a consumer’s jwt credential (`consumers.*.credentials: [{ type: jwt, subject }]`) may log in. Default false: any user of the provider is let in, as a consumer named by the subject (refused when that name is a configured consumer’s the subject does not map to).',
  }),
  ...authKeys,
});

export type RawOidc = z.infer<typeof oidcConfig>;
