/**
 * The URL patterns of a content-filter policy, compiled once per config load and asked once per
 * request: prefixes, `*` globs and `~regex`es (config.ts `urls` says what each matches).
 *
 * Prefixes that name a whole authority (`http://ads.example/…`, `ads.example/…`) sit in a map by
 * that authority, so a list of 100,000 lines (urlFiles) costs one or two map lookups and a
 * `startsWith` per prefix of that host; the few others (`http://ads.`) and the globs are scanned.
 * A glob is matched piece by piece with `indexOf` (no backtracking: time linear in the URL per
 * piece). Regexes are V8's linear-time ones (util/linear-regexp.ts, EDGE-CASES 54), so no URL can
 * make a rule run long, whatever its length (it is bounded by the listener's maxHeaderSize anyway).
 *
 * State: none per request; immutable once built, per process (each process resolves its config).
 */
import { linearRegExp } from '../../util/linear-regexp.ts';

/** One request URL in the forms patterns are matched against; built once per request by `requestUrl`. */
export interface RequestUrl {
  /** `scheme://host[:port]/path?query`, scheme and host lower-case, a default port dropped. */
  readonly url: string;
  /** `url` lower-cased. */
  readonly lower: string;
  /** The length of `scheme://` in `lower`. */
  readonly schemeLength: number;
  /** The end of the authority in `lower` (where the path begins). */
  readonly authorityEnd: number;
}

/** The URL of a request from its scheme, authority (Host or the forward target's), normalised path and query. */
export function requestUrl(scheme: string, authority: string, path: string, query: string): RequestUrl {
  const host = withoutDefaultPort(scheme, authority.toLowerCase());
  const url = `${scheme}://${host}${path}${query}`;
  const schemeLength = scheme.length + 3;
  return { url, lower: url.toLowerCase(), schemeLength, authorityEnd: schemeLength + host.length };
}

/** `host:80` for http and `host:443` for https as `host`. */
function withoutDefaultPort(scheme: string, authority: string): string {
  if (scheme === 'http' && authority.endsWith(':80')) return authority.slice(0, -3);
  if (scheme === 'https' && authority.endsWith(':443')) return authority.slice(0, -4);
  return authority;
}

/** A glob split at its `*`s; `scheme` says whether it is matched against the whole URL or the URL after `scheme://`. */
interface Glob {
  readonly pieces: readonly string[];
  readonly scheme: boolean;
}

export class UrlPatterns {
  /** Prefixes with a scheme, by `scheme://authority`. */
  readonly #byOrigin = new Map<string, string[]>();
  /** Prefixes without a scheme, by authority. */
  readonly #byHost = new Map<string, string[]>();
  /** Prefixes that name no whole authority: with and without a scheme. */
  readonly #prefixes: string[] = [];
  readonly #bareprefixes: string[] = [];
  readonly #globs: Glob[] = [];
  readonly #regexes: RegExp[] = [];
  #size = 0;

  /** Adds a pattern; returns why it is refused (a regex that does not compile in linear time), or undefined. */
  add(pattern: string): string | undefined {
    if (pattern.startsWith('~')) {
      const re = linearRegExp(pattern.slice(1));
      if (typeof re === 'string') return re;
      this.#regexes.push(re);
      this.#size++;
      return undefined;
    }
    const p = normalizePattern(pattern.toLowerCase());
    const sep = p.indexOf('://');
    const scheme = sep > 0 && !p.slice(0, sep).includes('*');
    if (p.includes('*')) {
      this.#globs.push({ pieces: p.split('*'), scheme });
    } else {
      const start = scheme ? sep + 3 : 0;
      const slash = p.indexOf('/', start);
      if (slash > start) {
        const map = scheme ? this.#byOrigin : this.#byHost;
        const key = p.slice(0, slash);
        const list = map.get(key);
        if (list === undefined) map.set(key, [p]);
        else list.push(p);
      } else (scheme ? this.#prefixes : this.#bareprefixes).push(p);
    }
    this.#size++;
    return undefined;
  }

  /** How many patterns were added. */
  get size(): number {
    return this.#size;
  }

  /** Whether `u` matches a pattern. */
  matches(u: RequestUrl): boolean {
    const lower = u.lower;
    const bare = lower.slice(u.schemeLength);
    if (this.#byOrigin.size > 0 && startsWithAny(lower, this.#byOrigin.get(lower.slice(0, u.authorityEnd)))) return true;
    if (this.#byHost.size > 0 && startsWithAny(bare, this.#byHost.get(lower.slice(u.schemeLength, u.authorityEnd)))) return true;
    if (startsWithAny(lower, this.#prefixes) || startsWithAny(bare, this.#bareprefixes)) return true;
    for (const g of this.#globs) if (globMatches(g.pieces, g.scheme ? lower : bare)) return true;
    for (const re of this.#regexes) if (re.test(u.url)) return true;
    return false;
  }
}

/** A pattern's default port dropped, as the request URL's is (`http://a.example:80/x` → `http://a.example/x`). */
function normalizePattern(p: string): string {
  const m = /^(https?):\/\/([^/*]+)(\/.*)?$/.exec(p);
  if (m === null) return p;
  return `${m[1]}://${withoutDefaultPort(m[1], m[2])}${m[3] ?? ''}`;
}

function startsWithAny(text: string, prefixes: readonly string[] | undefined): boolean {
  if (prefixes === undefined) return false;
  for (const p of prefixes) if (text.startsWith(p)) return true;
  return false;
}

/**
 * Whether `text` matches a glob given as the pieces between its `*`s (at least two): the first
 * piece starts it, the last ends it, the middle ones follow in order, each at its first place after
 * the one before (leftmost is always right for `*`-only globs: no backtracking).
 */
export function globMatches(pieces: readonly string[], text: string): boolean {
  const first = pieces[0];
  const last = pieces[pieces.length - 1];
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (let i = 1; i < pieces.length - 1; i++) {
    const piece = pieces[i];
    if (piece === '') continue;
    const found = text.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}
