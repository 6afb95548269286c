/**
 * The config loader: file → YAML document → environment substitution → schema → resolve, with every
 * problem reported at once as `file:line:column: key.path: expected …, found …`.
 *
 * YAML 1.2 is parsed with `yaml` (JSON files parse the same way). Nothing here throws for a bad
 * config; callers get `{ ok: false, errors }` and decide how to show them.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { RawConfig } from './schema.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import type { GatewayConfig } from './types.ts';
import { check } from './check.ts';
import { substituteEnv, type Env } from './env.ts';
import { valueAt } from './issues.ts';
import { foundAt, keyStartingAt, originalAt, positionOf } from './positions.ts';

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

/** A loaded config, or every error found in it. */
/** `text`: the text a file or text load read (a supervisor hands the same text to its workers). */
export type LoadResult = { ok: true; config: GatewayConfig; raw: RawConfig; file: string; text?: string } | { ok: false; errors: ConfigError[]; file: string };

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

function toError(file: string, p: Problem, at?: { line: number; column: number }): ConfigError {
  const e: Omit<ConfigError, 'message'> = { file, ...at, path: formatPath(p.path), expected: p.expected, found: p.found };
  if (p.hint !== undefined) e.hint = p.hint;
  return { ...e, message: formatConfigError(e) };
}

function byPosition(a: ConfigError, b: ConfigError): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
}

function syntaxErrors(doc: Document, lines: LineCounter, text: string, file: string): ConfigError[] {
  return doc.errors.map((err) => {
    const { line, col } = lines.linePos(err.pos[0]);
    let problem: Problem = { path: [], expected: 'valid YAML', found: `a syntax error (${err.message})` };
    if (err.code === 'DUPLICATE_KEY') {
      const key = keyStartingAt(doc, err.pos[0]) ?? text.slice(err.pos[0], err.pos[1]);
      problem = { path: [], expected: 'each key once', found: `${JSON.stringify(key)} again` };
    } else if (err.code === 'MULTIPLE_DOCS') {
      problem = { path: [], expected: 'a single YAML document', found: 'another document after ---' };
    }
    return toError(file, problem, { line, column: col });
  });
}

/**
 * Loads a config from YAML or JSON text. `file` names it in errors; `env` supplies `${VAR}` values
 * (process.env unless given).
 */
export function loadConfigText(text: string, file: string, env: Env = process.env): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) return { ok: false, errors: syntaxErrors(doc, lines, text, file), file };
  const substituted = substituteEnv(doc, env);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    const problem = { path: [], expected: 'YAML without excessive aliases', found: (err as Error).message };
    return { ok: false, errors: [toError(file, problem, { line: 1, column: 1 })], file };
  }
  const baseDir = dirname(resolvePath(file));
  const checked = check(
    data,
    (path) => foundAt(doc, text, path, substituted.original),
    substituted.problems.map((p) => p.path),
    baseDir,
    env,
  );
  const problems = [...substituted.problems, ...checked.problems];
  if (!problems.length && checked.config && checked.raw) return { ok: true, config: checked.config, raw: checked.raw, file, text };
  const errors = problems.map((p) => {
    const before = p.atKey ? undefined : originalAt(doc, p.path, substituted.original);
    const found = before === undefined ? p.found : `${p.found} (from ${JSON.stringify(before)})`;
    return toError(file, { ...p, found }, positionOf(doc, lines, p.path, p.atKey));
  });
  return { ok: false, errors: errors.sort(byPosition), file };
}

/** Reads and loads a config file. A file that cannot be read is one error whose `found` is the OS error. */
export async function loadConfigFile(path: string, env: Env = process.env): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const found = (err as Error).message;
    return { ok: false, errors: [toError(path, { path: [], expected: 'a readable config file', found })], file: path };
  }
  return loadConfigText(text, path, env);
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
