/**
 * The `oauth2-introspection` policy through a real gateway against a real authorization server:
 * `oidc-provider` on 127.0.0.1 port 0 issues an opaque access token to the client `billing` by the
 * client_credentials grant (no resource indicators, so the token is opaque), and the gateway, as
 * the client `gw`, introspects it (RFC 7662). An echo origin shows what went upstream. A made-up
 * token is 401; with the provider stopped, a token not yet cached is 503 AUTH_UNAVAILABLE.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { type Idp, signingKey, startIdp } from './helpers/idp.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { runCli } from './helpers/run-cli.ts';

/** The gateway's client secret at the provider: with characters that client_secret_basic must form-encode. */
const GW_SECRET = 'gw secret: with/odd+chars!';
const BILLING_SECRET = 'billing-secret';

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers });
  const json = (await res.body.json()) as { error?: { code: string }; headers?: Record<string, string> };
  return { status: res.statusCode, headers: res.headers, json };
}

describe('oauth2-introspection against oidc-provider', () => {
  let origin: Origin;
  let idp: Idp;
  let issuer: string;
  let gw: TestGateway;
  let dir: string;

  /** An opaque access token for `billing` from the provider's token endpoint (client_credentials). */
  async function clientCredentialsToken(): Promise<string> {
    const res = await request(`${issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`billing:${BILLING_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials&scope=orders%3Aread',
    });
    const body = (await res.body.json()) as { access_token?: string; token_type?: string };
    assert.equal(res.statusCode, 200, JSON.stringify(body));
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.access_token!.split('.').length, 1, 'an opaque token, not a JWT');
    return body.access_token!;
  }

  before(async () => {
    origin = await startOrigin('o');
    idp = await startIdp();
    issuer = idp.issuer;
    idp.use({
      jwks: { keys: [await signingKey('k1')] },
      clients: [
        { client_id: 'gw', client_secret: GW_SECRET, grant_types: [], redirect_uris: [], response_types: [] },
        { client_id: 'billing', client_secret: BILLING_SECRET, grant_types: ['client_credentials'], redirect_uris: [], response_types: [], scope: 'orders:read' },
      ],
      scopes: ['orders:read'],
      ttl: { ClientCredentials: 600 },
      features: {
        introspection: { enabled: true, allowedPolicy: async () => true },
        clientCredentials: { enabled: true },
        devInteractions: { enabled: false },
      },
    });
    process.env.SB_TEST_INTROSPECTION_SECRET = GW_SECRET;
    dir = await mkdtemp(path.join(tmpdir(), 'switchboard-introspection-'));
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
  opaque:
    type: oauth2-introspection
    endpoint: "${issuer}/token/introspection"
    clientId: gw
    clientSecret: "\${SB_TEST_INTROSPECTION_SECRET}"
    claimHeaders: { x-client: client_id, x-scope: scope }
  orders: { type: authorize, scopes: ["orders:read"] }
routes:
  api: { match: { path: /api/ }, upstream: app, policies: [opaque, orders] }
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
    delete process.env.SB_TEST_INTROSPECTION_SECRET;
    await rm(dir, { recursive: true, force: true });
  });

  let token: string;

  test('a client_credentials token: 200, the upstream gets the consumer, the claims and not the token', async () => {
    token = await clientCredentialsToken();
    const r = await get(`${gw.url}/api/orders`, { authorization: `Bearer ${token}`, 'x-consumer-name': 'root', 'x-client': 'spoof' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const up = r.json.headers!;
    assert.equal(up['x-consumer-name'], 'billing');
    assert.equal(up['x-consumer-groups'], 'services');
    assert.equal(up['x-client'], 'billing');
    assert.equal(up['x-scope'], 'orders:read');
    assert.equal(up.authorization, undefined);
    assert.ok(!JSON.stringify(r.json).includes(token));
  });

  test('a made-up token: 401 AUTH_INVALID with the Bearer error; no token: 401 AUTH_REQUIRED; nothing reaches the origin', async () => {
    const seen = origin.seen.length;
    const made = await get(`${gw.url}/api/x`, { authorization: 'Bearer made-up-token-1234567890' });
    assert.equal(made.status, 401);
    assert.equal(made.json.error?.code, 'AUTH_INVALID');
    assert.equal(made.headers['www-authenticate'], 'Bearer error="invalid_token"');
    const none = await get(`${gw.url}/api/x`);
    assert.equal(none.status, 401);
    assert.equal(none.json.error?.code, 'AUTH_REQUIRED');
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    assert.equal(origin.seen.length, seen);
  });

  test('the provider stopped: a token not cached is 503 AUTH_UNAVAILABLE (not 401); the cached one still passes', async () => {
    const fresh = await clientCredentialsToken();
    await idp.close();
    const r = await get(`${gw.url}/api/x`, { authorization: `Bearer ${fresh}` });
    assert.equal(r.status, 503);
    assert.equal(r.json.error?.code, 'AUTH_UNAVAILABLE');
    const cached = await get(`${gw.url}/api/x`, { authorization: `Bearer ${token}` });
    assert.equal(cached.status, 200);
    assert.equal(cached.json.headers!['x-consumer-name'], 'billing');
  });

  test('switchboard validate: a plain-http endpoint off loopback is refused; the client secret is never shown', async () => {
    const file = path.join(dir, 'bad.yaml');
    const secret = 'do-not-show-this-secret';
    await writeFile(
      file,
      `
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
policies:
  a: { type: oauth2-introspection, endpoint: "http://idp.example.com/introspect", clientId: gw, clientSecret: "${secret}" }
  b: { type: oauth2-introspection, endpoint: "https://idp.example.com/introspect", clientId: gw, clientSecret: 42 }
`,
    );
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 2);
    const out = r.stdout + r.stderr;
    assert.match(
      out,
      /bad\.yaml:5:\d+: policies\.a\.endpoint: expected an https:\/\/ URL \(plain http:\/\/ only to a loopback address\), found http:\/\/idp\.example\.com/,
    );
    assert.match(out, /bad\.yaml:6:\d+: policies\.b\.clientSecret: expected a string, found a value that is not shown \(a secret\)/);
    assert.ok(!out.includes(secret), out);
  });
});
