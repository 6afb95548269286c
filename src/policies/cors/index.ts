/**
 * The `cors` policy: answers CORS preflights itself and adds the CORS headers to responses, so that
 * scripts on the listed origins may call the routes it is attached to.
 *
 * Sources: the Fetch standard's CORS protocol (section "CORS protocol": the `Origin` request header,
 * the `Access-Control-*` response headers, "CORS protocol and HTTP caches" for `Vary`) and its
 * CORS-preflight fetch and CORS check (an ok status, 200-299; `Access-Control-Allow-Origin` equal to
 * the origin or `*`; `*` literal in every header once credentials are included; `Authorization` never
 * covered by `*`); the WICG Private Network Access draft (`Access-Control-Request-Private-Network`);
 * and the behaviour of Envoy's cors filter (preflights answered by the proxy, CORS headers from the
 * proxy override the upstream's), Kong's cors plugin (request headers reflected by default,
 * `Vary: Origin`, `max_age`, `private_network`) and Traefik's headers middleware
 * (`accessControlAllowOriginList`/`...ListRegex`, `addVaryHeader`).
 *
 * Decisions, for users of those:
 * - A preflight is `OPTIONS` with `Origin` and `Access-Control-Request-Method`. It is always answered
 *   here, never forwarded: 204 with the `Access-Control-Allow-*` headers when the origin, the method
 *   and every requested header are allowed; otherwise 403 with the JSON error `CORS_FORBIDDEN` and no
 *   CORS headers, which the browser then fails. Attach `cors` before authentication policies:
 *   preflights carry no credentials.
 * - Every other request is forwarded. On its response (the upstream's, the gateway's own error, or
 *   another policy's Reply such as a 401) the policy owns the CORS headers: any `Access-Control-*`
 *   header the upstream set is removed, then an allowed origin gets `Access-Control-Allow-Origin`,
 *   `-Allow-Credentials` and `-Expose-Headers`; a disallowed one gets none.
 * - Caches, as the Fetch standard asks: with `origins: ["*"]` (no credentials) every response, with an
 *   `Origin` or without, carries the same constant headers and no `Vary`; otherwise every response,
 *   with an `Origin` or without, carries `Vary: Origin` (added once to an existing `Vary`), so a cache
 *   never serves one origin's answer, or a no-CORS answer, to another.
 * - `"*"` with `credentials: true` is a config problem (browsers refuse `*` with credentials, and
 *   reflecting every origin with credentials would let any site read authenticated answers). So is
 *   `exposedHeaders: ["*"]` with credentials. `methods: ["*"]` and `requestHeaders: ["*"]` answer with
 *   what was requested, which works with credentials and covers `Authorization`.
 * - `privateNetwork: false` does not refuse a Private Network Access preflight: the answer just lacks
 *   `Access-Control-Allow-Private-Network`, so the browser fails (or, in Chromium's warning mode,
 *   warns about) only that part.
 */
import { parseDuration } from '../../util/units.ts';
import { TOKEN_CHAR, TOKEN_PATTERN } from '../../util/config-primitives.ts';
import type { Filter, Headers, PolicyType, Reply, RequestView, ResolveContext } from '../filter.ts';
import { corsConfig, type RawCors } from './config.ts';
import { compileOrigins, originAllowed, type OriginRules } from './origin-rules.ts';

/** A `cors` policy after `resolve`: origins compiled, defaults applied, `maxAge` in seconds. */
export interface CorsResolved {
  readonly origins: OriginRules;
  /** Methods a preflight may ask for, compared exactly; `'*'`: any (the requested one is answered). */
  readonly methods: readonly string[] | '*';
  /** Request header names a preflight may ask for, as written; `'*'`: any (the requested ones are answered). */
  readonly requestHeaders: readonly string[] | '*';
  /** `Access-Control-Expose-Headers` names; `['*']` exposes all (never with credentials). */
  readonly exposedHeaders: readonly string[];
  readonly credentials: boolean;
  /** `Access-Control-Max-Age` in seconds; undefined: no header. */
  readonly maxAge: number | undefined;
  /** Whether Private Network Access preflights are allowed. */
  readonly privateNetwork: boolean;
}

const DEFAULT_METHODS = ['GET', 'HEAD', 'POST'];
const PREFIX = 'access-control-';
/** An `Access-Control-Request-Headers` value worth echoing: tokens, commas and blanks only. */
const HEADER_LIST = new RegExp(`^(?:${TOKEN_CHAR}|[ \\t,])*$`);

/** `*` alone or names without `*`; reports `*` beside others. */
function starOrList(list: readonly string[], key: string, ctx: ResolveContext): readonly string[] | '*' {
  if (!list.includes('*')) return list;
  if (list.length > 1) ctx.problem({ path: [key, list.indexOf('*')], expected: '"*" as the only entry (it allows every one)', found: '"*" beside other entries' });
  return '*';
}

function resolve(raw: RawCors, ctx: ResolveContext): CorsResolved {
  const credentials = raw.credentials ?? false;
  const origins = compileOrigins(raw.origins, (p) => ctx.problem(p));
  if (origins.any && credentials) {
    ctx.problem({
      path: ['origins', raw.origins.indexOf('*')],
      expected: 'listed origins with `credentials: true` (browsers refuse "*" with credentials)',
      found: '"*"',
    });
  }
  const exposedHeaders = raw.exposedHeaders ?? [];
  if (starOrList(exposedHeaders, 'exposedHeaders', ctx) === '*' && credentials) {
    ctx.problem({
      path: ['exposedHeaders', exposedHeaders.indexOf('*')],
      expected: 'header names with `credentials: true` (browsers read "*" as a header name then)',
      found: '"*"',
    });
  }
  return {
    origins,
    methods: starOrList(raw.methods ?? DEFAULT_METHODS, 'methods', ctx),
    requestHeaders: starOrList(raw.requestHeaders ?? ['*'], 'requestHeaders', ctx),
    exposedHeaders,
    credentials,
    maxAge: raw.maxAge === undefined ? undefined : Math.floor(parseDuration(raw.maxAge) / 1000),
    privateNetwork: raw.privateNetwork ?? false,
  };
}

/** A request header's value when sent once; '' when sent as several fields (never a valid value here). */
function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? '' : value;
}

/** Appends `Origin` to `Vary` unless it (or `*`) is there; several `Vary` fields become one. */
function varyOrigin(headers: Headers): void {
  const vary = headers.get('vary');
  if (vary === undefined) {
    headers.append('vary', 'Origin');
    return;
  }
  for (const token of vary.split(',')) {
    const t = token.trim().toLowerCase();
    if (t === 'origin' || t === '*') return;
  }
  headers.set('vary', `${vary}, Origin`);
}

/** Names found by `collectCors` (module-level and reused: hooks run synchronously, one at a time). */
const found: string[] = [];

function collectCors(_value: string, name: string): void {
  if (name.length > PREFIX.length && (name.charCodeAt(0) | 32) === 97 && name.slice(0, PREFIX.length).toLowerCase() === PREFIX) found.push(name);
}

/** Removes every `Access-Control-*` header (the upstream's): this policy is their one source. No allocation when there is none. */
function dropCorsHeaders(headers: Headers): void {
  headers.forEach(collectCors);
  if (found.length === 0) return;
  for (const name of found) headers.delete(name);
  found.length = 0;
}

function create(r: CorsResolved): Filter {
  const anyOrigin = r.origins.any && !r.credentials;
  // `*` with credentials is a config problem, so this never runs; should it, allow nobody rather than reflect everybody.
  const origins: OriginRules = r.origins.any && r.credentials ? { ...r.origins, any: false } : r.origins;
  // Constant header values, computed once per generation.
  const vary: Record<string, string> = anyOrigin ? {} : { vary: 'Origin' };
  const actual: Array<[string, string]> = [];
  if (r.credentials) actual.push(['access-control-allow-credentials', 'true']);
  if (r.exposedHeaders.length > 0) actual.push(['access-control-expose-headers', r.exposedHeaders.join(', ')]);
  const preflight: Record<string, string> = { ...vary };
  if (r.credentials) preflight['access-control-allow-credentials'] = 'true';
  if (r.methods !== '*') preflight['access-control-allow-methods'] = r.methods.join(', ');
  if (r.requestHeaders !== '*' && r.requestHeaders.length > 0) preflight['access-control-allow-headers'] = r.requestHeaders.join(', ');
  if (r.maxAge !== undefined) preflight['access-control-max-age'] = String(r.maxAge);
  const methods = r.methods === '*' ? undefined : new Set(r.methods);
  const requestHeaders = r.requestHeaders === '*' ? undefined : new Set(r.requestHeaders.map((h) => h.toLowerCase()));
  const refused = (what: string): Reply => ({ status: 403, headers: vary, error: { code: 'CORS_FORBIDDEN', message: `CORS preflight refused: ${what} not allowed` } });
  const refusedOrigin = refused('origin');
  const refusedMethod = refused('method');
  const refusedHeaders = refused('request headers');

  /** The answer to a preflight from `origin` asking for `method`. */
  function answer(req: RequestView, origin: string, method: string): Reply {
    if (!originAllowed(origins, origin)) return refusedOrigin;
    if (methods === undefined ? !TOKEN_PATTERN.test(method) : !methods.has(method)) return refusedMethod;
    const asked = single(req.headers['access-control-request-headers']);
    if (asked !== undefined) {
      if (!HEADER_LIST.test(asked)) return refusedHeaders;
      if (requestHeaders !== undefined) {
        for (const name of asked.split(',')) {
          const n = name.trim().toLowerCase();
          if (n !== '' && !requestHeaders.has(n)) return refusedHeaders;
        }
      }
    }
    const headers: Record<string, string> = { ...preflight, 'access-control-allow-origin': anyOrigin ? '*' : origin };
    if (methods === undefined) headers['access-control-allow-methods'] = method;
    if (requestHeaders === undefined && asked !== undefined && asked.trim() !== '') headers['access-control-allow-headers'] = asked;
    if (r.privateNetwork && req.headers['access-control-request-private-network'] === 'true') headers['access-control-allow-private-network'] = 'true';
    return { status: 204, headers };
  }

  return {
    onRequest(s) {
      const req = s.request;
      if (req.method !== 'OPTIONS') return undefined;
      const origin = single(req.headers.origin);
      const method = single(req.headers['access-control-request-method']);
      if (origin === undefined || method === undefined) return undefined;
      return answer(req, origin, method);
    },

    onResponse(s, head) {
      const h = head.headers;
      dropCorsHeaders(h); // so appending below cannot repeat a header
      if (anyOrigin) {
        h.append('access-control-allow-origin', '*');
        for (const [name, value] of actual) h.append(name, value);
        return undefined;
      }
      varyOrigin(h);
      const origin = single(s.request.headers.origin);
      if (origin === undefined || !originAllowed(origins, origin)) return undefined;
      h.append('access-control-allow-origin', origin);
      for (const [name, value] of actual) h.append(name, value);
      return undefined;
    },
  };
}

/** The `cors` policy type. */
export const corsPolicy = {
  type: 'cors',
  description: 'CORS: answers preflights and adds Access-Control-* headers for the allowed origins (exact, *.wildcard, regex).',
  config: corsConfig,
  resolve,
  create,
} satisfies PolicyType<typeof corsConfig, CorsResolved>;
