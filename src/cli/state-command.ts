/**
 * `switchboard state get <key>` and `switchboard state incr <key> [--by n] [--ttl 60s]`: read and
 * count in the shared state the config names. With the redis backend it connects with the config's
 * settings (URL, prefix, timeouts) and prints the counter's value. The memory backend lives inside
 * the running instance (its supervisor), out of reach of another process: the command says so.
 *
 * Exit codes: 0 done, 1 Redis unreachable or the operation failed, 2 config or usage problem.
 */
import type { Command } from 'commander';
import { formatConfigError } from '../config/load.ts';
import { loadConfigFile } from '../config/load-text.ts';
import type { SharedState } from '../state/state.ts';
import { DURATION_PATTERN } from '../util/config-primitives.ts';
import { parseDuration } from '../util/units.ts';

interface StateOptions {
  config: string;
  by?: string;
  ttl?: string;
}

/** Loads the config and runs `op` on its Redis state; returns the exit code. */
async function withRedis(configFile: string, op: (state: SharedState) => Promise<number>): Promise<number> {
  const loaded = await loadConfigFile(configFile);
  if (!loaded.ok) {
    for (const e of loaded.errors) process.stderr.write(`${formatConfigError(e)}\n`);
    return 2;
  }
  const { backend, redis } = loaded.config.state ?? { backend: 'memory' as const, redis: undefined };
  if (backend !== 'redis' || redis === undefined) {
    process.stderr.write(
      `switchboard state: ${configFile} uses the memory backend: its state lives inside the running instance (kept by its supervisor, shared by its workers) and cannot be read from another process. Set state.backend: redis to share it and read it here.\n`,
    );
    return 2;
  }
  // Loaded here, not at the top: every other command of the CLI starts without the Redis client.
  const { RedisState, redactUrl } = await import('../state/redis-state.ts');
  const state = new RedisState(redis);
  try {
    await state.waitReady();
    process.stdout.write(`${await op(state)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`switchboard state: redis at ${redactUrl(redis.url)}: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await state.close();
  }
}

function usage(message: string): number {
  process.stderr.write(`switchboard state: ${message}\n`);
  return 2;
}

/** Adds `state get` and `state incr` to the program. */
export function registerStateCommand(program: Command): void {
  const state = program.command('state').description('read and count in the shared state (redis backend)');
  state
    .command('get <key>')
    .description("print a counter's value (0 when it does not exist)")
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .action(async (key: string, opts: StateOptions) => {
      process.exit(await withRedis(opts.config, (s) => s.get(key)));
    });
  state
    .command('incr <key>')
    .description('add to a counter and print its new value; a new counter expires after --ttl')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .option('--by <n>', 'amount to add (an integer, may be negative)', '1')
    .option('--ttl <duration>', 'expiry of a counter this creates (fixed window)', '60s')
    .action(async (key: string, opts: StateOptions) => {
      const by = Number(opts.by);
      if (!Number.isSafeInteger(by)) process.exit(usage(`--by must be an integer, found ${JSON.stringify(opts.by)}`));
      const ttl = opts.ttl ?? '60s';
      if (!DURATION_PATTERN.test(ttl) || parseDuration(ttl) < 1) process.exit(usage(`--ttl must be a duration such as 60s or 1h, found ${JSON.stringify(ttl)}`));
      process.exit(await withRedis(opts.config, (s) => s.increment(key, by, parseDuration(ttl))));
    });
}
