/**
 * The `headers` policy's config: for each direction, the header names to remove, rename, set and
 * add, applied in that order. Names are HTTP tokens; what zod cannot check (refused names, names
 * given twice, templates, values) is checked by `resolve` in index.ts.
 */
import { z } from 'zod';
import { headerName } from '../../util/config-primitives.ts';

const TEMPLATES = 'Values may use `${client.ip}`, `${request.id}`, `${route}`, `${header.NAME}` (a request header) and `${env.NAME}`; `$${` is a literal `${`.';

function operations(direction: 'request' | 'response') {
  const where = direction === 'request' ? 'the request sent upstream' : 'the response sent to the client';
  const host = direction === 'request' ? ' `Host` may be set here (only here).' : '';
  return z.strictObject({
    remove: z
      .array(headerName)
      .optional()
      .meta({ description: `Header names to remove from ${where}, every field of each name. Applied first.` }),
    rename: z
      .record(headerName, headerName)
      .optional()
      .meta({
        description: `Old name to new name, in ${where}; values and order kept, fields already under the new name stay. Applied after \`remove\`.`,
      }),
    set: z
      .record(headerName, z.string())
      .optional()
      .meta({
        description: `Header name to value in ${where}, replacing every field of that name; a value that comes out empty removes the header. Applied after \`rename\`.${host} ${TEMPLATES}`,
      }),
    add: z
      .record(headerName, z.union([z.string(), z.array(z.string()).min(1)]))
      .optional()
      .meta({
        description: `Header name to a value or a list of values, each added as one more field of ${where} (existing fields kept, as for Set-Cookie); an empty value adds nothing. Applied last. ${TEMPLATES}`,
      }),
  });
}

/** The `headers` policy's keys (`type` excluded). */
export const config = z.strictObject({
  request: operations('request')
    .optional()
    .meta({ description: 'Changes to the request headers going upstream, made on every try: remove, rename, set, add, in that order.' }),
  response: operations('response').optional().meta({
    description:
      "Changes to the response headers going to the client, Switchboard's own error responses and other policies' answers included: remove, rename, set, add, in that order.",
  }),
});

/** The config as written, after the schema. */
export type HeadersConfig = z.infer<typeof config>;

/** One direction's operations as written. */
export type HeaderOperationsConfig = NonNullable<HeadersConfig['request']>;
