/**
 * Questions about the config schema at a key path: which keys a map allows, whether a value is a
 * duration or a size, how to describe a union in one phrase. The loader uses these to turn zod
 * issues into messages a person can act on.
 */
import { z } from 'zod';
import { configSchema } from './schema.ts';
import type { KeyPath } from './problems.ts';

/** A unit with its own wording in error messages. */
export type Unit = 'duration' | 'size';

/** How each unit is described in "expected ..." texts. */
export const UNIT_TEXT: Record<Unit, string> = {
  duration: 'a duration such as 250ms, 5s, 1m (or 0)',
  size: 'a size such as 16KiB, 10MB (or a number of bytes)',
};

/** The schema inside optional/nullable/default wrappers. */
export function unwrap(s: z.ZodType): z.ZodType {
  let cur = s;
  while (cur instanceof z.ZodOptional || cur instanceof z.ZodNullable || cur instanceof z.ZodDefault) {
    cur = cur.unwrap() as z.ZodType;
  }
  return cur;
}

/**
 * A discriminated union's branch for `value` (the policy kind its `type` names), or the union
 * itself when the value does not say.
 */
function branchOf(u: z.ZodType, value: unknown): z.ZodType {
  if (!(u instanceof z.ZodUnion)) return u;
  const key = (u.def as { discriminator?: string }).discriminator;
  if (key === undefined || typeof value !== 'object' || value === null) return u;
  const tag = (value as Record<string, unknown>)[key];
  for (const option of u.options as readonly z.ZodType[]) {
    const o = unwrap(option);
    if (o instanceof z.ZodObject) {
      const literal = (o.shape as Record<string, z.ZodType>)[key];
      if (literal instanceof z.ZodLiteral && literal.values.has(tag as never)) return o;
    }
  }
  return u;
}

function child(s: z.ZodType, seg: string | number, value: unknown): z.ZodType | undefined {
  const u = branchOf(unwrap(s), value);
  if (u instanceof z.ZodObject) return (u.shape as Record<string, z.ZodType>)[String(seg)];
  if (u instanceof z.ZodRecord) return u.valueType as z.ZodType;
  if (u instanceof z.ZodArray) return typeof seg === 'number' ? (u.element as z.ZodType) : undefined;
  if (u instanceof z.ZodUnion) {
    for (const option of u.options as readonly z.ZodType[]) {
      const c = child(option, seg, value);
      if (c) return c;
    }
  }
  return undefined;
}

/**
 * The schema that describes the value at `path`, or undefined when the path leaves the schema.
 * With `data` (the config being checked), a discriminated union (a policy) resolves to the branch
 * its `type` names.
 */
export function schemaAt(path: KeyPath, root: z.ZodType = configSchema(), data?: unknown): z.ZodType | undefined {
  let cur: z.ZodType | undefined = root;
  let value: unknown = data;
  for (const seg of path) {
    if (!cur) return undefined;
    cur = child(cur, seg, value);
    value = typeof value === 'object' && value !== null ? (value as Record<string | number, unknown>)[seg] : undefined;
  }
  if (cur === undefined) return undefined;
  const branch = branchOf(unwrap(cur), value);
  return branch === unwrap(cur) ? cur : branch;
}

/** The keys a map at this schema may have (for unions, the keys of every map branch). */
export function allowedKeys(s: z.ZodType | undefined): string[] {
  if (!s) return [];
  const u = unwrap(s);
  if (u instanceof z.ZodObject) return Object.keys(u.shape as object);
  if (u instanceof z.ZodUnion) return [...new Set((u.options as readonly z.ZodType[]).flatMap((o) => allowedKeys(o)))];
  return [];
}

/** `duration` or `size` when the schema (or what it wraps) is one of those, from its meta title. */
export function unitOf(s: z.ZodType | undefined): Unit | undefined {
  let cur = s;
  while (cur) {
    const title = z.globalRegistry.get(cur)?.title;
    if (title === 'duration' || title === 'size') return title;
    const inner = unwrap(cur);
    if (inner === cur) return undefined;
    cur = inner;
  }
  return undefined;
}

/** The scalar type a schema wants, when it wants exactly one kind of non-string scalar. */
export function scalarKind(s: z.ZodType | undefined): 'number' | 'boolean' | undefined {
  if (!s) return undefined;
  const u = unwrap(s);
  if (u instanceof z.ZodNumber) return 'number';
  if (u instanceof z.ZodBoolean) return 'boolean';
  return undefined;
}

/** A short noun phrase for what a schema accepts: `a string`, `a list of strings`, `a map`, … */
export function describeSchema(s: z.ZodType | undefined): string {
  if (!s) return 'nothing here';
  const unit = unitOf(s);
  if (unit) return UNIT_TEXT[unit];
  const u = unwrap(s);
  if (u instanceof z.ZodString) return 'a string';
  if (u instanceof z.ZodNumber) return 'a number';
  if (u instanceof z.ZodBoolean) return 'true or false';
  if (u instanceof z.ZodEnum) return `one of ${(u.options as readonly unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  if (u instanceof z.ZodArray) {
    const element = describeSchema(u.element as z.ZodType);
    return element.startsWith('a ') ? `a list of ${element.slice(2)}s` : 'a list';
  }
  if (u instanceof z.ZodRecord || u instanceof z.ZodObject) return 'a map';
  if (u instanceof z.ZodUnion) {
    const options = u.options as readonly z.ZodType[];
    const maps = options.filter((o) => unwrap(o) instanceof z.ZodObject);
    const others = options.filter((o) => !maps.includes(o)).map(describeSchema);
    if (maps.length) others.push(`a map with one of the keys ${allowedKeys(u).join(', ')}`);
    return others.join(' or ');
  }
  return 'a valid value';
}
