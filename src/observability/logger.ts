/**
 * The process logger (pino, on stderr): state changes, reloads, config errors. Two formats:
 * - `json`: pino's own lines, one JSON object each (for log collectors; the default when stderr is
 *   not a terminal);
 * - `pretty`: `12:00:01.234 INFO  config reloaded key=value …`, for a person at a terminal (the
 *   default when stderr is one). A small synchronous formatter of pino's JSON line: no worker
 *   thread (pino transports), no extra dependency. Process logs are rare (never per request), so
 *   re-reading each line costs nothing that matters.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type LogFormat = 'pretty' | 'json';

/** `pretty` when stderr is a terminal, `json` otherwise (a file, a pipe, journald, a container runtime). */
export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? 'pretty' : 'json';
}

export function createLogger(level: LogLevel = 'info', format: LogFormat = 'json'): Logger {
  const stderr = pino.destination({ dest: 2, sync: true });
  const dest: DestinationStream = format === 'json' ? stderr : prettyStream(stderr, process.stderr.isTTY === true && !process.env.NO_COLOR);
  return pino({ level, base: { name: 'switchboard' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

/** A destination that rewrites each JSON line of pino as a pretty one before it reaches `out`. */
function prettyStream(out: DestinationStream, color: boolean): DestinationStream {
  return { write: (line: string) => void out.write(prettyLine(line, color)) };
}

const LEVELS: Record<number, [label: string, color: string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Keys every line has, shown in their own place (or not at all: `name` is always switchboard). */
const OWN = new Set(['time', 'level', 'msg', 'name', 'err']);

/** A value as `key=value` shows it: bare when it is a plain word, JSON otherwise. */
function shown(v: unknown): string {
  if (typeof v === 'string') return v !== '' && /^[\w.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/**
 * One pino JSON line as `HH:MM:SS.mmm LEVEL message key=value …` (UTC time, like the JSON's), an
 * error's stack on the lines after, indented. A line that is not JSON passes through. Exported for tests.
 */
export function prettyLine(json: string, color = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof o.time === 'string' ? o.time.slice(11, 23) : '';
  const [label, tint] = LEVELS[o.level as number] ?? [String(o.level), ''];
  let line = color ? `${DIM}${time}${RESET} ${tint}${label}${RESET} ${String(o.msg ?? '')}` : `${time} ${label} ${String(o.msg ?? '')}`;
  for (const [k, v] of Object.entries(o)) {
    if (OWN.has(k) || v === undefined) continue;
    line += color ? ` ${DIM}${k}=${RESET}${shown(v)}` : ` ${k}=${shown(v)}`;
  }
  const err = o.err as { message?: string; stack?: string } | undefined;
  if (err !== undefined) {
    line += ` err=${shown(err.message ?? '')}`;
    if (typeof err.stack === 'string') line += `\n    ${err.stack.split('\n').join('\n    ')}`;
  }
  return `${line}\n`;
}

export type { Logger };
