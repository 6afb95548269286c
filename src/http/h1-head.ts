/**
 * An HTTP/1.x request head (RFC 9112 §2-3, §5-6), parsed by Switchboard's own HTTP/1.1 server
 * (h1-server.ts): never more leniently than llhttp in node's strict mode, whose answers it keeps
 * (a differential test, h1-head-differential.test.ts, checks that whatever this accepts llhttp
 * accepts too, with the same method, target and fields).
 *
 * Two kinds of refusal, as with node:http before:
 *   - what llhttp refuses (a method it does not know, control characters, a field line that is not
 *     `token ":" value`, obs-fold, a bare CR or LF, two Content-Lengths, Content-Length with
 *     Transfer-Encoding, a Transfer-Encoding whose last coding is not chunked, no Host in
 *     HTTP/1.1): the error code, which the server answers on the raw socket before any request
 *     exists;
 *   - what the pipeline refuses (strict.ts: spaces in the request line, a version
 *     other than 1.0 and 1.1, two Hosts, a bad Host, a Transfer-Encoding other than exactly chunked,
 *     a Content-Length past 2^53 - 1): a head with `lineError` set or that `checkFraming` refuses,
 *     answered and logged like any other request.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { METHODS } from '../util/node-http.ts';
import type { ErrorCode } from '../errors.ts';
import { TOKEN_CHAR } from '../util/header-fields.ts';

/** The methods llhttp knows; any other is a 400 before a request exists. */
const METHOD_SET: ReadonlySet<string> = new Set(METHODS);

/** Field lines from after the request line to the empty line (sticky: matched from `lastIndex`). */
const FIELDS_RE = new RegExp(String.raw`(?:${TOKEN_CHAR}+:[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n$`, 'y');
/** A request target's characters: visible ASCII (llhttp refuses controls, spaces, DEL and bytes above 0x7f). */
const TARGET_RE = /^[\x21-\x7e]+$/;
/** An absolute-form target's start, as llhttp reads it: letters, then `://`. */
const ABSOLUTE_RE = /^[A-Za-z]+:\/\//;
const VERSION_RE = /^HTTP\/([0-9])\.([0-9])$/;
/** node:http's test for a 100-continue expectation. */
const CONTINUE_RE = /(?:^|\W)100-continue(?:$|\W)/i;

/** How the request's body is framed. */
export const NO_BODY = 0;
export const LENGTH_BODY = 1;
export const CHUNKED_BODY = 2;

export interface RequestHead {
  readonly method: string;
  readonly url: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (other versions are a `lineError`). */
  readonly minor: number;
  /** By lower-case name, duplicates as node:http joins them (joinDuplicateHeaders: false). */
  readonly headers: IncomingHttpHeaders;
  /** Every field as sent: [name, value, …], values without their surrounding whitespace. */
  readonly raw: string[];
  /** The connection may carry another request after this one (before the response's say). */
  readonly keepAlive: boolean;
  /** llhttp would hand the connection over: CONNECT, or `Upgrade` with `Connection: upgrade`. */
  readonly upgrade: boolean;
  readonly body: number;
  /** Content-Length, for a LENGTH_BODY. */
  readonly length: number;
  /** 0: no Expect; 1: 100-continue; 2: another expectation (417, as node:http answers). */
  readonly expect: number;
  /** What the pipeline answers instead of serving the request (request line or version). */
  readonly lineError: ErrorCode | undefined;
}

/**
 * Fields whose duplicates node:http drops (the first one counts), for both the request's `headers`
 * and what routing reads; set-cookie becomes a list, cookie is joined with `; `, others with `, `.
 */
const FIRST_WINS: ReadonlySet<string> = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

function addHeader(headers: Record<string, string | string[] | undefined>, name: string, value: string): void {
  const old = headers[name];
  if (old === undefined) {
    headers[name] = name === 'set-cookie' ? [value] : value;
    return;
  }
  if (name === 'set-cookie') (old as string[]).push(value);
  else if (name === 'cookie') headers[name] = `${old}; ${value}`;
  else if (!FIRST_WINS.has(name)) headers[name] = `${old}, ${value}`;
}

/** Whether a comma-separated header value lists `token` (lower case), as llhttp reads Connection. */
function hasToken(value: string, token: string): boolean {
  const v = value.toLowerCase();
  if (v === token) return true;
  let from = 0;
  for (;;) {
    const at = v.indexOf(token, from);
    if (at === -1) return false;
    const before = v.slice(0, at).trimEnd();
    const after = v.slice(at + token.length).trimStart();
    if ((before === '' || before.endsWith(',')) && (after === '' || after.startsWith(','))) return true;
    from = at + 1;
  }
}

/**
 * The request line alone (`line` without its CRLF): undefined when the line is well-formed, else
 * the code to answer with and whether that answer may wait for the end of the head (the pipeline
 * answers it, logged) or is due at once (the head can never become a request).
 */
export function checkLine(line: string): { code: ErrorCode; now: boolean } | undefined {
  const sp1 = line.indexOf(' ');
  if (sp1 <= 0) return { code: 'BAD_REQUEST', now: true };
  const method = line.slice(0, sp1);
  if (!METHOD_SET.has(method)) return { code: 'BAD_REQUEST', now: true };
  const sp2 = line.indexOf(' ', sp1 + 1);
  // `GET /` alone is HTTP/0.9, which no client of ours speaks: answered at once (a client that sent
  // only that line would otherwise wait for the header timeout).
  if (sp2 === -1) return { code: line.length > sp1 + 1 ? 'UNSUPPORTED_HTTP_VERSION' : 'INVALID_REQUEST_LINE', now: true };
  const version = line.slice(sp2 + 1);
  if (sp2 === sp1 + 1 || version.includes(' ') || version === '') return { code: 'INVALID_REQUEST_LINE', now: false };
  const target = line.slice(sp1 + 1, sp2);
  if (!TARGET_RE.test(target)) return { code: 'BAD_REQUEST', now: true };
  // origin-form, asterisk-form or absolute-form (CONNECT's authority-form goes to node:http whole).
  if (target.charCodeAt(0) !== 47 /* / */ && target !== '*' && method !== 'CONNECT' && !ABSOLUTE_RE.test(target)) return { code: 'BAD_REQUEST', now: true };
  const v = VERSION_RE.exec(version);
  if (v === null) return { code: 'BAD_REQUEST', now: true };
  if (v[1] !== '1' || (v[2] !== '0' && v[2] !== '1')) return { code: 'UNSUPPORTED_HTTP_VERSION', now: false };
  return undefined;
}

/**
 * Parses a whole head: `text` is latin1, from the request line to the empty line that ends the
 * field section, inclusive. Returns the head, or the error code to answer on the raw socket.
 */
export function parseRequestHead(text: string): RequestHead | ErrorCode {
  const eol = text.indexOf('\r\n');
  const line = text.slice(0, eol);
  // A CR or LF inside the request line would have ended it elsewhere for another parser.
  if (line.includes('\n') || line.includes('\r')) return 'BAD_REQUEST';
  const lineCheck = checkLine(line);
  let lineError: ErrorCode | undefined;
  let method: string;
  let url: string;
  let minor = 1;
  if (lineCheck === undefined) {
    const sp1 = line.indexOf(' ');
    const sp2 = line.indexOf(' ', sp1 + 1);
    method = line.slice(0, sp1);
    url = line.slice(sp1 + 1, sp2);
    minor = line.charCodeAt(line.length - 1) - 48;
  } else if (lineCheck.now) return lineCheck.code;
  else {
    // Answered by the pipeline: method and target as llhttp would read them, for the access log.
    lineError = lineCheck.code;
    const parts = line.split(' ').filter((p) => p !== '');
    method = parts[0];
    url = parts[1] ?? '';
  }
  FIELDS_RE.lastIndex = eol + 2;
  if (!FIELDS_RE.test(text)) return 'BAD_REQUEST';
  const headers: Record<string, string | string[] | undefined> = {};
  const raw: string[] = [];
  let lengths = 0;
  let hosts = 0;
  let at = eol + 2;
  const end = text.length - 2;
  while (at < end) {
    const next = text.indexOf('\r\n', at);
    const colon = text.indexOf(':', at);
    const name = text.slice(at, colon);
    let v0 = colon + 1;
    let v1 = next;
    while (v0 < v1 && (text.charCodeAt(v0) === 32 || text.charCodeAt(v0) === 9)) v0++;
    while (v1 > v0 && (text.charCodeAt(v1 - 1) === 32 || text.charCodeAt(v1 - 1) === 9)) v1--;
    const value = text.slice(v0, v1);
    raw.push(name, value);
    const lower = name.toLowerCase();
    if (lower === 'content-length') lengths++;
    else if (lower === 'host') hosts++;
    addHeader(headers, lower, value);
    at = next + 2;
  }
  const cl = headers['content-length'] as string | undefined;
  const te = headers['transfer-encoding'] as string | undefined;
  if (lengths > 1) return 'BAD_REQUEST';
  if (cl !== undefined && (te !== undefined || !/^[0-9]+$/.test(cl))) return 'BAD_REQUEST';
  let body = NO_BODY;
  let length = 0;
  if (te !== undefined) {
    // llhttp frames a request by its last coding, which must be chunked.
    const codings = te.toLowerCase().split(',');
    if (codings[codings.length - 1].trim() !== 'chunked') return 'BAD_REQUEST';
    body = CHUNKED_BODY;
  } else if (cl !== undefined) {
    length = Number(cl);
    if (length > 0) body = LENGTH_BODY;
  }
  if (hosts === 0 && minor === 1 && lineError === undefined) return 'BAD_REQUEST';
  const connection = headers.connection as string | undefined;
  const keepAlive = connection === undefined ? minor === 1 : minor === 1 ? !hasToken(connection, 'close') : hasToken(connection, 'keep-alive');
  const upgrade = method === 'CONNECT' || (headers.upgrade !== undefined && connection !== undefined && hasToken(connection, 'upgrade'));
  const e = headers.expect as string | undefined;
  const expect = e === undefined || minor !== 1 ? 0 : CONTINUE_RE.test(e) ? 1 : 2;
  return { method, url, minor, headers, raw, keepAlive, upgrade, body, length, expect, lineError };
}

/**
 * Whether `req` is a WebSocket opening handshake this listener tunnels: GET, HTTP/1.1, `Upgrade:
 * websocket` (any case), no request body. Asked by the own server (h1-server.ts) of a head with
 * `Connection: upgrade` and an Upgrade header; any other such head is served as a plain request.
 */
export function isWebSocketUpgrade(req: {
  readonly method: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly headers: IncomingHttpHeaders;
}): boolean {
  const h = req.headers;
  return (
    req.method === 'GET' &&
    req.httpVersionMajor === 1 &&
    req.httpVersionMinor === 1 &&
    h.upgrade !== undefined &&
    h.upgrade.toLowerCase() === 'websocket' &&
    h['transfer-encoding'] === undefined &&
    (h['content-length'] === undefined || h['content-length'] === '0')
  );
}
