/**
 * The Lua scripts of `RedisState`: each multi-step operation runs as one script, so Redis runs it
 * atomically and the client pays one round trip. Times come from the server (`TIME`), so instances
 * whose clocks disagree still share one bucket and one semaphore correctly. Scripts are sent by SHA1
 * (`EVALSHA`), and in full once per server start (`EVAL` after a `NOSCRIPT`), which caches them again.
 */
import { createHash } from 'node:crypto';

/** A script and its SHA1, as `EVALSHA` names it. */
export interface LuaScript {
  source: string;
  sha1: string;
}

function script(source: string): LuaScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS[1] counter; ARGV delta, ttl ms. The expiry is set when the counter has none: when it is created (fixed window). */
export const INCREMENT = script(`local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`);

/** KEYS[1] bucket hash {tokens, at}; ARGV tokens, capacity, refill per second. Returns {allowed 0|1, whole tokens left, retry after ms}. */
export const TAKE = script(`${NOW}
local want = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local level = capacity
if b[1] then level = math.min(capacity, tonumber(b[1]) + math.max(0, now - tonumber(b[2])) * rate / 1000) end
local allowed = 0
if level >= want then
  level = level - want
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', level), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - level) * 1000 / rate)))
local retry = 0
if allowed == 0 then retry = math.ceil((want - level) * 1000 / rate) end
return {allowed, math.floor(level), retry}`);

/** KEYS[1] sorted set of leases scored by expiry; ARGV limit, ttl ms, lease id. Returns 1 when granted. */
export const ACQUIRE = script(`${NOW}
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1`);

/** KEYS[1] set; ARGV member, ttl ms. The set expires ttl after its latest add. Returns 1 when the member is new. */
export const SET_ADD = script(`local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return added`);
