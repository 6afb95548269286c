import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, generateKeyPair, SignJWT } from 'jose';
import { fakeDeps, fakeResolveContext, headerList, pairs } from '../../../test/helpers/policy.ts';
import { fakeSession, type FakeSessionInit } from '../../../test/helpers/session.ts';
import type { Reply, ResponseHead, Session, UpstreamRequestHead } from '../filter.ts';
import { isNavigation, returnPath } from './browser.ts';
import type { RawOidc } from './config.ts';
import { MAX_COOKIE } from './cookies.ts';
import { type OidcFilter, oidcPolicy } from './index.ts';

const SECRET = 'gw-client-secret';
const COOKIE_SECRET = 'a-cookie-secret-of-at-least-32-characters';
const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** One authorization the fake provider granted: what the token request must match, and what the ID token says. */
interface Grant {
  nonce: string;
  challenge: string;
  redirectUri: string;
  claims: Record<string, unknown>;
}

/**
 * A fake OpenID provider on 127.0.0.1:0 (the real one, oidc-provider, drives the integration
 * tests): discovery, a token endpoint (authorization_code with PKCE S256, refresh_token) that
 * checks the gateway's client credentials, and a revocation endpoint. `next` bends its next answer.
 */
interface FakeProvider {
  issuer: string;
  codes: Map<string, Grant>;
  /** refresh token → subject; deleted when revoked or used (rotation). */
  refreshTokens: Map<string, string>;
  revoked: string[];
  grants: string[];
  /** Discovery answers 500 while set. */
  down: boolean;
  /** Leave end_session_endpoint out of the metadata. */
  noEndSession: boolean;
  /** The next token answer: extra ID token claims, a refresh token (code grant), an error instead, another expires_in. */
  next: { claims?: Record<string, unknown>; refresh?: boolean; error?: { status: number; error: string }; expiresIn?: number };
  close(): Promise<void>;
}

let key: CryptoKey;
let op: FakeProvider;

async function fakeProvider(): Promise<FakeProvider> {
  const p: FakeProvider = {
    issuer: '',
    codes: new Map(),
    refreshTokens: new Map(),
    revoked: [],
    grants: [],
    down: false,
    noEndSession: false,
    next: {},
    close: async () => {},
  };
  const idToken = (claims: Record<string, unknown>): Promise<string> => {
    const t = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: p.issuer, aud: 'web', iat: t, exp: t + 300, ...claims }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(key);
  };
  const json = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', p.issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      if (p.down) return json(res, 500, {});
      return json(res, 200, {
        issuer: p.issuer,
        authorization_endpoint: `${p.issuer}/authorize`,
        token_endpoint: `${p.issuer}/token`,
        revocation_endpoint: `${p.issuer}/revoke`,
        end_session_endpoint: p.noEndSession ? undefined : `${p.issuer}/logout`,
        jwks_uri: `${p.issuer}/jwks`,
        id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    let body = '';
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    // RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
    const basic = Buffer.from((req.headers.authorization ?? '').slice(6), 'base64')
      .toString()
      .split(':')
      .map(decodeURIComponent)
      .join(':');
    if (basic !== `web:${SECRET}`) return json(res, 401, { error: 'invalid_client' });
    if (url.pathname === '/revoke') {
      p.revoked.push(form.get('token') ?? '');
      p.refreshTokens.delete(form.get('token') ?? '');
      res.writeHead(200).end();
      return;
    }
    const next = p.next;
    p.next = {};
    const grantType = form.get('grant_type') ?? '';
    p.grants.push(grantType);
    if (next.error !== undefined) return json(res, next.error.status, { error: next.error.error });
    let sub: string;
    let claims: Record<string, unknown>;
    if (grantType === 'authorization_code') {
      const grant = p.codes.get(form.get('code') ?? '');
      p.codes.delete(form.get('code') ?? '');
      const challenge = createHash('sha256')
        .update(form.get('code_verifier') ?? '')
        .digest('base64url');
      if (grant === undefined || grant.challenge !== challenge || grant.redirectUri !== form.get('redirect_uri')) return json(res, 400, { error: 'invalid_grant' });
      claims = { nonce: grant.nonce, ...grant.claims, ...next.claims };
      sub = String(claims.sub);
    } else if (grantType === 'refresh_token') {
      const known = p.refreshTokens.get(form.get('refresh_token') ?? '');
      if (known === undefined) return json(res, 400, { error: 'invalid_grant' });
      p.refreshTokens.delete(form.get('refresh_token') ?? '');
      sub = known;
      claims = { sub, email: 'alice@example.com', refreshed: true, ...next.claims };
    } else {
      return json(res, 400, { error: 'unsupported_grant_type' });
    }
    // A refresh token when asked for (offline_access), and a new one for each refresh (rotation).
    const refresh = next.refresh === true || grantType === 'refresh_token' ? `rt-${randomBytes(8).toString('hex')}` : undefined;
    if (refresh !== undefined) p.refreshTokens.set(refresh, sub);
    return json(res, 200, {
      access_token: `at-${randomBytes(8).toString('hex')}`,
      token_type: 'Bearer',
      expires_in: next.expiresIn ?? 300,
      id_token: await idToken(claims),
      refresh_token: refresh,
      scope: 'openid profile email',
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  p.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  p.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return p;
}

before(async () => {
  ({ privateKey: key } = await generateKeyPair('RS256'));
  op = await fakeProvider();
});
after(() => op.close());

const consumers = {
  alice: { groups: ['staff'], credentials: [{ type: 'jwt' as const, subject: 'alice-sub' }] },
  bob: { groups: [] },
};

function filter(
  raw: Partial<RawOidc> = {},
  routes?: Record<string, Array<[string, string]>>,
  logged: unknown[] = process.env.OIDC_DEBUG ? ({ push: (x: unknown) => console.log(JSON.stringify(x)) } as unknown as unknown[]) : [],
): OidcFilter {
  const parsed = oidcPolicy.config.parse({ issuer: op.issuer, clientId: 'web', clientSecret: SECRET, cookieSecret: COOKIE_SECRET, ...raw });
  const { ctx, problems } = fakeResolveContext();
  const resolved = oidcPolicy.resolve(parsed, ctx);
  assert.deepEqual(problems, []);
  const deps = fakeDeps({ name: 'sso', consumers, routes: routes ?? { r: [['sso', 'oidc']] } });
  return oidcPolicy.create(resolved, { ...deps, log: { warn: (...a: unknown[]) => logged.push(a), error: (...a: unknown[]) => logged.push(a) } });
}

/** A request on route `r` of http://example.com: a navigation unless told otherwise. */
function session(init: { path?: string; query?: string; cookie?: string; accept?: string; headers?: Record<string, string>; method?: string } = {}): Session {
  const headers: Record<string, string> = { accept: init.accept ?? HTML, ...init.headers };
  if (init.cookie !== undefined) headers.cookie = init.cookie;
  const request: FakeSessionInit['request'] = { path: init.path ?? '/app', query: init.query ?? '', headers, method: init.method ?? 'GET', authority: 'example.com' };
  return fakeSession({ route: 'r', request });
}

/** Set-Cookie values of a reply by cookie name: the value and the attributes as written. */
function cookies(reply: Reply | undefined): Map<string, { value: string; attributes: string }> {
  const out = new Map<string, { value: string; attributes: string }>();
  const raw = reply?.headers?.['set-cookie'];
  for (const line of raw === undefined ? [] : typeof raw === 'string' ? [raw] : raw) {
    const eq = line.indexOf('=');
    const semi = line.indexOf(';');
    out.set(line.slice(0, eq), { value: line.slice(eq + 1, semi), attributes: line.slice(semi) });
  }
  return out;
}

const header = (reply: Reply | undefined, name: string): string | undefined => {
  const v = reply?.headers?.[name];
  return v === undefined ? undefined : typeof v === 'string' ? v : v.join(', ');
};

/** What the provider does between the redirect and the callback: grants a code for the authorization request in `location`. */
function authorize(location: string, claims: Record<string, unknown> = { sub: 'alice-sub', email: 'alice@example.com', org: { id: 'acme' } }): string {
  const url = new URL(location);
  assert.equal(url.origin + url.pathname, `${op.issuer}/authorize`);
  const q = url.searchParams;
  const code = randomBytes(12).toString('hex');
  op.codes.set(code, { nonce: q.get('nonce')!, challenge: q.get('code_challenge')!, redirectUri: q.get('redirect_uri')!, claims });
  return `?${new URLSearchParams({ code, state: q.get('state')! })}`;
}

/** The login cookie of a redirect to the provider, as `name=value`. */
function loginCookie(reply: Reply | undefined): string {
  const [name, c] = [...cookies(reply)].find(([n]) => n.includes('-login-'))!;
  return `${name}=${c.value}`;
}

/** A whole login: the redirect, the provider, the callback. Returns the callback's reply and the session cookie as `name=value`. */
async function login(f: OidcFilter, init: Parameters<typeof session>[0] = {}, claims?: Record<string, unknown>): Promise<{ callback: Reply; cookie: string }> {
  const start = await f.onRequest!(session(init));
  assert.equal(start?.status, 302, JSON.stringify(start));
  const query = authorize(header(start, 'location')!, claims);
  const callback = (await f.onRequest!(session({ path: '/oauth2/callback', query, cookie: loginCookie(start) })))!;
  const made = [...cookies(callback)].find(([n]) => !n.includes('-login-'));
  return { callback, cookie: made === undefined ? '' : `${made[0]}=${made[1].value}` };
}

function upstreamHead(cookie: string, extra: Array<[string, string]> = []): UpstreamRequestHead & { headers: ReturnType<typeof headerList> } {
  return { method: 'GET', target: '/app', headers: headerList([['cookie', cookie], ...extra]), endpoint: 'http://10.0.0.1', attempt: 1 };
}

function responseHead(): ResponseHead {
  return { status: 200, headers: headerList(), fromUpstream: true };
}

/** Moves Date (only) `ms` ahead for the rest of the test. */
function later(t: TestContext, ms: number): void {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() + ms });
}

test('a navigation without a session: 302 to the provider with PKCE S256, state, nonce; the login cookie holds them, sealed', async () => {
  const f = filter();
  const r = await f.onRequest!(session({ path: '/app/page', query: '?x=1' }));
  assert.equal(r?.status, 302);
  assert.equal(header(r, 'cache-control'), 'no-store');
  const url = new URL(header(r, 'location')!);
  const q = url.searchParams;
  assert.equal(q.get('client_id'), 'web');
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('redirect_uri'), 'http://example.com/oauth2/callback');
  assert.equal(q.get('scope'), 'openid profile email');
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.match(q.get('code_challenge')!, /^[A-Za-z0-9_-]{43}$/);
  assert.match(q.get('state')!, /^[A-Za-z0-9_-]{43}$/);
  assert.match(q.get('nonce')!, /^[A-Za-z0-9_-]{43}$/);
  const [[name, c]] = [...cookies(r)];
  assert.equal(name, `__Secure-sb-oidc-sso-login-${q.get('state')!.slice(0, 12)}`);
  assert.equal(c.attributes, '; Path=/oauth2/callback; Max-Age=600; HttpOnly; SameSite=Lax; Secure');
  assert.equal(c.value.split('.').length, 5, 'a compact JWE');
  for (const secret of [q.get('nonce')!, q.get('state')!]) assert.ok(!c.value.includes(secret), 'nothing readable in the cookie');
  // A second navigation starts another login, with its own cookie: two tabs do not overwrite each other.
  const other = await f.onRequest!(session({ path: '/app/other' }));
  assert.notEqual(loginCookie(other).split('=')[0], name);
  assert.equal(f.stats.discoveries, 1, 'the metadata is discovered once');
});

test('the callback sets the session cookie and returns to the page; the session identifies the mapped consumer; the cookie does not go upstream', async () => {
  const f = filter({ claimHeaders: { 'x-email': 'email', 'x-org': 'org.id' } });
  const { callback, cookie } = await login(f, { path: '/app/page', query: '?x=1' });
  assert.equal(callback.status, 302);
  assert.equal(header(callback, 'location'), '/app/page?x=1');
  const set = cookies(callback);
  const session_ = set.get('__Host-sb-oidc-sso')!;
  assert.match(session_.attributes, /^; Path=\/; Max-Age=(29\d|300); HttpOnly; SameSite=Lax; Secure$/, 'lives as long as the tokens: no refresh token');
  assert.ok(cookie.length <= MAX_COOKIE);
  const login_ = [...set].find(([n]) => n.includes('-login-'))!;
  assert.equal(login_[1].value, '', 'the login cookie is cleared');
  assert.match(login_[1].attributes, /Max-Age=0/);

  const s = session({ cookie: `other=1; ${cookie}`, accept: 'application/json' });
  assert.equal(await f.onRequest!(s), undefined);
  assert.equal(s.identity?.consumer.name, 'alice');
  assert.deepEqual(s.identity?.consumer.groups, ['staff']);
  assert.equal(s.identity?.credential, 'alice/jwt/0');
  assert.equal(s.identity?.policy, 'sso');
  assert.deepEqual(s.identity?.scopes, ['openid', 'profile', 'email']);
  assert.equal(s.identity?.claims?.email, 'alice@example.com');
  assert.equal(s.identity?.claims?.nonce, undefined, 'the nonce is not kept');
  const head = upstreamHead(`other=1; ${cookie}`, [
    ['x-consumer-name', 'root'],
    ['x-email', 'spoof'],
  ]);
  f.onUpstreamRequest!(s, head);
  assert.deepEqual(pairs(head.headers), [
    ['x-consumer-name', 'alice'],
    ['x-consumer-groups', 'staff'],
    ['x-email', 'alice@example.com'],
    ['x-org', 'acme'],
    ['cookie', 'other=1'],
  ]);
  const keep = filter({ hideCredentials: false });
  const kept = upstreamHead(cookie);
  keep.onUpstreamRequest!(s, kept);
  assert.equal(kept.headers.get('cookie'), cookie);
});

test('an unmapped subject is a consumer of its own; under consumerRequired, or naming a configured consumer, the login is refused', async () => {
  const f = filter();
  const { cookie } = await login(f, {}, { sub: 'carol-sub' });
  const s = session({ cookie });
  assert.equal(await f.onRequest!(s), undefined);
  assert.deepEqual(s.identity?.consumer, { name: 'carol-sub', groups: [], metadata: {} });
  assert.equal(s.identity?.credential, `oidc:${op.issuer}:carol-sub`);
  for (const [g, sub] of [
    [filter({ consumerRequired: true }), 'carol-sub'],
    [f, 'bob'],
  ] as const) {
    const { callback } = await login(g, {}, { sub });
    assert.equal(callback.status, 401);
    assert.equal(callback.error?.code, 'AUTH_INVALID');
    assert.equal(cookies(callback).get('__Host-sb-oidc-sso'), undefined, 'no session');
  }
});

test('requests that are not navigations get 401 AUTH_REQUIRED with the OIDC challenge, not a redirect', async () => {
  const f = filter();
  for (const init of [{ accept: 'application/json' }, { accept: '*/*' }, { method: 'POST' }, { headers: { 'sec-fetch-mode': 'cors' } }, { accept: 'text/plain' }]) {
    const r = await f.onRequest!(session(init));
    assert.equal(r?.status, 401, JSON.stringify(init));
    assert.equal(r?.error?.code, 'AUTH_REQUIRED');
    assert.deepEqual(r?.headers?.['www-authenticate'], ['OIDC login="/oauth2/login"']);
    assert.equal(r?.headers?.location, undefined);
  }
  assert.equal(isNavigation(session({ headers: { 'sec-fetch-mode': 'navigate' } })), true);
  assert.equal(isNavigation(fakeSession({ request: { method: 'GET', headers: { accept: HTML }, upgrade: true } })), false);
});

test('the callback: no state, no login cookie, a state that does not match, a tampered login cookie: 400 OIDC_STATE_INVALID', async () => {
  const f = filter();
  const grants = op.grants.length;
  const start = await f.onRequest!(session());
  const query = authorize(header(start, 'location')!);
  const good = loginCookie(start);
  const other = loginCookie(await f.onRequest!(session()));
  const name = good.split('=')[0];
  const value = good.slice(name.length + 1);
  const flipped = `${name}=${value.slice(0, 60)}${value[60] === 'A' ? 'B' : 'A'}${value.slice(61)}`;
  for (const [q, cookie] of [
    ['?code=x', good],
    [query, undefined],
    [query, other],
    [query, `${name}=${other.split('=')[1]}`],
    [query, flipped],
    [query, `${name}=garbage`],
    ['?state=%00%01&code=x', good],
  ] as const) {
    const r = await f.onRequest!(session({ path: '/oauth2/callback', query: q, cookie }));
    assert.equal(r?.status, 400, `${q} ${cookie}`);
    assert.equal(r?.error?.code, 'OIDC_STATE_INVALID');
    assert.equal(cookies(r).get('__Host-sb-oidc-sso'), undefined);
  }
  assert.equal(op.grants.length, grants, 'the code was never exchanged');
  // The right cookie still works once.
  const r = await f.onRequest!(session({ path: '/oauth2/callback', query, cookie: good }));
  assert.equal(r?.status, 302);
});

test('an ID token with the wrong nonce, audience or issuer, or a code the provider refuses: 401 AUTH_INVALID, no session, the login cookie cleared', async (t) => {
  const f = filter();
  for (const [what, bend] of [
    ['nonce', { claims: { nonce: 'another-nonce' } }],
    ['aud', { claims: { aud: 'another-client' } }],
    ['iss', { claims: { iss: 'https://evil.example' } }],
    ['exp', { claims: { exp: Math.floor(Date.now() / 1000) - 3600 } }],
    ['invalid_grant', { error: { status: 400, error: 'invalid_grant' } }],
  ] as const) {
    await t.test(what, async () => {
      const start = await f.onRequest!(session());
      const query = authorize(header(start, 'location')!);
      op.next = bend;
      const r = await f.onRequest!(session({ path: '/oauth2/callback', query, cookie: loginCookie(start) }));
      assert.equal(r?.status, 401, what);
      assert.equal(r?.error?.code, 'AUTH_INVALID');
      assert.equal(r?.error?.message, 'the credential was not accepted', 'never which part');
      const set = cookies(r);
      assert.equal(set.get('__Host-sb-oidc-sso'), undefined);
      assert.equal([...set].find(([n]) => n.includes('-login-'))?.[1].value, '');
    });
  }
});

test('the provider ends the login (?error=access_denied): 401 OIDC_LOGIN_DENIED; the provider failing: 503 AUTH_UNAVAILABLE', async () => {
  const f = filter();
  const start = await f.onRequest!(session());
  const state = new URL(header(start, 'location')!).searchParams.get('state')!;
  const denied = await f.onRequest!(session({ path: '/oauth2/callback', query: `?error=access_denied&state=${state}`, cookie: loginCookie(start) }));
  assert.equal(denied?.status, 401);
  assert.equal(denied?.error?.code, 'OIDC_LOGIN_DENIED');
  assert.match(denied!.error!.message, /access_denied/);
  for (const error of [
    { status: 500, error: 'server_error' },
    { status: 401, error: 'invalid_client' },
  ]) {
    const again = await f.onRequest!(session());
    const query = authorize(header(again, 'location')!);
    op.next = { error };
    const r = await f.onRequest!(session({ path: '/oauth2/callback', query, cookie: loginCookie(again) }));
    assert.equal(r?.status, 503, JSON.stringify(error));
    assert.equal(r?.error?.code, 'AUTH_UNAVAILABLE');
  }
});

test('open redirects: a return URL off this site becomes /', async () => {
  const f = filter();
  for (const [rd, expected] of [
    ['//evil.example/x', '/'],
    ['/\\evil.example/x', '/'],
    ['https://evil.example/', '/'],
    ['http://example.com.evil.example/', '/'],
    ['javascript:alert(1)', '/'],
    ['/ok\r\nSet-Cookie: x=1', '/'],
    ['http://example.com/ok?a=1', '/ok?a=1'],
    ['/reports?month=5', '/reports?month=5'],
  ] as const) {
    const start = await f.onRequest!(session({ path: '/oauth2/login', query: `?rd=${encodeURIComponent(rd)}` }));
    const query = authorize(header(start, 'location')!);
    const callback = await f.onRequest!(session({ path: '/oauth2/callback', query, cookie: loginCookie(start) }));
    assert.equal(header(callback, 'location'), expected, rd);
  }
  for (const [value, expected] of [
    [undefined, '/'],
    ['', '/'],
    ['/a/b', '/a/b'],
    ['/%2F%2Fevil.example', '/%2F%2Fevil.example'],
    ['/\u00e9', '/'],
    [`/${'a'.repeat(3000)}`, '/'],
  ] as const) {
    assert.equal(returnPath(value, 'https://app.example.com'), expected, String(value));
  }
  // The page a navigation came for, as requested, is kept when it is a path of this site.
  const { callback } = await login(f, { path: '/deep/page', query: '?q=a%20b' });
  assert.equal(header(callback, 'location'), '/deep/page?q=a%20b');
});

test('without cookieSecret the cookie keys come from the client secret: another worker with the same config opens the session, a filter with a cookieSecret does not', async () => {
  const f = filter({ cookieSecret: undefined });
  const { cookie } = await login(f);
  const other = filter({ cookieSecret: undefined });
  const s = session({ cookie, accept: 'application/json' });
  assert.equal(await other.onRequest!(s), undefined);
  assert.equal(s.identity?.consumer.name, 'alice');
  const withSecret = await filter().onRequest!(session({ cookie, accept: 'application/json' }));
  assert.equal(withSecret?.status, 401, 'keys from cookieSecret differ from the client-secret ones');
});

test('a tampered, foreign or garbage session cookie: an API request gets 401 AUTH_INVALID (cookie cleared), a navigation a new login; never a 500', async () => {
  const f = filter();
  const { cookie } = await login(f);
  const [name, value] = [cookie.slice(0, cookie.indexOf('=')), cookie.slice(cookie.indexOf('=') + 1)];
  const parts = value.split('.');
  parts[3] = `${parts[3][0] === 'A' ? 'B' : 'A'}${parts[3].slice(1)}`;
  const foreign = (await login(filter({ cookieSecret: 'another-cookie-secret-of-32-characters-or-more' }))).cookie.split('=')[1];
  for (const bad of [parts.join('.'), foreign, 'garbage', 'a.b.c.d.e', `${value}x`]) {
    const api = await f.onRequest!(session({ cookie: `${name}=${bad}`, accept: 'application/json' }));
    assert.equal(api?.status, 401, bad);
    assert.equal(api?.error?.code, 'AUTH_INVALID');
    assert.match(header(api, 'set-cookie')!, /^__Host-sb-oidc-sso=; Path=\/; Max-Age=0/);
    const nav = await f.onRequest!(session({ cookie: `${name}=${bad}` }));
    assert.equal(nav?.status, 302);
    assert.ok(header(nav, 'location')!.startsWith(`${op.issuer}/authorize?`));
    assert.equal(cookies(nav).get(name)?.value, '', 'the bad cookie is cleared');
  }
});

test('an expired session without a refresh token: a navigation logs in again, an API request gets 401 AUTH_REQUIRED; the cookie is cleared', async (t) => {
  const f = filter();
  const { cookie } = await login(f);
  op.next = {};
  assert.equal(await f.onRequest!(session({ cookie })), undefined, 'valid now');
  later(t, 301_000);
  const api = await f.onRequest!(session({ cookie, accept: 'application/json' }));
  assert.equal(api?.status, 401);
  assert.equal(api?.error?.code, 'AUTH_REQUIRED');
  assert.match(header(api, 'set-cookie')!, /Max-Age=0/);
  const nav = await f.onRequest!(session({ cookie }));
  assert.equal(nav?.status, 302);
  assert.ok(header(nav, 'location')!.startsWith(`${op.issuer}/authorize?`));
  assert.equal(f.stats.refreshes, 0);
});

test('refresh: expired tokens are refreshed once with the refresh token, the new cookie set on the response; a refused refresh logs in again', async (t) => {
  const f = filter({ scopes: ['openid', 'offline_access'] });
  op.next = { refresh: true };
  const { cookie, callback } = await login(f);
  assert.match(cookies(callback).get('__Host-sb-oidc-sso')!.attributes, /Max-Age=432\d\d/, 'with a refresh token the cookie lives sessionMaxAge');
  later(t, 301_000);
  const grants = op.grants.length;
  const [a, b] = [session({ cookie }), session({ cookie, accept: 'application/json' })];
  const verdicts = await Promise.all([f.onRequest!(a), f.onRequest!(b)]);
  assert.deepEqual(verdicts, [undefined, undefined]);
  assert.deepEqual(op.grants.slice(grants), ['refresh_token'], 'concurrent requests share one refresh');
  assert.equal(a.identity?.consumer.name, 'alice');
  assert.equal(a.identity?.claims?.refreshed, true, 'the claims of the new ID token');
  const head = responseHead();
  assert.equal(f.onResponse!(a, head), undefined);
  const [set] = head.headers.getAll('set-cookie');
  assert.match(set, /^__Host-sb-oidc-sso=[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax; Secure$/);
  const fresh = set.slice(0, set.indexOf(';'));
  assert.notEqual(fresh, cookie);
  const head2 = responseHead();
  f.onResponse!(b, head2);
  assert.deepEqual(head2.headers.getAll('set-cookie'), [set], 'every request with the old cookie gets the new one');
  const c = session({ cookie: fresh });
  assert.equal(await f.onRequest!(c), undefined);
  const head3 = responseHead();
  f.onResponse!(c, head3);
  assert.deepEqual(head3.headers.getAll('set-cookie'), [], 'nothing to set');
  assert.equal(op.grants.length, grants + 1);

  // Another process (no cache) with the old cookie: its refresh token was rotated, the provider refuses it.
  const g = filter({ scopes: ['openid', 'offline_access'] });
  const nav = await g.onRequest!(session({ cookie }));
  assert.equal(nav?.status, 302);
  assert.ok(header(nav, 'location')!.startsWith(`${op.issuer}/authorize?`));
  const api = await g.onRequest!(session({ cookie, accept: 'application/json' }));
  assert.equal(api?.error?.code, 'AUTH_REQUIRED');
});

test('refresh: the provider down is 503 AUTH_UNAVAILABLE (the session kept); past sessionMaxAge the session is over without asking', async (t) => {
  const f = filter({ sessionMaxAge: '1h' });
  op.next = { refresh: true };
  const { cookie } = await login(f);
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() + 301_000 });
  op.next = { error: { status: 503, error: 'temporarily_unavailable' } };
  const down = await f.onRequest!(session({ cookie, accept: 'application/json' }));
  assert.equal(down?.status, 503);
  assert.equal(down?.error?.code, 'AUTH_UNAVAILABLE');
  assert.equal(header(down, 'set-cookie'), undefined, 'the cookie is kept for when the provider is back');
  t.mock.timers.setTime(Date.now() + 3600_000);
  const grants = op.grants.length;
  const over = await f.onRequest!(session({ cookie, accept: 'application/json' }));
  assert.equal(over?.error?.code, 'AUTH_REQUIRED');
  assert.equal(op.grants.length, grants, 'no refresh past sessionMaxAge');
});

test('logout: the cookie cleared, the refresh token revoked, the browser sent to end_session with id_token_hint; without one, to postLogoutPath', async () => {
  const f = filter({ scopes: ['openid', 'offline_access'], postLogoutPath: '/bye' });
  op.next = { refresh: true };
  const { cookie } = await login(f);
  const refreshTokens = [...op.refreshTokens.keys()];
  const r = await f.onRequest!(session({ path: '/oauth2/logout', cookie }));
  assert.equal(r?.status, 302);
  assert.equal(header(r, 'set-cookie'), '__Host-sb-oidc-sso=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure');
  const url = new URL(header(r, 'location')!);
  assert.equal(url.origin + url.pathname, `${op.issuer}/logout`);
  assert.equal(url.searchParams.get('client_id'), 'web');
  assert.equal(url.searchParams.get('post_logout_redirect_uri'), 'http://example.com/bye');
  assert.equal(url.searchParams.get('id_token_hint')!.split('.').length, 3);
  assert.ok(
    refreshTokens.some((t) => op.revoked.includes(t)),
    'the refresh token was revoked',
  );
  op.noEndSession = true;
  try {
    const g = filter({ postLogoutPath: '/bye' });
    const plain = await g.onRequest!(session({ path: '/oauth2/logout' }));
    assert.equal(header(plain, 'location'), '/bye');
    assert.match(header(plain, 'set-cookie')!, /Max-Age=0/);
  } finally {
    op.noEndSession = false;
  }
});

test('discovery failing: 503 AUTH_UNAVAILABLE (logged, not cached), then it works once the provider is back', async () => {
  const logged: unknown[] = [];
  const f = filter({}, undefined, logged);
  op.down = true;
  try {
    const r = await f.onRequest!(session());
    assert.equal(r?.status, 503);
    assert.equal(r?.error?.code, 'AUTH_UNAVAILABLE');
    assert.equal(logged.length, 1);
    assert.ok(!JSON.stringify(logged).includes(SECRET) && !JSON.stringify(logged).includes(COOKIE_SECRET));
  } finally {
    op.down = false;
  }
  assert.equal((await f.onRequest!(session()))?.status, 302);
  assert.equal(f.stats.discoveries, 2);
  const closed = filter({ issuer: 'http://127.0.0.1:1' });
  assert.equal((await closed.onRequest!(session()))?.error?.code, 'AUTH_UNAVAILABLE');
});

test('a session too large for a cookie is trimmed (ID token, then claims) under 4 KB', async () => {
  const logged: unknown[] = [];
  const f = filter({}, undefined, logged);
  const { cookie } = await login(f, {}, { sub: 'alice-sub', bio: 'x'.repeat(5000) });
  assert.ok(cookie.length <= MAX_COOKIE, String(cookie.length));
  const s = session({ cookie });
  assert.equal(await f.onRequest!(s), undefined);
  assert.equal(s.identity?.consumer.name, 'alice');
  assert.equal(s.identity?.claims?.bio, undefined);
  assert.match(JSON.stringify(logged), /did not fit in a cookie/);
});

test('any-of: with another authentication policy after it, no session passes on; anonymous lets a browser in without a login', async () => {
  const routes: Record<string, Array<[string, string]>> = {
    r: [
      ['sso', 'oidc'],
      ['keys', 'api-key'],
    ],
  };
  const f = filter({}, routes);
  assert.equal(await f.onRequest!(session()), undefined, 'passed on to api-key');
  const deps = fakeDeps({ name: 'sso', consumers: { ...consumers, guest: { groups: [] } } });
  const parsed = oidcPolicy.config.parse({ issuer: op.issuer, clientId: 'web', clientSecret: SECRET, cookieSecret: COOKIE_SECRET, anonymous: 'guest' });
  const g = oidcPolicy.create(oidcPolicy.resolve(parsed, fakeResolveContext().ctx), deps);
  const s = session();
  assert.equal(await g.onRequest!(s), undefined);
  assert.equal(s.identity?.consumer.name, 'guest');
  assert.equal((await g.onRequest!(session({ path: '/oauth2/login' })))?.status, 302, 'the login path still logs in');
});

test('cookieSecure: false, cookieName, publicUrl and authorizationParams', async () => {
  const f = filter({ cookieSecure: false, cookieName: 'app_session', publicUrl: 'https://app.example.com', authorizationParams: { prompt: 'consent' } });
  const start = await f.onRequest!(session());
  const q = new URL(header(start, 'location')!).searchParams;
  assert.equal(q.get('redirect_uri'), 'https://app.example.com/oauth2/callback');
  assert.equal(q.get('prompt'), 'consent');
  const [[name, c]] = [...cookies(start)];
  assert.ok(name.startsWith('app_session-login-'));
  assert.ok(!c.attributes.includes('Secure'));
  const callback = await f.onRequest!(session({ path: '/oauth2/callback', query: authorize(header(start, 'location')!), cookie: loginCookie(start) }));
  assert.ok(cookies(callback).has('app_session'));
});

test('resolve: an http issuer off loopback, clashing paths, parameters the policy sets, a publicUrl with a path', () => {
  const { ctx, problems } = fakeResolveContext();
  oidcPolicy.resolve(
    oidcPolicy.config.parse({
      issuer: 'http://idp.example.com',
      clientId: 'web',
      clientSecret: SECRET,
      cookieSecret: COOKIE_SECRET,
      logoutPath: '/oauth2/callback',
      authorizationParams: { state: 'x', prompt: 'login' },
      publicUrl: 'https://app.example.com/base',
    }),
    ctx,
  );
  assert.deepEqual(
    problems.map((p) => `${p.path.join('.')}: ${p.expected}, found ${p.found}`),
    [
      'issuer: an https:// URL (plain http:// only to a loopback address), found http://idp.example.com',
      'logoutPath: a path other than redirectPath\'s, found "/oauth2/callback"',
      'publicUrl: an origin only (scheme, host and port: https://app.example.com), found "https://app.example.com/base"',
      'authorizationParams.state: a parameter the policy does not set itself, found "state"',
    ],
  );
  for (const bad of [{ redirectPath: '//evil' }, { redirectPath: 'callback' }, { loginPath: '/log"in' }, { cookieSecret: 'short' }]) {
    assert.equal(oidcPolicy.config.safeParse({ issuer: op.issuer, clientId: 'web', clientSecret: SECRET, cookieSecret: COOKIE_SECRET, ...bad }).success, false);
  }
});
