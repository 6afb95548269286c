/**
 * The `oauth2-introspection` policy's keys (the config schema adds `type: oauth2-introspection`):
 * the authorization server's introspection endpoint and the gateway's client credentials there,
 * how long answers are remembered, where the token is looked for, what goes upstream, and the keys
 * every authentication policy has (src/policies/auth-common.ts).
 */
import { z } from 'zod';
import { duration } from '../../util/config-primitives.ts';
import { authKeys } from '../auth-common.ts';
import { claimHeadersKey, tokenFromKey } from '../bearer-token.ts';

export const introspectionConfig = z.strictObject({
  endpoint: z.url({ protocol: /^https?$/ }).meta({
    description:
      'The authorization server’s token introspection endpoint (RFC 7662), `https://idp.example.com/introspect`. Plain `http://` only to a loopback address (127.0.0.0/8, `::1`, `localhost`): a token and the client secret would otherwise cross the network in clear.',
  }),
  clientId: z.string().min(1).meta({ description: 'The gateway’s client id at the authorization server (introspection needs an authenticated client).' }),
  clientSecret: z
    .string()
    .min(1)
    .meta({ description: 'The gateway’s client secret (take it from an environment variable). Never shown in logs, errors or `switchboard validate`.' }),
  clientAuth: z
    .enum(['basic', 'post'])
    .optional()
    .meta({ description: 'How the client authenticates: `basic` (`client_secret_basic`, HTTP Basic; the default) or `post` (`client_secret_post`, in the form body).' }),
  timeout: duration.optional().meta({ description: 'Time an introspection request may take; beyond it the request gets 503 AUTH_UNAVAILABLE. Default `5s`.' }),
  cacheTtl: duration.optional().meta({
    description:
      'Longest time an active token’s answer is remembered (never past the token’s `exp`). Default `5m`; `0` asks the endpoint for every request. A revoked token stays accepted for at most this long.',
  }),
  negativeCacheTtl: duration.optional().meta({
    description: 'Time an `active: false` answer is remembered (the same unknown token is not introspected again and again). Default `10s`; `0` remembers none.',
  }),
  from: tokenFromKey,
  claimHeaders: claimHeadersKey,
  consumerRequired: z.boolean().optional().meta({
    description:
      'Only tokens whose subject (`sub`, else `client_id`) is a consumer’s jwt credential (`consumers.*.credentials: [{ type: jwt, subject }]`) are accepted. Default false: any active token is accepted, as a consumer named by its subject (refused when that name is a configured consumer’s the subject does not map to).',
  }),
  ...authKeys,
});

export type RawIntrospection = z.infer<typeof introspectionConfig>;
