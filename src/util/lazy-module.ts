/**
 * A package loaded on its first use instead of when Switchboard starts (`require`, which takes ES
 * modules too since Node 22). For the libraries only some configs use (jose for `jwt` and `oidc`,
 * bcryptjs for `basic-auth`, mime-types for `static:` routes): every worker process would
 * otherwise hold them, about 2 MB of heap, whatever its config (issue 11: RSS per idle worker).
 * Types still come from `import type`.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** A function that returns the package `specifier`, loading it the first time it is called. */
export function lazyModule<T>(specifier: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(specifier) as T);
}
