/**
 * A filter chain compiled for the pipeline: one array per phase, built once per config generation
 * for each listener (its own filters) and each of its routes (the listener's filters, then the
 * route's). A phase a chain does not use is an empty array, so a request pays nothing for it.
 *
 *   position:  0 … L-1 listener filters, L … L+R-1 route filters
 *   request    onRequest hooks in order (a route chain holds the route's only: the listener's ran
 *              before routing)
 *   response   onResponse hooks in reverse order, the route's first, then the listener's
 *   log        every onLog hook, in order
 *
 * A Reply made by the filter at position k runs the response hooks of positions < k only (the
 * filters before it); an answer of the gateway's own runs every response hook of the chain.
 */
import type { Filter } from '../policies/filter.ts';

/** A filter in its chain: the policy it was built from, and its position. */
export interface Placed {
  readonly filter: Filter;
  /** The policy's name, for logs (`POLICY_ERROR`). */
  readonly policy: string;
  readonly position: number;
}

export interface Chain {
  readonly request: readonly Placed[];
  /** Filters with a request body phase, in order; `bodyBytes` is the largest prefix any wants. */
  readonly body: readonly Placed[];
  readonly bodyBytes: number;
  readonly upstreamRequest: readonly Placed[];
  readonly response: readonly Placed[];
  readonly responseBody: readonly Placed[];
  readonly log: readonly Placed[];
  /** Whether any response phase is used: if not, the transport writes straight to the client. */
  readonly filtersResponse: boolean;
}

/** A policy built for one generation: its name and its filter. */
export interface NamedFilter {
  readonly policy: string;
  readonly filter: Filter;
}

const NONE: readonly Placed[] = [];

function pick(all: readonly Placed[], has: (f: Filter) => boolean): readonly Placed[] {
  const out = all.filter((p) => has(p.filter));
  return out.length === 0 ? NONE : out;
}

/**
 * Compiles the chain of `listener` filters followed by `route` filters. With `route` undefined it
 * is the listener's own chain (requests before routing, and those no route takes).
 */
export function compileChain(listener: readonly NamedFilter[], route: readonly NamedFilter[] | undefined): Chain {
  const placed: Placed[] = [];
  for (const f of listener) placed.push({ filter: f.filter, policy: f.policy, position: placed.length });
  const routeStart = placed.length;
  for (const f of route ?? []) placed.push({ filter: f.filter, policy: f.policy, position: placed.length });
  const reversed = placed.slice().reverse();
  const body = pick(placed, (f) => f.requestBody !== undefined);
  const response = pick(reversed, (f) => f.onResponse !== undefined);
  const responseBody = pick(reversed, (f) => f.onResponseBody !== undefined);
  return {
    request: pick(route === undefined ? placed : placed.slice(routeStart), (f) => f.onRequest !== undefined),
    body,
    bodyBytes: body.reduce((max, p) => Math.max(max, p.filter.requestBody!.maxBytes), 0),
    upstreamRequest: pick(placed, (f) => f.onUpstreamRequest !== undefined),
    response,
    responseBody,
    log: pick(placed, (f) => f.onLog !== undefined),
    filtersResponse: response.length > 0 || responseBody.length > 0,
  };
}

/** The chain with no filters at all. */
export const EMPTY_CHAIN: Chain = compileChain([], undefined);
