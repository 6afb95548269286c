/** The `concurrency-limit` policy's keys (the config schema adds `type: concurrency-limit`). */
import { z } from 'zod';
import { duration } from '../../util/config-primitives.ts';
import { limitKey } from '../../util/limit-key.ts';

/** The raw `policies.<name>` map of a concurrency-limit policy, before resolve. */
export const concurrencyLimitConfig = z.strictObject({
  key: limitKey.optional().meta({ description: `${limitKey.description} Default \`ip\`.` }),
  limit: z.number().int().positive().meta({ description: 'Requests of one key in flight at once; one more is refused.' }),
  leaseTimeout: duration.optional().meta({
    description:
      'How long a request holds its place at most: a place not returned by then (a worker that died, a request longer than this) is freed on its own. Default 5m; set it above the longest request (download, WebSocket) the route carries.',
  }),
  status: z
    .union([z.literal(429), z.literal(503)])
    .optional()
    .meta({
      description:
        'Status of a refusal: 429 (default: the key, a client, sends too much at once) or 503 (the key is shared, e.g. `route`: the service is busy). Code CONCURRENCY_LIMITED either way, with Retry-After: 1.',
    }),
  failOpen: z.boolean().optional().meta({
    description: 'When the shared state cannot be reached: true (default) lets requests through uncounted, false refuses them.',
  }),
});

/** A concurrency-limit policy as written. */
export type RawConcurrencyLimitConfig = z.infer<typeof concurrencyLimitConfig>;
