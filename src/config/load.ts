/**
 * The config loader's results and errors, and loading a config given as a value. Text and files
 * (YAML, with line:column in errors) are loaded by `load-text.ts`, kept apart so that a worker,
 * which gets its config as a value from the supervisor that already checked the file, never loads
 * the YAML parser (about 10 MB of an idle worker's memory).
 *
 * Nothing here throws for a bad config; callers get `{ ok: false, errors }` and decide how to show them.
 */
import { dirname } from 'node:path';
import type { RawConfig } from './schema.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import type { GatewayConfig } from './types.ts';
import { check } from './check.ts';
import type { Env } from './env.ts';
import { valueAt } from './issues.ts';

/** One thing wrong with a config, with where it is and a ready-made message. */
export interface ConfigError {
  /** The file (or source name) the config came from. */
  file: string;
  /** 1-based line, when the config came from text. */
  line?: number;
  /** 1-based column, when the config came from text. */
  column?: number;
  /** Dotted key path, `[i]` for list items: `upstreams.api.endpoints[0].url`; empty for the whole file. */
  path: string;
  /** What would have been right: `a duration such as 250ms, 5s, 1m`. */
  expected: string;
  /** What is there, as written: `"5 seconds"`, `8080`, `a map`, `it missing`. */
  found: string;
  /** A "did you mean" candidate. */
  hint?: string;
  /** The whole error on one line, as `formatConfigError` renders it. */
  message: string;
}

/**
 * A loaded config, or every error found in it. `data`: for a file or text, the value the YAML
 * became after `${VAR}` substitution, before the schema (a supervisor hands it to its workers).
 */
export type LoadResult = { ok: true; config: GatewayConfig; raw: RawConfig; file: string; data?: unknown } | { ok: false; errors: ConfigError[]; file: string };

/** `listeners.web.address`, `upstreams.api.endpoints[0].url`. */
export function formatPath(path: KeyPath): string {
  return path.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('');
}

/** `file:line:col: path: expected X, found Y (did you mean "Z"?)`. */
export function formatConfigError(e: Omit<ConfigError, 'message'>): string {
  const where = e.line === undefined ? e.file : `${e.file}:${e.line}:${e.column ?? 1}`;
  const path = e.path ? ` ${e.path}:` : '';
  const hint = e.hint === undefined ? '' : ` (did you mean ${JSON.stringify(e.hint)}?)`;
  return `${where}:${path} expected ${e.expected}, found ${e.found}${hint}`;
}

export function toError(file: string, p: Problem, at?: { line: number; column: number }): ConfigError {
  const e: Omit<ConfigError, 'message'> = { file, ...at, path: formatPath(p.path), expected: p.expected, found: p.found };
  if (p.hint !== undefined) e.hint = p.hint;
  return { ...e, message: formatConfigError(e) };
}

export function byPosition(a: ConfigError, b: ConfigError): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

/**
 * Checks and resolves a config given as a value (the programmatic API): the same validation as for
 * files, without environment substitution and without line/column in errors.
 */
export function loadConfigObject(obj: unknown, source = '<config object>'): LoadResult {
  const found = (path: KeyPath): string => {
    const { present, value } = valueAt(obj, path);
    return present ? show(value) : 'it missing';
  };
  const checked = check(obj, found);
  if (!checked.problems.length && checked.config && checked.raw) {
    return { ok: true, config: checked.config, raw: checked.raw, file: source };
  }
  return { ok: false, errors: checked.problems.map((p) => toError(source, p)), file: source };
}

/**
 * Checks and resolves the value a config file became (`LoadResult.data`), as a supervisor's worker
 * gets it: the same checks, with paths relative to `file`'s folder, without line/column in errors
 * (the supervisor already checked the file and reported those).
 */
export function loadConfigData(data: unknown, file: string, env: Env = process.env): LoadResult {
  const found = (path: KeyPath): string => {
    const { present, value } = valueAt(data, path);
    return present ? show(value) : 'it missing';
  };
  const checked = check(data, found, [], dirname(file), env);
  if (!checked.problems.length && checked.config && checked.raw) return { ok: true, config: checked.config, raw: checked.raw, file, data };
  return { ok: false, errors: checked.problems.map((p) => toError(file, p)), file };
}
