/**
 * Where a bearer token is in a request, shared by the token policies (`jwt`,
 * `oauth2-introspection`): the `from` config key, reading the token, removing it before the request
 * goes upstream, claim values as header values, the consumer a token's subject names, and the
 * cache of token results (`TokenResults`, the one piece that holds state: per filter).
 */
import { z } from 'zod';
import { cookieValue, queryValue, withoutCookie, withoutQueryParam } from '../util/request-values.ts';
import { headerName } from '../util/config-primitives.ts';
import { hash } from 'node:crypto';
import { type Authenticator, claimAt } from './auth-common.ts';
import type { Consumer, ConsumerDirectory, Session, UpstreamRequestHead } from './filter.ts';

export type TokenFrom =
  | { readonly kind: 'bearer' }
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'query'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

/** The `from` key of a token policy. */
export const tokenFromKey = z
  .string()
  .regex(/^(header|header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|query:[A-Za-z0-9._~-]+|cookie:[A-Za-z0-9._~!#$%&'*+^`|-]+)$/)
  .optional()
  .meta({
    description:
      'Where the token is: `header` (`Authorization: Bearer <token>`, the default), `header:NAME` (the whole value of header NAME), `query:NAME` (a query parameter; tokens in URLs end up in logs), or `cookie:NAME`.',
  });

/** Whether an Authorization value is of the Bearer scheme. */
export function isBearer(value: string): boolean {
  return value.length > 7 && value.slice(0, 7).toLowerCase() === 'bearer ';
}

/** `from` as written (already checked by `tokenFromKey`), resolved. */
export function parseTokenFrom(text: string | undefined): TokenFrom {
  if (text === undefined || text === 'header') return { kind: 'bearer' };
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon) as 'header' | 'query' | 'cookie';
  const name = text.slice(colon + 1);
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

/** The token of a request, or undefined when it carries none where `from` says. */
export function tokenOf(s: Session, from: TokenFrom): string | undefined {
  const h = s.request.headers;
  switch (from.kind) {
    case 'bearer': {
      const value = h.authorization;
      return typeof value === 'string' && isBearer(value) ? value.slice(7).trim() : undefined;
    }
    case 'header': {
      const value = h[from.name];
      return typeof value === 'string' && value !== '' ? value.trim() : undefined;
    }
    case 'query':
      return s.request.query === '' ? undefined : queryValue(s.request.query, from.name) || undefined;
    case 'cookie':
      return cookieValue(h.cookie as string | undefined, from.name) || undefined;
  }
}

/** Removes the token from the request going upstream (`hideCredentials`). */
export function stripToken(head: UpstreamRequestHead, from: TokenFrom): void {
  switch (from.kind) {
    case 'bearer': {
      const value = head.headers.get('authorization');
      if (value !== undefined && isBearer(value)) head.headers.delete('authorization');
      return;
    }
    case 'header':
      head.headers.delete(from.name);
      return;
    case 'query':
      head.target = withoutQueryParam(head.target, from.name);
      return;
    case 'cookie': {
      const values = head.headers.getAll('cookie');
      if (values.length === 0) return;
      head.headers.delete('cookie');
      for (const v of values) {
        const rest = withoutCookie(v, from.name);
        if (rest !== undefined) head.headers.append('cookie', rest);
      }
    }
  }
}

/** A claim value as a header value: arrays joined with `,`, objects as JSON, non-printable-ASCII percent-encoded. */
export function claimHeaderValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  const text =
    typeof value === 'string' ? value : Array.isArray(value) ? value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(',') : JSON.stringify(value);
  return /^[\x20-\x7e]*$/.test(text) ? text : encodeURIComponent(text);
}

/** The `claimHeaders` key of a token policy. */
export const claimHeadersKey = z.record(headerName, z.string().min(1)).optional().meta({
  description:
    'Request headers set upstream from the token’s claims: `{ x-user: sub, x-tenant: "org.id" }` (a dotted name reads nested claims). Arrays are joined with `,`, objects sent as JSON, values outside printable ASCII percent-encoded; an absent claim sends no header. Client-sent copies are always removed.',
});

export interface ClaimHeader {
  readonly header: string;
  readonly name: string;
  readonly path: readonly string[];
}

export function parseClaimHeaders(raw: Readonly<Record<string, string>> | undefined): readonly ClaimHeader[] {
  return Object.entries(raw ?? {}).map(([header, name]) => ({ header: header.toLowerCase(), name, path: name.split('.') }));
}

/** Sets the claim headers upstream from `claims` (client-sent copies removed first). */
export function setClaimHeaders(head: UpstreamRequestHead, claims: Readonly<Record<string, unknown>> | undefined, claimHeaders: readonly ClaimHeader[]): void {
  for (const c of claimHeaders) {
    head.headers.delete(c.header);
    const value = claims === undefined ? undefined : claimHeaderValue(claimAt(claims, c.name, c.path));
    if (value !== undefined) head.headers.set(c.header, value);
  }
}

/** The key a token's result is remembered by: its SHA-256 (the token itself is never kept). */
export function tokenHash(token: string): string {
  return hash('sha256', token, 'base64');
}

/**
 * What a token policy learnt of tokens, by `tokenHash`: results kept until their `expires` (ms),
 * at most `size` of them (the oldest dropped first), and the work under way, so that concurrent
 * requests with one token share one verification or introspection. State: per filter, so per
 * worker and per config generation.
 */
export class TokenResults<R extends { readonly expires: number }, Other = never> {
  readonly #size: number;
  readonly #cache = new Map<string, R>();
  readonly #running = new Map<string, Promise<R | Other>>();

  constructor(size: number) {
    this.#size = size;
  }

  /** The result remembered for `hash` while it holds; an expired one is dropped. */
  fresh(hash: string): R | undefined {
    const hit = this.#cache.get(hash);
    if (hit === undefined) return undefined;
    if (hit.expires > Date.now()) return hit;
    this.#cache.delete(hash);
    return undefined;
  }

  /** Remembers `result` unless it has already expired; returns it. */
  remember(hash: string, result: R): R {
    if (result.expires > Date.now()) {
      if (this.#cache.size >= this.#size) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(hash, result);
    }
    return result;
  }

  /** `work()` for `hash`, or the same work already under way for another request. */
  once(hash: string, work: () => Promise<R | Other>): Promise<R | Other> {
    let pending = this.#running.get(hash);
    if (pending === undefined) {
      pending = work().finally(() => this.#running.delete(hash));
      this.#running.set(hash, pending);
    }
    return pending;
  }
}

/**
 * The consumer a verified token's subject is: the configured consumer it maps to (`consumers.<name>
 * .credentials: [{ type: jwt, subject }]`), else, unless `required`, an ad-hoc consumer named by the
 * subject. Undefined when it must not pass: unmapped with `required`, or naming a configured
 * consumer it does not map to (a token cannot pass as someone configured).
 */
export function subjectConsumer(
  consumers: ConsumerDirectory,
  issuer: string,
  subject: string,
  required: boolean,
): { readonly consumer: Consumer; readonly credential: string | undefined } | undefined {
  const match = consumers.subject(issuer, subject);
  if (match !== undefined) return match;
  if (required || consumers.consumer(subject) !== undefined) return undefined;
  return { consumer: Object.freeze({ name: subject, groups: Object.freeze([]), metadata: Object.freeze({}) }), credential: undefined };
}

/** The upstream request hook of a token policy: identity headers, claim headers, the token removed. */
export function tokenUpstream(
  auth: Authenticator,
  policy: string,
  claimHeaders: readonly ClaimHeader[],
  from: TokenFrom,
  hideCredentials: boolean,
): (s: Session, head: UpstreamRequestHead) => void {
  return (s, head) => {
    auth.upstream(s, head);
    if (claimHeaders.length > 0) {
      const identity = s.identity;
      setClaimHeaders(head, identity?.policy === policy ? identity.claims : undefined, claimHeaders);
    }
    if (hideCredentials) stripToken(head, from);
  };
}
