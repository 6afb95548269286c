/**
 * `SharedState` in Redis: per fleet, every instance that names the same Redis and prefix shares it.
 * One node-redis client per process (its connection is per worker), named `switchboard:state` in
 * CLIENT LIST; each operation is one round trip: a plain command, or a Lua script of
 * redis-scripts.ts for the multi-step ones.
 *
 * Never a hung request: the offline queue is off (`disableOfflineQueue`), so while the connection
 * is down an operation rejects at once; an operation sent but not answered within `commandTimeout`
 * rejects too. Both reject with `StateUnavailableError`. The client reconnects by itself with a
 * bounded backoff (no restart needed); `StateGuard` decides what users get meanwhile.
 */
import { randomBytes } from 'node:crypto';
import { createClient, ErrorReply } from 'redis';
import { ACQUIRE, INCREMENT, type LuaScript, SET_ADD, TAKE } from './redis-scripts.ts';
import { check, type JsonValue, type SharedState, StateError, StateUnavailableError, type TakeResult } from './state.ts';

/** How to reach Redis; durations in ms. */
export interface RedisStateOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  url: string;
  /** Prepended to every key: instances share what they name the same. Default `switchboard:`. */
  prefix?: string;
  /** ms to open a connection. Default 2000. */
  connectTimeout?: number;
  /** ms an operation may wait for its answer. Default 500. */
  commandTimeout?: number;
  /** Longest wait between reconnection attempts, ms. Default 2000. */
  maxReconnectDelay?: number;
}

type Reply = string | number | null | Reply[];

/** The state connections' client name on the Redis server (CLIENT LIST): the same for every process. */
export const STATE_CLIENT_NAME = 'switchboard:state';

/** The URL without its password, for logs (credentials are never logged). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparsable url>';
  }
}

/** The fleet's state in Redis. See the file comment. */
export class RedisState implements SharedState {
  readonly #client;
  readonly #prefix: string;
  readonly #commandTimeout: number;
  readonly #connectTimeout: number;
  /** Lease ids are unique across instances: a random id per RedisState, then a sequence. */
  readonly #leasePrefix = randomBytes(6).toString('base64url');
  #leases = 0;
  #lastError: Error | undefined;
  #closed = false;

  constructor(options: RedisStateOptions) {
    this.#prefix = options.prefix ?? 'switchboard:';
    this.#commandTimeout = options.commandTimeout ?? 500;
    this.#connectTimeout = options.connectTimeout ?? 2000;
    const maxDelay = options.maxReconnectDelay ?? 2000;
    this.#client = createClient({
      url: options.url,
      // CLIENT SETNAME on each (re)connection: operators tell Switchboard's connections apart in
      // CLIENT LIST (the cache stores' are `switchboard:cache:<id>`, policies/cache/redis-store.ts).
      name: STATE_CLIENT_NAME,
      disableOfflineQueue: true,
      // No per-command timeout in node-redis (its default is 5 s): #send bounds every operation by
      // commandTimeout itself. node-redis's costs an AbortSignal.timeout per command, whose timer
      // fires (a DOMException and an abort event) 5 s later whether or not the reply came: about 7%
      // of a Redis-backed rate-limited route's CPU (bench/README.md, suite gateway).
      commandOptions: { timeout: 0 },
      socket: {
        connectTimeout: this.#connectTimeout,
        // 50, 100, 200, … ms up to maxDelay, with jitter so that a fleet does not reconnect in step.
        reconnectStrategy: (retries) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelay) + Math.floor(Math.random() * 50),
      },
    });
    // node-redis emits an error per failed (re)connection attempt; StateGuard logs outages, once.
    this.#client.on('error', (error: Error) => {
      this.#lastError = error;
    });
    this.#client.connect().catch(() => {}); // settles when closed; until ready, operations reject
  }

  /** Whether the connection is up now. */
  get ready(): boolean {
    return this.#client.isReady;
  }

  /** Resolves once connected; rejects with StateUnavailableError after `timeoutMs` (the connect timeout by default). */
  waitReady(timeoutMs = this.#connectTimeout): Promise<void> {
    if (this.#client.isReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#client.off('ready', onReady);
        reject(new StateUnavailableError(`redis not reachable within ${timeoutMs}ms${this.#lastError ? ` (${this.#lastError.message})` : ''}`));
      }, timeoutMs);
      this.#client.once('ready', onReady);
    });
  }

  /** One command, answered within the command timeout or rejected; server errors become StateError, the rest StateUnavailableError. */
  async #send<T extends Reply>(args: string[]): Promise<T> {
    if (this.#closed) throw new StateUnavailableError('the state is closed');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StateUnavailableError(`redis ${args[0]}: no answer within ${this.#commandTimeout}ms`)), this.#commandTimeout);
    });
    try {
      return await Promise.race([this.#client.sendCommand<T>(args), timeout]);
    } catch (error) {
      if (error instanceof StateUnavailableError) throw error;
      if (error instanceof ErrorReply) throw new StateError((error as Error).message);
      throw new StateUnavailableError(`redis ${args[0]}: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** EVALSHA, and EVAL when the server does not know the script (it then caches it). */
  async #run<T extends Reply>(script: LuaScript, key: string, args: Array<string | number>): Promise<T> {
    const rest = [this.#prefix + key, ...args.map(String)];
    try {
      return await this.#send<T>(['EVALSHA', script.sha1, '1', ...rest]);
    } catch (error) {
      if (!(error instanceof StateError) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.#send<T>(['EVAL', script.source, '1', ...rest]);
    }
  }

  async increment(key: string, delta: number, ttlMs: number): Promise<number> {
    check.increment(delta, ttlMs);
    return Number(await this.#run<number>(INCREMENT, key, [delta, ttlMs]));
  }

  async get(key: string): Promise<number> {
    const value = await this.#send<string | null>(['GET', this.#prefix + key]);
    if (value === null) return 0;
    const n = Number(value);
    if (!Number.isSafeInteger(n)) throw new StateError(`key ${JSON.stringify(key)} does not hold a counter`);
    return n;
  }

  async take(key: string, tokens: number, capacity: number, refillPerSecond: number): Promise<TakeResult> {
    check.take(tokens, capacity, refillPerSecond);
    const [allowed, remaining, retryAfterMs] = await this.#run<number[]>(TAKE, key, [tokens, capacity, refillPerSecond]);
    return { allowed: allowed === 1, remaining: Number(remaining), retryAfterMs: Number(retryAfterMs) };
  }

  async acquire(key: string, limit: number, ttlMs: number): Promise<string | undefined> {
    check.acquire(limit, ttlMs);
    const lease = `${this.#leasePrefix}.${++this.#leases}`;
    return (await this.#run<number>(ACQUIRE, key, [limit, ttlMs, lease])) === 1 ? lease : undefined;
  }

  async release(key: string, lease: string): Promise<void> {
    await this.#send(['ZREM', this.#prefix + key, lease]);
  }

  async setAdd(key: string, member: string, ttlMs: number): Promise<boolean> {
    check.ttl(ttlMs);
    return (await this.#run<number>(SET_ADD, key, [member, ttlMs])) === 1;
  }

  async setRemove(key: string, member: string): Promise<boolean> {
    return (await this.#send<number>(['SREM', this.#prefix + key, member])) === 1;
  }

  async setHas(key: string, member: string): Promise<boolean> {
    return (await this.#send<number>(['SISMEMBER', this.#prefix + key, member])) === 1;
  }

  async setSize(key: string): Promise<number> {
    return Number(await this.#send<number>(['SCARD', this.#prefix + key]));
  }

  async put(key: string, value: JsonValue, ttlMs: number): Promise<void> {
    check.ttl(ttlMs);
    const json = JSON.stringify(value);
    if (json === undefined) throw new StateError('a record must be a JSON value');
    await this.#send(['SET', this.#prefix + key, json, 'PX', String(ttlMs)]);
  }

  async read(key: string): Promise<JsonValue | undefined> {
    const json = await this.#send<string | null>(['GET', this.#prefix + key]);
    return json === null ? undefined : (JSON.parse(json) as JsonValue);
  }

  async delete(key: string): Promise<boolean> {
    return (await this.#send<number>(['DEL', this.#prefix + key])) === 1;
  }

  /** Closes the connection (pending operations get their answers first when it is up; else it is cut). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#client.isReady) {
      try {
        await this.#client.close();
        return;
      } catch {
        // fall through to destroy
      }
    }
    if (this.#client.isOpen) this.#client.destroy();
  }
}
