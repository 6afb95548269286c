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
  ...authKeys,
});

export type RawBasicAuth = z.infer<typeof basicAuthConfig>;
