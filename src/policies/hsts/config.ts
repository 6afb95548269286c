/** The `hsts` policy's config: the Strict-Transport-Security header's parts. */
import { z } from 'zod';
import { duration } from '../../util/config-primitives.ts';

export const hstsConfig = z
  .strictObject({
    maxAge: duration.optional().meta({ description: 'max-age of the Strict-Transport-Security header. Default 365d.' }),
    includeSubDomains: z.boolean().optional().meta({ description: 'Add `includeSubDomains`: the policy covers every subdomain too.' }),
    preload: z.boolean().optional().meta({ description: "Add `preload` (for the browsers' HSTS preload lists)." }),
  })
  .meta({ description: 'Strict-Transport-Security on responses over TLS.' });

export type HstsConfig = z.infer<typeof hstsConfig>;
