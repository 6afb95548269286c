/**
 * `switchboard simulate`: checks the options, picks the scenarios (built-in or from a file), runs
 * every algorithm over each, prints the text report and optionally writes the HTML one. Returns the
 * exit code: 0 done, 1 the HTML file could not be written, 2 bad options or scenario file.
 */
import { writeFile } from 'node:fs/promises';
import { BALANCER_NAMES, type BalancerName } from '../upstream/balancers/index.ts';
import { overloadWarning, type Scenario } from './model.ts';
import { reportHtml } from './report-html.ts';
import { scenarioText } from './report-text.ts';
import { runScenario, type ScenarioResult } from './run-scenario.ts';
import { loadScenarioFile } from './scenario-file.ts';
import { SCENARIOS, builtinScenario } from './scenarios.ts';

/** The options as commander hands them over (strings, unchecked). */
export interface SimulateOptions {
  config?: string;
  scenario?: string;
  seed?: string;
  requests?: string;
  algorithms?: string;
  html?: string;
  hashTable?: string;
  list?: boolean;
}

/** Where the command writes; the process streams unless a test says otherwise. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: Output = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

class UsageError extends Error {}

function wholeNumber(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${name}: expected a whole number from ${min} to ${max}, found ${JSON.stringify(text)}`);
  return n;
}

function algorithmList(text: string | undefined): BalancerName[] | undefined {
  if (text === undefined) return undefined;
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const valid = BALANCER_NAMES as readonly string[];
  const unknown = names.filter((n) => !valid.includes(n));
  if (unknown.length || names.length === 0) {
    const found = unknown.length ? unknown.map((n) => JSON.stringify(n)).join(', ') : 'none';
    throw new UsageError(`--algorithms: unknown algorithm ${found}; valid algorithms: ${BALANCER_NAMES.join(', ')}`);
  }
  return names as BalancerName[];
}

async function chooseScenarios(opts: SimulateOptions, io: Output): Promise<Scenario[] | undefined> {
  if (opts.config !== undefined) {
    if (opts.scenario !== undefined) throw new UsageError('use either -c FILE or --scenario NAME, not both');
    const loaded = await loadScenarioFile(opts.config);
    if (loaded.ok) return [loaded.scenario];
    for (const e of loaded.errors) io.err(`${e}\n`);
    io.err(`${loaded.errors.length} problem${loaded.errors.length === 1 ? '' : 's'} in ${opts.config}\n`);
    return undefined;
  }
  const name = opts.scenario ?? 'equal';
  if (name === 'all') return [...SCENARIOS];
  const found = builtinScenario(name);
  if (found) return [found];
  throw new UsageError(`--scenario: unknown scenario ${JSON.stringify(name)}; valid scenarios: ${[...SCENARIOS.map((s) => s.name), 'all'].join(', ')}`);
}

/** The built-in scenarios, one per line. */
export function listText(): string {
  const width = Math.max(...SCENARIOS.map((s) => s.name.length));
  return SCENARIOS.map((s) => `${s.name.padEnd(width)}  ${s.description}\n`).join('');
}

/** Runs `switchboard simulate`; resolves to the exit code. */
export async function simulateCommand(opts: SimulateOptions, io: Output = processOutput): Promise<number> {
  if (opts.list) {
    io.out(listText());
    return 0;
  }
  let scenarios: Scenario[] | undefined;
  let seed: number;
  let requests: number | undefined;
  let algorithms: BalancerName[] | undefined;
  try {
    seed = wholeNumber('--seed', opts.seed, 0, 0xffff_ffff) ?? 1;
    requests = wholeNumber('--requests', opts.requests, 1, 10_000_000);
    algorithms = algorithmList(opts.algorithms);
    const table = opts.hashTable;
    if (table !== undefined && table !== 'ring' && table !== 'maglev') {
      throw new UsageError(`--hash-table: expected "ring" or "maglev", found ${JSON.stringify(table)}`);
    }
    scenarios = await chooseScenarios(opts, io);
    if (scenarios && table) scenarios = scenarios.map((s) => ({ ...s, hashTable: table }));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`switchboard simulate: ${err.message}\n`);
    return 2;
  }
  if (!scenarios) return 2;

  const results: ScenarioResult[] = [];
  scenarios.forEach((scenario, i) => {
    const warning = overloadWarning(scenario);
    if (warning) io.err(`${warning}\n`);
    const result = runScenario(scenario, { seed, algorithms, requests });
    results.push(result);
    io.out((i ? '\n' : '') + scenarioText(result));
  });
  if (opts.html !== undefined) {
    try {
      await writeFile(opts.html, reportHtml(results));
    } catch (err) {
      io.err(`switchboard simulate: cannot write ${opts.html}: ${(err as Error).message}\n`);
      return 1;
    }
    io.err(`HTML report written to ${opts.html}\n`);
  }
  return 0;
}
