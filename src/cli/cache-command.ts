/**
 * `switchboard cache purge --admin URL (--url U | --prefix P | --tag T) [--policy NAME] [--token T]`:
 * removes stored responses from a running instance's cache policies through its admin API
 * (`POST /api/cache/purge`), which with workers applies the purge in every worker. The token comes
 * from `--token` or, better (a command line is visible to every user of the machine),
 * `SWITCHBOARD_ADMIN_TOKEN`.
 *
 * Prints `purged N objects (policies: …, processes: K)`. Exit codes: 0 done, 1 the admin could not
 * be reached or refused (401, 403, 5xx), 2 a usage problem or a purge the admin calls bad (400,
 * 404: no such cache policy).
 */
import type { Command } from 'commander';

interface PurgeOptions {
  admin: string;
  token?: string;
  url?: string;
  prefix?: string;
  tag?: string;
  policy?: string;
}

/** How long the admin may take to answer (with workers it asks each of them). */
const TIMEOUT_MS = 15_000;

function fail(message: string, code: number): number {
  process.stderr.write(`switchboard cache purge: ${message}\n`);
  return code;
}

/** Runs the purge; returns the exit code. */
export async function purgeCommand(opts: PurgeOptions): Promise<number> {
  const kinds = (['url', 'prefix', 'tag'] as const).filter((k) => opts[k] !== undefined);
  if (kinds.length !== 1) return fail(`give exactly one of --url, --prefix and --tag${kinds.length > 1 ? `, found ${kinds.map((k) => `--${k}`).join(' and ')}` : ''}`, 2);
  let endpoint: URL;
  try {
    endpoint = new URL('/api/cache/purge', opts.admin);
    if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new Error('not http');
  } catch {
    return fail(`--admin must be the admin listener's URL, such as http://127.0.0.1:9901, found ${JSON.stringify(opts.admin)}`, 2);
  }
  const kind = kinds[0]!;
  const body: Record<string, string> = { [kind]: opts[kind]! };
  if (opts.policy !== undefined) body.policy = opts.policy;
  const token = opts.token ?? process.env.SWITCHBOARD_ADMIN_TOKEN;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined && token !== '') headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return fail(`the admin at ${endpoint.origin} did not answer: ${cause?.code ?? cause?.message ?? (err as Error).message}`, 1);
  }
  const text = await res.text();
  let answer: { purged?: number; policies?: string[]; processes?: number; error?: { code?: string; message?: string } } = {};
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    // not JSON: reported by status below
  }
  if (res.status === 200 && typeof answer.purged === 'number') {
    const n = answer.purged;
    process.stdout.write(`purged ${n} object${n === 1 ? '' : 's'} (policies: ${(answer.policies ?? []).join(', ')}; processes: ${answer.processes ?? '?'})\n`);
    return 0;
  }
  const why = answer.error === undefined ? `HTTP ${res.status}` : `${answer.error.code}: ${answer.error.message}`;
  return fail(`the admin refused: ${why}`, res.status === 400 || res.status === 404 ? 2 : 1);
}

/** Adds `cache purge` to the program. */
export function registerCacheCommand(program: Command): void {
  const cache = program.command('cache').description("operate a running instance's cache policies (through its admin API)");
  cache
    .command('purge')
    .description('remove stored responses by URL, URL prefix or tag (Surrogate-Key, Cache-Tag), in every worker')
    .requiredOption('--admin <url>', 'the admin listener, e.g. http://127.0.0.1:9901')
    .option('--token <token>', 'the admin token (default: $SWITCHBOARD_ADMIN_TOKEN)')
    .option('--url <url>', 'every stored variant of this URL (https://host/path?query)')
    .option('--prefix <url>', 'every stored URL starting with this (https://host/static/)')
    .option('--tag <tag>', 'every stored response tagged so')
    .option('--policy <name>', 'only this cache policy (default: every cache policy)')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (opts: PurgeOptions) => {
      process.exit(await purgeCommand(opts));
    });
}
