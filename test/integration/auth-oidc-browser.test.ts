/**
 * The `oidc` policy end to end: a real browser (Debian's Chromium through playwright-core), a real
 * OpenID provider (`oidc-provider` on 127.0.0.1 port 0, its development login and consent pages),
 * the real gateway in front of an origin that shows what it was told (the consumer header, the
 * email claim header, the Cookie header it got). The site is `http://localhost:<gateway port>`
 * and the provider `http://127.0.0.1:<its port>`: two sites, as in production, so the callback is
 * a cross-site navigation (the login cookie is SameSite=Lax). The browser goes to a protected page,
 * lands on the provider's login form, signs in, consents, comes back through the callback with a
 * session cookie, and sees its identity; a script's fetch without the cookie gets 401; tokens
 * expired are refreshed with the provider; logout ends the session at the gateway and at the
 * provider, and the next navigation asks for a login again. `.ci/run` installs Chromium; the
 * browser tests skip only when /usr/bin/chromium is absent.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { type Chromium, launchChromium, skipWithoutChromium } from './helpers/browser.ts';
import { request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { type Idp, signingKey, startIdp } from './helpers/idp.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { runCli } from './helpers/run-cli.ts';

const CLIENT_SECRET = 'web client secret/with+odd:chars';
const COOKIE_SECRET = 'cookie-secret-for-the-oidc-test-0123456789';
const SESSION = '__Host-sb-oidc-sso';

/** The origin's page: who the gateway said is calling, and the Cookie header that reached it. */
function page(req: http.IncomingMessage, res: http.ServerResponse): void {
  const h = req.headers;
  const json = (h.accept ?? '').includes('application/json');
  const seen = { path: req.url, consumer: h['x-consumer-name'] ?? null, email: h['x-email'] ?? null, cookie: h.cookie ?? null };
  req.resume();
  if (json) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(seen));
    return;
  }
  const esc = (v: unknown): string => String(v).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(
    `<!doctype html><meta charset="utf-8"><title>app</title><p id="path">${esc(seen.path)}</p><p id="who">${esc(seen.consumer)}</p><p id="email">${esc(seen.email)}</p><p id="cookie">${esc(seen.cookie)}</p>`,
  );
}

describe('oidc: browser login against oidc-provider', () => {
  let origin: Origin;
  let idp: Idp;
  let gw: TestGateway;
  let dir: string;
  let site: string;
  let chrome: Chromium | undefined;
  let browser: BrowserContext | undefined;
  /** Grant types the provider's token endpoint granted, in order. */
  const granted: string[] = [];

  before(async () => {
    origin = await startOrigin('app', page);
    idp = await startIdp();
    process.env.SB_TEST_OIDC_CLIENT_SECRET = CLIENT_SECRET;
    process.env.SB_TEST_OIDC_COOKIE_SECRET = COOKIE_SECRET;
    dir = await mkdtemp(path.join(tmpdir(), 'switchboard-oidc-'));
    await writeFile(
      path.join(dir, 'sb.yaml'),
      `
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
consumers:
  alice:
    groups: [staff]
    credentials:
      - { type: jwt, subject: alice }
policies:
  sso:
    type: oidc
    issuer: "${idp.issuer}"
    clientId: web
    clientSecret: "\${SB_TEST_OIDC_CLIENT_SECRET}"
    cookieSecret: "\${SB_TEST_OIDC_COOKIE_SECRET}"
    redirectPath: /callback
    logoutPath: /logout
    postLogoutPath: /bye
    scopes: [openid, email, offline_access]
    authorizationParams: { prompt: consent }
    claimHeaders: { x-email: email }
routes:
  app: { match: { path: / }, upstream: app, policies: [sso] }
  bye: { match: { path: { exact: /bye } }, upstream: app }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
`,
    );
    gw = await startTestGateway(path.join(dir, 'sb.yaml'));
    site = `http://localhost:${gw.port}`;
    const provider = idp.use({
      jwks: { keys: [await signingKey('k1')] },
      clients: [
        {
          client_id: 'web',
          client_secret: CLIENT_SECRET,
          redirect_uris: [`${site}/callback`],
          post_logout_redirect_uris: [`${site}/bye`],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
        },
      ],
      claims: { openid: ['sub'], email: ['email', 'email_verified'] },
      // The email claim in the ID token itself (the gateway does not call userinfo).
      conformIdTokenClaims: false,
      findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, email: `${sub}@example.com`, email_verified: true }) }),
      cookies: { keys: ['oidc-provider-cookie-key-for-tests'] },
      pkce: { required: () => true },
      ttl: { AccessToken: 600, IdToken: 600, RefreshToken: 86_400, Grant: 86_400, Session: 86_400, Interaction: 600 },
      features: { devInteractions: { enabled: true }, revocation: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    });
    provider.on('grant.success', (ctx) => granted.push(String((ctx as { oidc: { params: { grant_type: string } } }).oidc.params.grant_type)));
    chrome = await launchChromium();
    browser = chrome?.context;
  });

  after(async () => {
    try {
      await chrome?.close();
    } finally {
      await gw?.stop();
      await origin?.close();
      await idp?.close();
      delete process.env.SB_TEST_OIDC_CLIENT_SECRET;
      delete process.env.SB_TEST_OIDC_COOKIE_SECRET;
      await rm(dir, { recursive: true, force: true });
    }
  });

  const text = async (p: Page, id: string): Promise<string> => (await p.locator(`#${id}`).textContent({ timeout: 10_000 })) ?? '';

  /** The provider's login form, filled and sent; then its consent page, if it asks. */
  async function signIn(p: Page, login: string): Promise<void> {
    await p.waitForURL(`${idp.issuer}/interaction/**`, { timeout: 15_000 });
    await p.locator('input[name="login"]').fill(login);
    await p.locator('input[name="password"]').fill('any password');
    await p.locator('button[type="submit"]').click();
    await p.waitForURL((url) => url.origin !== idp.issuer || url.pathname.startsWith('/interaction/'), { timeout: 15_000 });
    if (new URL(p.url()).origin === idp.issuer) {
      await p.locator('button[type="submit"]', { hasText: 'Continue' }).click(); // consent
    }
  }

  async function sessionCookie(): Promise<{ value: string; httpOnly: boolean; secure: boolean; sameSite: string; path: string } | undefined> {
    return (await browser!.cookies(site)).find((c) => c.name === SESSION);
  }

  test('login: redirect to the provider, its login form and consent, the callback, a session cookie; the page shows the identity', { timeout: 90_000 }, async (t) => {
    if (skipWithoutChromium(t, chrome)) return;
    const p = await browser!.newPage();
    try {
      const seen = origin.seen.length;
      await p.goto(`${site}/app/page?x=1`, { timeout: 15_000 });
      assert.ok(p.url().startsWith(`${idp.issuer}/interaction/`), `the provider's login form, got ${p.url()}`);
      assert.equal(origin.seen.length, seen, 'nothing reached the origin before the login');
      await signIn(p, 'alice');
      await p.waitForURL(`${site}/app/page?x=1`, { timeout: 15_000 });
      assert.equal(await text(p, 'who'), 'alice');
      assert.equal(await text(p, 'email'), 'alice@example.com');
      assert.ok(!(await text(p, 'cookie')).includes(SESSION), 'the session cookie does not reach the origin');
      const c = await sessionCookie();
      assert.ok(c, 'the session cookie is set');
      assert.equal(c.httpOnly, true);
      assert.equal(c.secure, true);
      assert.equal(c.sameSite, 'Lax');
      assert.equal(c.path, '/');
      assert.ok(c.value.length < 4000, `${c.value.length} bytes`);
      assert.ok(!(await browser!.cookies(site)).some((x) => x.name.includes('-login-')), 'the login cookie is gone');
      assert.deepEqual(granted, ['authorization_code']);

      // A script of the page: with the cookie it is alice; without it, a 401 (not a redirect).
      const calls = await p.evaluate(async () => {
        const get = async (credentials: RequestCredentials) => {
          const r = await fetch('/app/api', { credentials, headers: { accept: 'application/json' } });
          return { status: r.status, body: await r.json(), challenge: r.headers.get('www-authenticate') };
        };
        return { withCookie: await get('same-origin'), without: await get('omit') };
      });
      assert.equal(calls.withCookie.status, 200);
      assert.equal(calls.withCookie.body.consumer, 'alice');
      assert.equal(calls.without.status, 401);
      assert.equal(calls.without.body.error.code, 'AUTH_REQUIRED');
      assert.equal(calls.without.challenge, 'OIDC login="/oauth2/login"');
    } finally {
      await p.close();
    }
  });

  test('tokens expired: the gateway refreshes them with the provider and sets the new session cookie', { timeout: 60_000 }, async (t) => {
    if (skipWithoutChromium(t, chrome)) return;
    const c = await sessionCookie();
    assert.ok(c, 'logged in by the test before');
    // The tokens live 10 minutes: move the clock of this process (gateway and provider) 20 minutes on.
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() + 20 * 60_000 });
    const res = await request(`${site}/app/api`, { headers: { accept: 'application/json', cookie: `${SESSION}=${c.value}` } });
    const body = (await res.body.json()) as { consumer: string };
    t.mock.timers.reset();
    assert.equal(res.statusCode, 200, JSON.stringify(body));
    assert.equal(body.consumer, 'alice');
    assert.deepEqual(granted, ['authorization_code', 'refresh_token']);
    const set = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
    assert.equal(set.length, 1);
    assert.match(set[0], new RegExp(`^${SESSION}=[^;]+; Path=/; Max-Age=\\d+; HttpOnly; SameSite=Lax; Secure$`));
    assert.notEqual(set[0].slice(SESSION.length + 1, set[0].indexOf(';')), c.value);
  });

  test('logout: the cookie cleared, the provider’s session ended; the next navigation asks for a login again', { timeout: 90_000 }, async (t) => {
    if (skipWithoutChromium(t, chrome)) return;
    const p = await browser!.newPage();
    try {
      await p.goto(`${site}/app/page`, { timeout: 15_000 });
      assert.equal(await text(p, 'who'), 'alice', 'still logged in');
      await p.goto(`${site}/logout`, { timeout: 15_000 });
      assert.equal(await sessionCookie(), undefined, 'the gateway cleared its cookie');
      assert.ok(p.url().startsWith(`${idp.issuer}/session/end`), `the provider's logout, got ${p.url()}`);
      await p.locator('button[name="logout"][value="yes"]').click();
      await p.waitForURL(`${site}/bye`, { timeout: 15_000 });
      assert.equal(await text(p, 'who'), 'null', 'the post-logout page is not behind the login');

      const api = await request(`${site}/app/api`, { headers: { accept: 'application/json' } });
      assert.equal(api.statusCode, 401);
      assert.equal(((await api.body.json()) as { error: { code: string } }).error.code, 'AUTH_REQUIRED');
      await p.goto(`${site}/app/page`, { timeout: 15_000 });
      await p.waitForURL(`${idp.issuer}/interaction/**`, { timeout: 15_000 });
      assert.equal(await p.locator('input[name="login"]').count(), 1, 'the provider asks for a login again');
    } finally {
      await p.close();
    }
  });

  test('switchboard validate: the client secret and the cookie secret are never shown', async () => {
    const file = path.join(dir, 'bad.yaml');
    const short = 'short-cookie-secret';
    await writeFile(
      file,
      `
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
policies:
  a: { type: oidc, issuer: "http://idp.example.com", clientId: web, clientSecret: "do-not-show-this", cookieSecret: "${short}" }
  b: { type: oidc, issuer: "https://idp.example.com", clientId: web, clientSecret: 42, cookieSecret: "${COOKIE_SECRET}" }
`,
    );
    const r = await runCli(['validate', '-c', file]);
    assert.equal(r.code, 2);
    const out = r.stdout + r.stderr;
    assert.match(out, /bad\.yaml:5:\d+: policies\.a\.cookieSecret: expected a string of at least 32 characters, found a value that is not shown \(a secret\)/);
    assert.match(out, /bad\.yaml:6:\d+: policies\.b\.clientSecret: expected a string, found a value that is not shown \(a secret\)/);
    for (const secret of [short, 'do-not-show-this', COOKIE_SECRET]) assert.ok(!out.includes(secret), out);
  });
});
