/**
 * The `respond` policy's config: a fixed status, headers and body. What zod cannot check (refused
 * and repeated header names, values, `body` with `bodyFile`, a body on 204/205/304, the file
 * itself) is checked by `resolve` in index.ts.
 */
import { z } from 'zod';
import { headerName } from '../../util/config-primitives.ts';

/** The `respond` policy's keys (`type` excluded). */
export const config = z.strictObject({
  status: z.number().int().min(200).max(599).optional().meta({ description: 'The status code, 200-599; 200 when not given.' }),
  headers: z
    .record(headerName, z.union([z.string(), z.array(z.string()).min(1)]))
    .optional()
    .meta({
      description:
        'Header name to a value, or a list of values sent as one field each. Content-Length is computed; Content-Type defaults to `text/plain; charset=utf-8` for `body` and to a type from the extension for `bodyFile`.',
    }),
  body: z.string().optional().meta({ description: 'The body, sent as UTF-8. Not with `bodyFile`.' }),
  bodyFile: z
    .string()
    .optional()
    .meta({ description: 'A file to send as the body, relative to the config file; read when the config is loaded (again on reload). Not with `body`.' }),
});

/** The config as written, after the schema. */
export type RespondConfig = z.infer<typeof config>;
