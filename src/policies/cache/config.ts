/**
 * The `cache` policy's config: where responses are stored, what is stored, how requests wait for
 * each other. Sizes and durations are converted by `resolve` in index.ts.
 */
import { z } from 'zod';
import { duration, headerName, size } from '../../util/config-primitives.ts';

/** The `cache` policy's keys (`type` excluded). */
export const config = z.strictObject({
  store: z
    .strictObject({
      memory: size.optional().meta({
        description:
          'The memory store’s byte budget (heads and bodies), least recently used objects evicted past it. One copy per machine: with `workers`, a file store in /dev/shm (RAM) shared by every worker; in a lone process, an in-process LRU.',
      }),
      disk: z
        .strictObject({
          path: z.string().min(1).meta({ description: 'The directory objects are stored in (created when missing; relative to the config file). Survives restarts.' }),
          size: size.meta({ description: 'The disk store’s byte budget; least recently used objects (to about 10 s) evicted by a periodic sweep.' }),
        })
        .optional()
        .meta({
          description:
            'A disk store: one file per object, written to a temp file, fsync’d and renamed (a crash mid-write never leaves a servable half object). With `memory` too, memory is a tier in front of it.',
        }),
      redis: z
        .strictObject({
          maxObjectSize: size.optional().meta({ description: 'Bodies above this are not stored in Redis; default `64KiB`.' }),
          prefix: z.string().min(1).optional().meta({
            description:
              'Prepended to the store’s keys; default `<state.redis.prefix>cache:<policy name>:`. Instances that name the same Redis and prefix share the store.',
          }),
        })
        .optional()
        .meta({
          description:
            'A Redis store shared by every instance (and worker) on the config’s `state.redis` connection (`{}`: its defaults), for small objects; a purge in one instance reaches all. Needs a single Redis (or a primary with replicas, the URL naming the primary), not Redis Cluster: its Lua scripts build key names. Redis unreachable: misses, nothing stored, requests still answered. With `memory`, memory is a tier in front and purges are published to every instance’s memory (Redis PUBLISH); not with `disk`.',
        }),
    })
    .meta({ description: 'Where responses are stored: `memory`, `disk`, both (memory in front of disk), or `redis` (shared by instances; `memory` may be in front).' }),
  name: z
    .string()
    .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/)
    .optional()
    .meta({ description: 'The cache’s name in the `Cache-Status` response header (RFC 9211); default `Switchboard`.' }),
  maxObjectSize: size.optional().meta({
    description:
      'Responses with a larger body are streamed past the cache and not stored; default `8MiB` (never more than the store’s budget), with `disk` an eighth of the disk budget up to `1GiB` (large bodies are written to and served from their files as they stream).',
  }),
  defaultTtl: duration.optional().meta({
    description:
      'Freshness lifetime given to storable responses that carry no freshness information of their own (no max-age, s-maxage, Expires or Last-Modified heuristic); default 0: such responses are not stored.',
  }),
  storeSetCookie: z.boolean().optional().meta({
    description:
      'Store responses that carry `Set-Cookie` (when otherwise storable); the stored copy never carries it: a hit is served without `Set-Cookie`. Default false: never stored.',
  }),
  staleIfError: duration.optional().meta({
    description:
      'Grace: when the upstream fails or answers 5xx, serve a stored response up to this long past its freshness lifetime (beside the response’s own `stale-if-error`); default 0.',
  }),
  collapse: z.boolean().optional().meta({
    description: 'Request collapsing: concurrent misses for one key make one upstream request and the others wait for it; default true.',
  }),
  collapseTimeout: duration.optional().meta({
    description: 'How long a collapsed request waits for the first one before going upstream itself; default `5s`. Keep it below the listener’s `policyTimeout`.',
  }),
  rangeFill: z.boolean().optional().meta({
    description:
      'On a Range request for an object not stored, fetch the whole object (Range and If-Range removed), store it and answer the range from it, as nginx and Varnish do; default true. Cost: the first request for a large object waits for (and moves) the bytes before its range; objects larger than `maxObjectSize` are streamed past, the client still getting its 206.',
  }),
  key: z
    .strictObject({
      headers: z.array(headerName).optional().meta({ description: 'Request headers whose values become part of the cache key (beside scheme, host and target).' }),
    })
    .optional()
    .meta({ description: 'Extra parts of the cache key. The key is always the scheme, the normalised host and the normalised target; GET and HEAD share it.' }),
});

/** The config as written, after the schema. */
export type CacheConfig = z.infer<typeof config>;
