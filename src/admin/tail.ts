/**
 * The live tail of the access log over server-sent events (`GET /api/access-log/stream`): each
 * finished request's JSON line (the access log's `json` format) as one `data:` event, filtered per
 * client by route, status class and text.
 *
 * The hub asks its backend for lines only while at least one client is connected (a lone gateway
 * subscribes to `requestEnd`; the supervisor tells its workers to send batches), and stops when the
 * last one leaves. A slow client gets at most MAX_PENDING lines queued; past that lines are dropped
 * for it and counted, and it is told how many (`event: dropped`) once it reads again. A comment
 * line every HEARTBEAT_MS keeps proxies and the browser from calling the stream idle.
 *
 * State (per admin listener, so per process that serves the admin: the gateway, or the supervisor
 * for the machine): the connected clients and their queues, the backend subscription, the heartbeat timer.
 */
import type http from 'node:http';
import type { TapBatch } from '../observability/access-tap.ts';

/** Streams open at once; more are refused with 503 (the admin allows 64 connections in all). */
export const MAX_TAIL_CLIENTS = 8;
/** Lines queued for a client that does not read; more are dropped and counted. */
export const MAX_PENDING = 1000;
export const HEARTBEAT_MS = 15_000;

/** What a client asked to see; empty fields match everything. */
export interface TailFilter {
  /** A route's name, exactly. */
  route?: string;
  /** A status class: `1`..`5` (from `2xx`, `5`, `5xx`). */
  statusClass?: string;
  /** Text the line must contain (case-insensitive). */
  text?: string;
}

/** Parses `?route=&status=&q=`; throws a message for a bad status. */
export function parseTailFilter(search: URLSearchParams): TailFilter {
  const f: TailFilter = {};
  const route = search.get('route');
  if (route) f.route = route;
  const status = search.get('status');
  if (status) {
    const m = /^([1-5])(xx)?$/i.exec(status);
    if (m === null) throw new Error(`status must be a status class such as 2xx or 5xx, found ${JSON.stringify(status)}`);
    f.statusClass = m[1]!;
  }
  const q = search.get('q');
  if (q) f.text = q.toLowerCase();
  return f;
}

interface Client {
  res: http.ServerResponse;
  filter: TailFilter;
  /** Frames waiting for the socket to drain (write returned false). */
  pending: string[];
  /** Lines in `pending`. */
  pendingLines: number;
  blocked: boolean;
  dropped: number;
}

/** A line with what the filters read of it (parsed once per line, only when a client filters on fields). */
interface Parsed {
  line: string;
  lower: string | undefined;
  route: string | null | undefined;
  status: number | undefined;
}

export class TailHub {
  readonly #subscribe: (deliver: (batch: TapBatch) => void) => () => void;
  readonly #clients = new Set<Client>();
  #unsubscribe: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  /** `subscribe` starts the backend's lines flowing to `deliver`, and returns how to stop them. */
  constructor(subscribe: (deliver: (batch: TapBatch) => void) => () => void) {
    this.#subscribe = subscribe;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Serves one stream until the client goes away. False when there are too many already. */
  open(req: http.IncomingMessage, res: http.ServerResponse, filter: TailFilter): boolean {
    if (this.#clients.size >= MAX_TAIL_CLIENTS) return false;
    const client: Client = { res, filter, pending: [], pendingLines: 0, blocked: false, dropped: 0 };
    this.#clients.add(client);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
      'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    });
    res.flushHeaders();
    req.socket.setNoDelay(true);
    const close = (): void => this.#remove(client);
    res.on('close', close);
    res.on('drain', () => this.#drained(client));
    if (this.#unsubscribe === undefined) this.#unsubscribe = this.#subscribe(this.#publish);
    this.#heartbeat ??= setInterval(() => {
      for (const c of this.#clients) if (!c.blocked) c.res.write(': heartbeat\n\n');
    }, HEARTBEAT_MS).unref();
    // Tells the client the tail is on: lines of requests that end from now on will come.
    this.#write(client, `event: ready\ndata: ${JSON.stringify({ filter })}\n\n`);
    return true;
  }

  /** Ends every stream (the admin listener closes or moves). */
  closeAll(): void {
    for (const c of [...this.#clients]) c.res.end();
  }

  #remove(client: Client): void {
    if (!this.#clients.delete(client)) return;
    if (this.#clients.size > 0) return;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  readonly #publish = (batch: TapBatch): void => {
    if (this.#clients.size === 0) return;
    let fields = false;
    for (const c of this.#clients) fields ||= c.filter.route !== undefined || c.filter.statusClass !== undefined;
    const parsed = batch.lines.map((line) => parse(line, fields));
    for (const c of this.#clients) {
      let frames = '';
      for (const p of parsed) if (matches(p, c.filter)) frames += `data: ${p.line}\n\n`;
      // Lines the worker or the tap left out reach everyone's count.
      c.dropped += batch.dropped;
      if (frames !== '') this.#write(c, frames);
    }
  };

  #write(c: Client, frames: string): void {
    if (c.blocked) {
      const n = countFrames(frames);
      if (c.pendingLines + n > MAX_PENDING) c.dropped += n;
      else {
        c.pending.push(frames);
        c.pendingLines += n;
      }
      return;
    }
    if (c.dropped > 0) {
      frames = `event: dropped\ndata: ${JSON.stringify({ dropped: c.dropped })}\n\n${frames}`;
      c.dropped = 0;
    }
    if (!c.res.write(frames)) c.blocked = true;
  }

  #drained(c: Client): void {
    c.blocked = false;
    const frames = c.pending.join('');
    c.pending = [];
    c.pendingLines = 0;
    if (frames !== '' || c.dropped > 0) this.#write(c, frames);
  }
}

function parse(line: string, fields: boolean): Parsed {
  const p: Parsed = { line, lower: undefined, route: undefined, status: undefined };
  if (fields) {
    try {
      const o = JSON.parse(line) as { route?: string | null; status?: number };
      p.route = o.route;
      p.status = o.status;
    } catch {
      // a line that is not JSON matches no field filter
    }
  }
  return p;
}

function matches(p: Parsed, f: TailFilter): boolean {
  if (f.route !== undefined && p.route !== f.route) return false;
  if (f.statusClass !== undefined && String(p.status ?? '').charAt(0) !== f.statusClass) return false;
  if (f.text !== undefined) {
    p.lower ??= p.line.toLowerCase();
    if (!p.lower.includes(f.text)) return false;
  }
  return true;
}

/** Events in `frames` (each ends with a blank line). */
function countFrames(frames: string): number {
  let n = 0;
  for (let i = frames.indexOf('\n\n'); i !== -1; i = frames.indexOf('\n\n', i + 2)) n++;
  return n;
}
