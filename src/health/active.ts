/**
 * Active health checking of one endpoint: probes it periodically, independent of traffic, and
 * reports healthy/unhealthy flips through a callback.
 *
 * Behaviour follows the usual load balancer conventions:
 * - HAProxy `rise`/`fall`: `fall` consecutive failures turn a healthy endpoint unhealthy, `rise`
 *   consecutive successes turn an unhealthy one healthy; a success resets the failure streak and
 *   vice versa. The callback fires exactly once per flip, never for checks that change nothing.
 * - Envoy `interval`/`interval_jitter`/`reuse_connection`: the next check starts `interval` plus a
 *   uniform random `[0, jitter]` ms after the previous one ended (so checks of one endpoint never
 *   overlap), HTTP checks reuse one keep-alive connection, and a failed check closes it so the next
 *   check starts on a fresh one.
 *
 * HTTP checks go through a dedicated undici `Client` (one connection, owned by the checker), never
 * through the proxy's pools. Each check is bounded by our own timer (connect + headers + body), not
 * undici's coarse timeouts. TCP checks only open a connection and close it at once.
 *
 * Nothing here throws or rejects out of the checker: every error becomes a failed check whose
 * description is kept in `lastResult`. All timers are unref()ed.
 */
import net from 'node:net';
import { Client, request } from '../transport/undici-core.ts';
import tls, { type ConnectionOptions } from 'node:tls';
import type { HealthCheckConfig } from '../config/types.ts';

export type { HealthCheckConfig };

export interface HealthTarget {
  /** `http://host:port` (also used for tcp checks: connect to that host and port). */
  origin: string;
  /** `host:port`, the default Host header. */
  host: string;
  /** TLS options for an https:// endpoint (checks verify its certificate as requests do). */
  tls?: ConnectionOptions | undefined;
  /** Protocol the endpoint speaks; HTTP checks use it too. Default http1. */
  protocol?: 'http1' | 'h2' | 'h2c';
}

export interface HealthCheckerOptions {
  /** Source of randomness for jitter, in [0, 1); Math.random by default (tests inject a stub). */
  random?: () => number;
}

/** At most this much of a response body is read (searched for `bodyContains`, or discarded). */
export const BODY_LIMIT = 64 * 1024;

const USER_AGENT = 'switchboard-health-check';

/** One check's outcome. */
interface Outcome {
  ok: boolean;
  /** 'ok' or what went wrong, e.g. 'status 503'. */
  result: string;
  /** False when the HTTP connection must not be reused (body not fully read, error, timeout). */
  reusable: boolean;
}

export class HealthChecker {
  readonly #target: HealthTarget;
  readonly #config: HealthCheckConfig;
  readonly #onChange: (healthy: boolean, reason: string) => void;
  readonly #random: () => number;
  readonly #needle: Buffer | undefined;

  #healthy: boolean;
  #successes = 0; // current streak of consecutive successes
  #failures = 0; // current streak of consecutive failures
  #checks = 0;
  #lastResult = 'not checked yet';

  #started = false;
  #stopped = false;
  /** Pending timer for the next check. */
  #timer: NodeJS.Timeout | undefined;
  /** Aborts the check in flight, if any. */
  #abortInFlight: (() => void) | undefined;
  /** The HTTP check's connection, created lazily and dropped after any failed check. */
  #client: Client | undefined;

  constructor(target: HealthTarget, config: HealthCheckConfig, onChange: (healthy: boolean, reason: string) => void, options: HealthCheckerOptions = {}) {
    this.#target = target;
    this.#config = config;
    this.#onChange = onChange;
    this.#random = options.random ?? Math.random;
    this.#needle = config.bodyContains === undefined ? undefined : Buffer.from(config.bodyContains);
    this.#healthy = config.initialState === 'healthy';
  }

  /** Current state. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Last check's outcome: 'ok', 'status 503', 'timeout after 500ms', 'connect ECONNREFUSED', ... */
  get lastResult(): string {
    return this.#lastResult;
  }

  /** Completed checks (for tests and metrics). */
  get checks(): number {
    return this.#checks;
  }

  /** Current streak of consecutive successful checks. */
  get consecutiveSuccesses(): number {
    return this.#successes;
  }

  /** Current streak of consecutive failed checks. */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** Starts checking: the first check at once, then `interval` (+jitter) after each check ends. */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    void this.#run();
  }

  /** Stops for good: cancels the timer, aborts a check in flight, closes the connection. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abortInFlight?.();
    this.#abortInFlight = undefined;
    this.#closeConnection();
  }

  /**
   * Carries state over from a previous checker of the same endpoint (on config reload): the healthy
   * flag and the consecutive counters, so a reload neither resets an unhealthy endpoint to healthy
   * nor restarts a streak. Call it before start(). It does not call onChange: the caller reads
   * `healthy` afterwards. The next check applies the new config's rise/fall to the carried streaks.
   */
  adopt(previous: HealthChecker): void {
    this.#healthy = previous.#healthy;
    this.#successes = previous.#successes;
    this.#failures = previous.#failures;
    this.#lastResult = previous.#lastResult;
  }

  /** One round: check, record, schedule the next. Never rejects. */
  async #run(): Promise<void> {
    this.#timer = undefined;
    const outcome = await this.#checkOnce();
    if (this.#stopped) return; // stopped while checking: no callback, no next check
    this.#checks++;
    this.#record(outcome);
    if (this.#stopped) return; // onChange may have stopped us
    const delay = this.#config.interval + this.#jitter();
    this.#timer = setTimeout(() => void this.#run(), delay);
    this.#timer.unref();
  }

  /** Random extra delay, uniformly in [0, jitter] ms (0 if the random source misbehaves). */
  #jitter(): number {
    if (this.#config.jitter <= 0) return 0;
    let r: number;
    try {
      r = this.#random();
    } catch {
      return 0;
    }
    return Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) * this.#config.jitter : 0;
  }

  /** Applies one outcome to the streaks and flips the state when rise/fall is reached. */
  #record(outcome: Outcome): void {
    this.#lastResult = outcome.result;
    let flip: string | undefined;
    if (outcome.ok) {
      this.#successes++;
      this.#failures = 0;
      if (!this.#healthy && this.#successes >= this.#config.rise) {
        flip = `${this.#successes} consecutive successes, last: ${outcome.result}`;
      }
    } else {
      this.#failures++;
      this.#successes = 0;
      if (this.#healthy && this.#failures >= this.#config.fall) {
        flip = `${this.#failures} consecutive failures, last: ${outcome.result}`;
      }
    }
    if (flip === undefined) return;
    this.#healthy = !this.#healthy;
    try {
      this.#onChange(this.#healthy, flip);
    } catch {
      // A throwing callback is the caller's bug; it must not stop health checking.
    }
  }

  /** Runs one check bounded by `timeout`; resolves with its outcome, never rejects. */
  async #checkOnce(): Promise<Outcome> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<Outcome>((resolve) => {
      const result = `timeout after ${this.#config.timeout}ms`;
      timer = setTimeout(() => resolve({ ok: false, result, reusable: false }), this.#config.timeout);
      timer.unref();
    });
    const stopped = new Promise<Outcome>((resolve) => {
      this.#abortInFlight = () => resolve({ ok: false, result: 'stopped', reusable: false });
    });
    const work = (this.#config.type === 'tcp' ? this.#tcpCheck(controller.signal) : this.#httpCheck(controller.signal)).catch((err: unknown) => ({
      ok: false,
      result: describeError(err),
      reusable: false,
    }));
    const outcome = await Promise.race([work, timedOut, stopped]);
    clearTimeout(timer);
    this.#abortInFlight = undefined;
    // Whatever is still running (timeout, stop) is cancelled: the socket or request is torn down.
    controller.abort();
    if (!outcome.reusable) this.#closeConnection();
    return outcome;
  }

  /** HTTP check: status in range, and the body contains `bodyContains` when set. */
  async #httpCheck(signal: AbortSignal): Promise<Outcome> {
    this.#client ??= new Client(this.#target.origin, {
      pipelining: 1,
      // Our own timer bounds the whole check; undici's coarse header/body timeouts are disabled.
      connect: { timeout: this.#config.timeout, ...this.#target.tls },
      allowH2: (this.#target.protocol ?? 'http1') !== 'http1',
      ...(this.#target.protocol === 'h2c' ? { h2Options: { useH2c: true } } : undefined),
      headersTimeout: 0,
      bodyTimeout: 0,
      // Keep the connection across the gap between checks (the server's Keep-Alive hint still wins).
      keepAliveTimeout: this.#config.interval + this.#config.jitter + 5_000,
    });
    // request() from its module: the Client here is loaded without undici's index (transport/undici-core.ts).
    const { statusCode, body } = await request.call(this.#client, {
      method: this.#config.method,
      path: this.#config.path,
      headers: { host: this.#config.host ?? this.#target.host, 'user-agent': USER_AGENT },
      signal,
    });
    if (!this.#config.statuses.some(([lo, hi]) => statusCode >= lo && statusCode <= hi)) {
      body.destroy(); // connection closed by the caller: not worth draining a failure's body
      return { ok: false, result: `status ${statusCode}`, reusable: false };
    }
    // Read up to BODY_LIMIT bytes: to search it, or just to drain it so the connection can be reused.
    const chunks: Buffer[] = [];
    let size = 0;
    let complete = true;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (this.#needle) chunks.push(chunk);
      size += chunk.length;
      if (size >= BODY_LIMIT) {
        complete = false; // stop reading (a never-ending body); the connection will be closed
        break;
      }
    }
    // A body ending exactly at the limit counts as incomplete; harmless (one fresh connection).
    if (this.#needle && !Buffer.concat(chunks).subarray(0, BODY_LIMIT).includes(this.#needle)) {
      return { ok: false, result: `body does not contain ${JSON.stringify(this.#config.bodyContains)}`, reusable: false };
    }
    return { ok: true, result: 'ok', reusable: complete };
  }

  /** TCP check: a connection opens (then is closed at once). */
  async #tcpCheck(signal: AbortSignal): Promise<Outcome> {
    // async: a malformed origin rejects (a failed check) rather than throwing out of the checker.
    const { hostname, port, protocol } = new URL(this.#target.origin);
    const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname; // IPv6 literal
    const portNumber = port === '' ? (protocol === 'https:' ? 443 : 80) : Number(port);
    return new Promise<Outcome>((resolve) => {
      const target = this.#target;
      // A TLS endpoint is up when the handshake succeeds (its certificate verified), not just the TCP connect.
      const socket = target.tls ? tls.connect({ ...target.tls, host, port: portNumber }) : net.connect({ host, port: portNumber });
      socket.on('error', () => undefined); // errors after the outcome is decided are irrelevant
      const done = (outcome: Outcome): void => {
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve(outcome);
      };
      const onAbort = (): void => done({ ok: false, result: 'aborted', reusable: false });
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once(target.tls ? 'secureConnect' : 'connect', () => done({ ok: true, result: 'ok', reusable: false }));
      socket.once('error', (err) => done({ ok: false, result: describeError(err), reusable: false }));
    });
  }

  /** Closes the HTTP check's connection (the next check opens a fresh one). */
  #closeConnection(): void {
    const client = this.#client;
    this.#client = undefined;
    client?.destroy().catch(() => undefined);
  }
}

/** Short description of a check error: 'connect ECONNREFUSED', 'dns ENOTFOUND', 'UND_ERR_SOCKET: other side closed'. */
function describeError(err: unknown): string {
  // Happy-eyeballs connects (several addresses) fail with an AggregateError of per-address errors.
  const inner = err instanceof AggregateError && err.errors.length > 0 ? err.errors[0] : err;
  const e = inner as { code?: unknown; syscall?: unknown; message?: unknown; name?: unknown } | null;
  const outer = err as { code?: unknown } | null;
  const code = typeof outer?.code === 'string' ? outer.code : typeof e?.code === 'string' ? e.code : undefined;
  if (e?.syscall === 'connect') return `connect ${code ?? 'error'}`;
  if (e?.syscall === 'getaddrinfo') return `dns ${code ?? 'error'}`;
  const message = typeof e?.message === 'string' && e.message !== '' ? e.message : String(err);
  return code !== undefined ? `${code}: ${message}` : message;
}
