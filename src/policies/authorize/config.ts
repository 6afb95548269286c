/**
 * The `authorize` policy's keys (the config schema adds `type: authorize`): what the identified
 * caller must have. Checks across keys (at least one condition) are in `resolve`.
 */
import { z } from 'zod';

const claimValue = z.union([z.string(), z.number(), z.boolean()]);

export const authorizeConfig = z.strictObject({
  groups: z
    .array(z.string())
    .min(1)
    .optional()
    .meta({ description: 'Consumer groups: the consumer must be in any of them (`mode: any`, the default) or in all (`mode: all`).' }),
  mode: z.enum(['any', 'all']).optional().meta({ description: 'How `groups` is matched: `any` (default) or `all`.' }),
  scopes: z.array(z.string()).min(1).optional().meta({ description: 'Scopes the verified token must all have (jwt, introspection).' }),
  claims: z.record(z.string(), z.array(claimValue).min(1)).optional().meta({
    description:
      'Claims of the verified token and the values allowed for each: `{ "org.role": [admin, owner] }` (a dotted name reads nested claims; a claim that is a list matches when any item is allowed). Every claim listed must match.',
  }),
  methods: z
    .array(z.string().regex(/^[A-Z]+$/))
    .min(1)
    .optional()
    .meta({ description: 'Apply only to these methods (upper case); requests with other methods pass. Two authorize policies give different rules per method.' }),
});

export type RawAuthorize = z.infer<typeof authorizeConfig>;
