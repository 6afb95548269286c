import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT, type CryptoKey } from 'jose';
import { fakeDeps, fakeResolveContext, headerList, pairs } from '../../../test/helpers/policy.ts';
import { fakeSession, type FakeSessionInit } from '../../../test/helpers/session.ts';
import type { Reply, Session, UpstreamRequestHead } from '../filter.ts';
import { claimHeaderValue } from '../bearer-token.ts';
import { jwtPolicy, type JwtFilter } from './index.ts';
import type { RawJwt } from './config.ts';

const ISS = 'https://idp.example.com';
const AUD = 'api';

/** A JWKS server on 127.0.0.1:0: serves `doc` (or `status`), counts requests. */
interface JwksServer {
  url: string;
  requests: number;
  doc: { keys: JWK[] };
  status: number;
  close(): Promise<void>;
}

async function jwksServer(doc: { keys: JWK[] }): Promise<JwksServer> {
  const srv: JwksServer = { url: '', requests: 0, doc, status: 200, close: async () => {} };
  const server = http.createServer((_req, res) => {
    srv.requests++;
    res.writeHead(srv.status, { 'content-type': 'application/json' });
    res.end(srv.status === 200 ? JSON.stringify(srv.doc) : '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  srv.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  srv.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return srv;
}

interface Signer {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function signer(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

const now = (): number => Math.floor(Date.now() / 1000);

function sign(k: Signer, claims: JWTPayload = {}, header: Record<string, unknown> = {}, alg = 'RS256'): Promise<string> {
  const payload: JWTPayload = { sub: 'alice@example.com', scope: 'read write', org: { id: 'acme' }, iss: ISS, aud: AUD, iat: now(), exp: now() + 300, ...claims };
  return new SignJWT(payload).setProtectedHeader({ alg, kid: k.kid, ...header }).sign(k.privateKey);
}

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

let k1: Signer;
let k2: Signer;
let attacker: Signer;
let jwks: JwksServer;
/** A server a token's jku/x5u points at: it must never be asked. */
let trap: JwksServer;

before(async () => {
  k1 = await signer('k1');
  k2 = await signer('k2');
  attacker = await signer('k1'); // same kid as the real key
  jwks = await jwksServer({ keys: [k1.jwk] });
  trap = await jwksServer({ keys: [attacker.jwk] });
});
after(async () => {
  await jwks.close();
  await trap.close();
});

const consumers = {
  alice: { groups: ['gold'], credentials: [{ type: 'jwt' as const, subject: 'alice@example.com' }] },
  bob: { groups: [] },
};

function filter(raw: Partial<RawJwt> = {}, routes?: Record<string, Array<[string, string]>>): JwtFilter {
  const parsed = jwtPolicy.config.parse({ issuer: ISS, audiences: [AUD], jwks: { url: jwks.url, cooldown: '30s' }, ...raw });
  const { ctx, problems } = fakeResolveContext();
  const resolved = jwtPolicy.resolve(parsed, ctx);
  assert.deepEqual(problems, []);
  return jwtPolicy.create(resolved, fakeDeps({ name: 'bearer', consumers, routes }));
}

async function run(f: JwtFilter, init: FakeSessionInit): Promise<{ s: Session; verdict: Reply | undefined }> {
  const s = fakeSession({ route: 'r', ...init });
  const verdict = await f.onRequest!(s);
  return { s, verdict };
}

const bearer = (token: string): FakeSessionInit => ({ request: { headers: { authorization: `Bearer ${token}` } } });

const INVALID = {
  status: 401,
  headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
  error: { code: 'AUTH_INVALID', message: 'the credential was not accepted' },
};

test('a valid token identifies the mapped consumer, with scopes and claims; an unmapped subject is a consumer of its own', async () => {
  const f = filter();
  const { s, verdict } = await run(f, bearer(await sign(k1)));
  assert.equal(verdict, undefined);
  assert.equal(s.identity?.consumer.name, 'alice');
  assert.deepEqual(s.identity?.consumer.groups, ['gold']);
  assert.equal(s.identity?.credential, 'alice/jwt/0');
  assert.equal(s.identity?.policy, 'bearer');
  assert.deepEqual(s.identity?.scopes, ['read', 'write']);
  assert.deepEqual(s.identity?.claims?.org, { id: 'acme' });
  const carol = await run(f, bearer(await sign(k1, { sub: 'carol', scope: undefined, scp: ['a', 'b'] })));
  assert.equal(carol.verdict, undefined);
  assert.deepEqual(carol.s.identity?.consumer, { name: 'carol', groups: [], metadata: {} });
  assert.equal(carol.s.identity?.credential, `jwt:${ISS}:carol`);
  assert.deepEqual(carol.s.identity?.scopes, ['a', 'b']);
});

test('consumerRequired refuses unmapped subjects; a subject naming a configured consumer without a mapping is refused', async () => {
  assert.deepEqual((await run(filter({ consumerRequired: true }), bearer(await sign(k1, { sub: 'carol' })))).verdict, INVALID);
  assert.equal((await run(filter({ consumerRequired: true }), bearer(await sign(k1)))).verdict, undefined);
  assert.deepEqual((await run(filter(), bearer(await sign(k1, { sub: 'bob' })))).verdict, INVALID);
  assert.deepEqual((await run(filter(), bearer(await sign(k1, { sub: undefined })))).verdict, INVALID, 'no subject');
});

test('no token: 401 AUTH_REQUIRED with a Bearer challenge; Basic credentials are not a token', async () => {
  const f = filter();
  for (const init of [{}, { request: { headers: { authorization: 'Basic YTpi' } } }, { request: { headers: { authorization: 'Bearer ' } } }]) {
    assert.deepEqual((await run(f, init)).verdict, {
      status: 401,
      headers: { 'www-authenticate': ['Bearer'] },
      error: { code: 'AUTH_REQUIRED', message: 'this route needs a credential' },
    });
  }
});

test('EDGE-CASES §38: every forged, expired or foreign token is 401 AUTH_INVALID with the same answer', async () => {
  const f = filter();
  const spki = await exportSPKI(k1.publicKey);
  const claims = { sub: 'alice@example.com', iss: ISS, aud: AUD, iat: now(), exp: now() + 300 };
  const hmacWithPublicKey = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(spki));
  const hmacWithJwkN = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(k1.jwk.n!));
  const cases: Array<[string, string]> = [
    ['alg none', `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`],
    ['alg none with kid', `${b64url({ alg: 'none', kid: 'k1' })}.${b64url(claims)}.`],
    ['HS256 signed with the RSA public key (PEM) as the secret', hmacWithPublicKey],
    ['HS256 signed with the modulus as the secret', hmacWithJwkN],
    ['expired', await sign(k1, { exp: now() - 120, iat: now() - 600 })],
    ['expired within… no: beyond the skew', await sign(k1, { exp: now() - 31 })],
    ['not yet valid (nbf)', await sign(k1, { nbf: now() + 120 })],
    ['wrong aud', await sign(k1, { aud: 'other-api' })],
    ['wrong iss', await sign(k1, { iss: 'https://evil.example.com' })],
    ['no exp', await new SignJWT({ sub: 'alice@example.com' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISS).setAudience(AUD).sign(k1.privateKey)],
    ['path traversal kid', await sign(attacker, {}, { kid: '../../../../etc/passwd' })],
    ['very long kid', await sign(attacker, {}, { kid: 'k'.repeat(20_000) })],
    ['unknown kid', await sign(attacker, {}, { kid: 'nope' })],
    ['the attacker’s key under the real kid', await sign(attacker)],
    ['jku pointing at the attacker’s JWKS', await sign(attacker, {}, { jku: trap.url })],
    ['x5u pointing elsewhere', await sign(attacker, {}, { x5u: trap.url.replace('jwks.json', 'cert.pem') })],
    ['jwk embedded in the header', await sign(attacker, {}, { jwk: attacker.jwk })],
    ['ES256 (not a pinned algorithm here… it is, but no EC key matches)', await sign(await signer('k1', 'ES256'), {}, {}, 'ES256')],
    ['a signature of another token', `${(await sign(k1)).split('.').slice(0, 2).join('.')}.${(await sign(k1, { sub: 'x' })).split('.')[2]}`],
    ['garbage', 'not.a.token'],
    ['truncated', (await sign(k1)).slice(0, -5)],
  ];
  const fetchesBefore = f.stats.jwksFetches;
  for (const [what, token] of cases) {
    const { s, verdict } = await run(f, bearer(token));
    assert.deepEqual(verdict, INVALID, what);
    assert.equal(s.identity, undefined, what);
  }
  assert.equal(trap.requests, 0, 'jku/x5u URLs are never fetched');
  assert.ok(f.stats.jwksFetches - fetchesBefore <= 1, 'unknown kids refetch the JWKS at most once per cooldown');
  // The real token still passes after all that.
  assert.equal((await run(f, bearer(await sign(k1)))).verdict, undefined);
});

test('algorithms are pinned: an RS256 token is refused by a policy that accepts only ES256', async () => {
  const { verdict } = await run(filter({ algorithms: ['ES256'] }), bearer(await sign(k1)));
  assert.deepEqual(verdict, INVALID);
});

test('key rotation: a token with a new kid makes the JWKS fetched again, and is accepted without a restart', async () => {
  const server = await jwksServer({ keys: [k1.jwk] });
  try {
    const f = filter({ jwks: { url: server.url, cooldown: '1ms' } });
    assert.equal((await run(f, bearer(await sign(k1)))).verdict, undefined);
    assert.equal(server.requests, 1);
    server.doc = { keys: [k2.jwk] }; // the provider rotates
    const { s, verdict } = await run(f, bearer(await sign(k2)));
    assert.equal(verdict, undefined);
    assert.equal(s.identity?.consumer.name, 'alice');
    assert.equal(server.requests, 2);
  } finally {
    await server.close();
  }
});

test('unknown kids refetch at most once per cooldown', async () => {
  const server = await jwksServer({ keys: [k1.jwk] });
  try {
    const f = filter({ jwks: { url: server.url, cooldown: '1h' } });
    assert.equal((await run(f, bearer(await sign(k1)))).verdict, undefined);
    for (let i = 0; i < 5; i++) assert.deepEqual((await run(f, bearer(await sign(attacker, {}, { kid: `x${i}` })))).verdict, INVALID);
    assert.equal(server.requests, 1, 'within the cooldown after the first fetch: no refetch');
  } finally {
    await server.close();
  }
});

test('the JWKS cannot be fetched: 503 AUTH_UNAVAILABLE, not 401', async () => {
  const server = await jwksServer({ keys: [k1.jwk] });
  server.status = 500;
  const warnings: string[] = [];
  try {
    const parsed = jwtPolicy.config.parse({ issuer: ISS, audiences: [AUD], jwks: { url: server.url } });
    const deps = { ...fakeDeps({ name: 'bearer', consumers }), log: { warn: (_o: object, m: string) => warnings.push(m), error() {} } };
    const f = jwtPolicy.create(jwtPolicy.resolve(parsed, fakeResolveContext().ctx), deps);
    const token = await sign(k1);
    assert.deepEqual((await run(f, bearer(token))).verdict, {
      status: 503,
      error: { code: 'AUTH_UNAVAILABLE', message: 'the credential could not be checked: the identity provider is unavailable' },
    });
    assert.equal(warnings.length, 1);
    assert.ok(!warnings.join().includes(token));
  } finally {
    await server.close();
  }
  // Nothing listening at all.
  const f = filter({ jwks: { url: server.url } });
  assert.equal((await run(f, bearer(await sign(k1)))).verdict?.error?.code, 'AUTH_UNAVAILABLE');
});

test('the cache: the same token twice is verified once; concurrent requests share one verification', async () => {
  const f = filter();
  const token = await sign(k1);
  assert.equal((await run(f, bearer(token))).verdict, undefined);
  const second = await run(f, bearer(token));
  assert.equal(second.verdict, undefined);
  assert.equal(second.s.identity?.consumer.name, 'alice');
  assert.equal(f.stats.verifications, 1);
  const other = await sign(k1, { sub: 'dave' });
  const both = await Promise.all([run(f, bearer(other)), run(f, bearer(other))]);
  assert.deepEqual(
    both.map((r) => r.s.identity?.consumer.name),
    ['dave', 'dave'],
  );
  assert.equal(f.stats.verifications, 2);
  // A failure is never cached: each try is verified.
  const bad = await sign(attacker);
  await run(f, bearer(bad));
  await run(f, bearer(bad));
  assert.equal(f.stats.verifications, 4);
});

test('the cache never serves a token past its exp', async () => {
  const f = filter({ clockSkew: 0 });
  // exp one second from now: cached until then, and refused after (by jose, once verified again).
  const token = await sign(k1, { exp: now() + 1 });
  assert.equal((await run(f, bearer(token))).verdict, undefined);
  const expiry = (now() + 1) * 1000;
  // Poll until the clock passes exp (bounded), then the token must be refused.
  const deadline = Date.now() + 5000;
  while (Date.now() <= expiry && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  assert.deepEqual((await run(f, bearer(token))).verdict, INVALID);
  assert.equal(f.stats.verifications, 2, 'verified again, not served from the cache');
});

test('token from a header, the query or a cookie; the upstream gets claim headers and not the token', async () => {
  const token = await sign(k1, { tags: ['x', 'y'], name: 'Zoë' });
  const claimHeaders = { 'x-user': 'sub', 'x-tenant': 'org.id', 'x-tags': 'tags', 'x-name': 'name', 'x-none': 'nothing' };
  for (const [from, init, target, headersIn] of [
    ['header', bearer(token), '/a', [['Authorization', `Bearer ${token}`]]],
    ['header:x-token', { request: { headers: { 'x-token': token } } }, '/a', [['x-token', token]]],
    ['query:access_token', { request: { query: `?access_token=${token}&b=1` } }, `/a?access_token=${token}&b=1`, []],
    ['cookie:at', { request: { headers: { cookie: `theme=dark; at=${token}` } } }, '/a', [['cookie', `theme=dark; at=${token}`]]],
  ] as Array<[string, FakeSessionInit, string, Array<[string, string]>]>) {
    const f = filter({ from, claimHeaders });
    const { s, verdict } = await run(f, init);
    assert.equal(verdict, undefined, from);
    const head: UpstreamRequestHead = {
      method: 'GET',
      target,
      headers: headerList([...headersIn, ['x-user', 'spoof'], ['x-none', 'spoof'], ['x-consumer-name', 'root']]),
      endpoint: 'http://127.0.0.1:1',
      attempt: 1,
    };
    f.onUpstreamRequest!(s, head);
    const out = Object.fromEntries(pairs(head.headers as ReturnType<typeof headerList>));
    assert.equal(out['x-user'], 'alice@example.com', from);
    assert.equal(out['x-tenant'], 'acme', from);
    assert.equal(out['x-tags'], 'x,y', from);
    assert.equal(out['x-name'], 'Zo%C3%AB', from);
    assert.equal(out['x-none'], undefined, `${from}: client copies of claim headers removed`);
    assert.equal(out['x-consumer-name'], 'alice', from);
    assert.ok(!JSON.stringify(out).includes(token) && !head.target.includes(token), `${from}: the token is not sent upstream`);
    if (from.startsWith('cookie')) assert.equal(out.cookie, 'theme=dark');
    if (from.startsWith('query')) assert.equal(head.target, '/a?b=1');
  }
});

test('hideCredentials: false keeps the token upstream', async () => {
  const token = await sign(k1);
  const f = filter({ hideCredentials: false });
  const { s } = await run(f, bearer(token));
  const head: UpstreamRequestHead = { method: 'GET', target: '/', headers: headerList([['authorization', `Bearer ${token}`]]), endpoint: 'x', attempt: 1 };
  f.onUpstreamRequest!(s, head);
  assert.equal(head.headers.get('authorization'), `Bearer ${token}`);
});

test('PEM keys and an HMAC secret as key sources; a JWKS file', async () => {
  const pem = await exportSPKI(k1.publicKey);
  assert.equal((await run(filter({ jwks: undefined, keys: [pem] }), bearer(await sign(k1)))).verdict, undefined);
  assert.deepEqual((await run(filter({ jwks: undefined, keys: [pem] }), bearer(await sign(k2)))).verdict, INVALID);
  const secret = 'a-shared-secret-of-at-least-32-characters!';
  const hs = await new SignJWT({ sub: 'alice@example.com' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(ISS)
    .setAudience(AUD)
    .setExpirationTime('1m')
    .sign(new TextEncoder().encode(secret));
  const f = filter({ jwks: undefined, secret, algorithms: ['HS256'] });
  assert.equal((await run(f, bearer(hs))).verdict, undefined);
  assert.deepEqual((await run(f, bearer(await sign(k1)))).verdict, INVALID, 'an RS256 token against an HMAC policy');
  const dir = await mkdtemp(path.join(tmpdir(), 'switchboard-jwt-'));
  try {
    await writeFile(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [k2.jwk] }));
    const parsed = jwtPolicy.config.parse({ issuer: ISS, audiences: [AUD], jwks: { file: 'jwks.json' } });
    const { ctx, problems } = fakeResolveContext({ baseDir: dir });
    const fromFile = jwtPolicy.create(jwtPolicy.resolve(parsed, ctx), fakeDeps({ name: 'bearer', consumers }));
    assert.deepEqual(problems, []);
    assert.equal((await run(fromFile, bearer(await sign(k2)))).verdict, undefined);
    assert.deepEqual((await run(fromFile, bearer(await sign(k1)))).verdict, INVALID);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('config: exactly one key source; HMAC algorithms only with a secret; no private keys', async () => {
  const problemsOf = (raw: Record<string, unknown>) => {
    const { ctx, problems } = fakeResolveContext();
    jwtPolicy.resolve(jwtPolicy.config.parse({ issuer: ISS, audiences: [AUD], ...raw }), ctx);
    return problems.map((p) => `${p.path.join('.')}: expected ${p.expected}, found ${p.found}`);
  };
  const pkcs8 = (await generateKeyPair('ES256', { extractable: true })).privateKey;
  const { exportPKCS8 } = await import('jose');
  assert.deepEqual(problemsOf({}), [': expected exactly one of jwks, keys, secret, found none of them']);
  assert.match(problemsOf({ jwks: { url: jwks.url }, secret: 'x'.repeat(32) })[0], /found jwks and secret/);
  assert.match(problemsOf({ jwks: { url: jwks.url }, algorithms: ['RS256', 'HS256'] })[0], /^algorithms: .*needs a secret, found HS256$/);
  assert.match(problemsOf({ secret: 'x'.repeat(32), algorithms: ['RS256'] })[0], /^algorithms: expected HMAC algorithms only/);
  assert.match(problemsOf({ keys: [await exportPKCS8(pkcs8)] })[0], /^keys\.0: .*found a private key/);
  assert.match(problemsOf({ keys: ['-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----'] })[0], /^keys\.0: .*does not parse/);
  assert.match(problemsOf({ jwks: { file: '/nonexistent/jwks.json' } })[0], /^jwks\.file: /);
  assert.throws(() => jwtPolicy.config.parse({ issuer: ISS, audiences: [AUD], secret: 'x'.repeat(32), algorithms: ['none'] }));
  assert.throws(() => jwtPolicy.config.parse({ issuer: ISS, audiences: [], secret: 'x'.repeat(32) }));
});

test('claim header values', () => {
  assert.equal(claimHeaderValue('a b'), 'a b');
  assert.equal(claimHeaderValue(42), '42');
  assert.equal(claimHeaderValue(['a', 1]), 'a,1');
  assert.equal(claimHeaderValue({ a: 1 }), '{"a":1}');
  assert.equal(claimHeaderValue('a\r\nx-evil: 1'), 'a%0D%0Ax-evil%3A%201');
  assert.equal(claimHeaderValue(undefined), undefined);
});

test('several providers on one route: a token of another issuer is passed on to the next authentication policy', async () => {
  const routes = { r: [['bearer', 'jwt'] as [string, string], ['other', 'jwt'] as [string, string]] };
  const f = filter({}, routes);
  const foreign = await sign(k1, { iss: 'https://other.example.com' });
  const { s, verdict } = await run(f, bearer(foreign));
  assert.equal(verdict, undefined, 'passed on');
  assert.equal(s.identity, undefined);
  assert.equal(f.stats.verifications, 0);
  assert.deepEqual((await run(filter(), bearer(foreign))).verdict, INVALID, 'the last one refuses it');
});

test('the JWKS is refreshed ahead of expiry; while refreshes fail, the keys in hand serve a while, then 503', async () => {
  const server = await jwksServer({ keys: [k1.jwk] });
  try {
    const f = filter({ jwks: { url: server.url, cacheTtl: '200ms', cooldown: '1ms' } });
    let n = 0;
    const fresh = async () => (await run(f, bearer(await sign(k1, { sub: `user-${n++}` })))).verdict; // a new token each time: no cache hit
    const until = async (cond: () => boolean | Promise<boolean>) => {
      const deadline = Date.now() + 5000;
      while (!(await cond()) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      assert.ok(await cond());
    };
    assert.equal(await fresh(), undefined);
    const fetched = Date.now(); // the keys were fetched before this
    assert.equal(server.requests, 1);
    // From three quarters of cacheTtl on: answered with the keys in hand, refreshed in the background.
    await until(() => Date.now() - fetched >= 150);
    assert.equal(await fresh(), undefined);
    await until(() => server.requests === 2);
    // The provider fails from now on: the keys in hand still verify…
    server.status = 500;
    assert.equal(await fresh(), undefined);
    // …until they are twice cacheTtl old; then 503, not 401.
    let last: Reply | undefined;
    await until(async () => {
      last = await fresh();
      return last !== undefined;
    });
    assert.equal(last?.error?.code, 'AUTH_UNAVAILABLE');
    assert.ok(server.requests > 2, 'refetches were tried');
  } finally {
    await server.close();
  }
});

test('a JWKS without kids: each key that fits a token without kid is tried', async () => {
  const strip = ({ kid: _kid, ...jwk }: JWK): JWK => jwk;
  const server = await jwksServer({ keys: [strip(k1.jwk), strip(k2.jwk)] });
  try {
    const f = filter({ jwks: { url: server.url } });
    assert.equal((await run(f, bearer(await sign(k2, {}, { kid: undefined })))).verdict, undefined);
    assert.deepEqual((await run(f, bearer(await sign(attacker, {}, { kid: undefined })))).verdict, INVALID);
  } finally {
    await server.close();
  }
});
