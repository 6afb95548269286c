/**
 * A cache store in Redis (`store: { redis: {} }`), shared by every instance (and every worker) that
 * names the same Redis and prefix: a response stored through one instance is a hit in the others,
 * and a purge in one reaches all. For small objects: bodies above `maxObjectSize` (64 KiB by
 * default) are not stored here.
 *
 * Keys (all under the prefix, `<state.redis.prefix>cache:<policy>:` by default):
 *   o:<sha1 of the variant key>  a string: the object (file-store.ts's encoding: head JSON + body),
 *                                expiring with its freshness lifetime + stale windows (see `ttlOf`)
 *   u:<url>                      a hash: `~vary` → the URL's Vary names (JSON, '' for none); one
 *                                field per variant (the object's sha1); expires with its longest object
 *   t:<tag>                      a set of `<sha1> <url>` members; expires with its longest object
 * Puts and URL/tag purges are Lua scripts (atomic, one round trip). A purge by prefix walks the
 * URL hashes with SCAN MATCH `u:<prefix>*`: O(keys in the Redis database) per purge, in batches
 * that never block Redis for long, not atomic with concurrent writes. Scripts build key names from
 * the prefix, so this store needs a single Redis, or a primary with replicas, not Redis
 * Cluster (a cluster routes a script by the keys it is given, not by those it builds).
 *
 * Never a failed request: every command is bounded by the state's `commandTimeout`, the offline
 * queue is off, and a store that cannot reach Redis answers a miss, `false` (not stored) or 0
 * (nothing purged), with a warning at most every 10 s. It reconnects when requests need it (with a
 * bounded backoff between attempts, no restart), and holds no timer that keeps a process alive
 * (filters have no close hook): its sockets and its one timer are unref'd.
 *
 * With a front tier (`memory` too), purges and stored objects (a replaced key) are published on
 * `<prefix>purge` and other instances' messages applied to the front (see `RedisStoreOptions.front`).
 * A lost subscription is taken up again by the store itself (an unref'd timer, with the same
 * bounded backoff), not only when a request reaches Redis: while the front answers hits, no request
 * does, and the instance would hear no purge until one did.
 *
 * Its connections carry the client name `switchboard:cache:<id>` (CLIENT LIST), `<id>` the store's
 * id on the purge channel (see `RedisStoreOptions.frontId`; random per store without a shared front).
 *
 * State: per fleet (Redis). This process holds only its connections (per process: each worker has
 * its own, and its own subscription, since each worker may hold a per-process front), the timer of
 * its next attempt to subscribe again, and the time of its last warning.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { StoredResponse } from './memory-store.ts';
import { decode, encode, urlOfKey } from './file-store.ts';
import type { CacheStore, StoreStats } from './store.ts';

/** How to reach Redis (the config's `state.redis`, resolved: ms). */
export interface RedisStoreOptions {
  readonly url: string;
  /** Prepended to every key of this store. */
  readonly prefix: string;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  readonly maxObjectSize: number;
  /** Seconds an object is kept past its own stale windows (the policy's `staleIfError`). */
  readonly staleIfError: number;
  readonly log: { warn(obj: object, msg: string): void };
  /** Longest wait between reconnection attempts, ms. Default 2000. */
  readonly maxReconnectDelay?: number;
  /**
   * The tier in front of this store (a memory store), when there is one: purges are published on
   * the `<prefix>purge` channel and other instances' purges applied to it; after the subscription
   * was lost (purges may have been missed), it is emptied.
   */
  readonly front?: CacheStore;
  /**
   * The front tier's identity on the channel: messages with it are its own, not applied. Workers
   * that share one front (/dev/shm) share it; default: a random id (a per-process front).
   */
  readonly frontId?: string;
}

/** A purge, or an object replaced (`key`), as published on the channel. */
interface PurgeMessage {
  /** The publishing front tier (its own purges and writes reach it through the tiered store). */
  readonly from: string;
  /** A variant's key: stored anew (a new response, a 304 refresh); other fronts drop their copy. */
  readonly key?: string;
  readonly url?: string;
  readonly prefix?: string;
  readonly tag?: string;
}

/** How long an object that carries validators is kept past its stale windows, for revalidation: ms. */
const VALIDATOR_RETENTION = 3600_000;

/** Lua: KEYS object, url hash, tag sets…; ARGV prefix, object, ttl ms, vary, sha1, url. */
const PUT = `local old = redis.call('HGET', KEYS[2], '~vary')
if old and old ~= ARGV[4] then
  for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
    if f ~= '~vary' then redis.call('DEL', ARGV[1] .. 'o:' .. f) end
  end
  redis.call('DEL', KEYS[2])
end
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('HSET', KEYS[2], '~vary', ARGV[4], ARGV[5], '1')
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[5] .. ' ' .. ARGV[6])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1`;

/** Lua: KEYS url hash; ARGV prefix. Deletes the URL's objects and the hash; how many objects went. */
const DELETE_URL = `local n = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if f ~= '~vary' then n = n + redis.call('DEL', ARGV[1] .. 'o:' .. f) end
end
redis.call('DEL', KEYS[1])
return n`;

/** Lua: KEYS tag set; ARGV prefix. Deletes the tagged objects and their URL hash fields; how many objects went. */
const DELETE_TAG = `local n = 0
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local sp = string.find(m, ' ', 1, true)
  local h = string.sub(m, 1, sp - 1)
  local u = ARGV[1] .. 'u:' .. string.sub(m, sp + 1)
  n = n + redis.call('DEL', ARGV[1] .. 'o:' .. h)
  redis.call('HDEL', u, h)
  if redis.call('HLEN', u) <= 1 then redis.call('DEL', u) end
end
redis.call('DEL', KEYS[1])
return n`;

const sha1 = (s: string): string => createHash('sha1').update(s).digest('hex');

interface Script {
  readonly source: string;
  readonly sha1: string;
}
const script = (source: string): Script => ({ source, sha1: sha1(source) });
const SCRIPTS = { put: script(PUT), deleteUrl: script(DELETE_URL), deleteTag: script(DELETE_TAG) };

/** A glob-safe form of `s` for SCAN MATCH (`*`, `?`, `[`, `]`, `\` escaped). */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** How long `e` is kept: its freshness lifetime and stale windows (RFC 5861), the configured grace, and a revalidation window when it carries validators. ms. */
export function ttlOf(e: StoredResponse, staleIfError: number): number {
  let ttl = e.policy.timeToLive() + staleIfError * 1000;
  if (e.headers.etag !== undefined || e.headers['last-modified'] !== undefined) ttl += VALIDATOR_RETENTION;
  return Math.max(1000, Math.round(ttl));
}

// biome-ignore lint/suspicious/noExplicitAny: node-redis's client type is generic over modules; this store sends raw commands only.
type Client = any;

/** The cache's Redis store; see the module comment. */
export class RedisStore implements CacheStore {
  readonly kind = 'redis';
  readonly maxSize: number;
  readonly #o: RedisStoreOptions;
  readonly #client: Promise<Client>;
  #bufferOptions: object | undefined;
  readonly #maxDelay: number;
  #retries = 0;
  #nextAttempt = 0;
  #everConnected = false;
  /** The connection subscribed to the purge channel (with a front tier). */
  #sub: Client | undefined;
  #subConnecting = false;
  #subscribedOnce = false;
  #subNextAttempt = 0;
  /** The next attempt to subscribe again after the subscription was lost (unref'd), and how many in a row did not subscribe. Per process, as the subscription is. */
  #subTimer: NodeJS.Timeout | undefined;
  #subRetries = 0;
  readonly #id: string;
  /** Closed by a reload that replaced the store: answers misses, never reconnects. */
  #closed = false;
  readonly #channel: string;
  #lastWarning = 0;

  constructor(o: RedisStoreOptions) {
    this.#o = o;
    this.maxSize = o.maxObjectSize;
    this.#maxDelay = o.maxReconnectDelay ?? 2000;
    this.#channel = `${o.prefix}purge`;
    this.#id = o.frontId ?? randomBytes(8).toString('base64url');
    // Loaded only for this store: a gateway without a Redis store never loads the client.
    this.#client = import('redis').then(({ createClient, RESP_TYPES }) => {
      this.#bufferOptions = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };
      const client = createClient({
        url: o.url,
        // CLIENT SETNAME on each connection (duplicate() keeps it: the subscription's too).
        name: `switchboard:cache:${this.#id}`,
        disableOfflineQueue: true,
        // Bounded by #send instead (see src/state/redis-state.ts: node-redis's timeout costs a timer per command).
        commandOptions: { timeout: 0 },
        // No reconnection timers of node-redis's: the store has no close hook (filters have none),
        // so nothing of it may keep the process alive. #connected reconnects when a request needs it.
        socket: { connectTimeout: o.connectTimeout, reconnectStrategy: false },
      });
      client.on('error', () => {}); // each failed attempt; failures are logged by #failed, rate-limited
      client.on('ready', () => {
        this.#retries = 0;
        // Redis (back): the subscription follows at once, not at the next request or timer.
        if (o.front !== undefined && !this.#closed) {
          this.#subNextAttempt = 0;
          void this.#subscribe(client);
        }
      });
      client.unref();
      return client;
    });
    if (o.front !== undefined) void this.#connected().catch(() => undefined);
  }

  /** Subscribes to the purge channel (a connection of its own), when there is a front tier and it is not subscribed. */
  async #subscribe(client: Client): Promise<void> {
    const front = this.#o.front;
    if (front === undefined || this.#subConnecting || this.#sub?.isReady || Date.now() < this.#subNextAttempt) return;
    this.#subConnecting = true;
    try {
      if (this.#sub === undefined) {
        this.#sub = client.duplicate();
        // Each lost connection (killed, Redis gone): purges are not heard from now on, and a front
        // hit never asks Redis: the front is emptied at once, not only once subscribed anew (found
        // by cache-redis-subscription.test.ts), and the store subscribes again on its own (found
        // by cache-redis.test.ts: a front that answered hits stayed deaf after Redis restarted).
        this.#sub.on('error', () => {
          void Promise.resolve(front.deletePrefix('')).catch(() => undefined);
          this.#resubscribeLater();
        });
        this.#sub.unref();
      }
      const sub = this.#sub;
      if (!sub.isOpen) await sub.connect();
      await sub.unsubscribe(this.#channel).catch(() => undefined);
      await sub.subscribe(this.#channel, (message: string) => this.#apply(message));
      // Purges published while this instance was not subscribed were missed: the front is emptied.
      if (this.#subscribedOnce) await front.deletePrefix('');
      this.#subscribedOnce = true;
      this.#subRetries = 0;
    } catch (error) {
      this.#subNextAttempt = Date.now() + this.#maxDelay;
      this.#failed('subscribe', error);
      this.#resubscribeLater();
    } finally {
      this.#subConnecting = false;
    }
  }

  /**
   * After the subscription was lost or an attempt failed: the next attempt, on a timer of its own
   * (50, 100, … ms up to the max; one at a time; unref'd, so it keeps no process alive). Each
   * attempt reconnects the store's client when it is down (its 'ready' subscribes) or subscribes
   * (#connected), and schedules the next until subscribed or closed.
   */
  #resubscribeLater(): void {
    if (this.#closed || this.#subTimer !== undefined) return;
    const delay = Math.min(50 * 2 ** Math.min(this.#subRetries++, 10), this.#maxDelay);
    this.#subTimer = setTimeout(() => {
      this.#subTimer = undefined;
      if (this.#closed || this.#sub?.isReady) return;
      this.#subNextAttempt = 0;
      void this.#connected().catch(() => undefined);
      this.#resubscribeLater();
    }, delay);
    this.#subTimer.unref();
  }

  /** Another instance's purge, applied to the front tier. */
  #apply(message: string): void {
    let m: PurgeMessage;
    try {
      m = JSON.parse(message) as PurgeMessage;
    } catch {
      return;
    }
    const front = this.#o.front;
    if (front === undefined || m.from === this.#id) return;
    const done =
      typeof m.key === 'string'
        ? (front.deleteKey?.(m.key) ?? front.deleteUrl(urlOfKey(m.key)))
        : typeof m.tag === 'string'
          ? front.deleteTag(m.tag)
          : typeof m.prefix === 'string'
            ? front.deletePrefix(m.prefix)
            : typeof m.url === 'string'
              ? front.deleteUrl(m.url)
              : 0;
    void Promise.resolve(done).catch(() => undefined);
  }

  /** Tells the other instances' front tiers of a purge (with a front tier). */
  async #publish(purge: Omit<PurgeMessage, 'from'>): Promise<void> {
    if (this.#o.front === undefined) return;
    await this.#send(['PUBLISH', this.#channel, JSON.stringify({ from: this.#id, ...purge })]);
  }

  /** The client when connected; else starts a connection attempt (at most one per backoff step: 50, 100, … ms up to the max) and throws. */
  async #connected(): Promise<Client> {
    const client = await this.#client;
    if (this.#closed) throw new Error('closed');
    if (client.isReady) {
      if (this.#o.front !== undefined && !this.#subConnecting && !this.#sub?.isReady) void this.#subscribe(client);
      return client;
    }
    const now = Date.now();
    if (!client.isOpen && now >= this.#nextAttempt) {
      this.#nextAttempt = now + Math.min(50 * 2 ** Math.min(this.#retries++, 10), this.#maxDelay);
      const ready = client.connect() as Promise<unknown>;
      ready.catch(() => {});
      // The first connection is waited for (up to the connect timeout): a fresh gateway's first requests are not misses for it.
      if (this.#retries === 1 && !this.#everConnected) {
        await ready.then(
          () => undefined,
          () => undefined,
        );
        if (client.isReady) {
          this.#everConnected = true;
          return client;
        }
      }
    }
    throw new Error('not connected');
  }

  /** Logs a failed operation, at most every 10 s (an outage fails every request's lookup). */
  #failed(op: string, error: unknown): void {
    const now = Date.now();
    if (now - this.#lastWarning < 10_000) return;
    this.#lastWarning = now;
    this.#o.log.warn({ store: 'redis', op, err: (error as Error).message }, 'cache: the Redis store is unreachable: answering misses, not storing');
  }

  /** One command, within the command timeout; rejects when not answered, when disconnected, or on a server error. */
  async #send<T>(args: Array<string | Buffer>, buffers = false): Promise<T> {
    const client = await this.#connected();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#o.commandTimeout}ms`)), this.#o.commandTimeout);
    });
    try {
      return await Promise.race([client.sendCommand(args, buffers ? this.#bufferOptions : undefined) as Promise<T>, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** EVALSHA, and EVAL when the server does not know the script. */
  async #run<T>(s: Script, keys: string[], args: Array<string | Buffer>): Promise<T> {
    const rest = [String(keys.length), ...keys, ...args];
    try {
      return await this.#send<T>(['EVALSHA', s.sha1, ...rest]);
    } catch (error) {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw error;
      return this.#send<T>(['EVAL', s.source, ...rest]);
    }
  }

  #urlKey(url: string): string {
    return `${this.#o.prefix}u:${url}`;
  }

  async varyOf(url: string): Promise<readonly string[] | undefined> {
    try {
      const v = await this.#send<string | null>(['HGET', this.#urlKey(url), '~vary']);
      return v === null || v === '' ? undefined : (JSON.parse(v) as string[]);
    } catch (error) {
      this.#failed('varyOf', error);
      return undefined;
    }
  }

  async get(key: string): Promise<StoredResponse | undefined> {
    try {
      const buf = await this.#send<Buffer | null>(['GET', `${this.#o.prefix}o:${sha1(key)}`], true);
      return buf === null ? undefined : decode(buf, key);
    } catch (error) {
      this.#failed('get', error);
      return undefined;
    }
  }

  async put(e: StoredResponse): Promise<boolean> {
    if (e.file !== undefined || e.body.length > this.#o.maxObjectSize) return false;
    const p = this.#o.prefix;
    const h = sha1(e.key);
    const data = encode(e);
    const keys = [`${p}o:${h}`, this.#urlKey(e.url), ...e.tags.map((t) => `${p}t:${t}`)];
    try {
      await this.#run(SCRIPTS.put, keys, [p, data, String(ttlOf(e, this.#o.staleIfError)), e.vary === undefined ? '' : JSON.stringify(e.vary), h, e.url]);
      // Other instances' fronts drop their copy of the key (one PUBLISH per store, none per hit), after the write: a front that misses reads the new object.
      await this.#publish({ key: e.key }).catch((error: unknown) => this.#failed('publish', error));
      return true;
    } catch (error) {
      this.#failed('put', error);
      return false;
    }
  }

  async deleteUrl(url: string): Promise<number> {
    try {
      const n = Number(await this.#run(SCRIPTS.deleteUrl, [this.#urlKey(url)], [this.#o.prefix]));
      await this.#publish({ url });
      return n;
    } catch (error) {
      this.#failed('purge', error);
      return 0;
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    let n = 0;
    try {
      const match = `${globEscape(this.#urlKey(prefix))}*`;
      let cursor = '0';
      do {
        const [next, keys] = await this.#send<[string, string[]]>(['SCAN', cursor, 'MATCH', match, 'COUNT', '1000']);
        cursor = String(next);
        for (const k of keys) n += Number(await this.#run(SCRIPTS.deleteUrl, [k], [this.#o.prefix]));
      } while (cursor !== '0');
      await this.#publish({ prefix });
    } catch (error) {
      this.#failed('purge', error);
    }
    return n;
  }

  async deleteTag(tag: string): Promise<number> {
    try {
      const n = Number(await this.#run(SCRIPTS.deleteTag, [`${this.#o.prefix}t:${tag}`], [this.#o.prefix]));
      await this.#publish({ tag });
      return n;
    } catch (error) {
      this.#failed('purge', error);
      return 0;
    }
  }

  /**
   * Closes the connections (a reload that changed the store's settings replaced it): pending
   * commands get their answers first; requests of the old generation still in flight then miss.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#subTimer);
    this.#subTimer = undefined;
    const quit = (c: Client | undefined): void => {
      if (c === undefined || !c.isOpen) return;
      const closing: Promise<unknown> = c.isReady ? c.close() : Promise.reject(new Error('not ready'));
      closing.catch(() => {
        if (c.isOpen) c.destroy();
      });
    };
    quit(this.#sub);
    void this.#client.then(quit, () => undefined);
  }

  /** Zeros: Redis holds the fleet's one copy and evicts by its own `maxmemory-policy`; its size is Redis's to report (`INFO memory`). */
  stats(): StoreStats {
    return { bytes: 0, objects: 0, evictions: 0 };
  }
}
