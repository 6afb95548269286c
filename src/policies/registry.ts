/**
 * Every policy type Switchboard knows, by its `type:` name. Adding a type is one folder under
 * src/policies/<type>/ (config.ts, index.ts, index.test.ts) and one line here: the config schema,
 * docs/config.md and `switchboard schema` are assembled from this list.
 */
import { corsPolicy } from './cors/index.ts';
import type { PolicyType } from './filter.ts';
import { headersPolicy } from './headers/index.ts';
import { hstsPolicy } from './hsts/index.ts';
import { httpsRedirectPolicy } from './https-redirect/index.ts';
import { respondPolicy } from './respond/index.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry keeps its own config type
export const policyTypes: ReadonlyArray<PolicyType<any, any>> = [
  headersPolicy,
  corsPolicy,
  respondPolicy,
  hstsPolicy,
  httpsRedirectPolicy,
];
