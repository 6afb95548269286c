/**
 * Consumers with api-key and basic-auth through real listeners: a real origin that echoes the
 * headers it got shows what went upstream (identity headers set, client copies removed, the
 * credential stripped); over HTTP/1.1, HTTP/2 (h2c) and a WebSocket upgrade; several
 * authentication policies on one route (any-of) and `anonymous`; `authorize` by group; the consumer in the access log;
 * and `switchboard validate` on configs with a plain password or a duplicate key, whose errors
 * name file:line:column and never the secret.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { argon2Sync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { request } from 'undici';
import { startGateway } from '../../src/index.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { closeSession, connectH2, h2request } from './helpers/h2-client.ts';
import { openWs, refusedWs, startWsOrigin, wsUrl, type WsOrigin } from './helpers/websocket.ts';
import { runCli } from './helpers/run-cli.ts';
import { guard } from './helpers/guard.ts';

const ALICE_KEY = randomBytes(24).toString('hex');
const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');
const salt = randomBytes(16);
const ARGON2 = `$argon2id$v=19$m=256,t=2,p=1$${b64(salt)}$${b64(argon2Sync('argon2id', { message: 'carol-pw', nonce: salt, parallelism: 1, tagLength: 32, memory: 256, passes: 2 }))}`;
const BCRYPT = bcrypt.hashSync('alice-pw', 4);
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function config(origin: string, ws: string): string {
  return `
listeners:
  web: { address: "127.0.0.1:0", protocol: http, h2c: true }
consumers:
  alice:
    groups: [gold, beta]
    credentials:
      - { type: api-key, key: "${ALICE_KEY}" }
      - { type: basic, username: alice, password: "${BCRYPT}" }
  carol:
    groups: [silver]
    credentials:
      - { type: basic, username: carol, password: "${ARGON2}" }
  guest: { groups: [free] }
policies:
  keys:  { type: api-key, query: apikey, cookie: sb_key }
  login: { type: basic-auth, realm: api }
  keys-or-guest: { type: api-key, anonymous: guest }
  gold-only: { type: authorize, groups: [gold] }
  keys-req:  { type: api-key, required: true }
  login-req: { type: basic-auth, realm: api, required: true }
routes:
  keys:   { match: { path: /keys/ }, upstream: app, policies: [keys] }
  basic:  { match: { path: /basic/ }, upstream: app, policies: [login] }
  either: { match: { path: /either/ }, upstream: app, policies: [keys, login] }
  open:   { match: { path: /open/ }, upstream: app, policies: [keys-or-guest] }
  plain:  { match: { path: /plain/ }, upstream: app }
  gold:   { match: { path: /gold/ }, upstream: app, policies: [keys, login, gold-only] }
  both:   { match: { path: /both/ }, upstream: app, policies: [keys-req, login-req] }
  ws:     { match: { path: /ws/ }, upstream: ws, policies: [keys] }
upstreams:
  app: { endpoints: [{ url: "${origin}" }] }
  ws:  { endpoints: [{ url: "${ws}" }] }
`;
}

interface Echo {
  url: string;
  headers: Record<string, string>;
}

async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; json: { error?: { code: string } } & Partial<Echo> }> {
  const res = await request(url, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) as { error?: { code: string } } & Partial<Echo> };
}

describe('api-key and basic-auth', () => {
  let origin: Origin;
  let wsOrigin: WsOrigin;
  let gw: TestGateway;
  let dir: string;

  before(async () => {
    origin = await startOrigin('o');
    wsOrigin = await startWsOrigin('w');
    dir = await mkdtemp(path.join(tmpdir(), 'switchboard-auth-'));
    await writeFile(path.join(dir, 'sb.yaml'), config(origin.url, wsOrigin.url));
    gw = await startTestGateway(path.join(dir, 'sb.yaml'));
  });
  after(async () => {
    await gw.stop();
    await origin.close();
    await wsOrigin.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('a key in the header, the query or a cookie: the upstream gets the identity, not the key', async () => {
    for (const [how, url, headers] of [
      ['header', '/keys/a?x=1', { 'x-api-key': ALICE_KEY }],
      ['query', `/keys/a?x=1&apikey=${ALICE_KEY}`, {}],
      ['cookie', '/keys/a?x=1', { cookie: `theme=dark; sb_key=${ALICE_KEY}` }],
    ] as Array<[string, string, Record<string, string>]>) {
      const r = await get(`${gw.url}${url}`, { ...headers, 'x-consumer-name': 'admin', 'x-consumer-groups': 'root' });
      assert.equal(r.status, 200, how);
      const up = r.json.headers!;
      assert.equal(up['x-consumer-name'], 'alice', `${how}: the spoofed name replaced`);
      assert.equal(up['x-consumer-groups'], 'gold,beta', how);
      assert.equal(up['x-api-key'], undefined, how);
      assert.equal(r.json.url, '/keys/a?x=1', `${how}: the query parameter removed`);
      assert.equal(up.cookie, how === 'cookie' ? 'theme=dark' : undefined, `${how}: the key cookie removed, the others kept`);
      assert.ok(!JSON.stringify(r.json).includes(ALICE_KEY), `${how}: the key never reaches the upstream`);
    }
  });

  test('missing and wrong keys: 401 with the JSON error body and a challenge; nothing reaches the origin', async () => {
    const seen = origin.seen.length;
    const missing = await get(`${gw.url}/keys/a`);
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error?.code, 'AUTH_REQUIRED');
    assert.equal(missing.headers['www-authenticate'], 'ApiKey header="x-api-key"');
    for (const wrong of [`${ALICE_KEY}0`, ALICE_KEY.slice(1), 'x']) {
      const r = await get(`${gw.url}/keys/a`, { 'x-api-key': wrong });
      assert.equal(r.status, 401);
      assert.equal(r.json.error?.code, 'AUTH_INVALID');
    }
    assert.equal(origin.seen.length, seen);
  });

  test('basic-auth with bcrypt and argon2 hashes; Authorization stripped; 401 carries the realm', async () => {
    const a = await get(`${gw.url}/basic/x`, { authorization: basic('alice', 'alice-pw') });
    assert.equal(a.status, 200);
    assert.equal(a.json.headers!['x-consumer-name'], 'alice');
    assert.equal(a.json.headers!.authorization, undefined);
    const c = await get(`${gw.url}/basic/x`, { authorization: basic('carol', 'carol-pw') });
    assert.equal(c.status, 200);
    assert.equal(c.json.headers!['x-consumer-name'], 'carol');
    assert.equal(c.json.headers!['x-consumer-groups'], 'silver');
    for (const h of [basic('carol', 'alice-pw'), basic('nobody', 'alice-pw'), undefined]) {
      const r = await get(`${gw.url}/basic/x`, h === undefined ? {} : { authorization: h });
      assert.equal(r.status, 401);
      assert.equal(r.json.error?.code, h === undefined ? 'AUTH_REQUIRED' : 'AUTH_INVALID');
      assert.equal(r.headers['www-authenticate'], 'Basic realm="api", charset="UTF-8"');
    }
  });

  test('two authentication policies on a route: either credential works; with neither, 401 with both challenges', async () => {
    assert.equal((await get(`${gw.url}/either/x`, { 'x-api-key': ALICE_KEY })).json.headers!['x-consumer-name'], 'alice');
    assert.equal((await get(`${gw.url}/either/x`, { authorization: basic('carol', 'carol-pw') })).json.headers!['x-consumer-name'], 'carol');
    const none = await get(`${gw.url}/either/x`);
    assert.equal(none.status, 401);
    assert.equal(none.json.error?.code, 'AUTH_REQUIRED');
    assert.deepEqual(none.headers['www-authenticate'], ['ApiKey header="x-api-key"', 'Basic realm="api", charset="UTF-8"']);
    assert.equal((await get(`${gw.url}/either/x`, { 'x-api-key': 'wrong' })).json.error?.code, 'AUTH_INVALID', 'a wrong key is not passed on');
  });

  test('all-of (required: true on each): both credentials, of the same consumer', async () => {
    const both = await get(`${gw.url}/both/x`, { 'x-api-key': ALICE_KEY, authorization: basic('alice', 'alice-pw') });
    assert.equal(both.status, 200);
    assert.equal(both.json.headers!['x-consumer-name'], 'alice');
    assert.equal(both.json.headers!.authorization, undefined);
    assert.equal(both.json.headers!['x-api-key'], undefined);
    assert.equal((await get(`${gw.url}/both/x`, { 'x-api-key': ALICE_KEY })).json.error?.code, 'AUTH_REQUIRED');
    assert.equal((await get(`${gw.url}/both/x`, { authorization: basic('alice', 'alice-pw') })).json.error?.code, 'AUTH_REQUIRED');
    assert.equal((await get(`${gw.url}/both/x`, { 'x-api-key': ALICE_KEY, authorization: basic('carol', 'carol-pw') })).json.error?.code, 'AUTH_INVALID');
  });

  test('anonymous: no key → the guest consumer; a spoofed identity is replaced; routes without auth leave headers alone', async () => {
    const anon = await get(`${gw.url}/open/x`, { 'x-consumer-name': 'alice' });
    assert.equal(anon.status, 200);
    assert.equal(anon.json.headers!['x-consumer-name'], 'guest');
    assert.equal(anon.json.headers!['x-consumer-groups'], 'free');
    assert.equal((await get(`${gw.url}/open/x`, { 'x-api-key': ALICE_KEY })).json.headers!['x-consumer-name'], 'alice');
    assert.equal((await get(`${gw.url}/open/x`, { 'x-api-key': 'wrong' })).status, 401);
  });

  test('authorize: a consumer in the group passes, one outside gets 403 FORBIDDEN, none at all 401', async () => {
    const seen = origin.seen.length;
    const alice = await get(`${gw.url}/gold/x`, { 'x-api-key': ALICE_KEY });
    assert.equal(alice.status, 200);
    assert.equal(alice.json.headers!['x-consumer-groups'], 'gold,beta');
    const carol = await get(`${gw.url}/gold/x`, { authorization: basic('carol', 'carol-pw') });
    assert.equal(carol.status, 403);
    assert.equal(carol.json.error?.code, 'FORBIDDEN');
    const none = await get(`${gw.url}/gold/x`);
    assert.equal(none.status, 401);
    assert.equal(none.json.error?.code, 'AUTH_REQUIRED');
    assert.equal(origin.seen.length, seen + 1, 'only the allowed request reached the origin');
  });

  test('over HTTP/2 the same', async () => {
    const s = await connectH2(gw.url);
    try {
      const ok = await h2request(s, { ':path': '/keys/h2', 'x-api-key': ALICE_KEY, 'x-consumer-name': 'root' });
      assert.equal(ok.status, 200);
      const up = (JSON.parse(ok.body) as Echo).headers;
      assert.equal(up['x-consumer-name'], 'alice');
      assert.equal(up['x-api-key'], undefined);
      const missing = await h2request(s, { ':path': '/basic/h2' });
      assert.equal(missing.status, 401);
      assert.equal(missing.headers['www-authenticate'], 'Basic realm="api", charset="UTF-8"');
      assert.equal((JSON.parse(missing.body) as { error: { code: string } }).error.code, 'AUTH_REQUIRED');
      const wrong = await h2request(s, { ':path': '/basic/h2', authorization: basic('alice', 'x') });
      assert.equal((JSON.parse(wrong.body) as { error: { code: string } }).error.code, 'AUTH_INVALID');
    } finally {
      await closeSession(s);
    }
  });

  test('a WebSocket upgrade through an api-key route: refused without the key, opened with it, identity upstream', async () => {
    const refused = await refusedWs(wsUrl(gw.url, '/ws/chat'));
    assert.equal(refused.status, 401);
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'AUTH_REQUIRED');
    const before = wsOrigin.upgrades.length;
    const { ws } = await openWs(wsUrl(gw.url, '/ws/chat'), { headers: { 'x-api-key': ALICE_KEY, 'x-consumer-name': 'root' } });
    ws.close();
    const up = wsOrigin.upgrades[before].headers;
    assert.equal(up['x-consumer-name'], 'alice');
    assert.equal(up['x-api-key'], undefined);
  });
});

/**
 * The access log of a gateway whose one route runs the api-key policy `keys` (with `keyOptions`),
 * after `requests` ran against its base URL; in `format` (default JSON).
 */
async function accessLogOf(keyOptions: object, format: 'combined' | undefined, requests: (base: string) => Promise<void>): Promise<string> {
  const origin = await startOrigin('o');
  const dir = await mkdtemp(path.join(tmpdir(), 'switchboard-auth-log-'));
  const logFile = path.join(dir, 'access.log');
  const gw = await startGateway({
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      consumers: { alice: { credentials: [{ type: 'api-key', key: ALICE_KEY }] } },
      policies: { keys: { type: 'api-key', ...keyOptions } },
      routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['keys'] } },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
    },
    accessLog: logFile,
    ...(format === undefined ? {} : { accessLogFormat: format }),
    logLevel: 'silent',
  });
  try {
    await requests(gw.url('web'));
  } finally {
    await guard(gw.stop({ drainTimeout: 2000 }), 'the gateway to stop', 10_000);
    await origin.close();
  }
  const text = await readFile(logFile, 'utf8');
  await rm(dir, { recursive: true, force: true });
  return text;
}

test('the access log line names the consumer (never the key); none for requests without a credential', async () => {
  const text = await accessLogOf({}, undefined, async (base) => {
    assert.equal((await get(`${base}/a`, { 'x-api-key': ALICE_KEY, 'x-request-id': 'with-key' })).status, 200);
    assert.equal((await get(`${base}/a`, { 'x-request-id': 'without' })).status, 401);
  });
  const byId = new Map(
    text
      .trim()
      .split('\n')
      .map((l) => {
        const j = JSON.parse(l) as { requestId: string; consumer: string | null; error: string | null };
        return [j.requestId, j];
      }),
  );
  assert.equal(byId.get('with-key')?.consumer, 'alice');
  assert.equal(byId.get('without')?.consumer, null);
  // The policy's answer is the request's error code, as for the gateway's own errors.
  assert.deepEqual([byId.get('with-key')?.error, byId.get('without')?.error], [null, 'AUTH_REQUIRED']);
  assert.ok(!text.includes(ALICE_KEY));
});

test('switchboard validate: a plain password and a duplicate key are errors at file:line:column that never show the secret', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'switchboard-auth-cli-'));
  try {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(
      file,
      `listeners:
  web: { address: "127.0.0.1:0", protocol: http }
consumers:
  alice:
    credentials:
      - { type: api-key, key: "${ALICE_KEY}" }
      - { type: basic, username: alice, password: "correct-horse-battery" }
  bob:
    credentials:
      - { type: api-key, key: "${ALICE_KEY}" }
`,
    );
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml:7:51: consumers\.alice\.credentials\[1\]\.password: expected a bcrypt .*htpasswd.*, found a plain-text password \(not shown\)/);
    assert.match(
      r.stderr,
      /bad\.yaml:10:9: consumers\.bob\.credentials\[0\]: expected an API key no other credential has, found the same API key as consumers\.alice\.credentials\[0\]/,
    );
    for (const secret of [ALICE_KEY, 'correct-horse-battery']) assert.ok(!`${r.stdout}${r.stderr}`.includes(secret), 'a secret in the output');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('consumers.file: keys from a file work, and a reload reads the file again', async () => {
  const origin = await startOrigin('o');
  const dir = await mkdtemp(path.join(tmpdir(), 'switchboard-auth-file-'));
  const users = path.join(dir, 'users.yaml');
  const BOB_KEY = randomBytes(24).toString('hex');
  await writeFile(users, `alice: { credentials: [{ type: api-key, key: "${ALICE_KEY}" }] }\n`);
  await writeFile(
    path.join(dir, 'sb.yaml'),
    `listeners:
  web: { address: "127.0.0.1:0", protocol: http }
consumers: { file: users.yaml }
policies: { keys: { type: api-key } }
routes: { all: { match: { path: / }, upstream: app, policies: [keys] } }
upstreams: { app: { endpoints: [{ url: "${origin.url}" }] } }
`,
  );
  const gw = await startTestGateway(path.join(dir, 'sb.yaml'));
  try {
    assert.equal((await get(`${gw.url}/a`, { 'x-api-key': ALICE_KEY })).json.headers!['x-consumer-name'], 'alice');
    assert.equal((await get(`${gw.url}/a`, { 'x-api-key': BOB_KEY })).status, 401);
    await writeFile(users, `bob: { credentials: [{ type: api-key, key: "${BOB_KEY}" }] }\n`);
    assert.equal((await gw.gw.reload()).ok, true);
    assert.equal((await get(`${gw.url}/a`, { 'x-api-key': BOB_KEY })).json.headers!['x-consumer-name'], 'bob');
    assert.equal((await get(`${gw.url}/a`, { 'x-api-key': ALICE_KEY })).status, 401, 'a key removed from the file is refused after the reload');
    await writeFile(users, 'bob: { credentials: [{ type: basic, username: bob, password: "plain-text-pw" }] }\n');
    const bad = await gw.gw.reload();
    assert.equal(bad.ok, false);
    assert.ok(
      !bad.ok && bad.errors.some((e) => e.path === 'consumers.file' && e.found.includes('a plain-text password (not shown)') && !e.message.includes('plain-text-pw')),
    );
    assert.equal((await get(`${gw.url}/a`, { 'x-api-key': BOB_KEY })).status, 200, 'the running config keeps serving');
  } finally {
    await gw.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a key sent in the query never reaches the access log, in the formats that log the request target', async () => {
  const text = await accessLogOf({ query: 'apikey' }, 'combined', async (base) => {
    assert.equal((await get(`${base}/a?x=1&apikey=${ALICE_KEY}`, {})).status, 200);
    assert.equal((await get(`${base}/a?apikey=wrong-key-0123456789&y=2`, {})).status, 401);
  });
  assert.ok(!text.includes(ALICE_KEY), text);
  assert.ok(!text.includes('wrong-key-0123456789'), text);
  assert.match(text, /"GET \/a\?x=1&apikey=\[REDACTED\] HTTP\/1\.1" 200 /);
  assert.match(text, /"GET \/a\?apikey=\[REDACTED\]&y=2 HTTP\/1\.1" 401 /);
});
