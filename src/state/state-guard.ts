/**
 * What users of the state get when its backend cannot be reached (Redis down or hung, the supervisor
 * not answering). One `StateGuard` per process wraps the process's backend; each user of the state
 * (a policy: a rate limit, a quota, a sticky table) takes its own view with `guard.user(mode)`,
 * choosing how its operations are answered during an outage:
 *
 * - `failOpen`: decisions allow (counters read 0, buckets grant, semaphores grant a lease that
 *   counts nowhere);
 * - `failClosed`: decisions refuse (counters read Infinity, buckets refuse with `retryAfterMs`,
 *   semaphores refuse);
 * - `local`: the operation runs on a per-process `MemoryState` instead (exact for this process only,
 *   for the outage; what it counted is not merged back).
 *
 * In the first two modes, the other operations (sets, records) answer "absent" (false, 0, undefined)
 * and their writes are dropped. Only `StateUnavailableError` is answered so; other errors (a wrong
 * kind of key, bad arguments) reach the user.
 *
 * The guard logs one line when the backend becomes unreachable and one when it is back, publishes
 * `switchboard:state:unavailable` / `:restored`, and counts the operations a fallback answered
 * (`failedOperations`). While the backend is down, one operation at a time probes it; the others
 * take the fallback at once, so a hung backend costs one caller at most the command timeout.
 */
import type { Logger } from '../observability/logger.ts';
import { stateRestored, stateUnavailable } from '../observability/events.ts';
import { MemoryState } from './memory-state.ts';
import { RemoteState } from './remote-state.ts';
import { type JsonValue, type SharedState, StateUnavailableError, type TakeResult } from './state.ts';

/** How a user's operations are answered while the backend cannot be reached. See the file comment. */
export type FailureMode = 'failOpen' | 'failClosed' | 'local';

/** The message of `switchboard:state:unavailable` and `switchboard:state:restored`. */
export interface StateOutageEvent {
  /** `memory`, `supervisor` or `redis`. */
  backend: string;
  /** Where the backend is, credentials removed (a Redis URL), if it has an address. */
  target: string | undefined;
  /** What failed first (unavailable events). */
  error?: Error;
  /** How long the outage lasted, ms (restored events). */
  downMs?: number;
}

/** Options of a `StateGuard`. */
export interface StateGuardOptions {
  /** `memory`, `supervisor` or `redis`: named in logs and events. */
  backend: string;
  target?: string;
  log: Logger;
  /** `retryAfterMs` of a bucket refused by `failClosed`. Default 1000. */
  retryAfterMs?: number;
}

const OPEN_LEASE = '~open';
const LOCAL_LEASE = '~local:';

/** Watches one backend for the users of a process. See the file comment. */
export class StateGuard {
  readonly backend: SharedState;
  /**
   * The state of this machine alone, beside a fleet's backend (`redis`): the supervisor's
   * (`RemoteState`, in a worker) or this process's (`MemoryState`). For what should not leave the
   * machine (the jwt policy's JWKS). Undefined when `backend` is the machine's already (`memory`).
   * Set by createSharedState; closed with this guard.
   */
  machine: StateGuard | undefined;
  readonly #options: StateGuardOptions;
  #local: MemoryState | undefined;
  #downSince: number | undefined;
  #probing = false;
  #failed = 0;

  constructor(backend: SharedState, options: StateGuardOptions) {
    this.backend = backend;
    this.#options = options;
  }

  /** Whether the last operation tried on the backend succeeded. */
  get available(): boolean {
    return this.#downSince === undefined;
  }

  /** Operations answered by a fallback (fail-open, fail-closed or local) since the guard was made: the outage metric. */
  get failedOperations(): number {
    return this.#failed;
  }

  /** `retryAfterMs` for refusals made without the backend. */
  get retryAfterMs(): number {
    return this.#options.retryAfterMs ?? 1000;
  }

  /** The per-process fallback of `local` users, made on first use. */
  get local(): MemoryState {
    this.#local ??= new MemoryState();
    return this.#local;
  }

  /**
   * Feeds a message from the IPC channel to the backend when it is a worker's `RemoteState`; true
   * when it was a state reply. The worker's message listener calls this before its own handlers.
   */
  handle(message: unknown): boolean {
    return (this.backend instanceof RemoteState && this.backend.handle(message)) || this.machine?.handle(message) === true;
  }

  /** A view of the state for one user, answering per `mode` during outages. */
  user(mode: FailureMode): SharedState {
    return new GuardedState(this, mode);
  }

  /** Runs `op` on the backend; during an outage (or when it fails for want of the backend) answers with `fallback`. */
  async run<T>(op: (state: SharedState) => Promise<T>, fallback: () => T | Promise<T>): Promise<T> {
    const probe = this.#downSince !== undefined;
    if (probe) {
      if (this.#probing) {
        this.#failed++;
        return fallback();
      }
      this.#probing = true;
    }
    try {
      const value = await op(this.backend);
      if (this.#downSince !== undefined) this.#restored();
      return value;
    } catch (error) {
      if (!(error instanceof StateUnavailableError)) throw error;
      this.#failed++;
      this.reportUnavailable(error);
      return fallback();
    } finally {
      if (probe) this.#probing = false;
    }
  }

  /** Marks the backend unreachable (logged and published unless it already was): what a failed operation does, and a failed start. */
  reportUnavailable(error: Error): void {
    if (this.#downSince !== undefined) return;
    this.#downSince = Date.now();
    const { backend, target, log } = this.#options;
    log.error({ backend, target, err: error }, `shared state (${backend}) unreachable: users answer with their fail-open, fail-closed or local choice until it is back`);
    if (stateUnavailable.hasSubscribers) stateUnavailable.publish({ backend, target, error } satisfies StateOutageEvent);
  }

  #restored(): void {
    const downMs = Date.now() - (this.#downSince ?? Date.now());
    this.#downSince = undefined;
    const { backend, target, log } = this.#options;
    log.info({ backend, target, downMs }, `shared state (${backend}) reachable again after ${downMs}ms`);
    if (stateRestored.hasSubscribers) stateRestored.publish({ backend, target, downMs } satisfies StateOutageEvent);
  }

  /** Closes the backend and the local fallback, and the machine's state beside them. */
  async close(): Promise<void> {
    await Promise.all([this.backend.close(), this.#local?.close(), this.machine?.close()]);
  }

  /** Closes the backends (this one's and the machine's beside it), leaving the local fallback to users still on it: a reload that replaces the guard. */
  async closeBackends(): Promise<void> {
    await Promise.all([this.backend.close(), this.machine?.backend.close()]);
  }
}

/** One user's view: each operation through `guard.run`, with this user's fallback. */
class GuardedState implements SharedState {
  readonly #guard: StateGuard;
  readonly #mode: FailureMode;

  constructor(guard: StateGuard, mode: FailureMode) {
    this.#guard = guard;
    this.#mode = mode;
  }

  /** The fallback: `local` runs the operation on the process's MemoryState; else the open or closed answer. */
  #or<T>(open: T, closed: T, local: (state: MemoryState) => Promise<T>): () => T | Promise<T> {
    if (this.#mode === 'local') return () => local(this.#guard.local);
    return () => (this.#mode === 'failOpen' ? open : closed);
  }

  increment(key: string, delta: number, ttlMs: number): Promise<number> {
    return this.#guard.run(
      (s) => s.increment(key, delta, ttlMs),
      this.#or(0, Number.POSITIVE_INFINITY, (l) => l.increment(key, delta, ttlMs)),
    );
  }

  get(key: string): Promise<number> {
    return this.#guard.run(
      (s) => s.get(key),
      this.#or(0, Number.POSITIVE_INFINITY, (l) => l.get(key)),
    );
  }

  take(key: string, tokens: number, capacity: number, refillPerSecond: number): Promise<TakeResult> {
    const open = { allowed: true, remaining: capacity - tokens, retryAfterMs: 0 };
    const closed = { allowed: false, remaining: 0, retryAfterMs: this.#guard.retryAfterMs };
    return this.#guard.run(
      (s) => s.take(key, tokens, capacity, refillPerSecond),
      this.#or(open, closed, (l) => l.take(key, tokens, capacity, refillPerSecond)),
    );
  }

  acquire(key: string, limit: number, ttlMs: number): Promise<string | undefined> {
    return this.#guard.run(
      (s) => s.acquire(key, limit, ttlMs),
      this.#or<string | undefined>(OPEN_LEASE, undefined, async (l) => {
        const lease = await l.acquire(key, limit, ttlMs);
        return lease === undefined ? undefined : LOCAL_LEASE + lease;
      }),
    );
  }

  async release(key: string, lease: string): Promise<void> {
    if (lease === OPEN_LEASE) return;
    if (lease.startsWith(LOCAL_LEASE)) return this.#guard.local.release(key, lease.slice(LOCAL_LEASE.length));
    // A backend lease that cannot be returned now expires with its ttl.
    return this.#guard.run(
      (s) => s.release(key, lease),
      () => undefined,
    );
  }

  setAdd(key: string, member: string, ttlMs: number): Promise<boolean> {
    return this.#guard.run(
      (s) => s.setAdd(key, member, ttlMs),
      this.#or(false, false, (l) => l.setAdd(key, member, ttlMs)),
    );
  }

  setRemove(key: string, member: string): Promise<boolean> {
    return this.#guard.run(
      (s) => s.setRemove(key, member),
      this.#or(false, false, (l) => l.setRemove(key, member)),
    );
  }

  setHas(key: string, member: string): Promise<boolean> {
    return this.#guard.run(
      (s) => s.setHas(key, member),
      this.#or(false, false, (l) => l.setHas(key, member)),
    );
  }

  setSize(key: string): Promise<number> {
    return this.#guard.run(
      (s) => s.setSize(key),
      this.#or(0, 0, (l) => l.setSize(key)),
    );
  }

  put(key: string, value: JsonValue, ttlMs: number): Promise<void> {
    return this.#guard.run(
      (s) => s.put(key, value, ttlMs),
      this.#or<void>(undefined, undefined, (l) => l.put(key, value, ttlMs)),
    );
  }

  read(key: string): Promise<JsonValue | undefined> {
    return this.#guard.run(
      (s) => s.read(key),
      this.#or<JsonValue | undefined>(undefined, undefined, (l) => l.read(key)),
    );
  }

  delete(key: string): Promise<boolean> {
    return this.#guard.run(
      (s) => s.delete(key),
      this.#or(false, false, (l) => l.delete(key)),
    );
  }

  /** A user's view owns nothing: closing it leaves the backend to the guard's owner. */
  async close(): Promise<void> {}
}
