/**
 * Request-target handling, done once per request so that routing and forwarding decide on the same
 * string: split path and query, normalise the path (RFC 3986 dot segments, `%2e` as a dot, merged
 * slashes), and apply a route's rewrite.
 */
import type { RewriteConfig } from '../config/types.ts';

/**
 * Normalises a path. Fast path: a path with no `/.`, `//` or `%2` is returned as is.
 * Returns undefined for a path that still climbs above the root after normalisation.
 */
export function normalizePath(path: string): string | undefined {
  if (!path.includes('/.') && !path.includes('//') && !path.includes('%2')) return path;
  const decoded = path.replace(/%2e/gi, '.');
  const segments = decoded.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segments[i];
    if (s === '.' || (s === '' && i !== last)) {
      if (i === last) out.push('');
      continue;
    }
    if (s === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      if (i === last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

/** Applies a route's rewrite to a normalised path. */
export function rewritePath(path: string, rewrite: RewriteConfig | undefined): string {
  if (rewrite === undefined) return path;
  if (rewrite.kind === 'strip') {
    if (!path.startsWith(rewrite.prefix)) return path;
    const rest = path.slice(rewrite.prefix.length);
    return rest.startsWith('/') ? rest : `/${rest}`;
  }
  if (!path.startsWith(rewrite.from)) return path;
  return rewrite.to + path.slice(rewrite.from.length);
}
