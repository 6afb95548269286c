/**
 * The schema of one route: what it matches (host, path, methods, headers, query), how it rewrites
 * the path, and its overrides of its upstream's timeouts and of the body size. Shape only;
 * `resolve-route.ts` checks and converts it.
 */
import { z } from 'zod';
import { policyList } from './policy-schema.ts';
import { size } from '../util/config-primitives.ts';
import { timeouts } from './upstream-schema.ts';

const stringMatch = z.union([
  z.string().meta({ description: 'Exact value.' }),
  z.strictObject({ exact: z.string() }),
  z.strictObject({ regex: z.string() }),
  z.strictObject({ present: z.boolean() }),
]);

export const pathMatch = z.union([
  z.string().meta({ description: 'Prefix match.' }),
  z.strictObject({ prefix: z.string() }),
  z.strictObject({ exact: z.string() }),
  z.strictObject({ regex: z.string() }),
]);

export const match = z
  .strictObject({
    host: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .meta({ description: 'Host names: exact (`api.example.com`), wildcard (`*.example.com`), optionally with `:port`.' }),
    path: pathMatch.optional().meta({ description: 'A string is a prefix; or `{ prefix }`, `{ exact }`, `{ regex }`.' }),
    methods: z
      .array(z.string().regex(/^[A-Z]+$/))
      .min(1)
      .optional()
      .meta({ description: 'Allowed methods, upper case.' }),
    headers: z.record(z.string(), stringMatch).optional().meta({ description: 'Header name to a value (exact), `{ exact }`, `{ regex }` or `{ present: true|false }`.' }),
    query: z
      .record(z.string(), stringMatch)
      .optional()
      .meta({ description: 'Query parameter name to a value (exact), `{ exact }`, `{ regex }` or `{ present: true|false }`.' }),
  })
  .meta({ description: 'Every condition given must hold.' });

export const rewrite = z
  .strictObject({
    stripPrefix: z.string().optional().meta({ description: 'Remove this prefix from the path before forwarding.' }),
    replacePrefix: z
      .strictObject({
        from: z.string().meta({ description: 'The prefix to replace; starts with `/`.' }),
        to: z.string().meta({ description: 'What replaces it; starts with `/`.' }),
      })
      .optional()
      .meta({ description: 'Replace the leading `from` of the path with `to`.' }),
  })
  .meta({ description: 'Path rewriting before forwarding. At most one of the two.' });

export const staticSite = z
  .strictObject({
    root: z.string().min(1).meta({ description: "The directory served, relative to the config file's directory. Must exist and be a directory when the config loads." }),
    index: z
      .union([
        z
          .array(
            z
              .string()
              .min(1)
              .regex(/^[^/\\]+$/),
          )
          .min(1),
        z.literal(false),
      ])
      .optional()
      .meta({
        description: 'File names tried, in order, for a path ending in `/`; `false`: none (such paths are 404). Default `[index.html]`. Directories are never listed.',
      }),
    stripPrefix: z.boolean().optional().meta({
      description:
        "Default true: the route's path prefix is removed before the path is looked up under `root` (nginx `alias`, Express `static`): `/static/a.css` on a route matching `/static/` serves `<root>/a.css`. false: the whole path is (nginx `root`). A route `rewrite` replaces this.",
    }),
    precompressed: z.boolean().optional().meta({
      description:
        'Default true: serve a `.br`, `.zst` or `.gz` sibling of the file (not older than it) when the client accepts that encoding, with `Vary: Accept-Encoding`.',
    }),
    followSymlinks: z
      .boolean()
      .optional()
      .meta({ description: 'Default false: a path with a symbolic link anywhere under `root` is 404. true: links are followed wherever they point.' }),
    dotfiles: z.boolean().optional().meta({ description: 'Default false: a path with a segment starting with `.` (`.git`, `.env`) is 404. true: served.' }),
    cacheControl: z
      .array(
        z.strictObject({
          match: z.string().min(1).meta({
            description:
              'A file-name glob (`*.css`: `*` is any characters), or a path from the root starting with `/` (`/img/`: a prefix when it ends in `/`; `*` stays within a segment, `**` crosses them).',
          }),
          value: z.string().min(1).meta({ description: 'The `Cache-Control` value, e.g. `public, max-age=31536000, immutable`.' }),
        }),
      )
      .optional()
      .meta({ description: 'Cache-Control by file pattern; the first entry that matches applies. No match: no Cache-Control.' }),
  })
  .meta({ description: 'Serve files from a directory instead of forwarding to an upstream (docs/static.md). GET and HEAD only.' });

export const route = z
  .strictObject({
    listeners: z.array(z.string()).optional().meta({ description: 'Names of the listeners this route serves; when absent, every http listener.' }),
    match: match.optional().meta({ description: 'Which requests this route takes. Every condition given must hold; none given matches every request.' }),
    upstream: z
      .string()
      .optional()
      .meta({ description: 'Name of the upstream requests go to. A route whose policies answer every request (e.g. `respond`) needs none.' }),
    static: staticSite.optional().meta({ description: 'Files served by Switchboard itself instead of an upstream: a route has `upstream` or `static`, not both.' }),
    policies: policyList.optional().meta({ description: "Policies run for this route's requests after routing, in order, after the listener's own." }),
    priority: z.number().int().optional().meta({ description: 'Among matching routes, higher priority wins before specificity is considered.' }),
    rewrite: rewrite.optional(),
    timeouts: timeouts.optional().meta({ description: "This route's overrides of its upstream's timeouts; each one not given is the upstream's." }),
    maxBodySize: size.optional().meta({ description: 'Largest request body; larger gets 413. 0 means no limit.' }),
  })
  .meta({ description: 'Which requests go to which upstream.' });

/** A route as written (durations and sizes still strings, defaults not applied). */
export type RawRoute = z.infer<typeof route>;
/** A route's `static` section as written. */
export type RawStaticSite = z.infer<typeof staticSite>;
/** A header or query condition as written. */
export type RawStringMatch = z.infer<typeof stringMatch>;
/** A path condition as written. */
export type RawPathMatch = z.infer<typeof pathMatch>;
