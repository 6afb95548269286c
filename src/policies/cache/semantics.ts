/**
 * The pure parts of the cache: the cache key, the request and response header objects that
 * http-cache-semantics decides on, the headers a stored response is served with, client
 * conditionals (RFC 9110 §13) and the `Cache-Status` field (RFC 9211).
 *
 * http-cache-semantics 4 decides storability, freshness and revalidation (RFC 9111); two of its
 * choices are corrected here, before it sees a response (and a third, which stored response a 304
 * updates, in `selectedBy304`): it treats `must-revalidate` as "always
 * revalidate" (RFC 9111 §5.2.2.2: only once stale) and `proxy-revalidate` as "never fresh" (the
 * same, for shared caches). `policyHeaders` takes both out of what it sees, and the entry
 * remembers them, so that a stale entry with either is never served without validation.
 */

/** A header object as http-cache-semantics reads it: lower-case names. */
export type HeaderRecord = Record<string, string | string[] | undefined>;

/** `Host` normalised for the key: lower case, no trailing dot, no default port. */
export function normalizeHost(authority: string, scheme: string): string {
  let host = authority.toLowerCase();
  const colon = host.lastIndexOf(':');
  if (colon > host.lastIndexOf(']')) {
    const port = host.slice(colon + 1);
    if ((scheme === 'http' && port === '80') || (scheme === 'https' && port === '443')) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host;
}

/** The URL part of the key: `scheme://host/target` (the router's normalised path, the query as sent). */
export function urlKey(scheme: string, authority: string, path: string, query: string): string {
  return `${scheme}://${normalizeHost(authority, scheme)}${path}${query}`;
}

/**
 * One request header value normalised for `Vary` and key comparisons: repeated fields joined with
 * `, `, whitespace around commas and runs of whitespace collapsed, trimmed. Absent: ''.
 */
export function normalizeValue(v: string | string[] | undefined): string {
  if (v === undefined) return '';
  const s = Array.isArray(v) ? v.join(', ') : v;
  return s
    .trim()
    .replace(/\s*,\s*/g, ', ')
    .replace(/\s+/g, ' ');
}

/** The names a `Vary` value lists, lower case; `['*']` when it holds `*`; undefined when empty. */
export function varyNames(vary: string | string[] | undefined): string[] | undefined {
  if (vary === undefined) return undefined;
  const names = normalizeValue(vary)
    .toLowerCase()
    .split(', ')
    .filter((n) => n !== '');
  if (names.length === 0) return undefined;
  return names.includes('*') ? ['*'] : names.sort();
}

/** The part of a variant's key that the request's values of `names` make (`\0` separated). */
export function variantPart(names: readonly string[] | undefined, headers: Readonly<HeaderRecord>): string {
  if (names === undefined) return '';
  let out = '';
  for (const n of names) out += `\0${n}=${normalizeValue(headers[n])}`;
  return out;
}

/**
 * The request as http-cache-semantics sees it: GET (HEAD is served from a stored GET), the key's
 * URL, and only the headers it reads (host, authorization, cache-control, pragma, and the `vary`
 * names, normalised), so that an entry does not keep every request header.
 */
export function policyRequest(
  url: string,
  host: string,
  headers: Readonly<HeaderRecord>,
  vary: readonly string[] | undefined,
): { url: string; method: string; headers: HeaderRecord } {
  const h: HeaderRecord = { host };
  const auth = headers.authorization;
  if (auth !== undefined) h.authorization = auth;
  const cc = headers['cache-control'];
  if (cc !== undefined) h['cache-control'] = normalizeValue(cc);
  const pragma = headers.pragma;
  if (pragma !== undefined) h.pragma = normalizeValue(pragma);
  if (vary !== undefined) for (const n of vary) if (headers[n] !== undefined) h[n] = normalizeValue(headers[n]);
  return { url, method: 'GET', headers: h };
}

/** Response headers that are per request or per hop, never stored (Set-Cookie is decided apart). */
const NOT_STORED = new Set(['x-request-id', 'set-cookie', 'cache-status', 'age', 'connection', 'keep-alive', 'transfer-encoding', 'proxy-connection']);

/** The response headers to store, from the head on its way to the client: lower-case names. */
export function storedHeaders(forEach: (fn: (value: string, name: string) => void) => void): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  forEach((value, name) => {
    const n = name.toLowerCase();
    if (NOT_STORED.has(n)) return;
    const before = out[n];
    if (before === undefined) out[n] = value;
    else if (Array.isArray(before)) before.push(value);
    else out[n] = [before, value];
  });
  return out;
}

/** One Cache-Control directive's presence (`name` or `name=…`) in a value, case-insensitive. */
export function hasDirective(cc: string | string[] | undefined, name: string): boolean {
  if (cc === undefined) return false;
  for (const part of normalizeValue(cc).toLowerCase().split(', ')) {
    const eq = part.indexOf('=');
    if ((eq < 0 ? part : part.slice(0, eq)).trim() === name) return true;
  }
  return false;
}

/** A Cache-Control directive's seconds (`stale-if-error=60`), or undefined. */
export function directiveSeconds(cc: string | string[] | undefined, name: string): number | undefined {
  if (cc === undefined) return undefined;
  for (const part of normalizeValue(cc).toLowerCase().split(', ')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    const n = Number(part.slice(eq + 1).replace(/"/g, ''));
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  }
  return undefined;
}

/** What a stored response's freshness is built from, once, when it is stored. */
export interface Freshness {
  /** The headers http-cache-semantics gets (Cache-Control rewritten when needed). */
  readonly headers: HeaderRecord;
  /**
   * Never served stale (RFC 9111 §4.2.4): `must-revalidate`, `proxy-revalidate`, the origin's
   * `s-maxage` (which implies proxy-revalidate in a shared cache, §5.2.2.10) or `no-cache` (with or
   * without field names: reused only after validation, so neither within stale-while-revalidate
   * nor for a request's max-stale, §5.2.2.4).
   */
  readonly mustRevalidate: boolean;
  /** Whether the response carries freshness information or a validator worth storing it for. */
  readonly explicit: boolean;
}

/**
 * The headers http-cache-semantics decides freshness on: `must-revalidate` and `proxy-revalidate`
 * removed (and remembered); with no freshness information at all and `defaultTtl` > 0 (seconds),
 * an `s-maxage` of it added. The stored headers (served to clients) are not changed.
 */
export function policyHeaders(stored: Readonly<Record<string, string | string[]>>, defaultTtl: number): Freshness {
  const cc = stored['cache-control'];
  const directives =
    cc === undefined
      ? []
      : normalizeValue(cc)
          .split(', ')
          .filter((d) => d !== '');
  const kept = directives.filter((d) => {
    const n = d.toLowerCase().split('=')[0].trim();
    return n !== 'must-revalidate' && n !== 'proxy-revalidate';
  });
  const stripped = kept.length !== directives.length;
  const names = new Set(kept.map((d) => d.toLowerCase().split('=')[0].trim()));
  const explicit = names.has('max-age') || names.has('s-maxage') || names.has('no-cache') || stored.expires !== undefined || stored['last-modified'] !== undefined;
  // s-maxage and no-cache forbid stale reuse too; found by cache-property.test.ts (a no-cache
  // object was served within stale-while-revalidate and for max-stale without validation).
  const mustRevalidate = stripped || names.has('s-maxage') || names.has('no-cache');
  if (!stripped && (explicit || defaultTtl <= 0)) return { headers: stored, mustRevalidate, explicit };
  if (!explicit && defaultTtl > 0) kept.push(`s-maxage=${defaultTtl}`);
  const headers: HeaderRecord = { ...stored };
  if (kept.length === 0) delete headers['cache-control'];
  else headers['cache-control'] = kept.join(', ');
  return { headers, mustRevalidate, explicit: explicit || defaultTtl > 0 };
}

/** Header fields a 304 never replaces in a stored response (RFC 9111 §3.2 and http-cache-semantics). */
const NOT_UPDATED = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range', 'x-request-id', 'set-cookie', 'cache-status']);

/**
 * The stored headers updated from a 304 (RFC 9111 §3.2): each field of the 304 replaces the stored
 * one or is added, except the framing fields; a stored `Age` goes (the 304's, if any, counts).
 */
export function mergeNotModified(
  stored: Readonly<Record<string, string | string[]>>,
  fresh: Readonly<Record<string, string | string[]>>,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = { ...stored };
  delete out.age;
  for (const name in fresh) if (!NOT_UPDATED.has(name)) out[name] = fresh[name];
  return out;
}

function etagOpaque(tag: string): string {
  const t = tag.trim();
  return t.startsWith('W/') ? t.slice(2) : t;
}

/**
 * Whether a client's conditional GET/HEAD is answered 304 by a stored response (RFC 9110 §13.1.2,
 * §13.1.3): If-None-Match by weak comparison (`*` matches), else If-Modified-Since against
 * Last-Modified.
 */
export function notModified(request: Readonly<HeaderRecord>, stored: Readonly<Record<string, string | string[]>>): boolean {
  const inm = request['if-none-match'];
  if (inm !== undefined) {
    const etag = stored.etag;
    if (typeof etag !== 'string') return false;
    const want = etagOpaque(etag);
    for (const t of normalizeValue(inm).split(', ')) if (t === '*' || etagOpaque(t) === want) return true;
    return false;
  }
  const ims = request['if-modified-since'];
  const lm = stored['last-modified'];
  if (typeof ims !== 'string' || typeof lm !== 'string') return false;
  const since = Date.parse(ims);
  const modified = Date.parse(lm);
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
}

/**
 * Whether a 304 selects the stored response for update (RFC 9111 §4.3.4), the third correction of
 * http-cache-semantics, whose `revalidatedPolicy` compares Last-Modified as strings and, when the
 * 304 has an ETag and the stored response none, falls back to Last-Modified. Here:
 * - a 304 with an ETag selects only a stored response with the same ETag (strong comparison when
 *   the 304's is strong, weak otherwise);
 * - a 304 without an ETag but with a Last-Modified selects a stored response whose Last-Modified
 *   is the same date, both valid HTTP dates ("not a date" validates nothing);
 * - a 304 with no validator selects a stored response that has none either.
 * A 304 answering the client's own conditional (forwarded beside the cache's validators) for
 * another representation is so never merged into the stored one.
 */
export function selectedBy304(stored: Readonly<Record<string, string | string[]>>, notModifiedHeaders: Readonly<Record<string, string | string[]>>): boolean {
  const tag = notModifiedHeaders.etag;
  const storedTag = stored.etag;
  if (typeof tag === 'string') {
    if (typeof storedTag !== 'string') return false;
    const t = tag.trim();
    const st = storedTag.trim();
    if (!t.startsWith('W/')) return !st.startsWith('W/') && t === st;
    return etagOpaque(t) === etagOpaque(st);
  }
  const lm = notModifiedHeaders['last-modified'];
  const storedLm = stored['last-modified'];
  if (typeof lm === 'string') {
    if (typeof storedLm !== 'string') return false;
    const a = Date.parse(lm);
    return Number.isFinite(a) && a === Date.parse(storedLm);
  }
  return storedTag === undefined && (typeof storedLm !== 'string' || !Number.isFinite(Date.parse(storedLm)));
}

/**
 * Whether a Range applies given the request's `If-Range` (RFC 9110 §13.1.5): absent, or it names
 * the stored response's strong ETag (strong comparison: a weak tag on either side fails), or is
 * exactly its Last-Modified date.
 */
export function ifRangeHolds(value: string | string[] | undefined, stored: Readonly<Record<string, string | string[]>>): boolean {
  if (value === undefined) return true;
  const v = (Array.isArray(value) ? value.join(', ') : value).trim();
  if (v.startsWith('W/')) return false;
  if (v.startsWith('"')) {
    const etag = stored.etag;
    return typeof etag === 'string' && !etag.startsWith('W/') && etag.trim() === v;
  }
  const lm = stored['last-modified'];
  return typeof lm === 'string' && lm.trim() === v;
}

/** The fields a 304 carries of the stored response (RFC 9110 §15.4.5). */
export const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'last-modified', 'vary'];

/** Tags of a response for purging: `Surrogate-Key` (space separated) and `Cache-Tag` (comma separated). */
export function tagsOf(stored: Readonly<Record<string, string | string[]>>): string[] {
  const out: string[] = [];
  const sk = stored['surrogate-key'];
  if (sk !== undefined) for (const t of (Array.isArray(sk) ? sk.join(' ') : sk).split(/\s+/)) if (t !== '') out.push(t);
  const ct = stored['cache-tag'];
  if (ct !== undefined) for (const t of (Array.isArray(ct) ? ct.join(',') : ct).split(',')) if (t.trim() !== '') out.push(t.trim());
  return out;
}

/**
 * A `Cache-Status` entry (RFC 9211): the cache's name, then parameters, e.g. `Switchboard; hit;
 * ttl=42`, `Switchboard; fwd=miss; stored`, `Switchboard; fwd=stale; fwd-status=304`.
 */
export function cacheStatus(name: string, params: string, ttl?: number): string {
  return ttl === undefined ? `${name}; ${params}` : `${name}; ${params}; ttl=${Math.floor(ttl)}`;
}

/** Methods that never invalidate (RFC 9110 §9.2.1 safe methods). */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/** Whether a response to `method` invalidates the target (RFC 9111 §4.4: an unsafe method). */
export function unsafeMethod(method: string): boolean {
  return !SAFE.has(method);
}

/**
 * The URL key of a `Location` or `Content-Location` value relative to the request, when it has the
 * request's origin (RFC 9111 §4.4 invalidates only same-origin URIs); undefined otherwise.
 */
export function sameOriginKey(value: string | undefined, base: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  let u: URL;
  let b: URL;
  try {
    b = new URL(base);
    u = new URL(value, b);
  } catch {
    return undefined;
  }
  const scheme = u.protocol.slice(0, -1);
  const origin = `${scheme}://${normalizeHost(u.host, scheme)}`;
  if (origin !== `${b.protocol.slice(0, -1)}://${normalizeHost(b.host, b.protocol.slice(0, -1))}`) return undefined;
  return `${origin}${u.pathname}${u.search}`;
}
