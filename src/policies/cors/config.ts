/**
 * The schema of a `cors` policy: which origins may read responses, which methods and request headers
 * a preflight may ask for, which response headers scripts may read, credentials, the preflight cache
 * time and Private Network Access. Shape only; `resolve` in `index.ts` checks the origins and regexes
 * and the combinations that browsers refuse (`*` with credentials).
 */
import { z } from 'zod';
import { duration, headerName } from '../../util/config-primitives.ts';

/** An HTTP method as browsers send it in `Access-Control-Request-Method` (upper case), or `*`. */
const method = z.string().regex(/^(\*|[A-Z][A-Z-]*)$/);

const origin = z.union([
  z.string().meta({
    description:
      'An exact origin (`https://app.example.com`), a wildcard subdomain (`https://*.example.org`: one or more labels, never the apex), `"null"`, or `"*"` (any origin).',
  }),
  z.strictObject({
    regex: z.string().meta({ description: 'A regular expression over the whole origin (anchored), matched against the origin in lower case.' }),
  }),
]);

/** A `cors` policy as written (durations still strings, defaults not applied). */
export const corsConfig = z.strictObject({
  origins: z.array(origin).min(1).meta({
    description:
      'Origins whose scripts may read responses. Exact origins compare after lower-casing scheme and host and dropping the default port; `*.` matches one or more subdomain labels; `{ regex }` is anchored. `"*"` (alone, never with `credentials: true`) answers `Access-Control-Allow-Origin: *` to everyone. The `null` origin is allowed only when `"null"` is listed.',
  }),
  methods: z.array(method).min(1).optional().meta({
    description:
      'Methods a preflight may ask for, upper case, compared exactly as browsers do. `["*"]` allows any, answering with the requested method. Default `[GET, HEAD, POST]`.',
  }),
  requestHeaders: z.array(headerName).optional().meta({
    description:
      'Request headers a preflight may ask for (case-insensitive; list `Content-Type` for JSON bodies). `["*"]` allows any, answering with the requested names (so `Authorization` works too, which a literal `*` never covers). Default `["*"]`; `[]` allows none.',
  }),
  exposedHeaders: z.array(headerName).optional().meta({
    description:
      'Response headers scripts may read beyond the safelisted ones (`Access-Control-Expose-Headers`). `["*"]` exposes all, only without credentials. Default none.',
  }),
  credentials: z.boolean().optional().meta({
    description:
      'Let scripts send cookies and HTTP authentication and read the answer (`Access-Control-Allow-Credentials: true`). Needs listed origins, never `"*"`. Default false.',
  }),
  maxAge: duration.optional().meta({
    description:
      'How long browsers may cache a preflight answer (`Access-Control-Max-Age`, in whole seconds; Chromium caps it at 2h, Firefox at 24h). `0` disables caching. Default: no header (browsers use 5s).',
  }),
  privateNetwork: z.boolean().optional().meta({
    description:
      'Answer Private Network Access preflights (`Access-Control-Request-Private-Network: true`) with `Access-Control-Allow-Private-Network: true`, letting public sites reach this private address. Default false: such preflights get the rest of their answer without it.',
  }),
});

/** A `cors` policy as written. */
export type RawCors = z.infer<typeof corsConfig>;
