/** The `https-redirect` policy's config. */
import { z } from 'zod';

export const httpsRedirectConfig = z
  .strictObject({
    port: z.number().int().min(1).max(65535).optional().meta({ description: 'Port of the https URL; 443 (the default) is left out of it.' }),
    status: z.literal([301, 302, 307, 308]).optional().meta({ description: 'Redirect status. Default 308 (permanent, method and body kept).' }),
  })
  .meta({ description: 'Redirects every request to the same host, path and query over https.' });

export type HttpsRedirectConfig = z.infer<typeof httpsRedirectConfig>;
