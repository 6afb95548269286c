/**
 * The `jwt` policy through a real gateway: a JWKS served by a real node:http server on 127.0.0.1
 * port 0 (the identity provider's keys), tokens built by jose in the test, and an echo origin
 * that shows what went upstream (identity and claim headers, no token). A forged token's `jku`
 * points at a trap server that must never be asked; the provider rotates its key; a provider
 * whose JWKS cannot be fetched gives 503 AUTH_UNAVAILABLE. Then `oidc-provider` as the provider:
 * its client_credentials JWT access tokens, its JWKS found by discovery, its key rotation.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader, type JWK, SignJWT } from 'jose';
import type { ProviderConfiguration } from 'oidc-provider';
import { request } from 'undici';
import { type Idp, signingKey, startIdp } from './helpers/idp.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { runCli } from './helpers/run-cli.ts';
import { type Key, key, type KeyServer, keyServer } from './helpers/jwks.ts';

const ISS = 'https://idp.example.com';

const now = (): number => Math.floor(Date.now() / 1000);

function sign(k: Key, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ iss: ISS, aud: 'api', sub: 'alice@example.com', org: { id: 'acme' }, scope: 'orders:read', iat: now(), exp: now() + 300, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: k.kid, ...header })
    .sign(k.privateKey);
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const json = (await res.body.json()) as { error?: { code: string }; url?: string; headers?: Record<string, string> };
  return { status: res.statusCode, headers: res.headers, json };
}

describe('jwt', () => {
  let origin: Origin;
  let idp: KeyServer;
  let trap: KeyServer;
  let gw: TestGateway;
  let dir: string;
  let k1: Key;
  let k2: Key;
  let attacker: Key;
  let closedUrl: string;

  before(async () => {
    k1 = await key('k1');
    k2 = await key('k2');
    attacker = await key('k1');
    origin = await startOrigin('o');
    idp = await keyServer({ keys: [k1.jwk] });
    trap = await keyServer({ keys: [attacker.jwk] });
    const closed = await keyServer({ keys: [] });
    closedUrl = closed.url;
    await closed.close(); // a port nothing listens on any more
    dir = await mkdtemp(path.join(tmpdir(), 'switchboard-jwt-'));
    await writeFile(
      path.join(dir, 'sb.yaml'),
      `
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
consumers:
  alice:
    groups: [gold]
    credentials:
      - { type: jwt, subject: "alice@example.com" }
policies:
  bearer:
    type: jwt
    issuer: "${ISS}"
    audiences: [api]
    algorithms: [ES256]
    jwks: { url: "${idp.url}", cooldown: 1ms }
    claimHeaders: { x-user: sub, x-tenant: "org.id" }
  down:
    type: jwt
    issuer: "${ISS}"
    audiences: [api]
    algorithms: [ES256]
    jwks: { url: "${closedUrl}" }
  orders: { type: authorize, scopes: ["orders:read"] }
routes:
  api:  { match: { path: /api/ }, upstream: app, policies: [bearer, orders] }
  down: { match: { path: /down/ }, upstream: app, policies: [down] }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
`,
    );
    gw = await startTestGateway(path.join(dir, 'sb.yaml'));
  });
  after(async () => {
    await gw?.stop();
    await origin?.close();
    await idp?.close();
    await trap?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a valid token: 200, the upstream gets the consumer and the claims, not the token', async () => {
    const token = await sign(k1);
    const r = await get(`${gw.url}/api/orders`, { authorization: `Bearer ${token}`, 'x-user': 'root', 'x-consumer-name': 'root' });
    assert.equal(r.status, 200);
    const up = r.json.headers!;
    assert.equal(up['x-consumer-name'], 'alice');
    assert.equal(up['x-consumer-groups'], 'gold');
    assert.equal(up['x-user'], 'alice@example.com');
    assert.equal(up['x-tenant'], 'acme');
    assert.equal(up.authorization, undefined);
    assert.ok(!JSON.stringify(r.json).includes(token));
  });

  test('no token, a forged one, or one whose scopes do not fit: 401 / 403, nothing reaches the origin; jku is never followed', async () => {
    const seen = origin.seen.length;
    const none = await get(`${gw.url}/api/x`);
    assert.equal(none.status, 401);
    assert.equal(none.json.error?.code, 'AUTH_REQUIRED');
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    for (const token of [
      await sign(attacker, {}, { jku: trap.url }),
      await sign(attacker, {}, { x5u: trap.url }),
      await sign(k1, { exp: now() - 3600 }),
      await sign(k1, { aud: 'other' }),
      `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: ISS, aud: 'api', sub: 'alice@example.com', exp: now() + 60 })).toString('base64url')}.`,
    ]) {
      const r = await get(`${gw.url}/api/x`, { authorization: `Bearer ${token}` });
      assert.equal(r.status, 401);
      assert.equal(r.json.error?.code, 'AUTH_INVALID');
      assert.equal(r.headers['www-authenticate'], 'Bearer error="invalid_token"');
    }
    const noScope = await get(`${gw.url}/api/x`, { authorization: `Bearer ${await sign(k1, { scope: 'orders:write' })}` });
    assert.equal(noScope.status, 403);
    assert.equal(origin.seen.length, seen);
    assert.equal(trap.requests, 0, 'the jku/x5u server was never asked');
  });

  test('the provider rotates its key: a token with the new kid is accepted without a restart', async () => {
    const before = idp.requests;
    idp.doc = { keys: [k2.jwk] };
    const r = await get(`${gw.url}/api/rotated`, { authorization: `Bearer ${await sign(k2)}` });
    assert.equal(r.status, 200);
    assert.equal(r.json.headers!['x-consumer-name'], 'alice');
    assert.equal(idp.requests, before + 1);
  });

  test('a JWKS that cannot be fetched: 503 AUTH_UNAVAILABLE, not 401', async () => {
    const r = await get(`${gw.url}/down/x`, { authorization: `Bearer ${await sign(k1)}` });
    assert.equal(r.status, 503);
    assert.equal(r.json.error?.code, 'AUTH_UNAVAILABLE');
  });

  test('switchboard validate: an HMAC secret is never shown, an HMAC algorithm with a JWKS is refused', async () => {
    const file = path.join(dir, 'bad.yaml');
    const short = 'hunter2-too-short';
    await writeFile(
      file,
      `
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
policies:
  a: { type: jwt, issuer: "${ISS}", audiences: [api], algorithms: [HS256], secret: "${short}" }
  b: { type: jwt, issuer: "${ISS}", audiences: [api], algorithms: [HS256], jwks: { url: "${idp.url}" } }
`,
    );
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 2);
    const out = r.stdout + r.stderr;
    assert.match(out, /bad\.yaml:5:\d+: policies\.a\.secret: expected a string of at least 32 characters, found a value that is not shown \(a secret\)/);
    assert.match(out, /bad\.yaml:6:\d+: policies\.b\.algorithms: expected asymmetric algorithms .* an HMAC algorithm needs a secret, found HS256/);
    assert.ok(!out.includes(short), out);
  });
});

/**
 * `oidc-provider` as the identity provider: it issues JWT access tokens to the client `billing` by
 * the client_credentials grant for the resource `https://orders.example.test` (resource
 * indicators, `accessTokenFormat: jwt`), and the `jwt` policy verifies them with the keys at the
 * provider's `jwks_uri`, found by discovery. The provider then rotates its signing key (a restart
 * with a new first key, the old one still published): a token signed with the new key passes
 * without a gateway restart.
 */
describe('jwt with oidc-provider as the identity provider', () => {
  const RESOURCE = 'https://orders.example.test';
  const BILLING_SECRET = 'billing-secret';
  let origin: Origin;
  let idp: Idp;
  let gw: TestGateway;
  let dir: string;
  let k1: JWK;
  let k2: JWK;

  /** The provider's configuration with `keys` (the first one signs). */
  function providerConfig(keys: JWK[]): ProviderConfiguration {
    return {
      jwks: { keys },
      clients: [
        { client_id: 'billing', client_secret: BILLING_SECRET, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'orders:read' },
      ],
      scopes: ['orders:read'],
      ttl: { ClientCredentials: 600 },
      features: {
        clientCredentials: { enabled: true },
        devInteractions: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'orders:read', accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } }),
        },
      },
    };
  }

  /** A JWT access token for `billing` from the provider's token endpoint (client_credentials, for `resource`). */
  async function accessToken(resource = RESOURCE): Promise<string> {
    const res = await request(`${idp.issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`billing:${BILLING_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'orders:read', resource }).toString(),
    });
    const body = (await res.body.json()) as { access_token?: string };
    assert.equal(res.statusCode, 200, JSON.stringify(body));
    assert.equal(body.access_token!.split('.').length, 3, 'a JWT');
    return body.access_token!;
  }

  before(async () => {
    k1 = await signingKey('k1');
    k2 = await signingKey('k2');
    origin = await startOrigin('o');
    idp = await startIdp();
    idp.use(providerConfig([k1]));
    const discovery = await request(`${idp.issuer}/.well-known/openid-configuration`);
    const { jwks_uri: jwksUri } = (await discovery.body.json()) as { jwks_uri: string };
    dir = await mkdtemp(path.join(tmpdir(), 'switchboard-jwt-idp-'));
    await writeFile(
      path.join(dir, 'sb.yaml'),
      `
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
consumers:
  billing:
    groups: [services]
    credentials:
      - { type: jwt, subject: billing }
policies:
  bearer:
    type: jwt
    issuer: "${idp.issuer}"
    audiences: ["${RESOURCE}"]
    algorithms: [RS256]
    jwks: { url: "${jwksUri}", cooldown: 1ms }
    claimHeaders: { x-client: client_id }
  orders: { type: authorize, scopes: ["orders:read"] }
routes:
  api: { match: { path: /api/ }, upstream: app, policies: [bearer, orders] }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
`,
    );
    gw = await startTestGateway(path.join(dir, 'sb.yaml'));
  });
  after(async () => {
    await gw?.stop();
    await origin?.close();
    await idp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a client_credentials JWT of the provider: 200, the consumer and the claims upstream, not the token', async () => {
    const token = await accessToken();
    assert.equal(decodeProtectedHeader(token).kid, 'k1');
    const r = await get(`${gw.url}/api/orders`, { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const up = r.json.headers!;
    assert.equal(up['x-consumer-name'], 'billing');
    assert.equal(up['x-consumer-groups'], 'services');
    assert.equal(up['x-client'], 'billing');
    assert.equal(up.authorization, undefined);
  });

  test('a token of the provider for another resource (audience): 401 AUTH_INVALID', async () => {
    const r = await get(`${gw.url}/api/orders`, { authorization: `Bearer ${await accessToken('https://other.example.test')}` });
    assert.equal(r.status, 401);
    assert.equal(r.json.error?.code, 'AUTH_INVALID');
  });

  test('the provider rotates its signing key: the new key’s token passes without a gateway restart', async () => {
    const fetched = idp.requests.filter((r) => r === 'GET /jwks').length;
    idp.use(providerConfig([k2, k1]));
    const token = await accessToken();
    assert.equal(decodeProtectedHeader(token).kid, 'k2', 'the provider signs with the new key');
    const r = await get(`${gw.url}/api/orders`, { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.headers!['x-consumer-name'], 'billing');
    assert.equal(idp.requests.filter((r) => r === 'GET /jwks').length, fetched + 1, 'the unknown kid made the gateway fetch the JWKS again');
  });
});
