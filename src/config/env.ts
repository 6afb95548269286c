/**
 * Environment substitution in string values of a parsed YAML document: `${VAR}`, `${VAR:-default}`
 * (default when VAR is unset or empty) and `$${` for a literal `${`. Done on the Document so line
 * and column of every node stay those of the file. Keys are never substituted.
 *
 * Environment values are strings; where the schema wants a number or true/false (weights,
 * priorities, `present`), a substituted value that spells one is converted to it.
 */
import { isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import type { KeyPath, Problem } from './problems.ts';
import { scalarKind, schemaAt } from './schema-path.ts';

/** The environment to read variables from (process.env by default in the loader). */
export type Env = Readonly<Record<string, string | undefined>>;

/** What substitution did: problems (unset variables), and the text each changed scalar had before. */
export interface EnvResult {
  problems: Problem[];
  /** Scalars that were changed → their value before substitution (shown in error messages). */
  original: Map<Node, string>;
}

/**
 * Under `policies`, `${…}` may also be a policy's own template, filled per request: `${route}`,
 * `${client.ip}`, `${request.id}`, `${header.NAME}`, `${env.NAME}`. Those are left for the policy,
 * and so is `$${` (the policy's template compiler unescapes it).
 */
const TEMPLATE = /^\$\{(?:route|client\.ip|request\.id|header\.[!#$%&'*+\-.^_`|~0-9A-Za-z]+|env\.[A-Za-z_][A-Za-z0-9_]*)\}$/;

const TOKEN = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?/g;
const REFERENCE_TEXT = 'a variable reference like ${NAME} or ${NAME:-default} (write $${ for a literal ${)';

function substitute(text: string, env: Env, path: KeyPath, problems: Problem[]): string {
  const templates = path[0] === 'policies';
  return text.replace(TOKEN, (token: string, name: string | undefined, fallback: string | undefined) => {
    if (token === '$${') return templates ? token : '${';
    // A policy's own template (or a mistyped one, which the policy reports with the forms it knows).
    if (templates && (TEMPLATE.test(token) || (name === undefined && /^\$\{[^}]*\}$/.test(token)))) return token;
    if (name === undefined) {
      problems.push({ path, expected: REFERENCE_TEXT, found: JSON.stringify(token) });
      return token;
    }
    const value = env[name];
    if (fallback !== undefined && (value === undefined || value === '')) return fallback;
    if (value === undefined) {
      problems.push({ path, expected: `environment variable ${name} to be set`, found: 'it unset' });
      return token;
    }
    return value;
  });
}

function coerce(text: string, path: KeyPath): string | number | boolean {
  const kind = scalarKind(schemaAt(path));
  const trimmed = text.trim();
  if (kind === 'number' && /^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  if (kind === 'boolean' && (trimmed === 'true' || trimmed === 'false')) return trimmed === 'true';
  return text;
}

function walk(node: unknown, path: KeyPath, env: Env, result: EnvResult): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? pair.key.value : pair.key;
      walk(pair.value, [...path, String(key)], env, result);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      walk(item, [...path, i], env, result);
    });
  } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('${')) {
    const before = node.value;
    const problems: Problem[] = [];
    const after = substitute(before, env, path, problems);
    result.problems.push(...problems);
    if (problems.length || after === before) return;
    node.value = /\$\{/.test(before.replaceAll('$${', '')) ? coerce(after, path) : after;
    result.original.set(node, before);
  }
}

/** Substitutes variables in place in every string value of `doc`. */
export function substituteEnv(doc: Document, env: Env): EnvResult {
  const result: EnvResult = { problems: [], original: new Map() };
  walk(doc.contents, [], env, result);
  return result;
}
