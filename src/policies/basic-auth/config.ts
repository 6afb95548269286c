/**
 * The `basic-auth` policy's keys (the config schema adds `type: basic-auth`): the realm, and the
 * keys every authentication policy has (src/policies/auth-common.ts).
 */
import { z } from 'zod';
import { authKeys } from '../auth-common.ts';

export const basicAuthConfig = z.strictObject({
  realm: z
    .string()
    .regex(/^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/)
    .optional()
    .meta({ description: 'The realm of the `WWW-Authenticate: Basic realm="…"` challenge on 401 (printable ASCII without `"` and `\\`). Default `switchboard`.' }),
  htpasswd: z.string().min(1).optional().meta({
    description:
      'An htpasswd file of more users (`user:hash` lines, relative to the config file; read again on every reload): bcrypt (`htpasswd -B`, `$2y$…`) or argon2 hashes only (MD5 `$apr1$`, `{SHA}`, crypt and plain entries are config errors). Each user becomes a consumer named by its username (no groups), accepted by the basic-auth policies that name this file, beside the consumers’ basic credentials. A username that is also a consumer’s name or a Basic username under `consumers` is a config error.',
  }),
  ...authKeys,
});

export type RawBasicAuth = z.infer<typeof basicAuthConfig>;
