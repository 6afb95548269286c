/**
 * Policies' metrics (issue 13, "Metrics and logs"): the real gateway with metrics on, real origins,
 * real clients; each family's exact values after a known set of requests. Authentication outcomes
 * by policy and result (api-key, basic-auth any-of, anonymous, authorize), rate-limit, quota and
 * concurrency-limit decisions, the policy that answered a request, the JWKS and introspection
 * fetches of token policies (servers the test starts) with their durations, and the decisions the
 * shared state's fallback answered while a real Redis was down. Never a consumer, key or token in
 * a label; the access log names the consumer, the error code and the policy that answered.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { exportJWK, generateKeyPair, type JWK, SignJWT, type CryptoKey } from 'jose';
import { request } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { closedPort, startOrigin, type Origin } from './helpers/origin.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { samples, total, type Sample } from './helpers/metrics.ts';

const ALICE_KEY = randomBytes(24).toString('hex');
const BOB_KEY = randomBytes(24).toString('hex');
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const origins: Origin[] = [];
const gateways: Gateway[] = [];
const servers: RedisServer[] = [];
const dirs: string[] = [];
after(async () => {
  for (const gw of gateways) await gw.stop({ drainTimeout: 1000 }).catch(() => undefined);
  await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
  await Promise.all(origins.map((o) => o.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function origin(name: string, handler?: Parameters<typeof startOrigin>[1]): Promise<Origin> {
  const o = await startOrigin(name, handler);
  origins.push(o);
  return o;
}

async function start(config: object, accessLog = 'off'): Promise<Gateway> {
  const gw = await startGateway({ config, accessLog, logLevel: 'silent', metrics: true });
  gateways.push(gw);
  return gw;
}

async function scrape(gw: Gateway): Promise<{ m: Sample[]; body: string }> {
  const { body } = await gw.metrics!.render(undefined);
  return { m: samples(body), body };
}

async function status(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(url, { headers });
  await res.body.dump();
  return res.statusCode;
}

/** The values of family `name` by one label, among the samples that have `labels`. */
function byLabel(m: Sample[], name: string, label: string, labels: Record<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of m) {
    if (s.name !== name || !Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue;
    out[s.labels[label]!] = (out[s.labels[label]!] ?? 0) + s.value;
  }
  return out;
}

test('authentication, authorize, rate-limit, quota and concurrency-limit decisions by policy and result; the answering policy; the access log', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  const app = await origin('app');
  const slow = await origin('slow', (_req, res) => {
    arrived();
    void held.then(() => res.end('late'));
  });
  const dir = await mkdtemp(path.join(tmpdir(), 'switchboard-policy-metrics-'));
  dirs.push(dir);
  const logFile = path.join(dir, 'access.log');
  const gw = await start(
    {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      consumers: {
        alice: {
          groups: ['gold'],
          credentials: [
            { type: 'api-key', key: ALICE_KEY },
            { type: 'basic', username: 'alice', password: bcrypt.hashSync('alice-pw', 4) },
          ],
        },
        bob: { credentials: [{ type: 'api-key', key: BOB_KEY }] },
        guest: {},
      },
      policies: {
        keys: { type: 'api-key' },
        login: { type: 'basic-auth' },
        'keys-or-anon': { type: 'api-key', anonymous: 'guest' },
        'gold-only': { type: 'authorize', groups: ['gold'] },
        'per-consumer': { type: 'rate-limit', key: 'consumer', limit: 2, window: '1d' },
        paced: { type: 'rate-limit', key: 'consumer', limit: 2, window: '1s', mode: 'delay' },
        daily: { type: 'quota', key: 'consumer', limit: 3, period: 'day' },
        'one-at-a-time': { type: 'concurrency-limit', key: 'consumer', limit: 1 },
        health: { type: 'respond', body: 'ok' },
      },
      routes: {
        limited: { match: { path: '/limited/' }, upstream: 'app', policies: ['keys', 'per-consumer'] },
        quota: { match: { path: '/quota/' }, upstream: 'app', policies: ['keys', 'daily'] },
        paced: { match: { path: '/paced/' }, upstream: 'app', policies: ['keys', 'paced'] },
        gold: { match: { path: '/gold/' }, upstream: 'app', policies: ['keys', 'gold-only'] },
        either: { match: { path: '/either/' }, upstream: 'app', policies: ['keys', 'login'] },
        open: { match: { path: '/open/' }, upstream: 'app', policies: ['keys-or-anon'] },
        slow: { match: { path: '/slow/' }, upstream: 'slow', policies: ['keys', 'one-at-a-time'] },
        health: { match: { path: '/health' }, policies: ['health'] },
      },
      upstreams: { app: { endpoints: [{ url: app.url }] }, slow: { endpoints: [{ url: slow.url }] } },
    },
    logFile,
  );
  const base = gw.url('web');
  const alice = { 'x-api-key': ALICE_KEY };
  const bob = { 'x-api-key': BOB_KEY };

  // rate-limit 2 per day per consumer: alice's third is 429; a wrong key and none are 401.
  const limited = [];
  for (let i = 0; i < 3; i++) limited.push(await status(`${base}/limited/${i}`, { ...alice, 'x-request-id': `limited-${i}` }));
  assert.deepEqual(limited, [200, 200, 429]);
  assert.equal(await status(`${base}/limited/x`, { 'x-api-key': 'not-a-key' }), 401);
  assert.equal(await status(`${base}/limited/x`), 401);
  // mode delay, one request per 500 ms: of two at once, the second waits its turn.
  assert.deepEqual(await Promise.all([status(`${base}/paced/1`, alice), status(`${base}/paced/2`, alice)]), [200, 200]);
  // quota 3 per day per consumer: bob's fourth is 429.
  const quota = [];
  for (let i = 0; i < 4; i++) quota.push(await status(`${base}/quota/${i}`, bob));
  assert.deepEqual(quota, [200, 200, 200, 429]);
  // authorize: alice is gold, bob is not.
  assert.equal(await status(`${base}/gold/x`, alice), 200);
  assert.equal(await status(`${base}/gold/x`, bob), 403);
  // any-of: a Basic credential passes the api-key policy on to basic-auth.
  assert.equal(await status(`${base}/either/x`, { authorization: basic('alice', 'alice-pw') }), 200);
  // anonymous: no key is the guest; a key is its consumer.
  assert.equal(await status(`${base}/open/x`), 200);
  assert.equal(await status(`${base}/open/x`, alice), 200);
  // concurrency-limit 1: a second request of alice while the first is held at the origin is 429.
  const first = status(`${base}/slow/1`, alice);
  await arrival;
  assert.equal(await status(`${base}/slow/2`, alice), 429);
  release();
  assert.equal(await first, 200);
  assert.equal(await status(`${base}/health`), 200);

  const { m, body } = await scrape(gw);
  // api-key `keys`: 3 + 2 + 4 + 2 + 2 verified, one wrong key, one missing, one passed on to basic-auth.
  assert.deepEqual(byLabel(m, 'switchboard_auth_decisions_total', 'result', { policy: 'keys', type: 'api-key' }), {
    success: 13,
    invalid: 1,
    missing: 1,
    passed: 1,
  });
  assert.deepEqual(byLabel(m, 'switchboard_auth_decisions_total', 'result', { policy: 'login', type: 'basic-auth' }), { success: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_auth_decisions_total', 'result', { policy: 'keys-or-anon' }), { anonymous: 1, success: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_auth_decisions_total', 'result', { policy: 'gold-only', type: 'authorize' }), { success: 1, forbidden: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_rate_limit_decisions_total', 'result', { policy: 'per-consumer' }), { allowed: 2, limited: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_rate_limit_decisions_total', 'result', { policy: 'paced' }), { allowed: 1, delayed: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_quota_decisions_total', 'result', { policy: 'daily' }), { allowed: 3, limited: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_concurrency_limit_decisions_total', 'result', { policy: 'one-at-a-time' }), { allowed: 1, limited: 1 });
  assert.equal(total(m, 'switchboard_state_fallback_decisions_total'), 0, 'the state answered every decision');
  // The policy whose answer the client got, by status class and code.
  const answers = (policy: string) => byLabel(m, 'switchboard_policy_answers_total', 'code', { policy });
  assert.deepEqual(answers('keys'), { AUTH_INVALID: 1, AUTH_REQUIRED: 1 });
  assert.deepEqual(answers('per-consumer'), { RATE_LIMITED: 1 });
  assert.deepEqual(answers('daily'), { QUOTA_EXCEEDED: 1 });
  assert.deepEqual(answers('gold-only'), { FORBIDDEN: 1 });
  assert.deepEqual(answers('one-at-a-time'), { CONCURRENCY_LIMITED: 1 });
  assert.equal(total(m, 'switchboard_policy_answers_total', { policy: 'health', status_class: '2xx', code: '' }), 1);
  assert.equal(total(m, 'switchboard_policy_answers_total'), 7, 'requests that went upstream were answered by no policy');
  // The request counts agree: the refusal is the request's error code.
  assert.equal(total(m, 'switchboard_requests_total', { route: 'limited', code: 'RATE_LIMITED' }), 1);
  // Never a consumer, a key or a password in a label.
  for (const secret of [ALICE_KEY, BOB_KEY, 'alice', 'bob', 'guest', 'alice-pw']) assert.ok(!body.includes(secret), `${secret} is in no label`);

  await gw.stop({ drainTimeout: 1000 });
  const lines = (await readFile(logFile, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { requestId: string; consumer: string | null; error: string | null; policy: string | null; status: number });
  const byId = new Map(lines.map((l) => [l.requestId, l]));
  assert.deepEqual(
    [0, 2].map((i) => {
      const l = byId.get(`limited-${i}`)!;
      return [l.status, l.consumer, l.error, l.policy];
    }),
    [
      [200, 'alice', null, null],
      [429, 'alice', 'RATE_LIMITED', 'per-consumer'],
    ],
  );
  const refusedByKeys = lines.filter((l) => l.policy === 'keys').map((l) => [l.error, l.consumer]);
  assert.deepEqual(refusedByKeys.sort(), [
    ['AUTH_INVALID', null],
    ['AUTH_REQUIRED', null],
  ]);
  const text = lines.map((l) => JSON.stringify(l)).join('\n');
  for (const secret of [ALICE_KEY, BOB_KEY, 'not-a-key', 'alice-pw']) assert.ok(!text.includes(secret), 'no credential in the access log');
});

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
}

const ISS = 'https://idp.example.com';
const now = (): number => Math.floor(Date.now() / 1000);
const jwt = (k: SigningKey): Promise<string> =>
  new SignJWT({ iss: ISS, aud: 'api', sub: 'svc@example.com', iat: now(), exp: now() + 300 }).setProtectedHeader({ alg: 'ES256', kid: k.kid }).sign(k.privateKey);

test('token policies: JWKS and introspection fetches counted with their durations, by policy, kind and result; their decisions', async () => {
  const k1 = await signingKey('k1');
  const forged = await signingKey('k1'); // the same kid, another key: the signature does not verify
  const idp = await origin('jwks', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [k1.jwk] }));
  });
  // An introspection endpoint (RFC 7662): `good` is active, `boom` a server error, anything else inactive.
  const introspection = await origin('introspection', (req, res) => {
    let form = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (form += d));
    req.on('end', () => {
      const token = new URLSearchParams(form).get('token');
      if (token === 'boom') {
        res.writeHead(500).end();
        return;
      }
      const answer = token === 'good' ? { active: true, sub: 'billing', scope: 'orders:read', exp: now() + 300 } : { active: false };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  const app = await origin('app');
  const gw = await start({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    policies: {
      bearer: { type: 'jwt', issuer: ISS, audiences: ['api'], algorithms: ['ES256'], jwks: { url: `${idp.url}/jwks.json` } },
      down: { type: 'jwt', issuer: ISS, audiences: ['api'], algorithms: ['ES256'], jwks: { url: `http://127.0.0.1:${await closedPort()}/jwks.json` } },
      opaque: { type: 'oauth2-introspection', endpoint: `${introspection.url}/introspect`, clientId: 'gw', clientSecret: 'gw-secret' },
    },
    routes: {
      jwt: { match: { path: '/jwt/' }, upstream: 'app', policies: ['bearer'] },
      down: { match: { path: '/down/' }, upstream: 'app', policies: ['down'] },
      opaque: { match: { path: '/opaque/' }, upstream: 'app', policies: ['opaque'] },
    },
    upstreams: { app: { endpoints: [{ url: app.url }] } },
  });
  const base = gw.url('web');
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const token = await jwt(k1);
  // One fetch of the JWKS; the second request finds the token verified already.
  assert.equal(await status(`${base}/jwt/a`, bearer(token)), 200);
  assert.equal(await status(`${base}/jwt/b`, bearer(token)), 200);
  assert.equal(await status(`${base}/jwt/c`, bearer(await jwt(forged))), 401);
  assert.equal(await status(`${base}/jwt/d`), 401);
  // The JWKS cannot be fetched: one failed fetch, then the cooldown (30 s) answers without one.
  assert.equal(await status(`${base}/down/a`, bearer(token)), 503);
  assert.equal(await status(`${base}/down/b`, bearer(token)), 503);
  // Introspection: `good` once (then cached), `nope` inactive, `boom` a failure (never cached: asked twice).
  assert.equal(await status(`${base}/opaque/a`, bearer('good')), 200);
  assert.equal(await status(`${base}/opaque/b`, bearer('good')), 200);
  assert.equal(await status(`${base}/opaque/c`, bearer('nope')), 401);
  assert.equal(await status(`${base}/opaque/d`, bearer('boom')), 503);
  assert.equal(await status(`${base}/opaque/e`, bearer('boom')), 503);

  const { m, body } = await scrape(gw);
  const fetches = (policy: string, kind: string, result: string) => total(m, 'switchboard_auth_fetch_duration_seconds_count', { policy, kind, result });
  assert.deepEqual(
    [fetches('bearer', 'jwks', 'success'), fetches('bearer', 'jwks', 'failure'), fetches('down', 'jwks', 'success'), fetches('down', 'jwks', 'failure')],
    [1, 0, 0, 1],
  );
  assert.deepEqual([fetches('opaque', 'introspection', 'success'), fetches('opaque', 'introspection', 'failure')], [2, 2]);
  assert.equal(total(m, 'switchboard_auth_fetch_duration_seconds_bucket', { policy: 'opaque', result: 'success', le: '+Inf' }), 2);
  assert.ok(total(m, 'switchboard_auth_fetch_duration_seconds_sum', { policy: 'bearer' }) > 0, 'the fetch took some time');
  assert.deepEqual(byLabel(m, 'switchboard_auth_decisions_total', 'result', { policy: 'bearer', type: 'jwt' }), { success: 2, invalid: 1, missing: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_auth_decisions_total', 'result', { policy: 'down' }), { unavailable: 2 });
  assert.deepEqual(byLabel(m, 'switchboard_auth_decisions_total', 'result', { policy: 'opaque', type: 'oauth2-introspection' }), {
    success: 2,
    invalid: 1,
    unavailable: 2,
  });
  assert.ok(!body.includes(token) && !body.includes('good') && !body.includes('svc@example.com') && !body.includes('billing'), 'no token or subject in a label');
});

test('Redis down: the decisions of the fallback are counted per policy and mode (failOpen true and false), beside the outage', async () => {
  const app = await origin('app');
  const redis = await startRedis();
  servers.push(redis);
  const gw = await start({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: app.url }] } },
    // A command timeout far above a loaded machine's stalls: a reply it read late is not an outage (a
    // fallback answer would change the counts). A stopped Redis closes the connection: answered at once.
    state: { backend: 'redis', redis: { url: redis.url, prefix: `pm${process.pid}:`, commandTimeout: '30s', connectTimeout: '1s' } },
    policies: {
      open: { type: 'rate-limit', key: 'ip', limit: 1000, window: '1d', failOpen: true },
      closed: { type: 'rate-limit', key: 'ip', limit: 1000, window: '1d', failOpen: false },
      monthly: { type: 'quota', key: 'ip', limit: 1000, period: 'month', failOpen: false },
    },
    routes: {
      open: { match: { path: '/open' }, upstream: 'app', policies: ['open'] },
      closed: { match: { path: '/closed' }, upstream: 'app', policies: ['closed'] },
      monthly: { match: { path: '/monthly' }, upstream: 'app', policies: ['monthly'] },
    },
  });
  const base = gw.url('web');
  assert.equal(await status(`${base}/open`), 200);
  assert.equal(await status(`${base}/closed`), 200);
  assert.equal(await status(`${base}/monthly`), 200);
  await redis.stop('SIGKILL');
  assert.equal(await status(`${base}/open`), 200, 'failOpen: true lets through');
  assert.equal(await status(`${base}/closed`), 429, 'failOpen: false refuses');
  assert.equal(await status(`${base}/monthly`), 429, 'failOpen: false refuses');

  const { m } = await scrape(gw);
  assert.deepEqual(byLabel(m, 'switchboard_rate_limit_decisions_total', 'result', { policy: 'open' }), { allowed: 1, failed_open: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_rate_limit_decisions_total', 'result', { policy: 'closed' }), { allowed: 1, failed_closed: 1 });
  assert.deepEqual(byLabel(m, 'switchboard_quota_decisions_total', 'result', { policy: 'monthly' }), { allowed: 1, failed_closed: 1 });
  assert.equal(total(m, 'switchboard_state_fallback_decisions_total', { policy: 'open', type: 'rate-limit', mode: 'open' }), 1);
  assert.equal(total(m, 'switchboard_state_fallback_decisions_total', { policy: 'closed', type: 'rate-limit', mode: 'closed' }), 1);
  assert.equal(total(m, 'switchboard_state_fallback_decisions_total', { policy: 'monthly', type: 'quota', mode: 'closed' }), 1);
  assert.equal(total(m, 'switchboard_state_fallback_decisions_total'), 3);
  assert.equal(total(m, 'switchboard_state_outages_total', { backend: 'redis' }), 1);
  assert.equal(total(m, 'switchboard_state_up', { backend: 'redis' }), 0);
});
