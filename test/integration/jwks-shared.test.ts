/**
 * The jwt policy's JWKS is fetched once for the machine (issue 13): `switchboard start` with
 * `workers: 2`, a JWKS server the test starts that counts its requests, and requests with tokens
 * on fresh connections so that both workers verify some. Many requests: one fetch; the provider
 * rotates its key and both workers meet the new `kid` at once: one refetch; hostile kids on both
 * workers within the cooldown: no refetch. With `state.backend: redis` the JWKS stays the machine's
 * (the supervisor's state): one fetch for the workers, nothing of it in Redis.
 *
 * Which worker served a request is told by its request id: each process draws its own random
 * prefix (http/session.ts), and the id comes back in `x-request-id`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Instance } from './helpers/instance.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startRedis, type RedisServer } from './helpers/redis-server.ts';
import { type Key, key, type KeyServer, keyServer } from './helpers/jwks.ts';

const ISS = 'https://idp.example.com';

/** A token of subject `sub` (a new subject: a new token, so no worker has it cached). */
function sign(k: Key, sub: string, kid = k.kid): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISS, aud: 'api', sub, iat: now, exp: now + 300 }).setProtectedHeader({ alg: 'ES256', kid }).sign(k.privateKey);
}

let dir: string;
let origin: Origin;
let rotating: KeyServer;
let guarded: KeyServer;
let k1: Key;
let k2: Key;
let inst: Instance;
const others: Instance[] = [];
let redis: RedisServer | undefined;
let redisKeys: KeyServer | undefined;
const agent = new Agent({ connections: 64, pipelining: 0 });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-jwks-'));
  k1 = await key('k1');
  k2 = await key('k2');
  origin = await startOrigin('o');
  rotating = await keyServer({ keys: [k1.jwk] });
  guarded = await keyServer({ keys: [k1.jwk] });
  // `rotating` has no cooldown: only the sharing can keep two workers from refetching one each.
  ({ inst } = await Instance.startWith(
    dir,
    'sb',
    `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
policies:
  rotating: { type: jwt, issuer: "${ISS}", audiences: [api], algorithms: [ES256], jwks: { url: "${rotating.url}", cooldown: 0 } }
  guarded: { type: jwt, issuer: "${ISS}", audiences: [api], algorithms: [ES256], jwks: { url: "${guarded.url}", cooldown: 1h } }
routes:
  rotating: { match: { path: /rotating/ }, upstream: app, policies: [rotating] }
  guarded: { match: { path: /guarded/ }, upstream: app, policies: [guarded] }
`,
  ));
});

after(async () => {
  inst?.kill();
  for (const i of others) i.kill();
  await redis?.stop().catch(() => undefined);
  await redisKeys?.close();
  await agent.close();
  await origin?.close();
  await rotating?.close();
  await guarded?.close();
  await rm(dir, { recursive: true, force: true });
});

/** `tokens.length` requests at once to `path`, each on a fresh connection: the statuses, and the workers that answered. */
async function burst(path: string, tokens: string[], on = inst): Promise<{ statuses: number[]; workers: Set<string> }> {
  const url = on.url('web');
  const answers = await Promise.all(
    tokens.map(async (token) => {
      const res = await request(`${url}${path}`, { dispatcher: agent, reset: true, headers: { authorization: `Bearer ${token}` } });
      await res.body.dump();
      return { status: res.statusCode, worker: String(res.headers['x-request-id']).slice(0, 24) };
    }),
  );
  return { statuses: answers.map((a) => a.status), workers: new Set(answers.map((a) => a.worker)) };
}

const tokens = (k: Key, n: number, prefix: string, kid?: string): Promise<string[]> => Promise.all(Array.from({ length: n }, (_, i) => sign(k, `${prefix}-${i}`, kid)));

test('workers: 2, many requests with tokens at once on both workers: the JWKS is fetched once for the machine', async () => {
  const { statuses, workers } = await burst('/rotating/x', await tokens(k1, 200, 'first'));
  assert.deepEqual(new Set(statuses), new Set([200]));
  assert.ok(workers.size >= 2, 'both workers verified tokens');
  assert.equal(rotating.requests, 1);
});

test('the provider rotates its key: tokens with the new kid on both workers at once cause one refetch, not one per worker', async () => {
  assert.equal(rotating.requests, 1);
  rotating.doc = { keys: [k2.jwk] };
  const { statuses, workers } = await burst('/rotating/x', await tokens(k2, 200, 'rotated'));
  assert.deepEqual(new Set(statuses), new Set([200]));
  assert.ok(workers.size >= 2, 'both workers met the new kid');
  assert.equal(rotating.requests, 2);
});

test('hostile kids on both workers within the cooldown (1h) of the machine’s one fetch: no refetch', async () => {
  const good = await burst('/guarded/x', await tokens(k1, 20, 'good'));
  assert.deepEqual(new Set(good.statuses), new Set([200]));
  assert.equal(guarded.requests, 1);
  const hostile = await burst('/guarded/x', await tokens(k1, 200, 'hostile', 'no-such-kid'));
  assert.deepEqual(new Set(hostile.statuses), new Set([401]));
  assert.ok(hostile.workers.size >= 2, 'both workers met the unknown kid');
  assert.equal(guarded.requests, 1);
});

test('state.backend: redis with workers: 2: the JWKS is still fetched once for the machine, and none of it is in Redis', async () => {
  redis = await startRedis();
  redisKeys = await keyServer({ keys: [k1.jwk] });
  const { inst: fleet } = await Instance.startWith(
    dir,
    'redis',
    `workers: 2
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
state: { backend: redis, redis: { url: "${redis.url}", prefix: "jwks-test:" } }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
policies:
  bearer: { type: jwt, issuer: "${ISS}", audiences: [api], algorithms: [ES256], jwks: { url: "${redisKeys.url}" } }
routes:
  all: { match: { path: / }, upstream: app, policies: [bearer] }
`,
  );
  others.push(fleet);
  const { statuses, workers } = await burst('/x', await tokens(k1, 200, 'redis'), fleet);
  assert.deepEqual(new Set(statuses), new Set([200]));
  assert.ok(workers.size >= 2, 'both workers verified tokens');
  assert.equal(redisKeys.requests, 1);
  const { stdout } = await promisify(execFile)('redis-cli', ['-p', String(redis.port), '--scan', '--pattern', '*']);
  assert.doesNotMatch(stdout, /jwks/, `keys in Redis: ${stdout}`);
});
