/**
 * The part of `oidc-provider` (a devDependency, shipped without types; @types/oidc-provider is not
 * installed) that the tests use: a provider built from its issuer and configuration, serving
 * requests through a node:http listener.
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
  }
}
