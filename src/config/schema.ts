/**
 * The configuration schema: the one strict description of what a Switchboard config may say.
 *
 * This file assembles the top level from the sections: `listener-schema.ts`, `route-schema.ts`,
 * `upstream-schema.ts`, `state-schema.ts`, `tracing-schema.ts`, `admin-schema.ts`, `consumers-schema.ts` and `policy-schema.ts` (itself assembled from the policy modules), built from the shared primitives of `util/config-primitives.ts`. Only shape
 * lives in them. Defaults live in `defaults.ts`, conversion of durations and sizes and the wiring of
 * names in `resolve.ts` and its sections, file reading and line:column errors in `load.ts`. Every
 * object is strict: an unknown key is an error (with a "did you mean" suggestion from the loader).
 */
import { z } from 'zod';
import { duration, size } from '../util/config-primitives.ts';
import { listener } from './listener-schema.ts';
import { route } from './route-schema.ts';
import { upstream } from './upstream-schema.ts';
import { policySchema } from './policy-schema.ts';
import { stateSection } from './state-schema.ts';
import { tracingSection } from './tracing-schema.ts';
import { adminSection } from './admin-schema.ts';
import { consumersSection } from './consumers-schema.ts';
import { policyTypesVersion } from '../policies/registry.ts';

export type { RawListener, RawListenerTls } from './listener-schema.ts';
export type { RawPathMatch, RawRoute, RawStringMatch } from './route-schema.ts';
export type { RawHealthCheck, RawTimeouts, RawUpstream, RawUpstreamTls } from './upstream-schema.ts';

function build(policy: z.ZodType) {
  return z
    .strictObject({
      listeners: z.record(z.string(), listener).meta({ description: 'Listening sockets by name; at least one is needed to serve anything.' }),
      routes: z
        .record(z.string(), route)
        .optional()
        .meta({ description: 'Routes by name. A request takes the matching route with the highest priority, then the most specific, then the first written.' }),
      upstreams: z.record(z.string(), upstream).optional().meta({ description: 'Upstreams (pools of endpoints) by name; routes refer to them by that name.' }),
      policies: z
        .record(z.string(), policy as z.ZodType<{ type: string } & Record<string, unknown>>)
        .optional()
        .meta({ description: 'Policies by name (headers, ip-filter, cors, respond, …): listeners and routes list the ones they run, by name.' }),
      drainTimeout: duration.optional().meta({ description: 'On shutdown and reload, how long in-flight requests may take to finish.' }),
      workers: z
        .union([z.literal('auto'), z.number().int().min(1).max(1024)])
        .optional()
        .meta({
          description:
            '`switchboard start`: worker processes serving every listener, `auto` = one per core (os.availableParallelism()). With more than one, a supervisor process starts and watches them and serves nothing itself; 1 runs one process as before. A reload changes the count; the programmatic API (startGateway) is always one process.',
        }),
      workerMemoryLimit: size.optional().meta({
        description: 'A worker whose resident memory (RSS) stays above this is drained and replaced by a fresh one; 0 = no limit. Checked every few seconds.',
      }),
      state: stateSection.optional(),
      metrics: z
        .strictObject({
          enabled: z.boolean().optional().meta({
            description:
              'Collect Prometheus metrics (docs/metrics.md). They are served as `GET /metrics` by the admin listener; on by default when the config has an `admin` section, off otherwise (they cost a little per request). Whether they are on is fixed at start.',
          }),
        })
        .optional()
        .meta({ description: 'Prometheus metrics: what is counted, and the admin listener serves.' }),
      tracing: tracingSection.optional(),
      admin: adminSection.optional(),
      consumers: consumersSection.optional(),
    })
    .meta({ title: 'Switchboard configuration' });
}

type ConfigSchema = ReturnType<typeof build>;
let cached: { version: number; schema: ConfigSchema } | undefined;

/**
 * The whole config, for the policy types registered now: what `check.ts` parses a document
 * against, and what `jsonSchema()` describes. Built once per set of policy types.
 */
export function configSchema(): ConfigSchema {
  const version = policyTypesVersion();
  if (cached?.version !== version) cached = { version, schema: build(policySchema()) };
  return cached.schema;
}

/** The config as written (durations and sizes still strings, defaults not applied). */
export type RawConfig = z.infer<ConfigSchema>;

/** The JSON Schema of the config, for editors (`switchboard schema`). */
export function jsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema(), { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
