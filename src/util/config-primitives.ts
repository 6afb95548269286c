/**
 * The zod building blocks that config sections share: durations, sizes, address lists, PEM file
 * paths and HTTP tokens (header and cookie names).
 *
 * It imports zod and header-fields.ts (which imports nothing), so that any module may build its config schema from these
 * (src/config's sections today, the policy modules' `config.ts` tomorrow) without importing
 * src/config, which imports them. `units.ts` converts what these accept.
 */
import { z } from 'zod';
import { TOKEN_PATTERN } from './header-fields.ts';

/** `250ms`, `5s`, `1m`, `1h`, or 0 to disable. */
export const DURATION_PATTERN = /^(0|\d+(\.\d+)?(ms|s|m|h|d))$/;
/** `512B`, `16KiB`, `10MB`, `1GiB`, or a whole number of bytes. */
export const SIZE_PATTERN = /^\d+(\.\d+)?\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/;

/** HTTP tokens (RFC 9110 §5.6.2), defined once in header-fields.ts (which imports no zod). */
export { TOKEN_CHAR, TOKEN_PATTERN } from './header-fields.ts';

/** A duration, converted by `parseDuration`. */
export const duration = z
  .union([z.literal(0), z.string().regex(DURATION_PATTERN)])
  .meta({ title: 'duration', description: 'A duration such as `250ms`, `5s`, `1m`, `1h`, `365d`; `0` disables.' });

/** A size, converted by `parseSize`. */
export const size = z
  .union([z.number().int().nonnegative(), z.string().regex(SIZE_PATTERN)])
  .meta({ title: 'size', description: 'A size such as `16KiB`, `10MB`, `1GiB`, or a number of bytes.' });

/** Addresses and CIDR ranges; checked (with `parseCidr`) when the config is resolved. */
export const cidrList = z.array(z.string()).meta({ description: 'Addresses or CIDR ranges, e.g. `10.0.0.0/8`, `::1`.' });

/** A PEM file path; read (relative to the config file) when the config is resolved. */
export const pemFile = z.string().meta({ description: 'Path to a PEM file, relative to the config file.' });

/** A header name (any HTTP token); give it its own `.meta()` description. */
export const headerName = z.string().regex(TOKEN_PATTERN);
