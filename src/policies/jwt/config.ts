/**
 * The `jwt` policy's keys (the config schema adds `type: jwt`): the provider (issuer, audiences,
 * where its keys come from, which algorithms it signs with), where the token is looked for, what
 * goes upstream, and the keys every authentication policy has (src/policies/auth-common.ts).
 */
import { z } from 'zod';
import { duration } from '../../util/config-primitives.ts';
import { authKeys } from '../auth-common.ts';
import { claimHeadersKey, tokenFromKey } from '../bearer-token.ts';

/** Asymmetric JWS algorithms (RFC 7518, RFC 8037): verified with a public key from `jwks` or `keys`. */
export const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
/** HMAC algorithms: only with `secret` (never with a public key: the "HS256 signed with the RSA public key" attack). */
export const HMAC = ['HS256', 'HS384', 'HS512'] as const;

const claimName = z.string().min(1);

export const jwtConfig = z.strictObject({
  issuer: z.string().min(1).meta({ description: 'The `iss` every token must carry, exactly (`https://idp.example.com`).' }),
  audiences: z
    .array(z.string().min(1))
    .min(1)
    .meta({ description: 'Accepted `aud` values: a token must name at least one of them (a token minted for another API of the same provider is refused).' }),
  algorithms: z
    .array(z.enum([...ASYMMETRIC, ...HMAC]))
    .min(1)
    .optional()
    .meta({
      description:
        'The JWS algorithms accepted (a token’s `alg` must be one of them; `none` never is). Default `[RS256, ES256]`. HMAC ones (HS256/384/512) only with `secret`, and then only they.',
    }),
  jwks: z
    .union([
      z.strictObject({
        url: z.url({ protocol: /^https?$/ }).meta({ description: 'The provider’s JWKS document (`https://idp.example.com/.well-known/jwks.json`).' }),
        cacheTtl: duration.optional().meta({
          description:
            'How long a fetched JWKS is used before it is fetched again (default `10m`; refreshed in the background from three quarters of it on). When a refresh fails, the keys are used for at most one more `cacheTtl`; after that, and before the first fetch succeeded, requests get 503 AUTH_UNAVAILABLE.',
        }),
        cooldown: duration.optional().meta({
          description:
            'Least time after a fetch before a token whose `kid` is not in the JWKS (key rotation) makes it fetched again, and between tries while fetches fail; counted for the machine (all workers together). Default `30s`.',
        }),
        timeout: duration.optional().meta({ description: 'Time a JWKS fetch may take. Default `5s`.' }),
      }),
      z.strictObject({ file: z.string().min(1).meta({ description: 'A JWKS document in a file (relative to the config file), read at each config load.' }) }),
    ])
    .optional()
    .meta({
      description:
        'The provider’s public keys as a JWKS: `{ url, cacheTtl, cooldown, timeout }` fetched and cached once for the machine, shared by its workers (`cacheTtl` default `10m`, refreshed in the background from ¾ of it, stale keys used at most one more `cacheTtl` while fetches fail; `cooldown` default `30s` between fetches caused by an unknown `kid` or after a failure; `timeout` default `5s`), or `{ file }` read at each config load. One of `jwks`, `keys`, `secret`.',
    }),
  keys: z
    .array(z.string().min(1))
    .min(1)
    .optional()
    .meta({ description: 'Public keys or certificates in PEM (`-----BEGIN PUBLIC KEY-----…`), instead of a JWKS. Private keys are refused.' }),
  secret: z.string().min(32).optional().meta({
    description:
      'A shared HMAC secret (at least 32 characters; take it from the environment) for HS256/384/512 tokens, instead of public keys; `algorithms` must then be HMAC ones only.',
  }),
  clockSkew: duration.optional().meta({ description: 'Leeway for `exp`, `nbf` and `iat` against the gateway’s clock. Default `30s`.' }),
  maxLifetime: duration
    .optional()
    .meta({ description: 'Refuse tokens issued (`iat`) longer ago than this; tokens then must carry `iat`. Off by default (`exp` alone bounds a token).' }),
  from: tokenFromKey,
  claimHeaders: claimHeadersKey,
  subjectClaim: claimName.optional().meta({ description: 'The claim naming the caller (looked up in `consumers.*.credentials` of `type: jwt`). Default `sub`.' }),
  scopesClaim: claimName
    .optional()
    .meta({ description: 'The claim holding the token’s scopes (a space-separated string or an array), for `authorize`. Default `scope`, else `scp`.' }),
  consumerRequired: z.boolean().optional().meta({
    description:
      'Only tokens whose subject is a consumer’s jwt credential are accepted (as Kong). Default false: any valid token is accepted, as a consumer named by its subject (refused when that name is a configured consumer’s the subject does not map to).',
  }),
  ...authKeys,
});

export type RawJwt = z.infer<typeof jwtConfig>;
