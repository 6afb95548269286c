/**
 * `authorize`: lets the request through only when the caller that an authentication policy
 * identified (Session.identity) has what the policy asks: groups (any or all), scopes, claim values.
 * Every condition given must hold. No identity at all is 401 AUTH_REQUIRED (put an authentication
 * policy before this one); an identity without what is needed is 403 FORBIDDEN. Neither answer
 * says which condition failed.
 *
 * Kong's `acl` plugin (allow/deny by consumer group) and APISIX's `consumer-restriction` are the
 * group part; scopes and claims are what Envoy's RBAC and oauth2-proxy's `--allowed-group` check
 * on tokens. An anonymous consumer (`anonymous:` on an authentication policy) is checked like any
 * other: give it no group the route requires.
 *
 * Metrics: each request it checks is counted as `success`, `forbidden` or `missing` (no identity)
 * in `switchboard_auth_decisions_total` (src/policies/events.ts); a method it does not apply to, not at all.
 */
import type { Filter, Identity, PolicyType, Reply } from '../filter.ts';
import { claimAt } from '../auth-common.ts';
import { authDecisions } from '../events.ts';
import { authorizeConfig } from './config.ts';

type ClaimValue = string | number | boolean;

export interface ResolvedAuthorize {
  readonly groups: readonly string[] | undefined;
  readonly all: boolean;
  readonly scopes: readonly string[] | undefined;
  /** Claim path (split on dots) and the allowed values. */
  readonly claims: ReadonlyArray<{ readonly name: string; readonly path: readonly string[]; readonly allowed: ReadonlySet<ClaimValue> }>;
  readonly methods: ReadonlySet<string> | undefined;
}

const REQUIRED: Reply = Object.freeze({ status: 401, error: Object.freeze({ code: 'AUTH_REQUIRED', message: 'this route needs a credential' }) });
const FORBIDDEN: Reply = Object.freeze({ status: 403, error: Object.freeze({ code: 'FORBIDDEN', message: 'the caller may not make this request' }) });

function claimMatches(value: unknown, allowed: ReadonlySet<ClaimValue>): boolean {
  if (Array.isArray(value)) return value.some((v) => allowed.has(v as ClaimValue));
  return allowed.has(value as ClaimValue);
}

/** Whether `identity` satisfies every condition of `c`. */
export function allowed(c: ResolvedAuthorize, identity: Identity): boolean {
  if (c.groups !== undefined) {
    const has = identity.consumer.groups;
    if (c.all ? !c.groups.every((g) => has.includes(g)) : !c.groups.some((g) => has.includes(g))) return false;
  }
  if (c.scopes !== undefined) {
    const scopes = identity.scopes ?? [];
    if (!c.scopes.every((s) => scopes.includes(s))) return false;
  }
  if (c.claims.length > 0) {
    const claims = identity.claims ?? {};
    for (const claim of c.claims) if (!claimMatches(claimAt(claims, claim.name, claim.path), claim.allowed)) return false;
  }
  return true;
}

export const authorizePolicy = {
  type: 'authorize',
  description:
    'Lets through only callers an authentication policy identified that are in the given groups (any or all), have the given token scopes and claim values, optionally for some methods only; 401 AUTH_REQUIRED without an identity, 403 FORBIDDEN otherwise.',
  config: authorizeConfig,
  onListeners: false,

  resolve(raw, ctx): ResolvedAuthorize {
    if (raw.groups === undefined && raw.scopes === undefined && raw.claims === undefined) {
      ctx.problem({ path: [], expected: 'at least one of groups, scopes, claims', found: 'none of them' });
    }
    if (raw.mode !== undefined && raw.groups === undefined) ctx.problem({ path: ['mode'], expected: 'mode only together with groups', found: JSON.stringify(raw.mode) });
    return {
      groups: raw.groups,
      all: raw.mode === 'all',
      scopes: raw.scopes,
      claims: Object.entries(raw.claims ?? {}).map(([name, values]) => ({ name, path: name.split('.'), allowed: new Set(values) })),
      methods: raw.methods === undefined ? undefined : new Set(raw.methods),
    };
  },

  create(config, deps): Filter {
    const decisions = authDecisions(deps);
    return {
      onRequest(s) {
        if (config.methods !== undefined && !config.methods.has(s.request.method)) return undefined;
        const identity = s.identity;
        if (identity === undefined) {
          decisions.publish('missing');
          return REQUIRED;
        }
        if (allowed(config, identity)) {
          decisions.publish('success');
          return undefined;
        }
        decisions.publish('forbidden');
        return FORBIDDEN;
      },
    };
  },
} satisfies PolicyType<typeof authorizeConfig, ResolvedAuthorize>;
