/**
 * The part of `oidc-provider` (a devDependency, shipped without types; @types/oidc-provider is not
 * installed) that the tests use: a provider built from its issuer and configuration, serving
 * requests through a node:http listener, and its events.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface ProviderConfiguration {
    [key: string]: unknown;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: ProviderConfiguration);
    readonly issuer: string;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    /** Provider events (`grant.success`, `end_session.success`, `server_error`, …); listeners get the request context (and the error). */
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
