/**
 * Schema validation plus `resolve`, reporting everything wrong at once. When the schema fails, the
 * parts it complained about are pruned from a copy (an optional field is removed; an entry missing
 * something it needs is replaced by a placeholder so that names referring to it stay valid), the
 * copy is validated and resolved, and its problems are kept except those inside what was pruned.
 */
import { z } from 'zod';
import { configSchema, type RawConfig } from './schema.ts';
import { isSecretPath, type KeyPath, type Problem } from './problems.ts';
import { resolve } from './resolve.ts';
import type { GatewayConfig } from './types.ts';
import { issueProblems, type IssueContext } from './issues.ts';
import { schemaAt } from './schema-path.ts';

/** The outcome of checking a config value. `config` is set only when there are no problems. */
export interface Checked {
  raw: RawConfig | undefined;
  config: GatewayConfig | undefined;
  problems: Problem[];
}

type Data = Record<string, unknown>;

/** Stand-ins for entries too broken to resolve: valid, and silent in resolve. */
const PLACEHOLDER: Record<string, () => unknown> = {
  listeners: () => ({ address: ':0', protocol: 'http' }),
  upstreams: () => ({ endpoints: [{ url: 'http://placeholder.invalid' }] }),
  policies: () => ({ type: 'hsts' }),
};

function isMap(v: unknown): v is Data {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Container = Data | unknown[];

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

/** Copies the maps and lists along `path` in `root` (copy-on-write) and returns the last one. */
function writable(root: Data, path: KeyPath): Container | undefined {
  let cur: Container = root;
  for (const seg of path) {
    const next: unknown = (cur as Record<string | number, unknown>)[seg];
    if (!isContainer(next)) return undefined;
    const copy: Container = Array.isArray(next) ? [...next] : { ...next };
    (cur as Record<string | number, unknown>)[seg] = copy;
    cur = copy;
  }
  return cur;
}

interface Pruned {
  copy: Data;
  /** Paths whose problems are not real (placeholder or removed entries). */
  hidden: KeyPath[];
  /** Sections removed whole: references into them cannot be checked. */
  whole: Set<string>;
}

function removeKey(p: Pruned, parent: KeyPath, key: string): void {
  const holder = writable(p.copy, parent);
  if (holder && !Array.isArray(holder)) delete holder[key];
}

/**
 * Makes the copy stop failing at `path`: removes the nearest enclosing optional key (or map entry),
 * else replaces the named listener/upstream with a placeholder (or drops the route).
 */
function pruneAt(p: Pruned, path: KeyPath): void {
  for (let k = path.length; k >= 1; k--) {
    const parent = path.slice(0, k - 1);
    const seg = path[k - 1];
    if (typeof seg === 'number') continue;
    if (k === 1) {
      if (seg === 'listeners' || seg === 'routes' || seg === 'upstreams' || seg === 'policies') {
        p.whole.add(seg);
        p.copy[seg] = seg === 'listeners' ? {} : undefined;
      } else {
        delete p.copy[seg];
      }
      return;
    }
    if (k === 2) {
      const section = writable(p.copy, parent);
      if (section && !Array.isArray(section)) {
        if (seg in section && String(parent[0]) in PLACEHOLDER) section[seg] = PLACEHOLDER[String(parent[0])]();
        else delete section[seg];
      }
      p.hidden.push(path.slice(0, 2));
      return;
    }
    const holder = schemaAt(parent, undefined, p.copy);
    const inner = holder instanceof z.ZodOptional ? holder.unwrap() : holder;
    if (schemaAt(path.slice(0, k), undefined, p.copy) instanceof z.ZodOptional || inner instanceof z.ZodRecord) {
      removeKey(p, parent, seg);
      return;
    }
  }
}

function pruneIssue(p: Pruned, issue: z.core.$ZodIssue): void {
  const path: KeyPath = issue.path.map((s) => (typeof s === 'number' ? s : String(s)));
  if (issue.code === 'unrecognized_keys') {
    for (const k of issue.keys) removeKey(p, path, k);
  } else {
    pruneAt(p, path);
  }
}

/** Prunes until the copy passes the schema; undefined if it will not. */
function prune(data: Data, issues: readonly z.core.$ZodIssue[]): { raw: RawConfig; pruned: Pruned } | undefined {
  const pruned: Pruned = { copy: { ...data }, hidden: [], whole: new Set() };
  let pending = issues;
  for (let round = 0; round < 4; round++) {
    for (const issue of pending) pruneIssue(pruned, issue);
    const again = configSchema().safeParse(pruned.copy);
    if (again.success) return { raw: again.data, pruned };
    pending = again.error.issues;
  }
  return undefined;
}

function under(path: KeyPath, prefix: KeyPath): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => seg === path[i]);
}

/** A route's reference into a section that was removed whole is not known to be wrong. */
function intoRemovedSection(p: Problem, whole: Set<string>): boolean {
  const [top, , field] = p.path;
  return top === 'routes' && ((field === 'upstream' && whole.has('upstreams')) || (field === 'listeners' && whole.has('listeners')));
}

/**
 * Validates `data` against the schema and resolves it. `found` renders the value at a path as
 * written; problems at or below a path in `skip` (already reported, e.g. an unset variable) are dropped.
 */
/** @param baseDir the directory relative file paths in the config (TLS files) are read from. */
export function check(
  data: unknown,
  found: IssueContext['found'],
  skip: readonly KeyPath[] = [],
  baseDir = process.cwd(),
  env: Readonly<Record<string, string | undefined>> = process.env,
): Checked {
  const keep = (p: Problem): boolean => !skip.some((s) => under(p.path, s));
  const shown = found;
  // A secret's value is never part of an error (nor of `switchboard validate` output).
  found = (path) => (isSecretPath(path) ? 'a value that is not shown (a secret)' : shown(path));
  const parsed = configSchema().safeParse(data);
  if (parsed.success) {
    const { config, problems } = resolve(parsed.data, baseDir, env);
    const kept = problems.filter(keep);
    return { raw: parsed.data, config: kept.length ? undefined : config, problems: kept };
  }
  const problems = parsed.error.issues.flatMap((issue) => issueProblems(issue, { data, found }));
  const repaired = isMap(data) ? prune(data, parsed.error.issues) : undefined;
  if (repaired) {
    const { hidden, whole } = repaired.pruned;
    const more = resolve(repaired.raw, baseDir, env).problems;
    // A policy with a key the schema refused is resolved without that key: what its resolve then
    // says about the policy as a whole ("one of jwks, keys, secret needed") would only mislead.
    const brokenPolicies = parsed.error.issues.filter((i) => i.path[0] === 'policies' && i.path.length > 2).map((i) => i.path.slice(0, 2).map(String));
    problems.push(...more.filter((p) => !hidden.some((h) => under(p.path, h)) && !brokenPolicies.some((b) => under(p.path, b)) && !intoRemovedSection(p, whole)));
  }
  return { raw: undefined, config: undefined, problems: problems.filter(keep) };
}
