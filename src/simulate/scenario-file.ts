/**
 * Scenario files for `switchboard simulate -c FILE`: YAML in the shape of the built-in scenarios,
 * checked by a strict zod schema. Every problem is reported at once, as the config loader does:
 * `file:line:column: key.path: expected …, found …`.
 *
 * ```yaml
 * name: my-fleet
 * description: two big servers and a small one
 * requests: 20000          # per algorithm
 * rate: 500                # requests/s, Poisson
 * clients: { count: 200, zipf: 1 }     # or heavy: { clients: 3, share: 0.6 }
 * keys: { count: 1000, zipf: 0.8 }
 * endpoints:
 *   - { name: big1, weight: 2, capacity: 8, service: { distribution: lognormal, mean: 20ms, p99: 120ms } }
 *   - { name: small, capacity: 4, queueLimit: 50, service: { distribution: exponential, mean: 20ms } }
 * events:
 *   - { type: slowdown, endpoint: small, at: 40%, until: 60%, factor: 5 }
 *   - { type: fail, endpoint: big1, at: 30s, recover: 80%, detectAfter: 2s }
 * algorithms: [round-robin, least-response-time]
 * ```
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { formatConfigError, formatPath } from '../config/load.ts';
import { foundAt, positionOf } from '../config/positions.ts';
import { BALANCER_NAMES } from '../upstream/balancers/index.ts';
import { lognormalSigma, type Moment, type Scenario, type ServiceTime } from './model.ts';
import { DEFAULT_REQUESTS } from './scenarios.ts';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };
const DURATION_TEXT = 'a duration such as 20ms or 2s';

/** A strict map whose unknown keys are reported with the keys it does allow. */
function map<S extends z.ZodRawShape>(shape: S) {
  const keys = Object.keys(shape).join(', ');
  return z.strictObject(shape, { error: (iss) => (iss.code === 'unrecognized_keys' ? `one of the keys ${keys}` : undefined) });
}

function parseMs(v: unknown): number | undefined {
  if (typeof v === 'number' && v >= 0) return v;
  const m = typeof v === 'string' ? DURATION.exec(v) : null;
  return m ? Number(m[1]) * UNIT_MS[m[2]] : undefined;
}

/** `250ms`, `2s`, `1m`, or a number of ms. */
const duration = z.unknown().transform((v, ctx) => {
  const ms = parseMs(v);
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: DURATION_TEXT });
  return ms ?? 0;
});

/** `40%` of the arrival span, or a duration from the start. */
const moment = z.unknown().transform((v, ctx): Moment => {
  const p = typeof v === 'string' ? /^(\d+(?:\.\d+)?)%$/.exec(v) : null;
  if (p) return { percent: Number(p[1]) };
  const ms = parseMs(v);
  if (ms === undefined) ctx.addIssue({ code: 'custom', message: `a percentage of the run such as 40%, or ${DURATION_TEXT}` });
  return { ms: ms ?? 0 };
});

const service = map({
  distribution: z.enum(['exponential', 'lognormal', 'constant']),
  mean: duration,
  p99: duration.optional(),
  sigma: z.number().positive().optional(),
}).transform((s, ctx): ServiceTime => {
  if (s.distribution !== 'lognormal') {
    for (const key of ['p99', 'sigma'] as const) {
      if (s[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `no ${key} for the ${s.distribution} distribution (only lognormal has one)` });
    }
    return { distribution: s.distribution, mean: s.mean };
  }
  if ((s.p99 === undefined) === (s.sigma === undefined)) {
    ctx.addIssue({ code: 'custom', message: 'a lognormal service with exactly one of p99 and sigma' });
    return { distribution: 'lognormal', mean: s.mean, sigma: 1 };
  }
  const sigma = s.sigma ?? lognormalSigma(s.mean, s.p99!);
  if (sigma === undefined) ctx.addIssue({ code: 'custom', path: ['p99'], message: 'a p99 above the mean and at most 14 times it' });
  return { distribution: 'lognormal', mean: s.mean, sigma: sigma ?? 1 };
});

const endpoint = map({
  name: z.string().min(1),
  weight: z.number().positive().default(1),
  capacity: z.number().int().positive().default(1),
  queueLimit: z.number().int().nonnegative().optional(),
  service,
});

const event = z.discriminatedUnion('type', [
  map({ type: z.literal('slowdown'), endpoint: z.string(), at: moment, until: moment.optional(), factor: z.number().positive() }),
  map({ type: z.literal('fail'), endpoint: z.string(), at: moment, recover: moment.optional(), detectAfter: duration.default(2000) }),
]);

const scenarioSchema = map({
  name: z.string().min(1),
  description: z.string().default(''),
  explanation: z.string().optional(),
  requests: z.number().int().positive().max(10_000_000).default(DEFAULT_REQUESTS),
  rate: z.number().positive(),
  clients: map({
    count: z.number().int().positive(),
    zipf: z.number().nonnegative().optional(),
    heavy: map({ clients: z.number().int().positive(), share: z.number().min(0).max(1) }).optional(),
  })
    .refine((c) => c.zipf === undefined || c.heavy === undefined, { message: 'either zipf or heavy, not both' })
    .default({ count: 200, zipf: 1 }),
  keys: map({ count: z.number().int().positive(), zipf: z.number().nonnegative().default(0) }).default({ count: 1000, zipf: 0.8 }),
  endpoints: z.array(endpoint).min(1),
  events: z.array(event).default([]),
  algorithms: z.array(z.enum(BALANCER_NAMES)).min(1).optional(),
  hashTable: z.enum(['ring', 'maglev']).default('ring'),
}).superRefine((s, ctx) => {
  const names = s.endpoints.map((e) => e.name);
  names.forEach((name, i) => {
    if (names.indexOf(name) !== i) ctx.addIssue({ code: 'custom', path: ['endpoints', i, 'name'], message: 'a name no other endpoint has' });
  });
  s.events.forEach((e, i) => {
    if (!names.includes(e.endpoint)) ctx.addIssue({ code: 'custom', path: ['events', i, 'endpoint'], message: `the name of an endpoint (${names.join(', ')})` });
  });
});

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a map',
  array: 'a list',
};

/** What an issue says was expected, in the file's words. */
function expected(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return TYPE_NAMES[issue.expected] ?? `a value of type ${issue.expected}`;
    case 'too_small':
    case 'too_big': {
      const side = issue.code === 'too_small' ? 'least' : 'most';
      const n = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      if (issue.origin === 'array') return `a list with at ${side} ${n} item${n === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return 'a non-empty string';
      if (issue.inclusive === false) return `a number ${side === 'least' ? 'above' : 'below'} ${n}`;
      return `a number of at ${side} ${n}`;
    }
    case 'invalid_value':
      return issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      if ('options' in issue && Array.isArray(issue.options)) return `one of ${issue.options.map((v) => JSON.stringify(v)).join(', ')}`;
      return 'a valid value';
    default:
      return issue.message;
  }
}

/** A scenario, or every problem with the file as printable lines. */
export type ScenarioFileResult = { ok: true; scenario: Scenario } | { ok: false; errors: string[] };

/** Parses and checks scenario `text` that came from `file` (used in messages). */
export function parseScenario(text: string, file: string): ScenarioFileResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length) {
    return {
      ok: false,
      errors: doc.errors.map((err) => {
        const { line, col } = lines.linePos(err.pos[0]);
        return formatConfigError({ file, line, column: col, path: '', expected: 'valid YAML', found: `a syntax error (${err.message.split('\n')[0]})` });
      }),
    };
  }
  const parsed = scenarioSchema.safeParse(doc.toJS());
  if (parsed.success) return { ok: true, scenario: parsed.data };
  const errors = parsed.error.issues.flatMap((issue) => {
    const base = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...base, k]) : [base];
    return paths.map((path) => {
      const atKey = issue.code === 'unrecognized_keys';
      const { line, column } = positionOf(doc, lines, path, atKey);
      const found = atKey ? JSON.stringify(path[path.length - 1]) : foundAt(doc, text, path, new Map());
      return formatConfigError({ file, line, column, path: formatPath(path), expected: expected(issue), found });
    });
  });
  return { ok: false, errors };
}

/** Reads and checks the scenario file at `file`. */
export async function loadScenarioFile(file: string): Promise<ScenarioFileResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [formatConfigError({ file, path: '', expected: 'a readable scenario file', found: (err as Error).message })] };
  }
  return parseScenario(text, file);
}
