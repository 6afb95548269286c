// The benchmark's paths, its settings parser (environment variables) and the general settings.
// Each suite parses its own settings (BENCH_HTTPS_*, BENCH_ALGO_*, ...) in its file, at load, so a
// bad value stops the bench before anything runs.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------- paths

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(BENCH_DIR, '..');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');
export const NODE = process.execPath; // the Node 24 running this script (node_modules/.bin/node under npm run)

// ---------------------------------------------------------------- parsers

export function envNumber(name: string, fallback: number, integer: boolean, allowZero = false): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !allowZero) || (integer && !Number.isInteger(n))) {
    const what = `${allowZero ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}`;
    throw new Error(`${name} must be a ${what}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function envList(name: string, fallback: readonly string[]): string[] {
  const raw = (process.env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return raw.length > 0 ? raw : [...fallback];
}

/** A byte count: an integer, or one with a KiB/MiB/GiB suffix ("1GiB", "256MiB"). */
export function envBytes(name: string, fallback: number): number {
  const raw = (process.env[name] ?? '').trim();
  if (raw === '') return fallback;
  const m = /^(\d+(?:\.\d+)?)\s*(|B|KiB|MiB|GiB)$/i.exec(raw);
  const unit = { '': 1, b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 }[(m?.[2] ?? '').toLowerCase()];
  const n = m && unit ? Math.round(Number(m[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive byte count (e.g. 1073741824, 256MiB, 1GiB), got ${JSON.stringify(raw)}`);
  return n;
}

// ---------------------------------------------------------------- general settings
// Suite peers's, and the defaults of the other suites' (BENCH_HTTPS_DURATION defaults to BENCH_DURATION, ...).

export const DURATION_S = envNumber('BENCH_DURATION', 8, false);
export const ROUNDS = envNumber('BENCH_ROUNDS', 3, true);
export const CONNECTIONS = envNumber('BENCH_CONNECTIONS', 64, true);
export const WARMUP_S = envNumber('BENCH_WARMUP', 2, false);
/** The first warm-up of each subject is longer, so the JIT is hot before round 1 is measured. */
export const FIRST_WARMUP_S = Math.max(WARMUP_S, envNumber('BENCH_FIRST_WARMUP', 5, false));
export const ORIGIN_COUNT = envNumber('BENCH_ORIGINS', 2, true);
/** BENCH_SUBJECTS: the peers suite's subjects to run (all when empty); in the results' top-level config. */
export const SUBJECT_FILTER = (process.env.BENCH_SUBJECTS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
export const LOADGEN_PREF = (process.env.BENCH_LOADGEN ?? 'auto').trim();
export const KEEP_TMP = process.env.BENCH_KEEP_TMP === '1';
/**
 * BENCH_SWITCHBOARD_NODE_FLAGS: Node flags every Switchboard child of every suite runs with (e.g.
 * `--max-semi-space-size=2`), to measure what a flag a supervisor could give its workers costs or saves.
 */
export const SWITCHBOARD_NODE_FLAGS = (process.env.BENCH_SWITCHBOARD_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
/** When set, every Switchboard child runs with `--cpu-prof` and writes its profile into this directory. */
export const CPU_PROF_DIR = (process.env.BENCH_CPU_PROF ?? '').trim() ? path.resolve(process.env.BENCH_CPU_PROF as string) : '';

/** A suite's rounds: how long, how many, warm-ups, connections. */
export interface SuiteRounds {
  durationS: number;
  rounds: number;
  warmupS: number;
  /** The first round's warm-up (longer, to heat the JIT); at least `warmupS`. */
  firstWarmupS: number;
  connections: number;
}

/**
 * A suite's own rounds from BENCH_<SUITE>_DURATION, _ROUNDS, _WARMUP (0 allowed), _FIRST_WARMUP and
 * _CONNECTIONS, each defaulting to `fallback`'s.
 */
export function suiteRounds(suite: string, fallback: SuiteRounds): SuiteRounds {
  const warmupS = envNumber(`BENCH_${suite}_WARMUP`, fallback.warmupS, false, true);
  return {
    durationS: envNumber(`BENCH_${suite}_DURATION`, fallback.durationS, false),
    rounds: envNumber(`BENCH_${suite}_ROUNDS`, fallback.rounds, true),
    warmupS,
    firstWarmupS: Math.max(warmupS, envNumber(`BENCH_${suite}_FIRST_WARMUP`, fallback.firstWarmupS, false)),
    connections: envNumber(`BENCH_${suite}_CONNECTIONS`, fallback.connections, true),
  };
}

/** The general settings, as a suite's fallback. */
export const GENERAL_ROUNDS: SuiteRounds = { durationS: DURATION_S, rounds: ROUNDS, warmupS: WARMUP_S, firstWarmupS: FIRST_WARMUP_S, connections: CONNECTIONS };
