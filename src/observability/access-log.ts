/**
 * The access log: one JSON line per request (pino), written when the client response is over.
 * `off`, `stdout`, or a file path (appended; reopened by nothing yet, so rotate by copy-truncate).
 */
import { pino, type Logger } from 'pino';
import type { RequestContext } from '../middleware/context.ts';

export type AccessLogTarget = 'off' | 'stdout' | string;

export interface AccessLog {
  /** Writes the line for one finished request. */
  write(ctx: RequestContext): void;
  /** Flushes buffered lines (on shutdown). */
  flush(): Promise<void>;
}

const OFF: AccessLog = { write: () => undefined, flush: async () => undefined };

export function createAccessLog(target: AccessLogTarget): AccessLog {
  if (target === 'off') return OFF;
  const dest = pino.destination({ dest: target === 'stdout' ? 1 : target, sync: false, minLength: 4096, mkdir: true });
  const log: Logger = pino(
    // The level formatter stands in for the timestamp: it puts `time` first and drops `level`.
    { base: null, timestamp: false, formatters: { level: () => ({ time: new Date().toISOString() }) } },
    dest,
  );
  return {
    write(ctx) {
      const now = performance.now();
      log.info({
        requestId: ctx.requestId,
        client: ctx.client,
        method: ctx.req.method,
        host: ctx.host,
        path: ctx.path,
        status: ctx.status,
        bytesIn: ctx.bytesIn,
        bytesOut: ctx.bytesOut,
        listener: ctx.listener,
        route: ctx.route,
        upstream: ctx.upstream,
        endpoint: ctx.endpoint?.origin,
        upstreamMs: ctx.upstreamLatency < 0 ? undefined : Math.round(ctx.upstreamLatency * 100) / 100,
        totalMs: Math.round((now - ctx.startedAt) * 100) / 100,
        error: ctx.error,
      });
    },
    flush: () =>
      new Promise((resolve) => {
        dest.flush(() => resolve());
      }),
  };
}
