/**
 * Raw (schema-valid) config → resolved GatewayConfig: defaults applied, units converted, names
 * wired, and every check the schema cannot express (references, addresses, URLs, regexes). Problems
 * carry the key path so the loader can point at file:line:column.
 *
 * Each section resolves in its own file: `resolve-listener.ts`, `resolve-upstream.ts`,
 * `resolve-route.ts`, `resolve-policies.ts`, `resolve-state.ts`, `resolve-tracing.ts`, `resolve-admin.ts`, `resolve-consumers.ts`. A check across sections lives with the key that refers to the other section.
 * This file calls them in order and assembles the result.
 */
import { availableParallelism } from 'node:os';
import { parseDuration, parseSize } from '../util/units.ts';
import { defaults } from './defaults.ts';
import type { Problem } from './problems.ts';
import { listenerUpstreamProblems, resolveListeners } from './resolve-listener.ts';
import { resolveRoutes } from './resolve-route.ts';
import { endpointSchemeProblems, resolveUpstreams } from './resolve-upstream.ts';
import { policyReferenceProblems, resolvePolicies, shorthandPolicies } from './resolve-policies.ts';
import { resolveState } from './resolve-state.ts';
import { resolveTracing } from './resolve-tracing.ts';
import { resolveAdmin } from './resolve-admin.ts';
import { anonymousConsumerProblems, resolveConsumers } from './resolve-consumers.ts';
import type { RawConfig } from './schema.ts';
import type { GatewayConfig } from './types.ts';

/** The resolved config, or undefined when there is any problem; and the problems, in the order found. */
export interface ResolveResult {
  config: GatewayConfig | undefined;
  problems: Problem[];
}

/**
 * Applies defaults and checks everything the schema cannot. Never throws on a schema-valid config.
 * Reads the TLS files the config names (relative to `baseDir`, the config file's directory).
 */
/** `auto`: one worker per core the process may use. */
function resolveWorkers(w: 'auto' | number): number {
  return w === 'auto' ? availableParallelism() : w;
}

export function resolve(raw: RawConfig, baseDir = process.cwd(), env: Readonly<Record<string, string | undefined>> = process.env): ResolveResult {
  const problems: Problem[] = [];
  // Listeners and upstreams first, then the references between them, then routes, which refer to
  // both. loadConfigObject reports problems in the order found here; loadConfigFile sorts them.
  const listeners = resolveListeners(raw, baseDir, problems);
  const upstreams = resolveUpstreams(raw, baseDir, problems);
  listenerUpstreamProblems(raw, listeners, upstreams, problems);
  endpointSchemeProblems(upstreams, problems);
  const routes = resolveRoutes(raw, listeners, upstreams, problems, baseDir);
  const policies = resolvePolicies(raw, baseDir, env, problems);
  policyReferenceProblems(raw, listeners, routes, problems);
  shorthandPolicies(listeners, policies);
  const state = resolveState(raw, problems);
  const tracing = resolveTracing(raw, problems);
  const admin = resolveAdmin(raw, listeners, problems);
  const consumers = resolveConsumers(raw, problems, baseDir);
  anonymousConsumerProblems(raw, consumers, problems);

  const config: GatewayConfig = {
    listeners,
    routes,
    upstreams,
    policies,
    drainTimeout: parseDuration(raw.drainTimeout ?? defaults.drainTimeout),
    workers: resolveWorkers(raw.workers ?? defaults.workers),
    workerMemoryLimit: parseSize(raw.workerMemoryLimit ?? defaults.workerMemoryLimit),
    state,
    // On by default with an admin listener, which serves them (`GET /metrics`).
    metrics: { enabled: raw.metrics?.enabled ?? (raw.admin !== undefined || defaults.metrics.enabled) },
    tracing,
    admin,
    consumers,
  };
  return { config: problems.length ? undefined : config, problems };
}
