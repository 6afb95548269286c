/**
 * The messages between the supervisor and its workers, over node:cluster's IPC channel (JSON).
 * Every message carries `sb` (its kind), so other users of the channel (the shared-state client,
 * node's own cluster messages) are told apart.
 */
import type { Worker } from 'node:cluster';
import type { LogFormat, LogLevel } from '../observability/logger.ts';
import type { AccessLogFormat } from '../observability/access-log.ts';
import type { RuntimeChange, UpstreamView } from '../upstream/state.ts';
import type { PurgeQuery } from '../policies/filter.ts';
import type { ParentHealthNews } from '../forward/parent-health.ts';

/** Supervisor → worker. */
export type ToWorker =
  /** Start serving this config (the supervisor read and validated it). */
  | {
      sb: 'init';
      /** The config file's value after `${VAR}` substitution (`LoadResult.data`): workers never parse YAML. */
      data: unknown;
      file: string;
      accessLog: string;
      accessLogFormat: AccessLogFormat;
      logLevel: LogLevel;
      /** The supervisor's process log format (resolved: a worker's stderr is the supervisor's). */
      logFormat: LogFormat;
      /** TLS session ticket keys, base64 of 48 bytes, the same for every worker. */
      ticketKeys: string;
      /** Every endpoint's health as the supervisor's checkers see it now. */
      health: HealthNews[];
      /** Every checked parent proxy's health as the supervisor's checkers see it now (by parentKey). */
      parentHealth: Array<{ key: string; healthy: boolean }>;
      /** Keep Prometheus metrics (the supervisor asks for them with `metrics` and sums them). */
      metrics: boolean;
      /** The runtime changes (admin API) in force on the machine, oldest first. */
      runtime: RuntimeChange[];
      /** Someone tails the access log (admin): send `tail-lines`. */
      tail: boolean;
      /** Listening sockets inherited in an upgrade (binding name → the supervisor's fd), for the first config. */
      sockets: Record<string, number>;
    }
  /** Swap to this config (validated once by the supervisor); answer with `reloaded`. */
  | { sb: 'reload'; seq: number; data: unknown; file: string }
  /** An endpoint's health changed (the supervisor runs the machine's one checker per endpoint). */
  | ({ sb: 'health' } & HealthNews)
  /** A parent proxy's health changed (the supervisor runs the machine's one checker per parent). */
  | ({ sb: 'parent-health' } & ParentHealthNews)
  /** Reopen log files (SIGUSR1, logrotate). */
  | { sb: 'reopen' }
  /** Certificate or CA files changed (the supervisor watches them for the machine): read them again. */
  | { sb: 'certs' }
  /** Stop accepting, finish in-flight work within the drain timeout, then exit 0; `linger`: leave idle keep-alive connections to their timeout. */
  | { sb: 'drain'; linger: boolean }
  /** Machine-wide load of the other workers (least-connections, retry budget). */
  | { sb: 'load'; inFlight: Record<string, number> }
  /** Another worker ejected an endpoint (outlier detection): eject it here for as long. */
  | { sb: 'eject'; upstream: string; endpoint: string; duration: number; reason: string }
  /** The circuit breaker's machine-wide slot authority answers an `acquire`. */
  | { sb: 'slot'; id: number; grant: boolean }
  /** Send your metrics (the registry as JSON), answering with the same `id`. */
  | { sb: 'metrics'; id: number }
  /** The admin API reads: answer with `admin-view` and the same id. */
  | { sb: 'admin-read'; id: number }
  /** A runtime change made through the admin API (drain, disable, enable, weight): apply it. */
  | { sb: 'admin-change'; change: RuntimeChange }
  /** A cache purge (admin API): apply it to this worker's stores, answer with `cache-purged` and the same id. */
  | { sb: 'cache-purge'; id: number; policy?: string; query: PurgeQuery }
  /** Start (`on`) or stop sending the access log's lines for the admin's live tail (`tail-lines`). */
  | { sb: 'tail'; on: boolean }
  /** An upgrade: send every listening socket to hand over, one `socket` message each (with the handle). */
  | { sb: 'sockets'; id: number };

/** Worker → supervisor. */
export type FromWorker =
  /** The worker listens for messages: send it `init`. */
  | { sb: 'hello' }
  | { sb: 'ready'; addresses: Record<string, string> }
  | { sb: 'failed'; message: string; code?: string }
  | { sb: 'reloaded'; seq: number; ok: boolean; errors: string[] }
  | { sb: 'rss'; rss: number }
  /** This worker ejected an endpoint: the supervisor tells the others. */
  | { sb: 'eject'; upstream: string; endpoint: string; duration: number; reason: string }
  /** A draining worker closed its listening sockets (the supervisor tells the world once all have). */
  | { sb: 'stopped-accepting' }
  /** This worker's own in flight per key (only keys that changed since the last report). */
  | { sb: 'load'; inFlight: Record<string, number> }
  /** Circuit breaker: take a slot of `upstream` (max in flight machine-wide), or wait in its queue. */
  | { sb: 'acquire'; id: number; upstream: string; max: number; maxQueued: number }
  /** Give a slot back (the request is over), or leave the queue (`id`: the client went away first). */
  | { sb: 'release'; upstream: string }
  | { sb: 'cancel'; id: number; upstream: string }
  /** The answer to a `metrics` request: `registry.getMetricsAsJSON()`, empty when metrics are off. */
  | { sb: 'metrics'; id: number; metrics: unknown[] }
  /** This worker's view of the upstreams, for the admin API (answers `admin-read`). */
  | { sb: 'admin-view'; id: number; upstreams: UpstreamView[] }
  /** The objects a `cache-purge` removed from this worker's stores. */
  | { sb: 'cache-purged'; id: number; purged: number }
  /** Access log lines (JSON) of requests this worker finished, batched, while the supervisor asks for them (`tail`). */
  | { sb: 'tail-lines'; lines: string[]; dropped: number }
  /** One of `count` listening sockets (answering `sockets`), its handle attached; `count: 0` alone when there are none. */
  | { sb: 'socket'; id: number; name?: string; count: number };

export interface HealthNews {
  upstream: string;
  endpoint: string;
  healthy: boolean;
  reason: string;
}

/**
 * Sends to a worker unless its channel is closed (it is exiting: its 'exit' handler deals with it).
 * `worker.send` on a closed channel throws, and a throw would take the supervisor down.
 */
export function post(worker: Worker, m: ToWorker): void {
  if (!worker.isConnected()) return;
  try {
    worker.send(m);
  } catch {
    // closed between the check and the send
  }
}

/**
 * Sends `request` to `worker` and resolves with the first of its messages that `pick` turns into an
 * answer; undefined when none comes within `timeoutMs` or the worker exits first.
 */
export function askWorker<T>(worker: Worker, request: ToWorker, pick: (m: FromWorker) => T | undefined, timeoutMs: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!isMessage<FromWorker>(m)) return;
      const answer = pick(m);
      if (answer !== undefined) done(answer);
    };
    const onExit = (): void => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    function done(answer: T | undefined): void {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('exit', onExit);
      resolve(answer);
    }
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    post(worker, request);
  });
}

/** Whether `m` is one of ours (and not node's or another channel user's). */
export function isMessage<T extends { sb: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { sb?: unknown }).sb === 'string';
}
