/**
 * Header value templates: `${client.ip}`, `${request.id}`, `${route}`, `${header.NAME}` filled per
 * request (`${header.host}` is the Host, or HTTP/2's :authority), `${env.NAME}` filled once when
 * the config is resolved, `$${` for a literal `${`.
 * Compiled once into a constant string or a short list of parts, so that filling one costs a
 * concatenation and nothing else (after nginx's compiled complex values).
 */
import type { Session } from '../filter.ts';
import { TOKEN_PATTERN } from '../../util/config-primitives.ts';
import { toFieldValue } from '../../util/header-fields.ts';

/** A value filled per request. `name` is the lower-case header name for `header`, '' otherwise. */
export interface TemplateVariable {
  readonly kind: 'client.ip' | 'request.id' | 'route' | 'header';
  readonly name: string;
}

/**
 * A compiled template: the string itself when it has no per-request variable (the fast path:
 * filling it returns this very string), else literal strings and variables in order.
 */
export type Template = string | ReadonlyArray<string | TemplateVariable>;

/** What a problem about a `${…}` says it expected. */
export const TEMPLATE_TEXT = 'a template variable: ${client.ip}, ${request.id}, ${route}, ${header.NAME} or ${env.NAME} (write $${ for a literal ${)';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FIXED: Readonly<Record<string, TemplateVariable>> = {
  'client.ip': { kind: 'client.ip', name: '' },
  'request.id': { kind: 'request.id', name: '' },
  route: { kind: 'route', name: '' },
};

/**
 * Compiles `text`. `${env.NAME}` is read from `env` now; an unset variable, an unknown or
 * unclosed `${…}` is reported through `problem` (and left out of the result).
 */
export function compileTemplate(text: string, env: Readonly<Record<string, string | undefined>>, problem: (expected: string, found: string) => void): Template {
  const parts: Array<string | TemplateVariable> = [];
  let literal = '';
  let at = 0;
  while (at < text.length) {
    const dollar = text.indexOf('$', at);
    if (dollar === -1) {
      literal += text.slice(at);
      break;
    }
    literal += text.slice(at, dollar);
    if (text.startsWith('$${', dollar)) {
      literal += '${';
      at = dollar + 3;
      continue;
    }
    if (!text.startsWith('${', dollar)) {
      literal += '$';
      at = dollar + 1;
      continue;
    }
    const close = text.indexOf('}', dollar + 2);
    if (close === -1) {
      problem(TEMPLATE_TEXT, `${JSON.stringify(text.slice(dollar))} (no closing "}")`);
      break;
    }
    const expr = text.slice(dollar + 2, close);
    at = close + 1;
    const fixed = Object.hasOwn(FIXED, expr) ? FIXED[expr] : undefined;
    if (fixed !== undefined || (expr.startsWith('header.') && TOKEN_PATTERN.test(expr.slice(7)))) {
      if (literal !== '') parts.push(literal);
      literal = '';
      parts.push(fixed ?? { kind: 'header', name: expr.slice(7).toLowerCase() });
    } else if (expr.startsWith('env.') && ENV_NAME.test(expr.slice(4))) {
      const value = env[expr.slice(4)];
      if (value === undefined) problem(`environment variable ${expr.slice(4)} to be set`, 'it unset');
      else literal += value;
    } else {
      problem(TEMPLATE_TEXT, JSON.stringify(`\${${expr}}`));
    }
  }
  if (parts.length === 0) return literal;
  if (literal !== '') parts.push(literal);
  return parts;
}

/** The literal text of a compiled template (variables left out): what the config fixed. */
export function templateLiterals(t: Template): string {
  if (typeof t === 'string') return t;
  let out = '';
  for (const part of t) if (typeof part === 'string') out += part;
  return out;
}

function variable(v: TemplateVariable, s: Session): string {
  switch (v.kind) {
    case 'client.ip':
      return s.client.ip;
    case 'request.id':
      return toFieldValue(s.id);
    case 'route':
      return s.route === undefined ? '' : toFieldValue(s.route);
    case 'header': {
      // HTTP/2 carries the host in :authority (pseudo-headers are not among the headers): the
      // authority is the Host of either protocol.
      if (v.name === 'host') return toFieldValue(s.request.authority);
      const value = s.request.headers[v.name];
      if (value === undefined) return '';
      return toFieldValue(typeof value === 'string' ? value : value.join(', '));
    }
  }
}

/** Fills `t` for one request. A constant template is returned as it is, allocating nothing. */
export function fillTemplate(t: Template, s: Session): string {
  if (typeof t === 'string') return t;
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const part = t[i];
    out += typeof part === 'string' ? part : variable(part, s);
  }
  return out;
}
