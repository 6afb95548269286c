/**
 * The access log: one line per request, written when the client response is over, and one per
 * layer 4 connection or UDP session, written when it ends. The line is assembled here and handed
 * to a batching writer; a generic logger and its destination cost several times more CPU per
 * request (see line-writer.ts for the figures).
 * Destination: `off`, `stdout`, or a file path (appended).
 * Format (`AccessLogFormat`): `json` (the default; the field set is fixed and the line written by
 * hand), `common` / `combined` (NCSA Common and Combined Log Format), or a template of `${field}`
 * placeholders, compiled once into a list of getters (nothing is parsed per line).
 */
import { ERRORS, type ErrorCode } from '../errors.ts';
import { createLineWriter } from './line-writer.ts';

/** What the access log reads of a finished request (the HTTP layer's session provides it). */
export interface AccessRecord {
  readonly requestId: string;
  /** Client address after trusted-proxy resolution. */
  readonly clientIp: string;
  /** `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`. */
  readonly version: string;
  readonly method: string;
  readonly host: string;
  /** The normalised path, '' when the target could not be parsed (then `url` is logged). */
  readonly path: string;
  readonly url: string;
  readonly status: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly listener: string;
  readonly route: string | undefined;
  readonly upstream: string | undefined;
  readonly endpoint: { readonly origin: string } | undefined;
  /** ms to the upstream's response head; -1 when none answered. */
  readonly upstreamLatency: number;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  readonly tries: number;
  readonly error: string | undefined;
  /**
   * The policy (its name in `policies`) that answered the request itself (a 401, a 429, a CORS
   * preflight, a `respond`), replaced the response, or failed (POLICY_ERROR, POLICY_TIMEOUT);
   * undefined when none did.
   */
  readonly policy: string | undefined;
  /** The request's trace id when tracing is on (observability/tracing.ts), else undefined. */
  readonly traceId: string | undefined;
  /** The consumer an authentication policy identified (its name, never a credential); undefined when none did. */
  readonly consumer: string | undefined;
  /** What a cache policy did for the request (hit, miss, stale, revalidated, collapsed, bypass); undefined without one. */
  readonly cache: string | undefined;
  /** The request's Referer header (read only by the formats that print it: combined, a template). */
  readonly referer: string | undefined;
  /** The request's User-Agent header (read only by the formats that print it). */
  readonly userAgent: string | undefined;
  /** Forward-proxy requests and tunnels (forward/): where it went and which rule decided; undefined for the others. */
  readonly proxied?: ForwardRecord | undefined;
}

/**
 * What a forward-proxy request or tunnel adds to its access log line: filled in by the forward step
 * once the destination guard decided (forward/destination-guard.ts), kept by the session.
 */
export interface ForwardRecord {
  /** `http` (absolute-form), `connect` (a CONNECT tunnel, HTTP/1.1 or HTTP/2) or `websocket` (an absolute-form upgrade). */
  readonly kind: 'http' | 'connect' | 'websocket';
  /** The destination as the client named it (`host:port`, the default port added once the forward step read it). */
  destination: string;
  /** The rule that decided (`rules[0]`, a rule's name, `default:…`), or undefined when none was asked (a loop, a bad target). */
  rule: string | undefined;
  /** The checked address connected to; undefined when none was. */
  address: string | undefined;
}

/**
 * What the access log reads of a finished layer 4 connection (tcp, tls, tls-passthrough listeners)
 * or UDP session. Built only when the access log is on; filled in while the connection lives.
 */
export interface ConnectionRecord {
  /** The listener's protocol: `tcp`, `tls`, `tls-passthrough` or `udp`. */
  readonly protocol: string;
  /** Client address (the PROXY header's source when the listener takes one), no `::ffff:`. */
  readonly clientIp: string;
  readonly clientPort: number;
  readonly listener: string;
  upstream: string | undefined;
  /** The endpoint's origin (`tcp://host:port`, `udp://host:port`), once one was picked. */
  endpoint: string | undefined;
  /** Bytes from the client, and to it. */
  bytesIn: number;
  bytesOut: number;
  /** performance.now() when the connection was accepted (the session's first datagram). */
  readonly startedAt: number;
  /** Why it did not reach an endpoint or ended badly: an error code of errors.ts; undefined when it went through. */
  error: ErrorCode | undefined;
  /** socks5 listeners: the destination as the client named it (`host:port`), once a request was read. */
  destination?: string;
  /** socks5 listeners: the forward rule that decided (`rules[0]`, `default:private`, …). */
  rule?: string;
  /** socks5 listeners: the consumer that authenticated (RFC 1929). */
  consumer?: string;
}

export type AccessLogDestination = 'off' | 'stdout' | string;

/** `json`, `common`, `combined`, or a template: `{ template: '${client} ${status}' }`. */
export type AccessLogFormat = 'json' | 'common' | 'combined' | { readonly template: string };

export interface AccessLog {
  /** False for `off`: then nobody builds ConnectionRecords. */
  readonly enabled: boolean;
  /** Writes the line for one finished request. */
  write(r: AccessRecord): void;
  /** Writes the line for one finished layer 4 connection or UDP session. */
  writeConnection(c: ConnectionRecord): void;
  /** Writes out buffered lines. */
  flush(): Promise<void>;
  /** Flushes and reopens the file by its path (SIGUSR1, after logrotate moved it). */
  reopen(): Promise<void>;
  /** Flushes and closes (on shutdown). */
  close(): Promise<void>;
}

const OFF: AccessLog = {
  enabled: false,
  write: () => undefined,
  writeConnection: () => undefined,
  flush: async () => undefined,
  reopen: async () => undefined,
  close: async () => undefined,
};

/**
 * The ISO time's text up to its seconds (`2026-12-06T02:14:30.`), recomputed once per second; the
 * milliseconds come from MILLIS. A line costs a concatenation, not a Date.
 */
let lastSecond = -1;
let secondPrefix = '';
const MILLIS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);
function isoNow(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== lastSecond) {
    lastSecond = second;
    secondPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  return secondPrefix + MILLIS[now - second * 1000];
}

/**
 * A string as JSON. Most values (request ids, paths, addresses) need no escaping: one scan finds
 * that, and the quotes are added without JSON.stringify; anything else (a quote, a backslash, a
 * control character, or non-ASCII, where a lone surrogate must be escaped) goes through it.
 */
function str(v: string | undefined): string {
  if (v === undefined) return 'null';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return JSON.stringify(v);
  }
  return `"${v}"`;
}

/** Milliseconds with at most two decimals, as JSON (`12.35`, `0`). */
function ms(v: number): string {
  const hundredths = Math.round(v * 100);
  if (hundredths < 0 || hundredths > 0x3fffffff) return String(hundredths / 100);
  const whole = Math.floor(hundredths / 100);
  const frac = hundredths - whole * 100;
  return frac === 0 ? `${whole}` : frac % 10 === 0 ? `${whole}.${frac / 10}` : `${whole}.${frac < 10 ? '0' : ''}${frac}`;
}

/** JSON of the few strings that repeat on every line (names from the config, endpoint origins). */
const known = new Map<string, string>();
function name(v: string | undefined): string {
  if (v === undefined) return 'null';
  let json = known.get(v);
  if (json === undefined) {
    json = JSON.stringify(v);
    if (known.size < 10_000) known.set(v, json);
  }
  return json;
}

/** The JSON line for one request (exported for tests). */
export function accessLine(ctx: AccessRecord, now: number): string {
  return (
    `{"time":"${isoNow()}","requestId":${str(ctx.requestId)},"client":${name(ctx.clientIp)},"protocol":${name(ctx.version)},"method":${name(ctx.method)}` +
    `,"host":${name(ctx.host)},"path":${str(ctx.path || ctx.url)},"status":${ctx.status},"bytesIn":${ctx.bytesIn},"bytesOut":${ctx.bytesOut}` +
    `,"listener":${name(ctx.listener)},"route":${name(ctx.route)},"upstream":${name(ctx.upstream)},"endpoint":${name(ctx.endpoint?.origin)}` +
    `,"upstreamMs":${ctx.upstreamLatency < 0 ? 'null' : ms(ctx.upstreamLatency)},"totalMs":${ms(now - ctx.startedAt)},"tries":${ctx.tries},"error":${name(ctx.error)},"policy":${name(ctx.policy)},"consumer":${name(ctx.consumer)},"cache":${name(ctx.cache)},"traceId":${str(ctx.traceId)}` +
    (ctx.proxied === undefined ? '}\n' : `,"forward":${forwardFields(ctx.proxied)}}\n`)
  );
}

/** The `forward` object of a forward-proxy line: kind, destination (as the client named it), the address connected to, the rule. */
function forwardFields(f: ForwardRecord): string {
  return `{"kind":"${f.kind}","destination":${str(f.destination)},"address":${str(f.address)},"rule":${name(f.rule)}}`;
}

/** The JSON line for one finished layer 4 connection or UDP session (exported for tests). */
export function connectionLine(c: ConnectionRecord, now: number): string {
  return (
    `{"time":"${isoNow()}","protocol":${name(c.protocol)},"client":${name(c.clientIp)},"clientPort":${c.clientPort},"listener":${name(c.listener)}` +
    `,"upstream":${name(c.upstream)},"endpoint":${name(c.endpoint)},"bytesIn":${c.bytesIn},"bytesOut":${c.bytesOut}` +
    `,"totalMs":${ms(now - c.startedAt)},"error":${name(c.error)}` +
    (c.protocol !== 'socks5' ? '' : `,"destination":${str(c.destination)},"rule":${name(c.rule)},"consumer":${name(c.consumer)}`) +
    '}\n'
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** The Common Log Format's time, `10/Oct/2000:13:55:36 +0000` (UTC), recomputed at most once per second. */
let lastClfSecond = 0;
let lastClf = '';
function clfNow(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== lastClfSecond) {
    lastClfSecond = second;
    const d = new Date(second * 1000);
    lastClf = `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
  }
  return lastClf;
}

/**
 * A value from the request as the text formats print it: `-` when absent or empty, and `"`, `\`
 * and control characters escaped (`\"`, `\\`, `\xHH`, as nginx does), so that a line stays one
 * line and its quoted fields stay quoted whatever the client sent.
 */
export function textValue(v: string | undefined): string {
  if (v === undefined || v === '') return '-';
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x7f) return escapeFrom(v, i);
  }
  return v;
}

function escapeFrom(v: string, start: number): string {
  let out = v.slice(0, start);
  for (let i = start; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += `\\${v[i]}`;
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0').toUpperCase()}`;
    else out += v[i];
  }
  return out;
}

/** The status a layer 4 line shows in the status column: 200 when it went through, else its error's. */
export function connectionStatus(c: ConnectionRecord): number {
  return c.error === undefined ? 200 : ERRORS[c.error].status;
}

const clfRequest = (r: AccessRecord): string =>
  `${r.clientIp || '-'} - - [${clfNow()}] "${textValue(r.method)} ${textValue(r.url)} ${r.version}" ${r.status} ${r.bytesOut === 0 ? '-' : r.bytesOut}`;

/** Layer 4 in the Common Log Format: the "request" is `PROTOCOL listener endpoint`, e.g. `"TCP db tcp://10.0.0.5:5432"`. */
const clfConnection = (c: ConnectionRecord): string =>
  `${c.clientIp || '-'} - - [${clfNow()}] "${c.protocol.toUpperCase()} ${c.listener} ${c.endpoint ?? '-'}" ${connectionStatus(c)} ${c.bytesOut === 0 ? '-' : c.bytesOut}`;

/** A compiled text format: one function per kind of line. */
export interface AccessRenderer {
  request(r: AccessRecord, now: number): string;
  connection(c: ConnectionRecord, now: number): string;
}

const COMMON: AccessRenderer = {
  request: (r) => `${clfRequest(r)}\n`,
  connection: (c) => `${clfConnection(c)}\n`,
};

const COMBINED: AccessRenderer = {
  request: (r) => `${clfRequest(r)} "${textValue(r.referer)}" "${textValue(r.userAgent)}"\n`,
  connection: (c) => `${clfConnection(c)} "-" "-"\n`,
};

type Getter<T> = (r: T, now: number) => string;
const dash = (): string => '-';
const num = (v: number): string => String(v);

/**
 * Every field of AccessRecord, so that a template can name any of them: the compiler makes this
 * list follow the interface (a field added there must be added here).
 */
const RECORD_FIELDS = {
  requestId: true,
  clientIp: true,
  version: true,
  method: true,
  host: true,
  path: true,
  url: true,
  status: true,
  bytesIn: true,
  bytesOut: true,
  listener: true,
  route: true,
  upstream: true,
  endpoint: true,
  upstreamLatency: true,
  startedAt: true,
  tries: true,
  error: true,
  policy: true,
  referer: true,
  userAgent: true,
  traceId: true,
  consumer: true,
  cache: true,
  proxied: true,
} as const satisfies Record<keyof AccessRecord, true>;

/** A record field as text: strings escaped, numbers as they are, an endpoint by its origin, absent as `-`. */
function recordField(key: keyof AccessRecord): Getter<AccessRecord> {
  return (r) => {
    const v: unknown = r[key];
    if (typeof v === 'number') return String(v);
    if (typeof v === 'string') return textValue(v);
    if (typeof v === 'object' && v !== null && 'origin' in v) return textValue(String(v.origin));
    return '-';
  };
}

/**
 * The names a template may use besides AccessRecord's own fields: those of the JSON line, and
 * times. Each with its request getter and its layer 4 one (`-` where a connection has no such thing).
 */
const TEMPLATE_FIELDS: Record<string, { request: Getter<AccessRecord>; connection: Getter<ConnectionRecord> }> = {
  time: { request: isoNow, connection: isoNow },
  timeClf: { request: clfNow, connection: clfNow },
  destination: { request: (r) => textValue(r.proxied?.destination), connection: () => '-' },
  destinationAddress: { request: (r) => textValue(r.proxied?.address), connection: () => '-' },
  rule: { request: (r) => textValue(r.proxied?.rule), connection: () => '-' },
  client: { request: (r) => textValue(r.clientIp), connection: (c) => textValue(c.clientIp) },
  clientPort: { request: dash, connection: (c) => num(c.clientPort) },
  protocol: { request: (r) => r.version, connection: (c) => c.protocol },
  path: { request: (r) => textValue(r.path || r.url), connection: dash },
  status: { request: (r) => num(r.status), connection: (c) => num(connectionStatus(c)) },
  bytesIn: { request: (r) => num(r.bytesIn), connection: (c) => num(c.bytesIn) },
  bytesOut: { request: (r) => num(r.bytesOut), connection: (c) => num(c.bytesOut) },
  listener: { request: (r) => r.listener, connection: (c) => c.listener },
  upstream: { request: (r) => r.upstream ?? '-', connection: (c) => c.upstream ?? '-' },
  endpoint: { request: (r) => r.endpoint?.origin ?? '-', connection: (c) => c.endpoint ?? '-' },
  upstreamMs: { request: (r) => (r.upstreamLatency < 0 ? '-' : ms(r.upstreamLatency)), connection: dash },
  totalMs: { request: (r, now) => ms(now - r.startedAt), connection: (c, now) => ms(now - c.startedAt) },
  error: { request: (r) => r.error ?? '-', connection: (c) => c.error ?? '-' },
};

/** Every name a template may use, for error messages and docs. */
export function templateFields(): string[] {
  return [...new Set([...Object.keys(TEMPLATE_FIELDS), ...Object.keys(RECORD_FIELDS)])];
}

/**
 * Compiles a template once: `${name}` placeholders become getters, the text between them stays as
 * it is (`$$` is a literal `$`). Throws on an unknown name or an unclosed placeholder.
 */
export function compileTemplate(template: string): AccessRenderer {
  const texts: string[] = [];
  const request: Getter<AccessRecord>[] = [];
  const connection: Getter<ConnectionRecord>[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    if (template.startsWith('$$', i)) {
      text += '$';
      i += 2;
    } else if (template.startsWith('${', i)) {
      const end = template.indexOf('}', i + 2);
      if (end < 0) throw new Error(`access log template: "\${" at character ${i + 1} is not closed by "}"`);
      const field = template.slice(i + 2, end).trim();
      const known = TEMPLATE_FIELDS[field];
      if (known !== undefined) {
        request.push(known.request);
        connection.push(known.connection);
      } else if (Object.hasOwn(RECORD_FIELDS, field)) {
        request.push(recordField(field as keyof AccessRecord));
        connection.push(dash);
      } else {
        throw new Error(`access log template: unknown field "${field}"; known fields: ${templateFields().join(', ')}`);
      }
      texts.push(text);
      text = '';
      i = end + 1;
    } else {
      text += template[i];
      i++;
    }
  }
  const last = `${text}\n`;
  const n = request.length;
  return {
    request(r, now) {
      let line = '';
      for (let k = 0; k < n; k++) line += texts[k]! + request[k]!(r, now);
      return line + last;
    },
    connection(c, now) {
      let line = '';
      for (let k = 0; k < n; k++) line += texts[k]! + connection[k]!(c, now);
      return line + last;
    },
  };
}

/** The renderer of a format; undefined for `json` (written by accessLine and connectionLine). Throws on a bad template. */
export function compileAccessFormat(format: AccessLogFormat): AccessRenderer | undefined {
  if (format === 'json') return undefined;
  if (format === 'common') return COMMON;
  if (format === 'combined') return COMBINED;
  return compileTemplate(format.template);
}

/**
 * A format as the CLI takes it: `json`, `common`, `combined`, or a template (any text with a
 * `${field}` in it). Throws with what was expected and found; a template is compiled to check it.
 */
export function parseAccessLogFormat(text: string): AccessLogFormat {
  if (text === 'json' || text === 'common' || text === 'combined') return text;
  if (!text.includes('${')) throw new Error(`access log format: expected json, common, combined or a template with \${field} placeholders; found "${text}"`);
  compileTemplate(text);
  return { template: text };
}

export function createAccessLog(destination: AccessLogDestination, format: AccessLogFormat = 'json'): AccessLog {
  if (destination === 'off') return OFF;
  const render = compileAccessFormat(format);
  const out = createLineWriter(destination);
  return {
    enabled: true,
    // json: today's hand-written line, called directly (no indirection on the hot path).
    write: render === undefined ? (ctx) => out.write(accessLine(ctx, performance.now())) : (ctx) => out.write(render.request(ctx, performance.now())),
    writeConnection: render === undefined ? (c) => out.write(connectionLine(c, performance.now())) : (c) => out.write(render.connection(c, performance.now())),
    flush: () => out.flush(),
    reopen: () => out.reopen(),
    close: () => out.close(),
  };
}
