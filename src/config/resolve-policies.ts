/**
 * The `policies` section resolved: each entry handed to its type's `resolve` (files read, units
 * converted, what zod cannot check reported at its key path), and every reference to a policy,
 * from a listener or a route, checked against the names defined (with a "did you mean").
 */
import { policyTypeOf } from '../policies/registry.ts';
import type { PolicyType } from '../policies/filter.ts';
import { show, type Problem } from './problems.ts';
import type { RawConfig } from './schema.ts';
import { suggest } from './suggest.ts';
import type { ListenerConfig, PolicyConfig, RouteConfig } from './types.ts';

/** Resolves every policy of `raw.policies`; `env` fills `${env.NAME}` templates. */
export function resolvePolicies(raw: RawConfig, baseDir: string, env: Readonly<Record<string, string | undefined>>, problems: Problem[]): Map<string, PolicyConfig> {
  const out = new Map<string, PolicyConfig>();
  for (const [name, entry] of Object.entries(raw.policies ?? {})) {
    const { type, ...rest } = entry as { type: string } & Record<string, unknown>;
    const t = policyTypeOf(type) as PolicyType<never, unknown> | undefined;
    if (t === undefined) continue; // the schema has reported it
    const at = ['policies', name];
    let config: unknown = rest;
    if (t.resolve !== undefined) {
      const before = problems.length;
      config = t.resolve(rest as never, {
        baseDir,
        env,
        problem: (p) => problems.push({ path: [...at, ...p.path], expected: p.expected, found: p.found, hint: p.hint, atKey: p.atKey }),
      });
      if (problems.length !== before) continue;
    }
    out.set(name, { name, type: t as PolicyType, config } as PolicyConfig);
  }
  return out;
}

function reference(name: string, at: ReadonlyArray<string | number>, defined: string[], problems: Problem[]): void {
  if (defined.includes(name)) return;
  problems.push({
    path: at,
    expected: defined.length ? `the name of a policy (one of: ${defined.join(', ')})` : 'the name of a policy (none are defined under policies)',
    found: show(name),
    hint: suggest(name, defined),
  });
}

/** Every policy a listener or a route names must exist, and suit where it is used. */
export function policyReferenceProblems(raw: RawConfig, listeners: ListenerConfig[], routes: RouteConfig[], problems: Problem[]): void {
  const defined = Object.keys(raw.policies ?? {});
  for (const l of listeners) {
    if (l.protocol === 'socks5') {
      socksPolicyProblems(raw, l, defined, problems);
      continue;
    }
    l.policies.forEach((p, i) => {
      reference(p, ['listeners', l.name, 'policies', i], defined, problems);
      const type = policyTypeOf((raw.policies?.[p] as { type?: string } | undefined)?.type ?? '');
      // A forward listener has no routes: its policies are the only ones its requests meet.
      if (type?.onListeners === false && l.protocol !== 'forward') {
        problems.push({
          path: ['listeners', l.name, 'policies', i],
          expected: `a policy that may run before routing (${type.type} policies belong on routes)`,
          found: show(p),
        });
      }
    });
  }
  for (const r of routes) {
    r.policies.forEach((p, i) => {
      reference(p, ['routes', r.name, 'policies', i], defined, problems);
    });
  }
}

/** Whether a listen host is a loopback one: only this machine's programs reach it. */
function isLoopbackHost(host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host === 'localhost';
}

/**
 * A socks5 listener's `policies` name the basic-auth policies whose credentials RFC 1929
 * username/password authentication checks (no other policy runs on a SOCKS connection). Without
 * any, clients are served without credentials: only on a loopback address, unless
 * `forward.allowUnauthenticated` says an open proxy is meant (secure by default).
 */
function socksPolicyProblems(raw: RawConfig, l: ListenerConfig, defined: string[], problems: Problem[]): void {
  l.policies.forEach((p, i) => {
    reference(p, ['listeners', l.name, 'policies', i], defined, problems);
    const type = (raw.policies?.[p] as { type?: string } | undefined)?.type;
    if (type !== undefined && type !== 'basic-auth') {
      problems.push({
        path: ['listeners', l.name, 'policies', i],
        expected: 'a basic-auth policy (a socks5 listener authenticates by RFC 1929 username and password; no other policy runs on it)',
        found: `${show(p)} (a ${type} policy)`,
      });
    }
  });
  if (l.policies.length === 0 && !isLoopbackHost(l.address.host) && l.forward?.allowUnauthenticated !== true) {
    problems.push({
      path: ['listeners', l.name, 'policies'],
      expected: 'a basic-auth policy for a socks5 listener on a non-loopback address (or forward.allowUnauthenticated: true for an open proxy)',
      found: 'none',
    });
  }
}

/**
 * The listener keys `hsts` and `httpsRedirect` are shorthands: each becomes a policy of its type,
 * named `listeners.<name>.<key>`, run before the listener's own `policies`.
 */
export function shorthandPolicies(listeners: ListenerConfig[], policies: Map<string, PolicyConfig>): void {
  for (const l of listeners) {
    const implicit: string[] = [];
    const add = (key: string, type: string, config: unknown): void => {
      const name = `listeners.${l.name}.${key}`;
      policies.set(name, { name, type: policyTypeOf(type) as PolicyType, config } as PolicyConfig);
      implicit.push(name);
    };
    if (l.hsts !== undefined) add('hsts', 'hsts', l.hsts);
    if (l.httpsRedirect !== undefined) add('httpsRedirect', 'https-redirect', { port: l.httpsRedirect.port, status: 308 });
    if (implicit.length > 0) l.policies = [...implicit, ...l.policies];
  }
}
