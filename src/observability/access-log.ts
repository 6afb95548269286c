/**
 * The access log: one JSON line per request, written when the client response is over. The line is
 * assembled here (the field set is fixed) and handed to a batching writer; a generic logger and
 * its destination cost several times more CPU per request (see line-writer.ts for the figures).
 * Destination: `off`, `stdout`, or a file path (appended).
 */
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
  /** The request's trace id when tracing is on (observability/tracing.ts), else undefined. */
  readonly traceId: string | undefined;
}

export type AccessLogDestination = 'off' | 'stdout' | string;

export interface AccessLog {
  /** Writes the line for one finished request. */
  write(r: AccessRecord): void;
  /** Writes out buffered lines. */
  flush(): Promise<void>;
  /** Flushes and reopens the file by its path (SIGUSR1, after logrotate moved it). */
  reopen(): Promise<void>;
  /** Flushes and closes (on shutdown). */
  close(): Promise<void>;
}

const OFF: AccessLog = { write: () => undefined, flush: async () => undefined, reopen: async () => undefined, close: async () => undefined };

/** ISO time, recomputed at most once per millisecond. */
let lastMs = 0;
let lastIso = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

const str = (v: string | undefined): string => (v === undefined ? 'null' : JSON.stringify(v));
const ms = (v: number): number => Math.round(v * 100) / 100;

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
    `,"upstreamMs":${ctx.upstreamLatency < 0 ? 'null' : ms(ctx.upstreamLatency)},"totalMs":${ms(now - ctx.startedAt)},"tries":${ctx.tries},"error":${name(ctx.error)},"traceId":${str(ctx.traceId)}}\n`
  );
}

export function createAccessLog(destination: AccessLogDestination): AccessLog {
  if (destination === 'off') return OFF;
  const out = createLineWriter(destination);
  return {
    write(ctx) {
      out.write(accessLine(ctx, performance.now()));
    },
    flush: () => out.flush(),
    reopen: () => out.reopen(),
    close: () => out.close(),
  };
}
