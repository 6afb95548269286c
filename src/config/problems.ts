/**
 * What is wrong with a config, in the form every stage reports it: the key path, what was expected
 * and what was found. The loader turns these into `file:line:column` messages. Every stage (schema
 * issues, `${VAR}` substitution, resolve and its sections) imports it; it imports nothing.
 */

/** Keys and list indexes from the top of the config down to a value, e.g. `['upstreams', 'api', 'endpoints', 0]`. */
export type KeyPath = ReadonlyArray<string | number>;

/** One thing wrong with a config. `found` is shown as written; `hint` is a "did you mean". */
export interface Problem {
  path: KeyPath;
  expected: string;
  found: string;
  hint?: string;
  /** Point at the key itself rather than its value (unknown keys). */
  atKey?: boolean;
}

/** A value as a problem's `found` shows it: strings quoted, lists and maps by kind, nothing for undefined. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a map';
  return String(value);
}

/** Keys of the config whose values are secrets: a problem there describes the value, never shows it. */
const SECRET_KEYS = new Set(['key', 'keyHash', 'password']);
/** The same among a policy's keys (`jwt`'s HMAC `secret`; the client secrets of token policies; `oidc`'s cookie secret). */
const POLICY_SECRET_KEYS = new Set(['secret', 'clientSecret', 'cookieSecret']);

/** Whether the value at `path` is a secret (a consumer's API key or password hash, a policy's secret). */
export function isSecretPath(path: KeyPath): boolean {
  const last = String(path[path.length - 1]);
  if (path[0] === 'policies') return POLICY_SECRET_KEYS.has(last);
  return path[0] === 'consumers' && SECRET_KEYS.has(last);
}
