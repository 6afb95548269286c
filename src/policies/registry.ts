/**
 * Every policy type Switchboard knows, by its `type:` name. Adding a type is one folder under
 * src/policies/<type>/ (config.ts, index.ts, index.test.ts) and one line here: the config schema,
 * docs/config.md and `switchboard schema` are assembled from this list.
 */
import { concurrencyLimitPolicy } from './concurrency-limit/index.ts';
import { apiKeyPolicy } from './api-key/index.ts';
import { authorizePolicy } from './authorize/index.ts';
import { basicAuthPolicy } from './basic-auth/index.ts';
import { compressPolicy } from './compress/index.ts';
import { contentFilterPolicy } from './content-filter/index.ts';
import { cachePolicy } from './cache/index.ts';
import { corsPolicy } from './cors/index.ts';
import type { PolicyType } from './filter.ts';
import { headersPolicy } from './headers/index.ts';
import { hstsPolicy } from './hsts/index.ts';

/** The `hsts` type, whose schema and resolve the listener key `hsts` (its shorthand) uses too. */
export { hstsPolicy };
/** The machine state a supervisor's workers share (the cache's /dev/shm stores): removed by the supervisor when it stops. */
export { removeSharedMemory } from './cache/file-store.ts';
import { httpsRedirectPolicy } from './https-redirect/index.ts';
import { ipFilterPolicy } from './ip-filter/index.ts';
import { jwtPolicy } from './jwt/index.ts';
import { introspectionPolicy } from './oauth2-introspection/index.ts';
import { oidcPolicy } from './oidc/index.ts';
import { quotaPolicy } from './quota/index.ts';
import { rateLimitPolicy } from './rate-limit/index.ts';
import { respondPolicy } from './respond/index.ts';

// biome-ignore lint/suspicious/noExplicitAny: each entry keeps its own config type
type AnyPolicyType = PolicyType<any, any>;

const types: AnyPolicyType[] = [
  headersPolicy,
  corsPolicy,
  respondPolicy,
  hstsPolicy,
  httpsRedirectPolicy,
  ipFilterPolicy,
  rateLimitPolicy,
  concurrencyLimitPolicy,
  quotaPolicy,
  apiKeyPolicy,
  basicAuthPolicy,
  jwtPolicy,
  introspectionPolicy,
  oidcPolicy,
  authorizePolicy,
  compressPolicy,
  cachePolicy,
  contentFilterPolicy,
];
let version = 0;

/** Every known policy type, the built-in ones first (a live view: registrations show up). */
export const policyTypes: ReadonlyArray<AnyPolicyType> = types;

/**
 * Adds a policy type of the embedding program's own (as a Caddy module registers itself): from
 * then on configs may use `type: <its name>`. Call it before loading a config; a name already
 * taken throws. The config schema is rebuilt on the next load.
 */
export function registerPolicyType(type: AnyPolicyType): void {
  if (types.some((t) => t.type === type.type)) throw new Error(`a policy type named ${JSON.stringify(type.type)} is already registered`);
  types.push(type);
  version++;
}

/** Changes whenever a type is registered (the config schema is cached per version). */
export function policyTypesVersion(): number {
  return version;
}

/** The policy type named `name`, or undefined. */
export function policyTypeOf(name: string): AnyPolicyType | undefined {
  return types.find((t) => t.type === name);
}
