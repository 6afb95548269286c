/**
 * Edge checks beyond the parsers' own (see shared EDGE-CASES 2, 4, 8, 9, 10; the request line's bytes in h1-head.ts): each returns
 * the error code to answer with, or undefined when the request may proceed. Run once per request
 * before routing; every rejection closes the connection, since framing is in doubt.
 */
import type { IncomingMessage } from 'node:http';
import { METHODS } from '../util/node-http.ts';
import type { ErrorCode } from '../errors.ts';
import { portColon } from '../util/host.ts';

/** A Host value: reg-name or IPv4, or a bracketed IPv6 literal, with an optional port. */
const HOST_VALUE = /^(?:[A-Za-z0-9-._~!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The request target split into its parts, after the checks. */
export interface Target {
  path: string;
  /** Including the leading `?`, or ''. */
  query: string;
}

/** The port of a Host value that passed HOST_VALUE is at most five digits; it must also be ≤ 65535. */
function portInRange(host: string): boolean {
  const colon = portColon(host);
  if (colon === -1) return true;
  return host.length - colon < 6 || Number(host.slice(colon + 1)) <= 65535;
}

/**
 * A Content-Length value must be a number JavaScript holds exactly: llhttp accepts decimal values up
 * to 2^64 - 1 and nghttp2 up to 2^63 - 1, but Number() rounds anything past 2^53 - 1, so a larger
 * value would be counted, compared with the route's maxBodySize and forwarded as another number
 * than the one the client framed its body by. Every accepted value is exact, so `Number(value)`
 * (the maxBodySize check, the byte count) is exact too. Leading zeros are allowed, as llhttp does.
 */
export function checkContentLength(value: string | undefined): ErrorCode | undefined {
  if (value === undefined) return undefined;
  return /^[0-9]+$/.test(value) && Number(value) <= Number.MAX_SAFE_INTEGER ? undefined : 'INVALID_CONTENT_LENGTH';
}

/**
 * The framing checks of an HTTP/1.x request the own server parsed (h1-head.ts): what its request
 * line had wrong (`lineError`: spaces, a version other than 1.0 and 1.1), then its fields: one Host,
 * a valid one, Transfer-Encoding exactly chunked (not in HTTP/1.0), an exact Content-Length.
 */
export function checkFraming(lineError: ErrorCode | undefined, minor: number, raw: readonly string[], headers: IncomingMessage['headers']): ErrorCode | undefined {
  if (lineError !== undefined) return lineError;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) hosts++;
  }
  if (hosts > 1) return 'DUPLICATE_HOST';
  const host = headers.host;
  if (host !== undefined && (!HOST_VALUE.test(host) || !portInRange(host))) return 'INVALID_HOST';
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    if (minor === 0) return 'INVALID_TRANSFER_ENCODING';
    if (te !== 'chunked' && te.toLowerCase() !== 'chunked') return 'INVALID_TRANSFER_ENCODING';
  }
  return checkContentLength(headers['content-length']);
}

/** The methods llhttp parses: an HTTP/1.1 request with any other (`get`, `FOO`) is a 400 before it exists. */
const HTTP1_METHODS = new Set(METHODS);

/**
 * One method rule for both protocols: over HTTP/2 any token is a valid `:method` (nghttp2 checks
 * no more), so a method HTTP/1.1 could not carry gets the 400 that HTTP/1.1 answers.
 */
export function checkMethod(method: string | undefined): ErrorCode | undefined {
  return method !== undefined && HTTP1_METHODS.has(method) ? undefined : 'BAD_REQUEST';
}

/**
 * The same checks for a request that came over HTTP/2, where nghttp2 has already rejected what
 * HTTP/2 forbids (upper-case names, connection-specific headers, bad pseudo-headers, a
 * content-length that disagrees with DATA): the authority (`:authority`, or Host when it is
 * absent) must be a valid host, a Host beside it must name the same one, CONNECT is refused
 * (unless `connect`: a forward listener, whose CONNECT streams are tunnels, RFC 9113 §8.5), the
 * method must be one HTTP/1.1 accepts (checkMethod), and content-length must be exact
 * (checkContentLength). A stream whose header block held a field nghttp2 would have dropped was
 * reset before it got here (h2-field-check.ts); it is answered MALFORMED_HEADER for the log.
 * The header list (RFC 9113 §6.5.2 size: name + value + 32 per field) must fit
 * `maxHeaderListSize`: nghttp2 enforces our SETTINGS_MAX_HEADER_LIST_SIZE only once the client
 * has acknowledged our SETTINGS, and a client need never do that.
 */
export function checkH2(
  req: { readonly rawHeaders: readonly string[]; readonly method: string; readonly headers: IncomingMessage['headers'] },
  maxHeaderListSize = Infinity,
  connect = false,
): ErrorCode | undefined {
  const raw = req.rawHeaders;
  let hosts = 0;
  let size = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] === 'host') hosts++;
    size += raw[i].length + raw[i + 1].length + 32;
  }
  if (size > maxHeaderListSize) return 'HEADERS_TOO_LARGE';
  if (req.method === 'CONNECT' && !connect) return 'METHOD_NOT_ALLOWED';
  const method = checkMethod(req.method);
  if (method !== undefined) return method;
  const authority = req.headers[':authority'] as string | undefined;
  if (hosts > 1) return 'DUPLICATE_HOST';
  const host = req.headers.host;
  if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) return 'HOST_MISMATCH';
  const value = authority ?? host;
  if (value === undefined) return 'BAD_REQUEST';
  if (!HOST_VALUE.test(value) || !portInRange(value)) return 'INVALID_HOST';
  return checkContentLength(req.headers['content-length']);
}

/** A forward-proxy request's target, split: the destination it names, if any, then path and query. */
export interface ForwardTarget extends Target {
  /**
   * `absolute` (`http://host/…`; `absolute-https` for `https://host/…`), `authority` (CONNECT's
   * `host:port`), or `origin` (a path: a request for the proxy itself).
   */
  readonly form: 'absolute' | 'absolute-https' | 'authority' | 'origin';
  /** The destination `host[:port]` (lower-cased) for every form but `origin`. */
  readonly authority: string | undefined;
}

const ABSOLUTE = /^(https?):\/\/([^/?]*)/i;
/** CONNECT's authority-form: a host and a port, which is required (RFC 9112 §3.2.3). */
const AUTHORITY_FORM = /^(?:[A-Za-z0-9-._~!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$/;

/** A destination's port, when the authority names one, is 1-65535 (port 0 is no destination). */
function destinationPort(authority: string): boolean {
  const colon = portColon(authority);
  if (colon === -1) return true;
  const port = Number(authority.slice(colon + 1));
  return authority.length - colon > 1 && port >= 1 && port <= 65535;
}

/**
 * The request target of a forward-proxy listener (EDGE-CASES 9, 10). CONNECT takes only the
 * authority-form `host:port` (HTTP/2: `:authority`, no `:path`); `CONNECT /` is invalid. Other
 * methods: the absolute-form's authority wins over Host (the pipeline rewrites Host from it), and
 * must be a valid host (no userinfo); a path alone is a request for the proxy itself.
 */
export function parseForwardTarget(method: string, url: string, authority: string): ForwardTarget | ErrorCode {
  if (method === 'CONNECT') {
    const text = url === '' ? authority : url;
    if (!AUTHORITY_FORM.test(text) || !destinationPort(text)) return 'INVALID_TARGET';
    return { form: 'authority', authority: text.toLowerCase(), path: '', query: '' };
  }
  if (url.includes('#')) return 'INVALID_TARGET';
  if (url.charCodeAt(0) === 47 /* / */) {
    const origin = parseTarget(url, undefined);
    return typeof origin === 'string' ? origin : { form: 'origin', authority: undefined, path: origin.path, query: origin.query };
  }
  const m = ABSOLUTE.exec(url);
  if (!m) return 'INVALID_TARGET';
  const host = m[2];
  if (host === '' || !HOST_VALUE.test(host) || !destinationPort(host)) return 'INVALID_HOST';
  let pathAndQuery = url.slice(m[0].length) || '/';
  if (pathAndQuery[0] === '?') pathAndQuery = `/${pathAndQuery}`;
  const q = pathAndQuery.indexOf('?');
  return {
    form: m[1].length === 5 ? 'absolute-https' : 'absolute',
    authority: host.toLowerCase(),
    path: q === -1 ? pathAndQuery : pathAndQuery.slice(0, q),
    query: q === -1 ? '' : pathAndQuery.slice(q),
  };
}

/**
 * Splits the request target into path and query. Accepts origin-form (`/a?b`) and absolute-form
 * (`http://host/a?b`, whose authority must equal Host); anything else, or a `#`, is invalid.
 */
export function parseTarget(url: string, host: string | undefined): Target | ErrorCode {
  if (url.includes('#')) return 'INVALID_TARGET';
  let pathAndQuery = url;
  if (url.charCodeAt(0) !== 47 /* / */) {
    const m = /^https?:\/\/([^/?]*)/i.exec(url);
    if (!m) return 'INVALID_TARGET';
    if (host === undefined || m[1].toLowerCase() !== host.toLowerCase()) return 'HOST_MISMATCH';
    pathAndQuery = url.slice(m[0].length) || '/';
    if (pathAndQuery[0] === '?') pathAndQuery = `/${pathAndQuery}`;
  }
  const q = pathAndQuery.indexOf('?');
  return q === -1 ? { path: pathAndQuery, query: '' } : { path: pathAndQuery.slice(0, q), query: pathAndQuery.slice(q) };
}
