/**
 * For unit tests of policy types, without the loader: a ResolveContext that collects problems, and
 * the header list the pipeline hands hooks (`HeaderList`, from pairs).
 */
import type { PolicyDeps, PolicyProblem, PolicyState, ResolveContext } from '../../src/policies/filter.ts';
import { MemoryState } from '../../src/state/memory-state.ts';
import type { RawConsumer } from '../../src/config/consumers-schema.ts';
import type { Problem } from '../../src/config/problems.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { resolveConsumers } from '../../src/config/resolve-consumers.ts';
import { HeaderList } from '../../src/http/header-list.ts';

/** A ResolveContext over `env` and `baseDir`, and the problems it was told about. */
export function fakeResolveContext(init: { env?: Record<string, string | undefined>; baseDir?: string } = {}): {
  ctx: ResolveContext;
  problems: PolicyProblem[];
} {
  const problems: PolicyProblem[] = [];
  return { ctx: { baseDir: init.baseDir ?? process.cwd(), env: init.env ?? {}, problem: (p) => problems.push(p) }, problems };
}

/** A header list from `[name, value]` pairs, names as given. */
export function headerList(pairs: ReadonlyArray<readonly [string, string]> = []): HeaderList {
  return new HeaderList(pairs.flat());
}

/** The `[name, value]` pairs of a header list, in order. */
export function pairs(headers: HeaderList): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  headers.forEach((value, name) => {
    out.push([name, value]);
  });
  return out;
}

/**
 * PolicyDeps for unit tests: a consumer directory resolved from `consumers` (as the config's
 * `consumers` section), the routes that list the policy (name → the route's policy list), and the
 * shared state (an exact in-process one unless given).
 */
export function fakeDeps(
  init: {
    name?: string;
    type?: string;
    consumers?: Record<string, RawConsumer>;
    /** The config's `policies` (raw), for consumers' `limits` and basic-auth's `htpasswd` files. */
    policies?: Record<string, { type: string } & Record<string, unknown>>;
    /** Where `htpasswd` files are read from. */
    baseDir?: string;
    routes?: Record<string, Array<[string, string]>>;
    state?: PolicyState;
  } = {},
): PolicyDeps {
  const problems: Problem[] = [];
  const consumers = resolveConsumers(
    { listeners: {}, consumers: init.consumers ?? {}, policies: init.policies as RawConfig['policies'] },
    problems,
    init.baseDir ?? process.cwd(),
  );
  if (problems.length > 0) throw new Error(`bad consumers: ${JSON.stringify(problems)}`);
  const routes = new Map(Object.entries(init.routes ?? {}).map(([route, chain]) => [route, chain.map(([name, type]) => ({ name, type }))]));
  const memory = new MemoryState();
  const state = init.state ?? { user: () => memory, available: true };
  return {
    name: init.name ?? 'auth',
    type: init.type ?? 'test',
    log: { warn() {}, error() {} },
    consumers,
    routes,
    state,
    fetch: () => Promise.resolve(undefined),
    redis: { url: 'redis://127.0.0.1:1', prefix: 'test:', connectTimeout: 100, commandTimeout: 100 },
  };
}
