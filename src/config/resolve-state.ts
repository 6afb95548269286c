/**
 * The `state` section of resolve: the backend, and for Redis a `redis://` or `rediss://` URL and
 * positive timeouts, defaults applied.
 */
import { parseDuration } from '../util/units.ts';
import { defaults } from './defaults.ts';
import { show, type Problem } from './problems.ts';
import type { RawConfig } from './schema.ts';
import type { StateConfig } from './types.ts';

function positive(raw: string | 0 | undefined, fallback: string, key: string, problems: Problem[]): number {
  const ms = parseDuration(raw ?? fallback);
  if (ms <= 0) problems.push({ path: ['state', 'redis', key], expected: 'a duration above 0, such as 500ms or 2s', found: show(raw) });
  return ms;
}

/** Resolves `raw.state` (absent = every default: the memory backend). */
export function resolveState(raw: RawConfig, problems: Problem[]): StateConfig {
  const d = defaults.state;
  const backend = raw.state?.backend ?? d.backend;
  const r = raw.state?.redis;
  const url = r?.url ?? d.redis.url;
  if (backend === 'redis') {
    let protocol = '';
    try {
      protocol = new URL(url).protocol;
    } catch {
      // reported below
    }
    if (protocol !== 'redis:' && protocol !== 'rediss:') {
      problems.push({ path: ['state', 'redis', 'url'], expected: 'a redis:// or rediss:// URL such as "redis://127.0.0.1:6379"', found: show(url) });
    }
  }
  return {
    backend,
    redis: {
      url,
      prefix: r?.prefix ?? d.redis.prefix,
      connectTimeout: positive(r?.connectTimeout, d.redis.connectTimeout, 'connectTimeout', problems),
      commandTimeout: positive(r?.commandTimeout, d.redis.commandTimeout, 'commandTimeout', problems),
    },
  };
}
