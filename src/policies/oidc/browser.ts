/**
 * What the `oidc` policy decides about a request from its browser side: whether it is a page the
 * browser navigates to (sent to log in) or a script's or API client's call (401), and which path
 * of the site the browser may be sent back to after the login (never another site).
 */
import type { Session } from '../filter.ts';

/**
 * Whether a request is a browser navigation: GET or HEAD, not a WebSocket, `Accept` naming
 * `text/html`, and, when the browser says (`Sec-Fetch-Mode`), a navigation. A script's `fetch`
 * (`Accept: *\/*`, `Sec-Fetch-Mode: cors`) and an API client are not.
 */
export function isNavigation(s: Session): boolean {
  const r = s.request;
  if ((r.method !== 'GET' && r.method !== 'HEAD') || r.upgrade) return false;
  const mode = r.headers['sec-fetch-mode'];
  if (typeof mode === 'string' && mode !== 'navigate') return false;
  const accept = r.headers.accept;
  return typeof accept === 'string' && accept.includes('text/html');
}

/** Longest return path kept (the login cookie carries it). */
const MAX_RETURN = 2048;

/**
 * A path of this site to send the browser to after the login: `value` when it is a path (one
 * leading `/`, printable ASCII without `\`) or an absolute URL of `origin` (made a path), else `/`.
 * `origin` is normalised (`URL.origin`).
 * So `//evil.example`, `/\evil.example`, `https://evil.example/` and `javascript:` all become `/`.
 */
export function returnPath(value: string | undefined, origin: string): string {
  if (value === undefined || value === '') return '/';
  let path = value;
  if (!path.startsWith('/')) {
    let url: URL;
    try {
      url = new URL(path);
    } catch {
      return '/';
    }
    if (url.origin !== origin) return '/';
    path = url.pathname + url.search;
  }
  if (path.length > MAX_RETURN || path[1] === '/' || path[1] === '\\' || !/^[\x21-\x5b\x5d-\x7e]*$/.test(path)) return '/';
  // Whatever a browser makes of it, it must stay on this origin.
  try {
    return new URL(path, origin).origin === origin ? path : '/';
  } catch {
    return '/';
  }
}
