/**
 * The `origins` of a `cors` policy, compiled once per config load and matched per request.
 *
 * An `Origin` header is a serialised origin (Fetch standard, "origin" header; HTML's origin
 * serialisation): `scheme://host[:port]`, lower case, the default port left out, or `null` for opaque
 * origins (sandboxed frames, `file:`, redirects across origins). Config entries are normalised the
 * same way with the URL parser, so `HTTPS://App.Example.com:443` matches what browsers send for
 * `https://app.example.com`. The `null` origin matches only a literal `"null"` entry, never a wildcard
 * or a regex: allowing it, above all with credentials, lets any sandboxed page in.
 */
import type { PolicyProblem } from '../filter.ts';

/** The compiled `origins` list. */
export interface OriginRules {
  /** `"*"` was listed: every origin is answered with a literal `*`. */
  readonly any: boolean;
  /** Exact origins, normalised; `null` when listed literally. */
  readonly exact: ReadonlySet<string>;
  /** `scheme://*.domain[:port]` entries: an origin matches when it is `prefix + labels + suffix`. */
  readonly wildcards: ReadonlyArray<{ readonly prefix: string; readonly suffix: string }>;
  /** `{ regex }` entries, anchored, tested on the origin in lower case. */
  readonly regexes: readonly RegExp[];
}

/**
 * What an origin may look like, in lower case: a scheme, a host (a domain or IP literal of the
 * characters URL serialisation produces, no `*`) and a port. Checked before any rule, so that a
 * regex never sees `null`, commas or anything a browser cannot send.
 */
const ORIGIN_SHAPE = /^[a-z][a-z0-9+.-]*:\/\/(?:\[[0-9a-f:.]+\]|[a-z0-9_-]+(?:\.[a-z0-9_-]+)*)(?::\d{1,5})?$/;
/** Longer `Origin` values are no origin (a host name has at most 253 characters); bounds regex work. */
const MAX_ORIGIN_LENGTH = 300;
/** A config entry: scheme and authority, no user info, path, query or fragment. */
const ENTRY_SHAPE = /^([a-z][a-z0-9+.-]*):\/\/([^/?#@\s]+)$/i;

const ORIGIN_EXPECTED = 'an origin `scheme://host[:port]` (no path), `scheme://*.domain`, "null" or "*"';

/** `new URL()`'s scheme and authority, lower case; undefined when it is not a URL or no origin. */
function normalise(scheme: string, authority: string): string | undefined {
  try {
    const url = new URL(`${scheme}://${authority}`);
    const origin = `${url.protocol}//${url.host}`.toLowerCase();
    return ORIGIN_SHAPE.test(origin) ? origin : undefined;
  } catch {
    return undefined;
  }
}

/** Compiles the entries; a bad entry is reported at `['origins', i]` (or `[…, 'regex']`) and left out. */
export function compileOrigins(entries: ReadonlyArray<string | { regex: string }>, problem: (p: PolicyProblem) => void): OriginRules {
  let any = false;
  const exact = new Set<string>();
  const wildcards: Array<{ prefix: string; suffix: string }> = [];
  const regexes: RegExp[] = [];
  entries.forEach((entry, i) => {
    if (typeof entry !== 'string') {
      try {
        new RegExp(entry.regex); // on its own first: the error speaks of what was written, and `a)|(b` cannot unanchor
        regexes.push(new RegExp(`^(?:${entry.regex})$`));
      } catch (err) {
        problem({ path: ['origins', i, 'regex'], expected: 'a valid regular expression', found: `${JSON.stringify(entry.regex)} (${(err as Error).message})` });
      }
      return;
    }
    if (entry === '*') {
      if (entries.length > 1) problem({ path: ['origins', i], expected: '"*" as the only entry (it allows every origin)', found: '"*" beside other entries' });
      any = true;
      return;
    }
    if (entry === 'null') {
      exact.add('null');
      return;
    }
    const m = ENTRY_SHAPE.exec(entry);
    const [scheme, authority] = m ? [m[1].toLowerCase(), m[2]] : ['', ''];
    if (authority.startsWith('*.')) {
      const rest = normalise(scheme, authority.slice(2));
      if (rest !== undefined && !rest.includes('[')) {
        const prefix = `${scheme}://`;
        wildcards.push({ prefix, suffix: `.${rest.slice(prefix.length)}` });
        return;
      }
    } else if (m) {
      const origin = normalise(scheme, authority);
      if (origin !== undefined) {
        exact.add(origin);
        return;
      }
    }
    problem({ path: ['origins', i], expected: ORIGIN_EXPECTED, found: JSON.stringify(entry) });
  });
  return { any, exact, wildcards, regexes };
}

/** Whether the `Origin` header value `origin` is allowed. Cheap: a set lookup first, regexes last. */
export function originAllowed(rules: OriginRules, origin: string): boolean {
  if (rules.any) return true;
  if (origin === 'null') return rules.exact.has('null');
  if (origin.length > MAX_ORIGIN_LENGTH) return false;
  const lower = origin.toLowerCase();
  if (!ORIGIN_SHAPE.test(lower)) return false;
  if (rules.exact.has(lower)) return true;
  // The shape allows no empty label, so whatever stands between prefix and suffix is whole labels.
  for (const { prefix, suffix } of rules.wildcards) {
    if (lower.length > prefix.length + suffix.length && lower.startsWith(prefix) && lower.endsWith(suffix)) return true;
  }
  for (const re of rules.regexes) if (re.test(lower)) return true;
  return false;
}
