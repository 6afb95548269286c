/**
 * The `compress` policy's config: the codings offered (in the server's order of preference), the
 * smallest body worth compressing, the media types compressed, and a level per coding. What zod
 * cannot check (media type syntax, `text/event-stream`) is checked by `resolve` in index.ts.
 */
import { z } from 'zod';
import { size } from '../../util/config-primitives.ts';

/** The content codings Switchboard produces (node:zlib). */
export const CODINGS = ['zstd', 'br', 'gzip'] as const;
export type Coding = (typeof CODINGS)[number];

/** Media types compressed when `types` is not given. */
export const DEFAULT_TYPES = [
  'text/*',
  'application/json',
  'application/*+json',
  'application/javascript',
  'application/xml',
  'application/*+xml',
  'application/wasm',
  'application/manifest+json',
  'application/x-ndjson',
  'application/graphql-response+json',
  'image/svg+xml',
  'image/x-icon',
  'image/bmp',
  'font/ttf',
  'font/otf',
  'application/vnd.ms-fontobject',
] as const;

/** Levels when `level` does not say: moderate, for content compressed on every request. */
export const DEFAULT_LEVELS: Readonly<Record<Coding, number>> = { gzip: 6, br: 4, zstd: 3 };

/** The `compress` policy's keys (`type` excluded). */
export const config = z.strictObject({
  encodings: z.array(z.enum(CODINGS)).min(1).optional().meta({
    description:
      "Content codings offered, in the server's order of preference: among those the client accepts with the highest q-value, the first here wins. Default `[zstd, br, gzip]`.",
  }),
  minSize: size.optional().meta({
    description:
      'Responses whose Content-Length is below this are sent as they are (compression would gain little). A response of unknown length is compressed. Default `1KiB`.',
  }),
  types: z.array(z.string()).min(1).optional().meta({
    description:
      'Media types compressed (parameters ignored, case-insensitive): `type/subtype`, `type/*`, or `type/*+suffix` (`application/*+json`). Default: text, JSON, JavaScript, XML, SVG, WebAssembly, icons and uncompressed fonts. `text/event-stream` is never compressed (events must reach the client at once).',
  }),
  level: z
    .strictObject({
      gzip: z.number().int().min(1).max(9).optional().meta({ description: 'gzip level, 1 (fast) to 9 (small); default 6.' }),
      br: z
        .number()
        .int()
        .min(0)
        .max(11)
        .optional()
        .meta({ description: 'Brotli quality, 0 to 11; default 4 (moderate: 11 is for precompressed files, far too slow per request).' }),
      zstd: z.number().int().min(1).max(19).optional().meta({ description: 'zstd level, 1 to 19; default 3.' }),
    })
    .optional()
    .meta({ description: 'Compression level per coding.' }),
});

/** The config as written, after the schema. */
export type CompressConfig = z.infer<typeof config>;
