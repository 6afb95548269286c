/**
 * A JWKS server the jwt tests start on 127.0.0.1 port 0, counting its requests (its document can be
 * swapped to rotate keys), and ES256 signing keys with their public JWK.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

export interface KeyServer {
  url: string;
  /** Requests served so far. */
  requests: number;
  /** What it serves; replace it to rotate. */
  doc: { keys: JWK[] };
  close(): Promise<void>;
}

export async function keyServer(doc: { keys: JWK[] }): Promise<KeyServer> {
  const srv: KeyServer = { url: '', requests: 0, doc, close: async () => {} };
  const server = http.createServer((_req, res) => {
    srv.requests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(srv.doc));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  srv.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  srv.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return srv;
}

/** An ES256 signing key: the private key and the public JWK (with `kid` and `alg`). */
export interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function key(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
}
