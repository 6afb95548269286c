/**
 * The shared-state contract: counters, token buckets, semaphores, sets and small records that every
 * worker of a machine (`memory`, served by the supervisor) or every instance of a fleet (`redis`)
 * sees exactly. Policies (rate limits, quotas, in-flight limits, sticky tables, cache indexes) use it
 * through a `StateGuard` user view (state-guard.ts), which decides what happens when the backend is
 * unreachable.
 *
 * Every method is ONE atomic step on the backend (one message to the supervisor, one Redis round
 * trip): the decision and the count happen together, so N concurrent callers against a limit of L
 * get exactly L grants, never L plus the callers that raced between a read and a write.
 *
 * Keys are plain strings, one kind per key (a key used as a counter is not also a set: Redis would
 * answer WRONGTYPE, the memory backend throws a StateError). Every entry expires: there is no call
 * without a ttl, so forgotten keys cannot grow the state without bound. Durations are milliseconds;
 * expiry is measured by the backend's clock (the supervisor's, or the Redis server's for buckets
 * and semaphores), never by the caller's.
 */

/** A JSON value, as records store it (copied in and out: a record read is never the object put). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The answer of `take`: whether the tokens were taken, what is left, and when asking again may succeed. */
export interface TakeResult {
  allowed: boolean;
  /** Whole tokens left in the bucket after this call. */
  remaining: number;
  /** 0 when allowed; else ms until enough tokens will have been refilled for the same request. */
  retryAfterMs: number;
}

/**
 * The state operations. Called per request by the policies that use state (so at request rate, each
 * call one round trip), and by the `switchboard state` command. Implementations: `MemoryState`
 * (one process), `RemoteState` (a worker, served by the supervisor's `StateHost`), `RedisState`
 * (the fleet). A backend that cannot be reached rejects with `StateUnavailableError` within a
 * bounded time (never hangs); `StateGuard` turns that into the user's chosen answer.
 */
export interface SharedState {
  /**
   * Adds `delta` (an integer, may be negative) to the counter `key` and returns the new value. A
   * counter that does not exist (or has expired) starts at 0 and expires `ttlMs` after this call:
   * a fixed window. Later increments do not move the expiry. For a limit, compare the returned value
   * with it: of any number of concurrent callers adding 1, exactly `limit` see a value ≤ limit.
   */
  increment(key: string, delta: number, ttlMs: number): Promise<number>;
  /** The counter's value; 0 when it does not exist or has expired. */
  get(key: string): Promise<number>;
  /**
   * Token bucket (`capacity` tokens, refilled continuously at `refillPerSecond`; a new bucket is
   * full): takes `tokens` if the bucket holds that many, else takes nothing. `tokens` must not
   * exceed `capacity` (RangeError). The bucket expires once it would be full again.
   */
  take(key: string, tokens: number, capacity: number, refillPerSecond: number): Promise<TakeResult>;
  /**
   * Counting semaphore for in-flight limits: when fewer than `limit` leases of `key` are held,
   * grants one and returns its id; else returns undefined (refused). A lease not released within
   * `ttlMs` expires on its own (a holder that died, a worker that crashed), each lease on its own.
   */
  acquire(key: string, limit: number, ttlMs: number): Promise<string | undefined>;
  /** Returns a lease that `acquire` granted; a lease that expired or was released already is ignored. */
  release(key: string, lease: string): Promise<void>;
  /** Adds `member` to the set `key`; the set expires `ttlMs` after its latest add. True when it was not a member. */
  setAdd(key: string, member: string, ttlMs: number): Promise<boolean>;
  /** Removes `member`; true when it was a member. */
  setRemove(key: string, member: string): Promise<boolean>;
  /** Whether `member` is in the set (false when the set does not exist). */
  setHas(key: string, member: string): Promise<boolean>;
  /** Members of the set; 0 when it does not exist. */
  setSize(key: string): Promise<number>;
  /** Stores a small JSON record under `key` (replacing whatever was there, as Redis SET does), expiring `ttlMs` after this call. */
  put(key: string, value: JsonValue, ttlMs: number): Promise<void>;
  /** The record under `key`; undefined when there is none (never put, deleted, or expired). */
  read(key: string): Promise<JsonValue | undefined>;
  /** Deletes the entry under `key`, whatever its kind; true when there was one. */
  delete(key: string): Promise<boolean>;
  /** Releases the backend's resources (connection, timers). Operations after it reject. */
  close(): Promise<void>;
}

/** The operations a `RemoteState` sends to a `StateHost` (everything but `close`). */
export type StateOp = Exclude<keyof SharedState, 'close'>;

/** Every `StateOp`, for hosts that check the names they are sent. */
export const STATE_OPS: ReadonlySet<string> = new Set<StateOp>([
  'increment',
  'get',
  'take',
  'acquire',
  'release',
  'setAdd',
  'setRemove',
  'setHas',
  'setSize',
  'put',
  'read',
  'delete',
]);

/** A state operation that failed on the backend's side (wrong kind of key, bad arguments). */
export class StateError extends Error {
  override name = 'StateError';
}

/**
 * The backend could not be reached or did not answer in time (Redis down, supervisor gone, a
 * timeout). The only error `StateGuard` answers with the user's fail-open, fail-closed or local choice.
 */
export class StateUnavailableError extends Error {
  override name = 'StateUnavailableError';
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

/** Argument checks shared by every backend, so that all of them refuse the same calls the same way. */
export const check = {
  increment(delta: number, ttlMs: number): void {
    if (!Number.isSafeInteger(delta)) throw new RangeError(`delta must be an integer, got ${delta}`);
    positiveInteger('ttlMs', ttlMs);
  },
  take(tokens: number, capacity: number, refillPerSecond: number): void {
    positiveInteger('tokens', tokens);
    positiveInteger('capacity', capacity);
    if (tokens > capacity) throw new RangeError(`tokens (${tokens}) must not exceed capacity (${capacity})`);
    if (!(refillPerSecond > 0 && Number.isFinite(refillPerSecond))) throw new RangeError(`refillPerSecond must be a positive number, got ${refillPerSecond}`);
  },
  acquire(limit: number, ttlMs: number): void {
    positiveInteger('limit', limit);
    positiveInteger('ttlMs', ttlMs);
  },
  ttl(ttlMs: number): void {
    positiveInteger('ttlMs', ttlMs);
  },
};
