/**
 * A static route's directory, compiled once per generation (docs/static.md): the root with its
 * symbolic links resolved, the prefix to strip, the Cache-Control patterns as regexes, and the
 * mapping of a request path to a path under the root that can never leave it.
 *
 * The request path arrives normalised by the router's rules (routing/path.ts: dot segments,
 * `%2e`, merged slashes) and rewritten by the route. Here it is percent-decoded once; encoded
 * separators (`%2F`, `%5C`), NUL, a backslash and malformed escapes are refused (400) rather than
 * guessed at; a dot segment that survives is refused too (it cannot, but the root depends on it).
 * Symbolic links are checked when the file is opened (static-files.ts), on what was opened.
 */
import { realpathSync } from 'node:fs';
import type * as MimeTypes from 'mime-types';
import { lazyModule } from '../util/lazy-module.ts';

const mime = lazyModule<typeof MimeTypes>('mime-types');
import type { RouteConfig, StaticConfig } from '../config/types.ts';

/** A Cache-Control pattern, compiled: tested against the file name or the path under the root. */
interface CacheRule {
  readonly re: RegExp;
  /** Test the path under the root (`/img/a.png`) rather than the file name (`a.png`). */
  readonly onPath: boolean;
  readonly value: string;
}

function escapeRe(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** `*.css` (a file name: `*` any characters) or `/img/` (a prefix), `/js/*.js` (`*` in a segment, `**` across). */
export function compileCacheRule(match: string, value: string): CacheRule {
  if (!match.startsWith('/')) {
    return { re: new RegExp(`^${match.split('*').map(escapeRe).join('.*')}$`), onPath: false, value };
  }
  const body = match
    .split('**')
    .map((part) => part.split('*').map(escapeRe).join('[^/]*'))
    .join('.*');
  return { re: new RegExp(match.endsWith('/') ? `^${body}` : `^${body}$`), onPath: true, value };
}

/**
 * Content-Type by extension (mime-types 3, with `; charset=utf-8` for text types), memoised for
 * the extensions it knows. Per worker, immutable data: a bounded set (mime-db's extensions), never
 * request data it does not know (unknown extensions are not stored).
 */
const types = new Map<string, string>();
const OCTET = 'application/octet-stream';

export function typeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot <= 0) return OCTET;
  const ext = name.slice(dot + 1).toLowerCase();
  const known = types.get(ext);
  if (known !== undefined) return known;
  const t = mime().contentType(ext);
  if (t === false) return OCTET;
  types.set(ext, t);
  return t;
}

/** Why a request path maps to no file: 400 (refused as malformed) or 404 (hidden or absent). */
export type PathRefusal = 400 | 404;

/** One static route's directory, per generation. */
export class StaticSite {
  readonly config: StaticConfig;
  /** The root with symbolic links resolved: what an opened file's real path must start with. */
  readonly root: string;
  /** The route's path prefix removed before the lookup, or undefined. */
  readonly strip: string | undefined;
  readonly index: readonly string[];
  readonly #rules: readonly CacheRule[];

  constructor(config: StaticConfig, route: RouteConfig) {
    this.config = config;
    let root: string;
    try {
      root = realpathSync(config.root);
    } catch {
      // Checked at load; gone since: every request is 404 until it is back.
      root = config.root;
    }
    this.root = root.endsWith('/') ? root.slice(0, -1) : root;
    const p = route.match.path;
    this.strip = config.stripPrefix && route.rewrite === undefined && p?.kind === 'prefix' && p.value !== '/' ? p.value : undefined;
    this.index = config.index;
    this.#rules = config.cacheControl.map((c) => compileCacheRule(c.match, c.value));
  }

  /**
   * The path under the root (decoded, starting with `/`) for the request path `path` (normalised,
   * rewritten, no query), or why there is none.
   */
  resolve(path: string): string | PathRefusal {
    let rel = path;
    const strip = this.strip;
    if (strip !== undefined && rel.startsWith(strip)) {
      rel = rel.slice(strip.length);
      if (!rel.startsWith('/')) rel = `/${rel}`;
    }
    if (rel.includes('%')) {
      const lower = rel.toLowerCase();
      if (lower.includes('%2f') || lower.includes('%5c') || lower.includes('%00')) return 400;
      try {
        rel = decodeURIComponent(rel);
      } catch {
        return 400;
      }
    }
    if (rel.includes('\\') || rel.includes('\0')) return 400;
    if (rel.includes('/.')) {
      for (const seg of rel.split('/')) {
        if (seg === '.' || seg === '..') return 400;
        if (seg.startsWith('.') && !this.config.dotfiles) return 404;
      }
    }
    return rel;
  }

  /** The Cache-Control value for the file at `rel` (its name `name`), or undefined. */
  cacheControl(rel: string, name: string): string | undefined {
    const rules = this.#rules;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i];
      if (r.re.test(r.onPath ? rel : name)) return r.value;
    }
    return undefined;
  }
}
