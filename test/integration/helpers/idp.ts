/**
 * A real OpenID provider for integration tests: `oidc-provider` behind a node:http server on
 * 127.0.0.1 port 0. The provider needs its own URL (the issuer) before it exists, and tests often
 * need the gateway's port for its clients' redirect URIs, so the server listens first (answering
 * 503) and `use(configuration)` builds the provider. Calling `use` again replaces it (same issuer,
 * e.g. a new signing key: what a provider's restart with rotated keys looks like from outside).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider, { type ProviderConfiguration } from 'oidc-provider';

export interface Idp {
  /** `http://127.0.0.1:<port>` */
  readonly issuer: string;
  /** The provider in use (undefined before `use`). */
  readonly provider: Provider | undefined;
  /** Requests the server took, `METHOD /path` (no query). */
  readonly requests: string[];
  /** Builds a provider for the issuer from `configuration` and serves it from now on. */
  use(configuration: ProviderConfiguration): Provider;
  /** Stops serving: connections closed, the port released (requests are refused from then on). */
  close(): Promise<void>;
}

export async function startIdp(configuration?: ProviderConfiguration): Promise<Idp> {
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${(req.url ?? '').split('?')[0]}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const idp = {
    issuer,
    provider: undefined as Provider | undefined,
    requests,
    use(config: ProviderConfiguration): Provider {
      const provider = new Provider(issuer, config);
      idp.provider = provider;
      handler = provider.callback();
      return provider;
    },
    async close(): Promise<void> {
      if (!server.listening) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  if (configuration !== undefined) idp.use(configuration);
  return idp;
}

/** A private signing key as a JWK for a provider's `jwks` (RS256 unless told), with its kid. */
export async function signingKey(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
}
