/**
 * Loading a config from a file or text: file → YAML document → environment substitution → schema →
 * resolve, with every problem reported at once as `file:line:column: key.path: expected …, found …`.
 *
 * YAML 1.2 is parsed with `yaml` (JSON files parse the same way). Nothing here throws for a bad
 * config; callers get `{ ok: false, errors }` and decide how to show them.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { Problem } from './problems.ts';
import { check } from './check.ts';
import { substituteEnv, type Env } from './env.ts';
import { byPosition, toError, type ConfigError, type LoadResult } from './load.ts';
import { foundAt, keyStartingAt, originalAt, positionOf } from './positions.ts';

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
  if (!problems.length && checked.config && checked.raw) return { ok: true, config: checked.config, raw: checked.raw, file, data };
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
