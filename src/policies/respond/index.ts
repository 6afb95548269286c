/**
 * The `respond` policy: answers every request it sees with a fixed status, headers and body, no
 * upstream contacted (health endpoints, maintenance pages, blocking a path).
 *
 *   healthz: { type: respond, status: 200, headers: { content-type: text/plain }, body: "ok\n" }
 *
 * Sources: nginx `return code [text]`, Envoy's `direct_response` (status 200-599, body inline or
 * from a file read at config load), Caddy's `respond` (static_response). On a route it makes the
 * upstream optional; on a listener it answers every request of the listener before routing (a
 * maintenance page). The Reply is built once per generation and the same object returned for
 * every request; the pipeline computes Content-Length and adds X-Request-Id.
 */
import { readFileSync } from 'node:fs';
import { extname, resolve as resolvePath } from 'node:path';
import type { Filter, PolicyType, Reply, ResolveContext } from '../filter.ts';
import { FIELD_VALUE_TEXT, FRAMING_HEADERS, FRAMING_TEXT, isFieldValue } from '../../util/header-fields.ts';
import { config, type RespondConfig } from './config.ts';

/** The resolved `respond` config: what the Reply will hold. */
export interface ResolvedRespond {
  readonly status: number;
  /** Names as written, Content-Type filled in when a body has none. */
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  /** `body` as UTF-8 or the bytes of `bodyFile`; undefined for none (an empty one included). */
  readonly body: Uint8Array | undefined;
}

/** Statuses that never have content (RFC 9110 §15.3.5, §15.3.6, §15.4.5). */
const NO_CONTENT = new Set([204, 205, 304]);

const TEXT = 'text/plain; charset=utf-8';
/** Content-Type of a `bodyFile` without one, by extension; anything else is octet-stream. */
const FILE_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.txt': TEXT,
  '.json': 'application/json',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
};

function resolveHeaders(raw: RespondConfig['headers'], ctx: ResolveContext): Record<string, string | readonly string[]> {
  const headers: Record<string, string | readonly string[]> = {};
  const seen = new Map<string, string>();
  for (const [name, value] of Object.entries(raw ?? {})) {
    const lower = name.toLowerCase();
    // Problems with a name point at the key, problems with a value at the value.
    if (lower === 'content-length')
      ctx.problem({ path: ['headers', name], atKey: true, expected: 'no content-length (it is computed from the body)', found: JSON.stringify(name) });
    else if (FRAMING_HEADERS.has(lower)) ctx.problem({ path: ['headers', name], atKey: true, expected: FRAMING_TEXT, found: JSON.stringify(name) });
    const before = seen.get(lower);
    if (before !== undefined) {
      const found = `${JSON.stringify(before)} and ${JSON.stringify(name)}`;
      ctx.problem({ path: ['headers', name], atKey: true, expected: 'each header name once (names are case-insensitive)', found });
    }
    seen.set(lower, name);
    if (typeof value === 'string') {
      if (!isFieldValue(value)) ctx.problem({ path: ['headers', name], expected: FIELD_VALUE_TEXT, found: JSON.stringify(value) });
      headers[name] = value;
    } else {
      value.forEach((v, i) => {
        if (!isFieldValue(v)) ctx.problem({ path: ['headers', name, i], expected: FIELD_VALUE_TEXT, found: JSON.stringify(v) });
      });
      headers[name] = Object.freeze([...value]);
    }
  }
  return headers;
}

function readBody(raw: RespondConfig, ctx: ResolveContext): Uint8Array | undefined {
  if (raw.body !== undefined && raw.bodyFile !== undefined) {
    ctx.problem({ path: ['bodyFile'], expected: 'either body or bodyFile, not both', found: 'both' });
    return undefined;
  }
  if (raw.body !== undefined) return raw.body === '' ? undefined : Buffer.from(raw.body);
  if (raw.bodyFile === undefined) return undefined;
  try {
    const bytes = readFileSync(resolvePath(ctx.baseDir, raw.bodyFile));
    return bytes.length === 0 ? undefined : bytes;
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    ctx.problem({ path: ['bodyFile'], expected: 'a readable file (relative to the config file)', found: `${JSON.stringify(raw.bodyFile)} (${why})` });
    return undefined;
  }
}

/** The `respond` policy type (see the module comment). */
export const respondPolicy = {
  type: 'respond',
  description: 'Answers with a fixed status, headers and body; no upstream is contacted.',
  config,
  /** A maintenance page or a block for a whole listener answers before routing. */
  onListeners: true,
  resolve(raw, ctx): ResolvedRespond {
    const status = raw.status ?? 200;
    const headers = resolveHeaders(raw.headers, ctx);
    const body = readBody(raw, ctx);
    if (body !== undefined && NO_CONTENT.has(status)) {
      const path = [raw.bodyFile !== undefined ? 'bodyFile' : 'body'];
      ctx.problem({ path, expected: `no body with status ${status} (204, 205 and 304 have none)`, found: 'a body' });
    }
    if (body !== undefined && !Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) {
      const file = raw.bodyFile;
      headers['content-type'] = file === undefined ? TEXT : (FILE_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream');
    }
    return { status, headers: Object.freeze(headers), body };
  },
  create(c): Filter {
    const { status, headers, body } = c;
    const reply: Reply = Object.freeze(body === undefined ? { status, headers } : { status, headers, body });
    return { onRequest: () => reply };
  },
} satisfies PolicyType<typeof config, ResolvedRespond>;
