/**
 * The `api-key` policy's keys (the config schema adds `type: api-key`): where the key is looked
 * for, and the keys every authentication policy has (src/policies/auth-common.ts).
 */
import { z } from 'zod';
import { headerName } from '../../util/config-primitives.ts';
import { authKeys } from '../auth-common.ts';

const paramName = z.string().regex(/^[A-Za-z0-9._~-]+$/);

export const apiKeyConfig = z.strictObject({
  header: headerName.optional().meta({ description: 'Request header holding the key. Default `x-api-key`; looked at first.' }),
  query: paramName.optional().meta({
    description:
      'Query parameter holding the key (`?apikey=…`), looked at when the header is absent. Off by default: a key in a URL ends up in browser histories and other proxies’ logs (Switchboard’s access log shows its value as `[REDACTED]` in every format).',
  }),
  cookie: paramName.optional().meta({ description: 'Cookie holding the key, looked at last. Off by default.' }),
  ...authKeys,
});

export type RawApiKey = z.infer<typeof apiKeyConfig>;
