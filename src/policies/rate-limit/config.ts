/**
 * The `rate-limit` policy's keys (the config schema adds `type: rate-limit`). Durations and the
 * rest are checked and converted by `resolve` in index.ts.
 */
import { z } from 'zod';
import { duration } from '../../util/config-primitives.ts';
import { limitKey } from '../../util/limit-key.ts';

/** The raw `policies.<name>` map of a rate-limit policy, before resolve. */
export const rateLimitConfig = z.strictObject({
  key: limitKey.optional().meta({ description: `${limitKey.description} Default \`ip\`.` }),
  limit: z.number().int().positive().meta({ description: 'Requests allowed per window, per key (the rate: limit / window, refilled continuously).' }),
  window: duration.meta({ description: 'The window of `limit`, e.g. `1s`, `1m`, `1d`.' }),
  burst: z.number().int().positive().optional().meta({
    description:
      'mode reject: how many requests a key may send at once (the bucket’s size); default `limit`. mode delay: how many requests of a key may wait their turn in each worker (beyond them, 429); default `limit`.',
  }),
  mode: z.enum(['reject', 'delay']).optional().meta({
    description:
      '`reject` (default): a request over the limit is answered 429 RATE_LIMITED with Retry-After. `delay`: requests are let through one per `window / limit`, as nginx `limit_req` without `nodelay`; those over the rate wait their turn, up to `burst` waiting per key in each worker, and the rest are answered 429.',
  }),
  failOpen: z.boolean().optional().meta({
    description:
      'When the shared state cannot be reached (Redis down): true (default) lets requests through uncounted, false answers 429 RATE_LIMITED. Either way the outage is logged once and counted (`switchboard_state_outages_total`, `switchboard_state_up`).',
  }),
  headers: z.enum(['ietf', 'legacy', 'both', 'none']).optional().meta({
    description:
      'Response fields telling clients their limit: `ietf` (default) `RateLimit-Policy: "<policy>";q=<limit>;w=<window s>` and `RateLimit: "<policy>";r=<remaining>;t=<s>` (draft-ietf-httpapi-ratelimit-headers-11), `legacy` `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (s), `both`, or `none`.',
  }),
  partitionKey: z.boolean().optional().meta({
    description:
      'With the `ietf` fields: add the partition key `pk=:<base64>:` to both items, the first 9 bytes of the SHA-256 of the policy’s name and the request’s key value, so that a client can tell which of its requests share a count. A hash: it never shows the key (a credential id, an address, a header’s value), though a value with few possibilities (an IPv4 address) could be found again by trying them all. Default false.',
  }),
});

/** A rate-limit policy as written (validated by zod, not yet resolved). */
export type RawRateLimitConfig = z.infer<typeof rateLimitConfig>;
