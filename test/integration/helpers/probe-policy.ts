/**
 * `probe`: a policy type for pipeline tests, registered through the public `registerPolicyType`.
 * Each probe leaves a trace a test can read: `x-trace` (one value per probe, appended in the
 * response phase, so the order shows the reverse filter order), `x-up-<tag>` on the upstream
 * request (each try), `x-prefix-<tag>` (what its request-body phase saw), and `logged` (onLog).
 * It answers, throws, or waits (async) at the phase its config names.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { registerPolicyType, type Filter, type PolicyType, type Reply } from '../../../src/index.ts';

const PHASES = ['request', 'body', 'upstream', 'response', 'responseBody', 'log'] as const;

const config = z.strictObject({
  tag: z.string(),
  answerAt: z.enum(['request', 'body', 'response']).optional(),
  throwAt: z.enum(PHASES).optional(),
  /** Never decide at this phase (a promise that never settles). */
  hangAt: z.enum(['request', 'response']).optional(),
  async: z.boolean().optional(),
  bodyBytes: z.number().int().optional(),
  /** Count response body bytes passing (onResponseBody, returns nothing: a pass-through). */
  count: z.boolean().optional(),
});
type ProbeConfig = z.infer<typeof config>;

/** Every probe's onLog, in order: `tag status error`. */
export const logged: string[] = [];
/** Response body bytes counted by `count` probes, by tag. */
export const counted = new Map<string, number>();

function maybeAsync<T>(c: ProbeConfig, v: T): T | Promise<T> {
  return c.async ? new Promise((resolve) => setImmediate(() => resolve(v))) : v;
}

function boom(c: ProbeConfig, phase: (typeof PHASES)[number]): void {
  if (c.throwAt === phase) throw new Error(`probe ${c.tag} throws at ${phase}`);
}

function probe(c: ProbeConfig): Filter {
  const upgradeSeen = {};
  const answer = (status: number, body: string): Reply => ({ status, headers: { 'content-type': 'text/plain', 'x-answered-by': c.tag }, body });
  const filter: Filter = {
    onRequest(s) {
      if (c.throwAt === 'request' && c.async) return Promise.reject(new Error(`probe ${c.tag} rejects at request`));
      boom(c, 'request');
      // What the request view says, read in the request phase (the view is built on first use).
      s.local(upgradeSeen, String(s.request.upgrade));
      if (c.hangAt === 'request') return new Promise<undefined>(() => undefined);
      return maybeAsync(c, c.answerAt === 'request' ? answer(418, `answered by ${c.tag} at ${s.route ?? 'the listener'}`) : undefined);
    },
    onUpstreamRequest(s, head) {
      boom(c, 'upstream');
      head.headers.set(`x-up-${c.tag}`, String(head.attempt));
      const upgrade = s.local<string>(upgradeSeen);
      if (upgrade !== undefined) head.headers.set(`x-upgrade-${c.tag}`, upgrade);
    },
    onResponse(s, head) {
      boom(c, 'response');
      head.headers.append('x-trace', c.tag);
      const prefix = s.local<string>(filter);
      if (prefix !== undefined) head.headers.set(`x-prefix-${c.tag}`, prefix);
      if (c.hangAt === 'response') return new Promise<undefined>(() => undefined);
      return maybeAsync(c, c.answerAt === 'response' ? answer(203, `replaced by ${c.tag}`) : undefined);
    },
    onResponseBody(_s, chunk) {
      boom(c, 'responseBody');
      if (c.count === true) counted.set(c.tag, (counted.get(c.tag) ?? 0) + chunk.length);
      return undefined;
    },
    onLog(s) {
      logged.push(`${c.tag} ${s.status} ${s.error ?? '-'}`);
      boom(c, 'log');
    },
  };
  if (c.bodyBytes !== undefined) {
    filter.requestBody = {
      maxBytes: c.bodyBytes,
      onBody(s, prefix, complete) {
        boom(c, 'body');
        const seen = `${prefix.length} ${complete} ${createHash('sha256').update(prefix).digest('hex').slice(0, 16)}`;
        s.local(filter, seen);
        return maybeAsync(c, c.answerAt === 'body' ? answer(422, `body prefix ${seen}`) : undefined);
      },
    };
  }
  // A counting probe only looks at the bytes: the response keeps its Content-Length.
  if (c.count === true) return { ...filter, bodyUnchanged: true };
  return filter;
}

export const probePolicy = {
  type: 'probe',
  description: 'Test probe: traces, answers or throws at a chosen phase.',
  config,
  create: (c: ProbeConfig): Filter => probe(c),
} satisfies PolicyType<typeof config, ProbeConfig>;

let registered = false;
/** Registers `probe` once per process. */
export function registerProbe(): void {
  if (registered) return;
  registered = true;
  registerPolicyType(probePolicy);
}
