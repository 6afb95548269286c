/**
 * `SharedState` in one process's memory, exact: every operation runs synchronously to its end before
 * its promise settles, so operations never interleave. Per process: in a single-process gateway it
 * is the machine's state; with workers, the supervisor's `StateHost` serves one of these to all of
 * them (per machine), and `StateGuard` keeps one per process as the `local` fallback for an outage.
 *
 * Expiry is lazy (an expired entry is dropped when touched) plus a periodic sweep that looks at a
 * bounded number of entries per tick, resuming where it stopped, so forgotten keys are reclaimed
 * without a pause proportional to the whole table.
 */
import { check, type JsonValue, type SharedState, StateError, type TakeResult } from './state.ts';

type Entry =
  | { kind: 'counter'; expiresAt: number; value: number }
  | { kind: 'bucket'; expiresAt: number; tokens: number; at: number }
  | { kind: 'semaphore'; expiresAt: number; leases: Map<string, number> }
  | { kind: 'set'; expiresAt: number; members: Set<string> }
  | { kind: 'record'; expiresAt: number; json: string };

type Kind = Entry['kind'];
type Of<K extends Kind> = Extract<Entry, { kind: K }>;

/** Options of a `MemoryState`; all optional. */
export interface MemoryStateOptions {
  /** The clock, in ms (tests inject one); `Date.now` by default. */
  now?: () => number;
  /** ms between sweeps of expired entries; 0 = no timer (call `sweep()` yourself). Default 1000. */
  sweepIntervalMs?: number;
  /** Entries looked at per sweep. Default 1000. */
  sweepBatch?: number;
}

/** The in-process backend. See the file comment for its scope and expiry. */
export class MemoryState implements SharedState {
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #sweepBatch: number;
  #cursor: MapIterator<[string, Entry]> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #leases = 0;
  #closed = false;

  constructor(options: MemoryStateOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#sweepBatch = options.sweepBatch ?? 1000;
    const interval = options.sweepIntervalMs ?? 1000;
    if (interval > 0) {
      this.#timer = setInterval(() => this.sweep(), interval);
      this.#timer.unref();
    }
  }

  /** Entries held, expired ones not yet swept included (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops expired entries among the next `sweepBatch` of the table; returns how many it dropped. */
  sweep(): number {
    const now = this.#now();
    let dropped = 0;
    for (let i = 0; i < this.#sweepBatch; i++) {
      this.#cursor ??= this.#entries.entries();
      const next = this.#cursor.next();
      if (next.done) {
        this.#cursor = undefined;
        break;
      }
      const [key, entry] = next.value;
      if (entry.expiresAt <= now) {
        this.#entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** The live entry of `key` if it is of kind `kind`; undefined when absent or expired; StateError for another kind. */
  #live<K extends Kind>(key: string, kind: K, now: number): Of<K> | undefined {
    if (this.#closed) throw new StateError('the state is closed');
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    if (entry.kind !== kind) throw new StateError(`key ${JSON.stringify(key)} holds a ${entry.kind}, not a ${kind}`);
    return entry as Of<K>;
  }

  async increment(key: string, delta: number, ttlMs: number): Promise<number> {
    check.increment(delta, ttlMs);
    const now = this.#now();
    const entry = this.#live(key, 'counter', now);
    if (entry === undefined) {
      this.#entries.set(key, { kind: 'counter', expiresAt: now + ttlMs, value: delta });
      return delta;
    }
    entry.value += delta;
    return entry.value;
  }

  async get(key: string): Promise<number> {
    return this.#live(key, 'counter', this.#now())?.value ?? 0;
  }

  async take(key: string, tokens: number, capacity: number, refillPerSecond: number): Promise<TakeResult> {
    check.take(tokens, capacity, refillPerSecond);
    const now = this.#now();
    const entry = this.#live(key, 'bucket', now);
    const before = entry === undefined ? capacity : Math.min(capacity, entry.tokens + ((now - entry.at) * refillPerSecond) / 1000);
    const allowed = before >= tokens;
    const after = allowed ? before - tokens : before;
    const refillMs = Math.max(1, Math.ceil(((capacity - after) * 1000) / refillPerSecond));
    this.#entries.set(key, { kind: 'bucket', expiresAt: now + refillMs, tokens: after, at: now });
    const retryAfterMs = allowed ? 0 : Math.ceil(((tokens - after) * 1000) / refillPerSecond);
    return { allowed, remaining: Math.floor(after), retryAfterMs };
  }

  async acquire(key: string, limit: number, ttlMs: number): Promise<string | undefined> {
    check.acquire(limit, ttlMs);
    const now = this.#now();
    let entry = this.#live(key, 'semaphore', now);
    if (entry === undefined) {
      entry = { kind: 'semaphore', expiresAt: 0, leases: new Map() };
      this.#entries.set(key, entry);
    }
    for (const [lease, expiresAt] of entry.leases) if (expiresAt <= now) entry.leases.delete(lease);
    if (entry.leases.size >= limit) return undefined;
    const lease = String(++this.#leases);
    entry.leases.set(lease, now + ttlMs);
    entry.expiresAt = Math.max(entry.expiresAt, now + ttlMs);
    return lease;
  }

  async release(key: string, lease: string): Promise<void> {
    const entry = this.#live(key, 'semaphore', this.#now());
    if (entry === undefined) return;
    entry.leases.delete(lease);
    if (entry.leases.size === 0) this.#entries.delete(key);
  }

  async setAdd(key: string, member: string, ttlMs: number): Promise<boolean> {
    check.ttl(ttlMs);
    const now = this.#now();
    let entry = this.#live(key, 'set', now);
    if (entry === undefined) {
      entry = { kind: 'set', expiresAt: 0, members: new Set() };
      this.#entries.set(key, entry);
    }
    entry.expiresAt = now + ttlMs;
    const added = !entry.members.has(member);
    entry.members.add(member);
    return added;
  }

  async setRemove(key: string, member: string): Promise<boolean> {
    const entry = this.#live(key, 'set', this.#now());
    if (entry === undefined) return false;
    const removed = entry.members.delete(member);
    if (entry.members.size === 0) this.#entries.delete(key);
    return removed;
  }

  async setHas(key: string, member: string): Promise<boolean> {
    return this.#live(key, 'set', this.#now())?.members.has(member) ?? false;
  }

  async setSize(key: string): Promise<number> {
    return this.#live(key, 'set', this.#now())?.members.size ?? 0;
  }

  async put(key: string, value: JsonValue, ttlMs: number): Promise<void> {
    check.ttl(ttlMs);
    const now = this.#now();
    const json = JSON.stringify(value);
    if (json === undefined) throw new StateError('a record must be a JSON value');
    if (this.#closed) throw new StateError('the state is closed');
    this.#entries.set(key, { kind: 'record', expiresAt: now + ttlMs, json });
  }

  async read(key: string): Promise<JsonValue | undefined> {
    const entry = this.#live(key, 'record', this.#now());
    return entry === undefined ? undefined : (JSON.parse(entry.json) as JsonValue);
  }

  async delete(key: string): Promise<boolean> {
    if (this.#closed) throw new StateError('the state is closed');
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#entries.delete(key);
    return entry.expiresAt > this.#now();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#entries.clear();
  }
}
