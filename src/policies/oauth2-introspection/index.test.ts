import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fakeDeps, fakeResolveContext, headerList, pairs } from '../../../test/helpers/policy.ts';
import { fakeSession, type FakeSessionInit } from '../../../test/helpers/session.ts';
import type { Reply, Session, UpstreamRequestHead } from '../filter.ts';
import type { RawIntrospection } from './config.ts';
import { introspectionPolicy, type IntrospectionFilter } from './index.ts';

const SECRET = 'gw-secret-s3cr3t';
const now = (): number => Math.floor(Date.now() / 1000);

/** What the server saw of one introspection request. */
interface Seen {
  token: string;
  auth: 'basic' | 'post' | 'none';
}

/**
 * An introspection endpoint on 127.0.0.1:0. `answers` by token; a token not in it is inactive.
 * Tokens named `fail` get a 500, `html` a 200 text/html, `slow` no answer until `release()`.
 * Client authentication is checked (gw / SECRET by Basic or in the body): else 401 invalid_client.
 */
interface IntrospectionServer {
  url: string;
  seen: Seen[];
  answers: Map<string, Record<string, unknown>>;
  release(): void;
  close(): Promise<void>;
}

async function introspectionServer(): Promise<IntrospectionServer> {
  const held: http.ServerResponse[] = [];
  const srv: IntrospectionServer = { url: '', seen: [], answers: new Map(), release: () => {}, close: async () => {} };
  const server = http.createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    const token = form.get('token') ?? '';
    // RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
    const basic = req.headers.authorization?.startsWith('Basic ')
      ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString().split(':').map(decodeURIComponent).join(':')
      : undefined;
    const auth: Seen['auth'] = basic !== undefined ? 'basic' : form.has('client_secret') ? 'post' : 'none';
    srv.seen.push({ token, auth });
    const ok = basic === `gw:${SECRET}` || (form.get('client_id') === 'gw' && form.get('client_secret') === SECRET);
    if (!ok) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
      return;
    }
    if (token === 'slow') {
      held.push(res);
      return;
    }
    if (token === 'fail') {
      res.writeHead(500, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (token === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(srv.answers.get(token) ?? { active: false }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  srv.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/introspect`;
  srv.release = () => {
    for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{"active":false}');
  };
  srv.close = () =>
    new Promise<void>((resolve) => {
      srv.release();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return srv;
}

let idp: IntrospectionServer;
before(async () => {
  idp = await introspectionServer();
  idp.answers.set('alice-token', { active: true, sub: 'alice@example.com', scope: 'read write', client_id: 'web', org: { id: 'acme' }, exp: now() + 300 });
  idp.answers.set('carol-token', { active: true, sub: 'carol', exp: now() + 300 });
  idp.answers.set('bob-token', { active: true, sub: 'bob', exp: now() + 300 });
  idp.answers.set('service-token', { active: true, client_id: 'billing', scope: 'orders:read', exp: now() + 300 });
  idp.answers.set('expired-token', { active: true, sub: 'alice@example.com', exp: now() - 10 });
  idp.answers.set('no-subject', { active: true, exp: now() + 300 });
});
after(() => idp.close());

const consumers = {
  alice: { groups: ['gold'], credentials: [{ type: 'jwt' as const, subject: 'alice@example.com' }] },
  bob: { groups: [] },
};

function filter(raw: Partial<RawIntrospection> = {}, logged: unknown[] = []): IntrospectionFilter {
  const parsed = introspectionPolicy.config.parse({ endpoint: idp.url, clientId: 'gw', clientSecret: SECRET, ...raw });
  const { ctx, problems } = fakeResolveContext();
  const resolved = introspectionPolicy.resolve(parsed, ctx);
  assert.deepEqual(problems, []);
  const deps = fakeDeps({ name: 'opaque', consumers });
  return introspectionPolicy.create(resolved, { ...deps, log: { warn: (...a: unknown[]) => logged.push(a), error: (...a: unknown[]) => logged.push(a) } });
}

async function run(f: IntrospectionFilter, init: FakeSessionInit): Promise<{ s: Session; verdict: Reply | undefined }> {
  const s = fakeSession({ route: 'r', ...init });
  const verdict = await f.onRequest!(s);
  return { s, verdict };
}

const bearer = (token: string): FakeSessionInit => ({ request: { headers: { authorization: `Bearer ${token}` } } });
const calls = (token: string): number => idp.seen.filter((s) => s.token === token).length;

const INVALID = {
  status: 401,
  headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
  error: { code: 'AUTH_INVALID', message: 'the credential was not accepted' },
};
const UNAVAILABLE = {
  status: 503,
  error: { code: 'AUTH_UNAVAILABLE', message: 'the credential could not be checked: the identity provider is unavailable' },
};

test('an active token identifies the mapped consumer, with scopes and the answer as claims; client_secret_basic by default', async () => {
  const f = filter();
  const { s, verdict } = await run(f, bearer('alice-token'));
  assert.equal(verdict, undefined);
  assert.equal(s.identity?.consumer.name, 'alice');
  assert.deepEqual(s.identity?.consumer.groups, ['gold']);
  assert.equal(s.identity?.credential, 'alice/jwt/0');
  assert.equal(s.identity?.policy, 'opaque');
  assert.deepEqual(s.identity?.scopes, ['read', 'write']);
  assert.deepEqual(s.identity?.claims?.org, { id: 'acme' });
  assert.equal(idp.seen.at(-1)?.auth, 'basic');
  const carol = await run(f, bearer('carol-token'));
  assert.equal(carol.verdict, undefined);
  assert.deepEqual(carol.s.identity?.consumer, { name: 'carol', groups: [], metadata: {} });
  assert.equal(carol.s.identity?.credential, `introspection:${idp.url}:carol`);
});

test('clientAuth: post sends the client credentials in the body', async () => {
  const before = idp.seen.length;
  assert.equal((await run(filter({ clientAuth: 'post' }), bearer('carol-token'))).verdict, undefined);
  assert.deepEqual(idp.seen.slice(before), [{ token: 'carol-token', auth: 'post' }]);
});

test('a client_credentials token (no sub) is the consumer named by its client_id', async () => {
  const { s, verdict } = await run(filter(), bearer('service-token'));
  assert.equal(verdict, undefined);
  assert.equal(s.identity?.consumer.name, 'billing');
  assert.deepEqual(s.identity?.scopes, ['orders:read']);
});

test('inactive, expired, subject-less tokens and unmapped subjects under consumerRequired: 401 AUTH_INVALID with the Bearer error', async () => {
  const f = filter();
  for (const token of ['made-up', 'expired-token', 'no-subject', 'bob-token']) {
    const { s, verdict } = await run(f, bearer(token));
    assert.deepEqual(verdict, INVALID, token);
    assert.equal(s.identity, undefined, token);
  }
  assert.deepEqual((await run(filter({ consumerRequired: true }), bearer('carol-token'))).verdict, INVALID);
  assert.equal((await run(filter({ consumerRequired: true }), bearer('alice-token'))).verdict, undefined);
});

test('no token: 401 AUTH_REQUIRED with a Bearer challenge, the endpoint not asked', async () => {
  const before = idp.seen.length;
  for (const init of [{}, { request: { headers: { authorization: 'Basic YTpi' } } }]) {
    assert.deepEqual((await run(filter(), init)).verdict, {
      status: 401,
      headers: { 'www-authenticate': ['Bearer'] },
      error: { code: 'AUTH_REQUIRED', message: 'this route needs a credential' },
    });
  }
  assert.equal(idp.seen.length, before);
});

test('the same active token twice: one introspection; cacheTtl 0: one per request', async () => {
  idp.answers.set('cache-me', { active: true, sub: 'carol', exp: now() + 300 });
  const f = filter();
  assert.equal((await run(f, bearer('cache-me'))).verdict, undefined);
  const second = await run(f, bearer('cache-me'));
  assert.equal(second.verdict, undefined);
  assert.equal(second.s.identity?.consumer.name, 'carol');
  assert.equal(calls('cache-me'), 1);
  assert.equal(f.stats.introspections, 1);
  const g = filter({ cacheTtl: 0 });
  await run(g, bearer('cache-me'));
  await run(g, bearer('cache-me'));
  assert.equal(calls('cache-me'), 3);
});

test('an active answer is never used past the token’s exp', async () => {
  idp.answers.set('short-lived', { active: true, sub: 'carol', exp: now() + 2 }); // at least 1s ahead
  const f = filter();
  assert.equal((await run(f, bearer('short-lived'))).verdict, undefined);
  // Poll (bounded) until exp passes: then the cached answer is not used, and the endpoint is asked again.
  const deadline = Date.now() + 10_000;
  let verdict: Reply | undefined;
  while (Date.now() < deadline) {
    verdict = (await run(f, bearer('short-lived'))).verdict;
    if (verdict !== undefined) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(verdict, INVALID);
  assert.equal(calls('short-lived'), 2);
});

test('negative cache: an inactive token is asked about once within negativeCacheTtl; 0 turns it off', async () => {
  const f = filter();
  assert.deepEqual((await run(f, bearer('unknown-1'))).verdict, INVALID);
  assert.deepEqual((await run(f, bearer('unknown-1'))).verdict, INVALID);
  assert.equal(calls('unknown-1'), 1);
  const g = filter({ negativeCacheTtl: 0 });
  assert.deepEqual((await run(g, bearer('unknown-2'))).verdict, INVALID);
  assert.deepEqual((await run(g, bearer('unknown-2'))).verdict, INVALID);
  assert.equal(calls('unknown-2'), 2);
});

test('concurrent requests with one token share one introspection', async () => {
  idp.answers.set('concurrent', { active: true, sub: 'alice@example.com', exp: now() + 300 });
  const f = filter();
  const results = await Promise.all(Array.from({ length: 20 }, () => run(f, bearer('concurrent'))));
  for (const r of results) {
    assert.equal(r.verdict, undefined);
    assert.equal(r.s.identity?.consumer.name, 'alice');
  }
  assert.equal(calls('concurrent'), 1);
});

test('the endpoint failing (500, not JSON, wrong client secret, refused, too slow): 503 AUTH_UNAVAILABLE, not cached, secret never logged', async () => {
  const logged: unknown[] = [];
  const f = filter({ timeout: '200ms' }, logged);
  for (const token of ['fail', 'html']) {
    assert.deepEqual((await run(f, bearer(token))).verdict, UNAVAILABLE, token);
    assert.deepEqual((await run(f, bearer(token))).verdict, UNAVAILABLE, token);
    assert.equal(calls(token), 2, `${token}: a failure is not cached`);
  }
  const slow = await run(f, bearer('slow'));
  assert.deepEqual(slow.verdict, UNAVAILABLE);
  idp.release();
  const wrong = filter({ clientSecret: 'not-the-secret' }, logged);
  assert.deepEqual((await run(wrong, bearer('alice-token'))).verdict, UNAVAILABLE);
  const refused = filter({ endpoint: 'http://127.0.0.1:1/introspect' }, logged);
  assert.deepEqual((await run(refused, bearer('alice-token'))).verdict, UNAVAILABLE);
  assert.ok(logged.length >= 6);
  const text = JSON.stringify(logged);
  assert.ok(!text.includes(SECRET) && !text.includes('not-the-secret') && !text.includes('alice-token'), text);
  assert.match(text, /invalid_client/);
});

test('http:// only to loopback hosts; https anywhere', () => {
  for (const [endpoint, ok] of [
    ['http://idp.example.com/introspect', false],
    ['http://10.0.0.1/introspect', false],
    ['https://idp.example.com/introspect', true],
    ['http://localhost:8080/introspect', true],
    ['http://[::1]:8080/introspect', true],
  ] as const) {
    const { ctx, problems } = fakeResolveContext();
    introspectionPolicy.resolve(introspectionPolicy.config.parse({ endpoint, clientId: 'gw', clientSecret: SECRET }), ctx);
    assert.equal(problems.length === 0, ok, endpoint);
  }
});

test('upstream: identity and claim headers set, client copies removed, the token removed (kept with hideCredentials: false)', async () => {
  for (const hide of [true, false]) {
    const f = filter({ claimHeaders: { 'x-tenant': 'org.id', 'x-client': 'client_id' }, hideCredentials: hide });
    const { s } = await run(f, bearer('alice-token'));
    const head: UpstreamRequestHead = {
      method: 'GET',
      target: '/',
      headers: headerList([
        ['authorization', 'Bearer alice-token'],
        ['x-tenant', 'evil'],
        ['x-consumer-name', 'root'],
      ]),
      endpoint: 'x',
      attempt: 1,
    };
    f.onUpstreamRequest!(s, head);
    const got = Object.fromEntries(pairs(head.headers as ReturnType<typeof headerList>));
    assert.equal(got['x-consumer-name'], 'alice');
    assert.equal(got['x-consumer-groups'], 'gold');
    assert.equal(got['x-tenant'], 'acme');
    assert.equal(got['x-client'], 'web');
    assert.equal(got.authorization, hide ? undefined : 'Bearer alice-token');
  }
});
