/**
 * WebSocket upgrades and gRPC calls through an authenticated, rate-limited route (issue 13): a
 * `jwt` policy (PEM key, tokens signed by jose in the test) or an `api-key` policy, then a
 * `rate-limit` per consumer. WebSocket: a valid credential opens the socket and the origin sees the
 * identity headers and not the credential; none gets the 401 before any upgrade; beyond the limit
 * 429. gRPC (@grpc/grpc-js over h2c and over TLS): the same decisions as gRPC statuses, a
 * Trailers-Only answer (UNAUTHENTICATED, RESOURCE_EXHAUSTED), as Envoy answers, never
 * "Received HTTP status code 401".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createPki, type TestPki } from './helpers/certs.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { guard } from './helpers/guard.ts';
import { echoClient, startGrpcServer, type EchoClient, type EchoReply, type GrpcServer } from './helpers/grpc.ts';
import { closedWs, nextMessage, openWs, refusedWs, startWsOrigin, wsUrl, type WsOrigin } from './helpers/websocket.ts';

const ISS = 'https://idp.example.com';
const ALICE_KEY = 'alice-key-0123456789abcdef0123456789';
const LIMIT = 3;
const GUARD_MS = 5000;
const NAME = 'grpc.switchboard.test';

let signingKey: CryptoKey;
let publicPem: string;
let wsOrigin: WsOrigin;
let grpcServer: GrpcServer;
let pki: TestPki;
let plain: TestGateway;
let tls: TestGateway;

/** A token of `sub` signed with the test's key (ES256), valid for five minutes. */
function token(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISS, aud: 'api', sub, iat: now, exp: now + 300 }).setProtectedHeader({ alg: 'ES256' }).sign(signingKey);
}

/**
 * Routes: `/ws/` (jwt, then a limit of LIMIT per consumer) to the WebSocket origin, and the Echo
 * service's methods (`/switchboard.test.Echo/`) to the gRPC server: jwt or api-key, then the same
 * limit. Each route has its own rate-limit policy, so each test counts from zero per consumer.
 */
function config(listener: object): object {
  const jwt = { type: 'jwt', issuer: ISS, audiences: ['api'], algorithms: ['ES256'], keys: [publicPem] };
  const limit = { type: 'rate-limit', key: 'consumer', limit: LIMIT, window: '1d' };
  return {
    listeners: { web: { address: '127.0.0.1:0', ...listener } },
    consumers: { alice: { groups: ['gold'], credentials: [{ type: 'api-key', key: ALICE_KEY }] } },
    policies: { bearer: jwt, key: { type: 'api-key' }, wsLimit: limit, grpcLimit: limit },
    routes: {
      ws: { match: { path: '/ws/' }, upstream: 'ws', policies: ['bearer', 'wsLimit'] },
      grpc: { match: { path: '/switchboard.test.Echo/' }, upstream: 'echo', policies: ['bearer', 'key', 'grpcLimit'] },
    },
    upstreams: {
      ws: { endpoints: [{ url: wsOrigin.url }] },
      echo: { protocol: 'h2c', endpoints: [{ url: grpcServer.url }] },
    },
  };
}

before(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signingKey = pair.privateKey;
  publicPem = await exportSPKI(pair.publicKey);
  wsOrigin = await startWsOrigin('ws');
  grpcServer = await startGrpcServer('g');
  pki = await createPki();
  const cert = await pki.issue({ names: [NAME] });
  plain = await startTestGateway(config({ protocol: 'http', h2c: true }));
  tls = await startTestGateway(config({ protocol: 'https', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] } }));
});

after(async () => {
  await plain?.stop();
  await tls?.stop();
  await wsOrigin?.close();
  await grpcServer?.close();
  await pki?.cleanup();
});

describe('WebSocket upgrades through jwt + rate-limit', () => {
  test('a valid token opens the socket; the origin sees the consumer, not the token', async () => {
    const bearer = await token('ws-one');
    const before = wsOrigin.upgrades.length;
    const { ws } = await openWs(wsUrl(plain.url, '/ws/chat'), { headers: { authorization: `Bearer ${bearer}`, 'x-consumer-name': 'root' } });
    ws.send('ping');
    assert.equal((await nextMessage(ws)).data.toString(), 'ping');
    const closed = closedWs(ws);
    ws.close(1000);
    await closed;
    const up = wsOrigin.upgrades[before]!.headers;
    assert.equal(up['x-consumer-name'], 'ws-one', 'the identity header, the client’s own replaced');
    assert.equal(up.authorization, undefined, 'the token stays at the gateway');
  });

  test('no token: 401 AUTH_REQUIRED as the HTTP answer to the upgrade; nothing reaches the origin', async () => {
    const before = wsOrigin.upgrades.length;
    const refused = await refusedWs(wsUrl(plain.url, '/ws/chat'));
    assert.equal(refused.status, 401);
    assert.equal(refused.headers['www-authenticate'], 'Bearer');
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'AUTH_REQUIRED');
    const forged = await refusedWs(wsUrl(plain.url, '/ws/chat'), { headers: { authorization: 'Bearer not.a.token' } });
    assert.equal(forged.status, 401);
    assert.equal((JSON.parse(forged.body) as { error: { code: string } }).error.code, 'AUTH_INVALID');
    assert.equal(wsOrigin.upgrades.length, before);
  });

  test(`beyond the limit (${LIMIT} per consumer): 429 RATE_LIMITED with Retry-After; another consumer still opens`, async () => {
    const bearer = await token('ws-limited');
    const before = wsOrigin.upgrades.length;
    for (let i = 0; i < LIMIT; i++) {
      const { ws } = await openWs(wsUrl(plain.url, `/ws/${i}`), { headers: { authorization: `Bearer ${bearer}` } });
      ws.terminate();
    }
    const over = await refusedWs(wsUrl(plain.url, '/ws/over'), { headers: { authorization: `Bearer ${bearer}` } });
    assert.equal(over.status, 429);
    assert.equal((JSON.parse(over.body) as { error: { code: string } }).error.code, 'RATE_LIMITED');
    assert.ok(Number(over.headers['retry-after']) > 0, `Retry-After: ${over.headers['retry-after']}`);
    assert.equal(wsOrigin.upgrades.length, before + LIMIT, 'the refused upgrade never reached the origin');
    const { ws } = await openWs(wsUrl(plain.url, '/ws/other'), { headers: { authorization: `Bearer ${await token('ws-other')}` } });
    ws.terminate();
  });
});

interface CallResult {
  err: grpc.ServiceError | null;
  res: EchoReply | undefined;
}

/** One Unary call with `metadata` (as `name: value` pairs). */
function call(client: EchoClient, metadata: Record<string, string>, text = 'hello'): Promise<CallResult> {
  const md = new grpc.Metadata();
  for (const [name, value] of Object.entries(metadata)) md.set(name, value);
  return guard(
    new Promise<CallResult>((resolve) => {
      client.Unary({ text, count: 0 }, md, {}, (err, res) => resolve({ err, res }));
    }),
    'a unary call',
    GUARD_MS,
  );
}

/** The calls every gRPC client runs, over h2c or TLS; `sub` names this run's consumers apart. */
function grpcCalls(ctx: () => { client: EchoClient; sub: string }): void {
  test('a valid token in the metadata: OK; the server sees the consumer and not the token', async () => {
    const { client, sub } = ctx();
    const before = grpcServer.calls.length;
    const r = await call(client, { authorization: `Bearer ${await token(`${sub}-ok`)}`, 'x-consumer-name': 'root' });
    assert.equal(r.err, null);
    assert.equal(r.res?.text, 'hello');
    const seen = grpcServer.calls[before]!.metadata;
    assert.deepEqual(seen.get('x-consumer-name'), [`${sub}-ok`]);
    assert.deepEqual(seen.get('authorization'), []);
  });

  test('an api key in the metadata: OK as its consumer, the key removed', async () => {
    const { client } = ctx();
    const before = grpcServer.calls.length;
    const r = await call(client, { 'x-api-key': ALICE_KEY });
    assert.equal(r.err, null);
    const seen = grpcServer.calls[before]!.metadata;
    assert.deepEqual(seen.get('x-consumer-name'), ['alice']);
    assert.deepEqual(seen.get('x-consumer-groups'), ['gold']);
    assert.deepEqual(seen.get('x-api-key'), []);
  });

  test('no credential, or a bad one: UNAUTHENTICATED with the error code, not an HTTP status; nothing reaches the server', async () => {
    const { client } = ctx();
    const before = grpcServer.calls.length;
    const none = await call(client, {});
    assert.equal(none.err?.code, grpc.status.UNAUTHENTICATED, String(none.err?.details));
    assert.equal(none.err?.details, 'AUTH_REQUIRED: this route needs a credential');
    assert.ok(none.err?.metadata.get('x-request-id')[0], 'the status names the request');
    // A token of our issuer signed with another key (a token of no issuer would be left to the api-key policy).
    const forged = await new SignJWT({ iss: ISS, aud: 'api', sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 300 })
      .setProtectedHeader({ alg: 'ES256' })
      .sign((await generateKeyPair('ES256')).privateKey);
    const bad = await call(client, { authorization: `Bearer ${forged}` });
    assert.equal(bad.err?.code, grpc.status.UNAUTHENTICATED, String(bad.err?.details));
    assert.equal(bad.err?.details, 'AUTH_INVALID: the credential was not accepted');
    assert.equal(grpcServer.calls.length, before);
  });

  test(`beyond the limit (${LIMIT} per consumer): RESOURCE_EXHAUSTED; another consumer still passes`, async () => {
    const { client, sub } = ctx();
    const bearer = await token(`${sub}-limited`);
    const before = grpcServer.calls.length;
    for (let i = 0; i < LIMIT; i++) assert.equal((await call(client, { authorization: `Bearer ${bearer}` })).err, null, `call ${i + 1}`);
    const over = await call(client, { authorization: `Bearer ${bearer}` });
    assert.equal(over.err?.code, grpc.status.RESOURCE_EXHAUSTED, String(over.err?.details));
    assert.match(over.err?.details ?? '', /^RATE_LIMITED: /);
    assert.equal(grpcServer.calls.length, before + LIMIT, 'the refused call never reached the server');
    assert.equal((await call(client, { authorization: `Bearer ${await token(`${sub}-other`)}` })).err, null);
  });
}

describe('gRPC over h2c through jwt / api-key + rate-limit', () => {
  let client: EchoClient;
  before(() => {
    client = echoClient(`127.0.0.1:${plain.port}`);
  });
  after(() => client.close());
  grpcCalls(() => ({ client, sub: 'h2c' }));
});

describe('gRPC over TLS (h2 by ALPN) through jwt / api-key + rate-limit', () => {
  let client: EchoClient;
  before(() => {
    client = echoClient(`127.0.0.1:${tls.port}`, grpc.credentials.createSsl(Buffer.from(pki.ca.cert)), { 'grpc.ssl_target_name_override': NAME });
  });
  after(() => client.close());
  grpcCalls(() => ({ client, sub: 'tls' }));
});
