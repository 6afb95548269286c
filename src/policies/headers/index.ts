/**
 * The `headers` policy: request and response header changes, with values from templates.
 *
 *   stamp: { type: headers, response: { set: { x-served-by: switchboard }, remove: [server] } }
 *
 * Sources: Caddy's headers handler (`modules/caddyhttp/headers`: per-direction operations, response
 * changes deferred to the response head), nginx `proxy_set_header` / `add_header` (an empty value
 * sends nothing; Host may be set), Envoy `request_headers_to_add` / `response_headers_to_remove`
 * (add keeps existing fields, set overwrites), Traefik's headers middleware (an empty custom header
 * removes it). Within a direction the order is fixed: remove, rename, set, add.
 *
 * Request changes act on the head about to go upstream (`onUpstreamRequest`, every try, after the
 * transport's header hygiene); response changes on every response head (`onResponse`), the
 * gateway's own errors and other policies' answers included. A direction with nothing to do adds
 * no hook. Everything is compiled by `resolve`; per request only templates with variables build a
 * string. Header values are never logged.
 */
import type { Filter, Headers, PolicyType, ResolveContext, Session } from '../filter.ts';
import { FIELD_VALUE_TEXT, FRAMING_HEADERS, FRAMING_TEXT, isFieldValue } from '../../util/header-fields.ts';
import { config, type HeaderOperationsConfig } from './config.ts';
import { compileTemplate, fillTemplate, templateLiterals, type Template } from './template.ts';

/** One header field to set or add: its name as written, its compiled value. */
export interface HeaderField {
  readonly name: string;
  readonly value: Template;
}

/** One direction's operations, resolved; applied in the order of the keys. */
export interface HeaderOperations {
  /** Names whose every field is removed. */
  readonly remove: readonly string[];
  /** Each `from` field renamed to `to`, value and position kept. */
  readonly rename: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  /** Each replaces every field of its name; an empty filled value removes them. */
  readonly set: readonly HeaderField[];
  /** Each appended as one more field (add lists flattened, in order); an empty filled value adds nothing. */
  readonly add: readonly HeaderField[];
}

/** The resolved `headers` config: undefined for a direction with nothing to do. */
export interface ResolvedHeaders {
  readonly request: HeaderOperations | undefined;
  readonly response: HeaderOperations | undefined;
}

type Direction = 'request' | 'response';
type Operation = keyof HeaderOperationsConfig;

/** What may not be changed, for `name` (lower case) under `direction`.`op`, or undefined when it may. */
function refusal(lower: string, direction: Direction, op: Operation): string | undefined {
  if (FRAMING_HEADERS.has(lower)) return FRAMING_TEXT;
  if (direction === 'request' && lower === 'expect') return 'a header name other than expect (the client’s Expect is answered here, never forwarded)';
  if (direction === 'request' && lower === 'host' && op !== 'set') return 'host only under `set` (a request has exactly one Host)';
  return undefined;
}

/**
 * Reports names that are refused or repeated (names are case-insensitive) in one operation. The
 * names of rename, set and add are map keys: the problem points at the key, not at its value.
 */
function checkNames(names: readonly string[], at: (i: number) => ReadonlyArray<string | number>, direction: Direction, op: Operation, ctx: ResolveContext): void {
  const seen = new Map<string, string>();
  const atKey = op !== 'remove';
  names.forEach((name, i) => {
    const lower = name.toLowerCase();
    const refused = refusal(lower, direction, op);
    if (refused !== undefined) ctx.problem({ path: at(i), atKey, expected: refused, found: JSON.stringify(name) });
    const before = seen.get(lower);
    if (before !== undefined) {
      ctx.problem({ path: at(i), atKey, expected: 'each header name once (names are case-insensitive)', found: `${JSON.stringify(before)} and ${JSON.stringify(name)}` });
    }
    seen.set(lower, name);
  });
}

function compileValue(text: string, path: ReadonlyArray<string | number>, ctx: ResolveContext): Template {
  let ok = true;
  const template = compileTemplate(text, ctx.env, (expected, found) => {
    ok = false;
    ctx.problem({ path, expected, found });
  });
  // Checked after compiling: an ${env.NAME} may bring in what the text did not have.
  if (ok && !isFieldValue(templateLiterals(template))) ctx.problem({ path, expected: FIELD_VALUE_TEXT, found: JSON.stringify(text) });
  return template;
}

function resolveOperations(raw: HeaderOperationsConfig | undefined, direction: Direction, ctx: ResolveContext): HeaderOperations | undefined {
  if (raw === undefined) return undefined;
  const remove = raw.remove ?? [];
  checkNames(remove, (i) => [direction, 'remove', i], direction, 'remove', ctx);

  const renames = Object.entries(raw.rename ?? {});
  checkNames(
    renames.map(([from]) => from),
    (i) => [direction, 'rename', renames[i][0]],
    direction,
    'rename',
    ctx,
  );
  const sources = new Set(renames.map(([from]) => from.toLowerCase()));
  for (const [from, to] of renames) {
    const path = [direction, 'rename', from];
    const lower = to.toLowerCase();
    const refused = refusal(lower, direction, 'rename');
    if (refused !== undefined) ctx.problem({ path, expected: refused, found: JSON.stringify(to) });
    else if (lower !== from.toLowerCase() && sources.has(lower)) {
      ctx.problem({ path, expected: 'a new name that is not renamed itself (renames are not chained or swapped)', found: JSON.stringify(to) });
    }
  }
  const rename = renames.map(([from, to]) => ({ from, to }));

  const sets = Object.entries(raw.set ?? {});
  checkNames(
    sets.map(([name]) => name),
    (i) => [direction, 'set', sets[i][0]],
    direction,
    'set',
    ctx,
  );
  const set = sets.map(([name, text]) => ({ name, value: compileValue(text, [direction, 'set', name], ctx) }));

  const adds = Object.entries(raw.add ?? {});
  checkNames(
    adds.map(([name]) => name),
    (i) => [direction, 'add', adds[i][0]],
    direction,
    'add',
    ctx,
  );
  const add: HeaderField[] = [];
  for (const [name, values] of adds) {
    if (typeof values === 'string') add.push({ name, value: compileValue(values, [direction, 'add', name], ctx) });
    else {
      values.forEach((text, i) => {
        add.push({ name, value: compileValue(text, [direction, 'add', name, i], ctx) });
      });
    }
  }

  if (remove.length + rename.length + set.length + add.length === 0) return undefined;
  return { remove, rename, set, add };
}

/** Applies `ops` to `headers` for one request: remove, rename, set, add. */
function apply(ops: HeaderOperations, s: Session, headers: Headers): void {
  const { remove, rename, set, add } = ops;
  for (let i = 0; i < remove.length; i++) headers.delete(remove[i]);
  for (let i = 0; i < rename.length; i++) headers.rename(rename[i].from, rename[i].to);
  for (let i = 0; i < set.length; i++) {
    const value = fillTemplate(set[i].value, s);
    if (value === '') headers.delete(set[i].name);
    else headers.set(set[i].name, value);
  }
  for (let i = 0; i < add.length; i++) {
    const value = fillTemplate(add[i].value, s);
    if (value !== '') headers.append(add[i].name, value);
  }
}

/** The `headers` policy type (see the module comment). */
export const headersPolicy = {
  type: 'headers',
  description: 'Request and response header changes (remove, rename, set, add, in that order), values from templates.',
  config,
  /** On a listener its changes apply to every route of the listener and to requests no route takes. */
  onListeners: true,
  resolve(raw, ctx): ResolvedHeaders {
    return { request: resolveOperations(raw.request, 'request', ctx), response: resolveOperations(raw.response, 'response', ctx) };
  },
  create(c): Filter {
    const filter: Filter = {};
    const request = c.request;
    const response = c.response;
    if (request !== undefined) filter.onUpstreamRequest = (s, head) => apply(request, s, head.headers);
    if (response !== undefined) {
      filter.onResponse = (s, head) => {
        apply(response, s, head.headers);
        return undefined;
      };
    }
    return filter;
  },
} satisfies PolicyType<typeof config, ResolvedHeaders>;
