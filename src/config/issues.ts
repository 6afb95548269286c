/**
 * zod issues → Problems a person can act on: one per thing wrong, in the config's own words
 * ("expected a duration such as 250ms", "expected key \"upstream\", found it missing"), never a dump of
 * union branches. Positions are added later by the loader from each Problem's key path.
 */
import { z } from 'zod';
import type { KeyPath, Problem } from './problems.ts';
import { allowedKeys, describeSchema, schemaAt, unitOf, unwrap, UNIT_TEXT } from './schema-path.ts';
import { suggest } from './suggest.ts';

type Issue = z.core.$ZodIssue;

/** What the issue mapper needs to know about the config being checked. */
export interface IssueContext {
  /** The config value that was validated. */
  data: unknown;
  /** The value at a path as written in the source (`"apx"`, `5`, `a map`), or `it missing`. */
  found(path: KeyPath): string;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The value at a path of plain data, and whether it is there at all. */
export function valueAt(data: unknown, path: KeyPath): { present: boolean; value: unknown } {
  let cur: unknown = data;
  for (const seg of path) {
    if (Array.isArray(cur) && typeof seg === 'number' && seg < cur.length) cur = cur[seg];
    else if (isMap(cur) && Object.hasOwn(cur, seg)) cur = cur[seg];
    else return { present: false, value: undefined };
  }
  return { present: true, value: cur };
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a map',
  record: 'a map',
  array: 'a list',
};

function quoteList(values: readonly unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

function bound(issue: { origin: string; inclusive?: boolean }, n: number | bigint, side: 'least' | 'most'): string {
  if (issue.origin === 'array') return `a list with at ${side} ${n} item${n === 1 ? '' : 's'}`;
  if (issue.origin === 'string') return `a string of at ${side} ${n} characters`;
  if (issue.inclusive === false) return `a number ${side === 'least' ? 'above' : 'below'} ${n}`;
  return `a number of at ${side} ${n}`;
}

/**
 * Problems with the keys of a map: each unknown key (pointing at the key, with a suggestion), or,
 * for a map that must have exactly one key (`oneOf`, the map forms of a union), more than one.
 */
function keyProblems(path: KeyPath, present: string[], allowed: string[], oneOf: boolean): Problem[] | undefined {
  if (!allowed.length) return undefined;
  const unknown = present.filter((k) => !allowed.includes(k));
  if (unknown.length) {
    return unknown.map((k) => ({
      path: [...path, k],
      atKey: true,
      expected: `one of the keys ${allowed.join(', ')}`,
      found: JSON.stringify(k),
      hint: suggest(k, allowed),
    }));
  }
  if (oneOf && present.length > 1) {
    return [{ path, expected: `exactly one of the keys ${allowed.join(', ')}`, found: `the keys ${present.join(', ')}` }];
  }
  return undefined;
}

function unionProblems(issue: Extract<Issue, { code: 'invalid_union' }>, path: KeyPath, ctx: IssueContext): Problem[] {
  const { present, value } = valueAt(ctx.data, path);
  // A discriminated union (a policy's `type`) whose tag is missing or unknown.
  const options = (issue as { options?: unknown[] }).options;
  if ((issue as { note?: string }).note === 'No matching discriminator' && options !== undefined) {
    const names = options.filter((o): o is string => typeof o === 'string');
    const key = path[path.length - 1];
    if (!present) return [{ path: path.slice(0, -1), atKey: true, expected: `key ${JSON.stringify(key)} (one of: ${names.join(', ')})`, found: 'it missing' }];
    return [{ path, expected: `one of ${quoteList(names)}`, found: ctx.found(path), hint: typeof value === 'string' ? suggest(value, names) : undefined }];
  }
  const schema = schemaAt(path, undefined, ctx.data);
  // Branches whose root fits the value (right type, no unknown keys): the ones the writer meant.
  const fitting = issue.errors.filter((branch) => !branch.some((i) => i.path.length === 0 && ['invalid_type', 'invalid_value', 'unrecognized_keys'].includes(i.code)));
  if (fitting.length === 1) return fitting[0].flatMap((i) => issueProblems(i, ctx, path));
  return (isMap(value) && keyProblems(path, Object.keys(value), allowedKeys(schema), true)) || [{ path, expected: describeSchema(schema), found: ctx.found(path) }];
}

/** The Problems one zod issue stands for (several for unknown keys). `base` prefixes nested paths. */
export function issueProblems(issue: Issue, ctx: IssueContext, base: KeyPath = []): Problem[] {
  const path: KeyPath = [...base, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))];
  const found = (): string => ctx.found(path);
  if (issue.code === 'unrecognized_keys') {
    const schema = schemaAt(path, undefined, ctx.data);
    const oneOf = schema !== undefined && unwrap(schema) instanceof z.ZodUnion;
    const { value } = valueAt(ctx.data, path);
    const keys = oneOf && isMap(value) ? Object.keys(value) : issue.keys;
    return keyProblems(path, keys, allowedKeys(schema), oneOf) ?? [];
  }
  if (issue.code === 'invalid_union') return unionProblems(issue, path, ctx);
  const { present, value } = valueAt(ctx.data, path);
  if (!present && path.length > 0 && valueAt(ctx.data, path.slice(0, -1)).present) {
    return [{ path: path.slice(0, -1), atKey: true, expected: `key ${JSON.stringify(path[path.length - 1])}`, found: 'it missing' }];
  }
  const unit = unitOf(schemaAt(path, undefined, ctx.data));
  if (unit) return [{ path, expected: UNIT_TEXT[unit], found: found() }];
  switch (issue.code) {
    case 'invalid_type':
      return [{ path, expected: TYPE_NAMES[issue.expected] ?? `a value of type ${issue.expected}`, found: found() }];
    case 'invalid_value': {
      const expected = issue.values.length === 1 ? quoteList(issue.values) : `one of ${quoteList(issue.values)}`;
      const candidates = issue.values.filter((v): v is string => typeof v === 'string');
      return [{ path, expected, found: found(), hint: typeof value === 'string' ? suggest(value, candidates) : undefined }];
    }
    case 'invalid_format':
      if (issue.pattern === '/^[A-Z]+$/') {
        const upper = typeof value === 'string' ? value.toUpperCase() : undefined;
        return [
          { path, expected: 'an HTTP method in upper case, such as GET', found: found(), hint: upper !== value && upper && /^[A-Z]+$/.test(upper) ? upper : undefined },
        ];
      }
      return [{ path, expected: issue.pattern ? `a string matching ${issue.pattern}` : `a valid ${issue.format}`, found: found() }];
    case 'too_small': {
      const empty = Array.isArray(value) && value.length === 0;
      return [{ path, expected: bound(issue, issue.minimum, 'least'), found: empty ? 'an empty list' : found() }];
    }
    case 'invalid_key': {
      // A map key that fails its pattern (a header name that is not an HTTP token).
      const inner = (issue as { issues?: Array<{ pattern?: string }> }).issues?.[0];
      const token = inner?.pattern?.includes("!#$%&'*+") === true;
      return [
        {
          path,
          atKey: true,
          expected: token ? "a header name (an HTTP token: letters, digits and !#$%&'*+-.^_`|~)" : 'a valid key',
          found: JSON.stringify(path[path.length - 1]),
        },
      ];
    }
    case 'too_big':
      return [{ path, expected: bound(issue, issue.maximum, 'most'), found: found() }];
    default:
      return [{ path, expected: issue.message.replace(/^Invalid input: expected /, ''), found: found() }];
  }
}
