/**
 * What every authentication policy (api-key, basic-auth, jwt, oauth2-introspection, oidc) shares:
 * the common config keys, how several of them on one route combine, the 401 and 503 answers, the
 * identity headers sent upstream, and which identity providers may be spoken to over plain http.
 *
 * Several authentication policies on one route combine **any-of**, in route order:
 * - a policy that finds the request already identified (by an earlier one) lets it through, unless
 *   it is `required` (all-of): then it verifies its own credential too, which must be the same
 *   consumer's, and a missing one is 401 AUTH_REQUIRED whatever follows;
 * - a policy that finds its kind of credential verifies it: valid → identified; not valid → 401
 *   AUTH_INVALID at once (a wrong credential is never "tried" against the next policy, and never
 *   falls back to `anonymous`);
 * - a policy that finds no credential of its kind passes the request on when another
 *   authentication policy follows it on this route; the last one answers 401 AUTH_REQUIRED with
 *   the `WWW-Authenticate` challenges of all of them, or, when one of them has `anonymous`, lets
 *   the request through as that consumer (the first such one in route order).
 *
 * Upstream (onUpstreamRequest, each try): client-sent copies of the identity headers are always
 * removed, then the identity's are set. The credential is removed too when `hideCredentials`.
 *
 * On a forward-proxy listener (`RequestView.proxyAuthentication`) the same answers are RFC 9110
 * §11.7's proxy authentication: 407 PROXY_AUTH_REQUIRED (missing) or 407 AUTH_INVALID, with the
 * challenges in `Proxy-Authenticate` instead of `WWW-Authenticate`. Which header a policy reads its
 * credential from is its own affair (basic-auth reads `Proxy-Authorization` there).
 *
 * Metrics: each request a policy decides on publishes its result (`success`, `anonymous`,
 * `passed`, `missing`, `invalid`, `unavailable`: src/policies/events.ts) from the Authenticator's
 * methods below, so a policy that answers through them is counted without a line of its own. A
 * policy that finds the request identified already (and is not `required`) decides nothing.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { headerName } from '../util/config-primitives.ts';
import { type AuthResult, authDecisions, type Decisions } from './events.ts';
import type { Consumer, Identity, PolicyDeps, Reply, ResolveContext, Session, UpstreamRequestHead } from './filter.ts';

/** What a verified token adds to an identity (jwt, introspection). */
export interface TokenFacts {
  readonly scopes: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/** A claim by its name as written (`org.id` as one key first), else by its dotted path (`org` → `id`); undefined when absent. */
export function claimAt(claims: Readonly<Record<string, unknown>>, name: string, path: readonly string[]): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let cur: unknown = claims;
  for (const seg of path) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** The answer when the identity provider cannot be asked (its keys, introspection, discovery, tokens): 503, not 401, the client's credential may be fine. */
export const AUTH_UNAVAILABLE: Reply = Object.freeze({
  status: 503,
  error: Object.freeze({ code: 'AUTH_UNAVAILABLE', message: 'the credential could not be checked: the identity provider is unavailable' }),
});

/**
 * Whether a URL's host is a loopback one (127.0.0.0/8, ::1, localhost): the only place a policy
 * talks to an identity provider over plain http:// (a sidecar, a test).
 */
export function isLoopbackUrl(url: URL): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Checks the URL of an identity provider (`key` in the policy's config): https://, or plain
 * http:// only to a loopback address (a problem otherwise). Returns whether it is plain http://,
 * which oauth4webapi must then be told it may use.
 */
export function checkProviderUrl(text: string, key: string, ctx: ResolveContext): boolean {
  const url = new URL(text);
  const insecure = url.protocol === 'http:';
  if (insecure && !isLoopbackUrl(url)) {
    ctx.problem({ path: [key], expected: 'an https:// URL (plain http:// only to a loopback address)', found: `http://${url.host}` });
  }
  return insecure;
}

/** The policy types that authenticate: a route combines them any-of (see above). */
export const AUTH_TYPES: ReadonlySet<string> = new Set(['api-key', 'basic-auth', 'jwt', 'oauth2-introspection', 'oidc']);

/** Config keys every authentication policy has (spread into its schema). */
export const authKeys = {
  hideCredentials: z.boolean().optional().meta({
    description: 'Remove the credential from the request before it goes upstream (default true). The upstream then sees only the identity headers.',
  }),
  required: z.boolean().optional().meta({
    description:
      'All-of: this policy must verify its own credential even when an earlier authentication policy of the route identified the request, and it must belong to the same consumer (else 401 AUTH_INVALID). Default false (any-of).',
  }),
  anonymous: z.string().optional().meta({
    description:
      'A consumer (from `consumers`) that requests without any credential are let through as, instead of 401: for routes usable without a key at a lower rate limit. A wrong credential is still 401.',
  }),
  consumerHeaders: z
    .strictObject({
      name: headerName.optional().meta({ description: 'Header carrying the consumer’s name upstream. Default `x-consumer-name`.' }),
      groups: headerName
        .optional()
        .meta({ description: 'Header carrying the consumer’s groups upstream, comma-separated (absent when none). Default `x-consumer-groups`.' }),
    })
    .optional()
    .meta({ description: 'Names of the identity headers sent upstream. Client-sent copies of them are always removed on routes with this policy.' }),
};

/** The common keys as written. */
export interface RawAuthKeys {
  hideCredentials?: boolean;
  required?: boolean;
  anonymous?: string;
  consumerHeaders?: { name?: string; groups?: string };
}

/** The common keys resolved (defaults applied, header names lower-cased). */
export interface AuthOptions {
  readonly hideCredentials: boolean;
  /** All-of: verify even when already identified; never pass on or fall back to anonymous. */
  readonly required: boolean;
  readonly anonymous: string | undefined;
  readonly nameHeader: string;
  readonly groupsHeader: string;
}

export function authOptions(raw: RawAuthKeys): AuthOptions {
  return {
    hideCredentials: raw.hideCredentials ?? true,
    required: raw.required ?? false,
    anonymous: raw.anonymous,
    nameHeader: (raw.consumerHeaders?.name ?? 'x-consumer-name').toLowerCase(),
    groupsHeader: (raw.consumerHeaders?.groups ?? 'x-consumer-groups').toLowerCase(),
  };
}

/**
 * Per request, what the authentication policies that found no credential left for the ones after
 * them: their challenges and the first anonymous consumer. Created only on that path (a request
 * with a credential never allocates it).
 */
interface Pending {
  challenges: string[];
  anonymous: Consumer | undefined;
}

/** The key of `Pending` in a session's locals: one object shared by every authentication policy. */
const PENDING: object = Object.freeze({ name: 'auth pending' });

/** The 401 for a request without a credential (its headers are the challenges); 407 when `proxy` (a forward listener). */
function required(challenges: readonly string[], proxy: boolean): Reply {
  if (proxy) {
    return {
      status: 407,
      headers: challenges.length > 0 ? { 'proxy-authenticate': challenges } : undefined,
      error: { code: 'PROXY_AUTH_REQUIRED', message: 'this proxy needs a credential (Proxy-Authorization)' },
    };
  }
  return {
    status: 401,
    headers: challenges.length > 0 ? { 'www-authenticate': challenges } : undefined,
    error: { code: 'AUTH_REQUIRED', message: 'this route needs a credential' },
  };
}

/**
 * The part of an authentication policy that is the same for all of them: built once per
 * generation by each policy's `create`.
 */
export class Authenticator {
  readonly options: AuthOptions;
  readonly #policy: string;
  /** Routes on which another authentication policy follows this one (this one is not the last). */
  readonly #notLast: ReadonlySet<string>;
  readonly #anonymous: Identity | undefined;
  /** This policy's challenge(s), e.g. `Basic realm="api", charset="UTF-8"`. */
  readonly #challenge: string | undefined;
  readonly #required: Reply;
  readonly #invalid: Reply;
  /** The same two answers on a forward listener: 407 with Proxy-Authenticate. */
  readonly #proxyRequired: Reply;
  readonly #proxyInvalid: Reply;
  /** Per consumer, the groups header value (joined once, not per request). */
  readonly #groups = new WeakMap<Consumer, string>();
  /** This policy's decisions, for the metrics. */
  readonly #decisions: Decisions<AuthResult>;

  constructor(deps: PolicyDeps, options: AuthOptions, challenge: string | undefined) {
    this.options = options;
    this.#policy = deps.name;
    this.#decisions = authDecisions(deps);
    this.#challenge = challenge;
    const notLast = new Set<string>();
    for (const [route, chain] of deps.routes) {
      const at = chain.findIndex((p) => p.name === deps.name);
      if (chain.some((p, i) => i > at && AUTH_TYPES.has(p.type))) notLast.add(route);
    }
    this.#notLast = notLast;
    const anonymous = options.anonymous === undefined ? undefined : deps.consumers.consumer(options.anonymous);
    this.#anonymous = anonymous && Object.freeze({ consumer: anonymous, credential: `${anonymous.name}/anonymous`, policy: deps.name });
    this.#required = Object.freeze(required(challenge === undefined ? [] : [challenge], false));
    this.#invalid = Object.freeze({
      status: 401,
      headers: challenge === undefined ? undefined : Object.freeze({ 'www-authenticate': challenge }),
      error: Object.freeze({ code: 'AUTH_INVALID', message: 'the credential was not accepted' }),
    });
    this.#proxyRequired = Object.freeze(required(challenge === undefined ? [] : [challenge], true));
    this.#proxyInvalid = Object.freeze({
      status: 407,
      headers: challenge === undefined ? undefined : Object.freeze({ 'proxy-authenticate': challenge }),
      error: Object.freeze({ code: 'AUTH_INVALID', message: 'the proxy credential was not accepted' }),
    });
  }

  /** Whether this policy has nothing to check: an earlier one identified the request and this one is not `required`. */
  done(s: Session): boolean {
    return s.identity !== undefined && !this.options.required;
  }

  /**
   * Records a verified credential. When an earlier policy identified the request already (this one
   * is `required`), the credential must be the same consumer's: the identity stays the first one.
   */
  identify(s: Session, consumer: Consumer, credential: string, token?: TokenFacts): Reply | undefined {
    const current = s.identity;
    if (current !== undefined) {
      if (current.consumer === consumer) {
        this.#decisions.publish('success');
        return undefined;
      }
      this.#decisions.publish('invalid');
      return this.#invalid;
    }
    this.#decisions.publish('success');
    s.identify(
      token === undefined ? { consumer, credential, policy: this.#policy } : { consumer, credential, policy: this.#policy, scopes: token.scopes, claims: token.claims },
    );
    return undefined;
  }

  /** Whether another authentication policy follows this one on the request's route (it may pass a request on). */
  followed(s: Session): boolean {
    return s.route !== undefined && this.#notLast.has(s.route);
  }

  /**
   * The answer to a credential that did not verify (the same whatever part of it was wrong): this
   * policy's 401, or `reply` (a token policy's, with its `Bearer error="invalid_token"`). With `s`
   * on a forward listener: the 407 with Proxy-Authenticate instead.
   */
  invalid(reply: Reply = this.#invalid, s?: Session): Reply {
    this.#decisions.publish('invalid');
    return s?.request.proxyAuthentication === true ? this.#proxyInvalid : reply;
  }

  /** The answer when the identity provider cannot be asked: 503 AUTH_UNAVAILABLE. */
  unavailable(): Reply {
    this.#decisions.publish('unavailable');
    return AUTH_UNAVAILABLE;
  }

  /** The request has no credential of this policy's kind: pass on, let in as anonymous, or 401. */
  missing(s: Session): Reply | undefined {
    const decisions = this.#decisions;
    const proxy = s.request.proxyAuthentication === true;
    if (this.options.required) {
      decisions.publish('missing');
      return proxy ? this.#proxyRequired : this.#required;
    }
    const route = s.route;
    const pending = s.local<Pending>(PENDING);
    if (route !== undefined && this.#notLast.has(route)) {
      const p = pending ?? s.local<Pending>(PENDING, { challenges: [], anonymous: undefined })!;
      if (this.#challenge !== undefined) p.challenges.push(this.#challenge);
      p.anonymous ??= this.#anonymous?.consumer;
      decisions.publish('passed');
      return undefined;
    }
    if (pending?.anonymous !== undefined) {
      decisions.publish('anonymous');
      s.identify({ consumer: pending.anonymous, credential: `${pending.anonymous.name}/anonymous`, policy: this.#policy });
      return undefined;
    }
    if (this.#anonymous !== undefined) {
      decisions.publish('anonymous');
      s.identify(this.#anonymous);
      return undefined;
    }
    decisions.publish('missing');
    if (pending === undefined || pending.challenges.length === 0) return proxy ? this.#proxyRequired : this.#required;
    return required(this.#challenge === undefined ? pending.challenges : [...pending.challenges, this.#challenge], proxy);
  }

  /**
   * Identity headers upstream: client copies removed, the identity's set. Not on a forward listener:
   * its destinations are anyone's servers, and who the proxy's user is stays with the proxy.
   */
  upstream(s: Session, head: UpstreamRequestHead): void {
    const { nameHeader, groupsHeader } = this.options;
    head.headers.delete(nameHeader);
    head.headers.delete(groupsHeader);
    if (s.request.proxyAuthentication === true) return;
    const consumer = s.identity?.consumer;
    if (consumer === undefined) return;
    head.headers.set(nameHeader, consumer.name);
    if (consumer.groups.length === 0) return;
    let groups = this.#groups.get(consumer);
    if (groups === undefined) {
      groups = consumer.groups.join(',');
      this.#groups.set(consumer, groups);
    }
    head.headers.set(groupsHeader, groups);
  }
}
