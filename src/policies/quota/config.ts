/** The `quota` policy's keys (the config schema adds `type: quota`). */
import { z } from 'zod';
import { limitKey } from '../../util/limit-key.ts';

/** The raw `policies.<name>` map of a quota policy, before resolve. */
export const quotaConfig = z.strictObject({
  key: limitKey.optional().meta({ description: `${limitKey.description} Default \`consumer\`.` }),
  limit: z
    .number()
    .int()
    .positive()
    .meta({ description: 'Requests allowed per key per calendar period; the next one is answered 429 QUOTA_EXCEEDED until the period ends.' }),
  period: z.enum(['day', 'month']).meta({ description: 'The calendar period: `day` (from midnight to midnight) or `month` (from the 1st, midnight), in `timeZone`.' }),
  timeZone: z.string().optional().meta({ description: 'IANA time zone of the periods’ boundaries (`Europe/Berlin`). Default `UTC`.' }),
  failOpen: z.boolean().optional().meta({
    description: 'When the shared state cannot be reached: true (default) lets requests through uncounted, false refuses them with 429 QUOTA_EXCEEDED.',
  }),
  headers: z.enum(['ietf', 'none']).optional().meta({
    description: '`ietf` (default): the `RateLimit-Policy` and `RateLimit` fields (w = the period’s length, t = seconds to its end) on the route’s responses; `none`.',
  }),
});

/** A quota policy as written. */
export type RawQuotaConfig = z.infer<typeof quotaConfig>;
