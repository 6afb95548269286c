/**
 * Builds a process's shared state from the config: the backend, wrapped in the `StateGuard` its
 * users take their views from (`guard.user('failClosed')`).
 *
 * - `memory` without a channel: one process, a `MemoryState` in it.
 * - `memory` with a channel (a worker): a `RemoteState` whose operations the supervisor's
 *   `StateHost` serves; the worker feeds its IPC messages to `guard.handle(message)`.
 * - `redis`: a `RedisState` (workers and instances alike: Redis is the one copy). Waits up to the
 *   connect timeout for the first connection; without it, starts anyway with the backend marked
 *   unreachable (users get their fallbacks; the client keeps reconnecting). Beside it, `machine`:
 *   the machine's own state (the supervisor's through a `RemoteState` in a worker, a `MemoryState`
 *   in a single process), for what should not leave the machine.
 */
import type { Logger } from '../observability/logger.ts';
import type { StateConfig } from '../config/types.ts';
import { defaults } from '../config/defaults.ts';
import { parseDuration } from '../util/units.ts';
import { MemoryState } from './memory-state.ts';
import { RemoteState } from './remote-state.ts';
import type { StateChannel } from './state-channel.ts';
import { StateGuard } from './state-guard.ts';

/** What the process brings: its logger, and in a worker the IPC channel to the supervisor. */
export interface SharedStateOptions {
  log: Logger;
  /** A worker's channel to its supervisor (`process`); absent in a single process and in the supervisor itself. */
  channel?: StateChannel;
  /** ms a worker waits for the supervisor's answer. Default 1000. */
  remoteTimeout?: number;
}

const DEFAULT: StateConfig = {
  backend: defaults.state.backend,
  redis: {
    url: defaults.state.redis.url,
    prefix: defaults.state.redis.prefix,
    connectTimeout: parseDuration(defaults.state.redis.connectTimeout),
    commandTimeout: parseDuration(defaults.state.redis.commandTimeout),
  },
};

/** The guarded state for this process. `config` undefined = the defaults (memory). */
export async function createSharedState(config: StateConfig | undefined, options: SharedStateOptions): Promise<StateGuard> {
  const { log, channel } = options;
  const c = config ?? DEFAULT;
  if (c.backend === 'redis') {
    // Loaded only for this backend: a memory-backed process never loads the Redis client.
    const { RedisState, redactUrl } = await import('./redis-state.ts');
    const redis = new RedisState(c.redis);
    const guard = new StateGuard(redis, { backend: 'redis', target: redactUrl(c.redis.url), log });
    guard.machine =
      channel !== undefined
        ? new StateGuard(new RemoteState(channel, { timeoutMs: options.remoteTimeout }), { backend: 'supervisor', log })
        : new StateGuard(new MemoryState(), { backend: 'memory', log });
    try {
      await redis.waitReady();
    } catch (error) {
      guard.reportUnavailable(error as Error);
    }
    return guard;
  }
  if (channel !== undefined) return new StateGuard(new RemoteState(channel, { timeoutMs: options.remoteTimeout }), { backend: 'supervisor', log });
  return new StateGuard(new MemoryState(), { backend: 'memory', log });
}
