/**
 * The `state` section: where counters, buckets, sets and records shared by workers and instances
 * live (src/state/). Shape only; `resolve-state.ts` checks the Redis URL and applies the defaults.
 */
import { z } from 'zod';
import { duration } from '../util/config-primitives.ts';

export const stateSection = z
  .strictObject({
    backend: z.enum(['memory', 'redis']).optional().meta({
      description:
        '`memory`: kept by the process (the supervisor when there are workers), shared exactly by the workers of one machine. `redis`: kept in Redis, shared by every instance that uses the same Redis and prefix.',
    }),
    redis: z
      .strictObject({
        url: z.string().optional().meta({ description: '`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. Used when `backend` is `redis`.' }),
        prefix: z.string().optional().meta({ description: 'Prepended to every key: instances share the keys they name with the same prefix.' }),
        connectTimeout: duration.optional().meta({ description: 'Time to open a connection to Redis.' }),
        commandTimeout: duration
          .optional()
          .meta({ description: 'Time an operation may wait for its answer before its user gets its fail-open, fail-closed or local answer.' }),
      })
      .optional()
      .meta({ description: 'The Redis backend.' }),
  })
  .meta({ description: 'Shared state for policies (rate limits, quotas, sticky tables, cache indexes) and `switchboard state`.' });

/** The `state` section as written. */
export type RawState = z.infer<typeof stateSection>;
