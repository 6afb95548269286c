/**
 * `SharedState` for a worker process: each operation is one message to the supervisor, whose
 * `StateHost` runs it on the machine's one `MemoryState` and replies (one round trip). Per worker
 * (the pending table); the state itself is per machine, in the supervisor, so every worker sees
 * exact counts.
 *
 * The worker feeds incoming messages to `handle()` (it returns false for messages of other kinds).
 * An operation without a reply within `timeoutMs` (supervisor busy, gone, channel closed) rejects
 * with `StateUnavailableError`: never a hung request.
 */
import { isStateMessage, STATE_TAG, type StateChannel, type StateReply, type StateRequest } from './state-channel.ts';
import { check, type JsonValue, type SharedState, StateError, type StateOp, StateUnavailableError, type TakeResult } from './state.ts';

/** Options of a `RemoteState`. */
export interface RemoteStateOptions {
  /** ms an operation waits for its reply before rejecting with StateUnavailableError. Default 1000. */
  timeoutMs?: number;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** The worker's side of the machine's state. See the file comment. */
export class RemoteState implements SharedState {
  readonly #channel: StateChannel;
  readonly #timeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;

  constructor(channel: StateChannel, options: RemoteStateOptions = {}) {
    this.#channel = channel;
    this.#timeoutMs = options.timeoutMs ?? 1000;
  }

  /** Operations waiting for their reply. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Feeds a message that arrived on the channel; true when it was a state reply (consumed), false for any other message. */
  handle(message: unknown): boolean {
    if (!isStateMessage(message)) return false;
    const reply = message as StateReply;
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return true; // timed out already
    this.#pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (reply.ok) pending.resolve(reply.value);
    else if (reply.error.name === 'RangeError') pending.reject(new RangeError(reply.error.message));
    else pending.reject(new StateError(reply.error.message));
    return true;
  }

  #call<T>(op: StateOp, args: unknown[]): Promise<T> {
    if (this.#closed) return Promise.reject(new StateUnavailableError('the state is closed'));
    return new Promise<T>((resolve, reject) => {
      const id = ++this.#nextId;
      const fail = (why: string): void => {
        const pending = this.#pending.get(id);
        if (pending === undefined) return;
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        reject(new StateUnavailableError(`state ${op}: ${why}`));
      };
      const timer = setTimeout(() => fail(`no answer from the supervisor within ${this.#timeoutMs}ms`), this.#timeoutMs);
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      const request: StateRequest = { sb: STATE_TAG, id, op, args };
      try {
        // A false return only means a backlog; a closed channel calls back with an error.
        this.#channel.send(request, (error) => {
          if (error) fail(`the channel to the supervisor failed (${error.message})`);
        });
      } catch (error) {
        fail(`the channel to the supervisor failed (${(error as Error).message})`);
      }
    });
  }

  async increment(key: string, delta: number, ttlMs: number): Promise<number> {
    check.increment(delta, ttlMs);
    return this.#call('increment', [key, delta, ttlMs]);
  }

  async get(key: string): Promise<number> {
    return this.#call('get', [key]);
  }

  async take(key: string, tokens: number, capacity: number, refillPerSecond: number): Promise<TakeResult> {
    check.take(tokens, capacity, refillPerSecond);
    return this.#call('take', [key, tokens, capacity, refillPerSecond]);
  }

  async acquire(key: string, limit: number, ttlMs: number): Promise<string | undefined> {
    check.acquire(limit, ttlMs);
    return (await this.#call<string | null | undefined>('acquire', [key, limit, ttlMs])) ?? undefined;
  }

  async release(key: string, lease: string): Promise<void> {
    await this.#call('release', [key, lease]);
  }

  async setAdd(key: string, member: string, ttlMs: number): Promise<boolean> {
    check.ttl(ttlMs);
    return this.#call('setAdd', [key, member, ttlMs]);
  }

  async setRemove(key: string, member: string): Promise<boolean> {
    return this.#call('setRemove', [key, member]);
  }

  async setHas(key: string, member: string): Promise<boolean> {
    return this.#call('setHas', [key, member]);
  }

  async setSize(key: string): Promise<number> {
    return this.#call('setSize', [key]);
  }

  async put(key: string, value: JsonValue, ttlMs: number): Promise<void> {
    check.ttl(ttlMs);
    await this.#call('put', [key, value, ttlMs]);
  }

  async read(key: string): Promise<JsonValue | undefined> {
    return this.#call<JsonValue | undefined>('read', [key]);
  }

  async delete(key: string): Promise<boolean> {
    return this.#call('delete', [key]);
  }

  /** Rejects every pending operation (StateUnavailableError) and refuses new ones; the channel is the caller's. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const [id, pending] of this.#pending) {
      clearTimeout(pending.timer);
      pending.reject(new StateUnavailableError('the state is closed'));
      this.#pending.delete(id);
    }
  }
}
