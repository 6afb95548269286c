/**
 * The admin listener (issue 12, §3) on a lone gateway: auth, redaction, runtime changes (drain,
 * disable, enable, weight) seen in real traffic to real origins, reload through the API,
 * readiness, rejected reloads, and the answers to bad requests.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigObject, startGateway, type Gateway } from '../../src/index.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { named, Traffic } from './helpers/traffic.ts';
import { guard } from './helpers/guard.ts';

const TOKEN = 'admin-test-token-0123456789';
const dir = await mkdtemp(join(tmpdir(), 'switchboard-admin-'));
const gateways: Gateway[] = [];
const origins: Origin[] = [];
after(async () => {
  await Promise.all(gateways.map((g) => g.stop({ drainTimeout: 500 })));
  await Promise.all(origins.map((o) => o.close()));
  await rm(dir, { recursive: true, force: true });
});

async function origin(name: string, handler = named(name)): Promise<Origin> {
  const o = await startOrigin(name, handler);
  origins.push(o);
  return o;
}

function config(urls: string[], extra: { admin?: object; upstream?: object; top?: object } = {}): Record<string, unknown> {
  return {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { balancer: 'round-robin', endpoints: urls.map((url) => ({ url })), ...extra.upstream } },
    routes: { all: { match: { path: '/' }, upstream: 'app' } },
    admin: { address: '127.0.0.1:0', token: TOKEN, ...extra.admin },
    ...extra.top,
  };
}

async function start(cfg: string | object): Promise<{ gw: Gateway; admin: string; traffic: Traffic }> {
  const gw = await startGateway({ config: cfg, accessLog: 'off', logLevel: 'silent' });
  gateways.push(gw);
  const admin = gw.adminUrl();
  assert.ok(admin !== undefined, 'the admin listener is bound');
  return { gw, admin, traffic: new Traffic(gw.url('web'), 8) };
}

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

async function call(base: string, path: string, init: RequestInit & { token?: string | null } = {}): Promise<Answer> {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers.set('authorization', `Bearer ${token}`);
  const res = await fetch(base + path, { ...init, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // text
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** Who answered each of `n` requests, counted by origin name. */
async function shares(traffic: Traffic, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const r of await traffic.many(n, 4)) {
    assert.equal(r.status, 200);
    out[r.origin] = (out[r.origin] ?? 0) + 1;
  }
  return out;
}

test('auth: /api and /metrics need the bearer token (401 with WWW-Authenticate otherwise); /healthz and /readyz do not; no CORS headers', async () => {
  const a = await origin('A');
  const { admin } = await start(config([a.url]));
  const none = await call(admin, '/api/version', { token: null });
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.equal((none.body as { error: { code: string } }).error.code, 'ADMIN_UNAUTHORIZED');
  const wrong = await call(admin, '/api/version', { token: `${TOKEN}x` });
  assert.equal(wrong.status, 401);
  assert.equal((await call(admin, '/metrics', { token: null })).status, 401);
  const ok = await call(admin, '/api/version', { headers: { origin: 'http://evil.example' } });
  assert.equal(ok.status, 200);
  assert.equal((ok.body as { version: string }).version, '0.1.0');
  for (const h of ok.headers.keys()) assert.ok(!h.startsWith('access-control-'), `no CORS header: ${h}`);
  const healthz = await call(admin, '/healthz', { token: null });
  assert.deepEqual([healthz.status, healthz.text], [200, 'ok\n']);
  assert.equal((await call(admin, '/readyz', { token: null })).status, 200);
  // Metrics are on with an admin listener, and served by it.
  const metrics = await call(admin, '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.text, /^# TYPE switchboard_requests_total counter$/m);
});

test('auth without a token: loopback only, read-only, and a Host that is not loopback (DNS rebinding) is refused', async () => {
  const a = await origin('A');
  const { admin } = await start(config([a.url], { admin: { token: undefined } }));
  assert.equal((await call(admin, '/api/generation', { token: null })).status, 200);
  const port = new URL(admin).port;
  const status = await new Promise<number>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/api/generation', headers: { host: `rebound.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
      .on('error', reject);
  });
  assert.equal(status, 403);
  // Without a token the admin is read-only.
  const change = await call(admin, '/api/upstreams/app/endpoints/0/drain', { method: 'POST', token: null });
  assert.deepEqual([change.status, (change.body as { error: { code: string } }).error.code], [403, 'ADMIN_READ_ONLY']);
  assert.equal((await call(admin, '/api/reload', { method: 'POST', token: null })).status, 403);
  // And the config refuses a non-loopback address without a token, saying why.
  const bad = await loadConfigObject(config([a.url], { admin: { address: '0.0.0.0:0', token: undefined } }));
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.errors.map((e) => e.message).join('\n') : '', /admin\.token: expected a token .*reachable from other machines/);
});

test('auth from another machine: an admin on 0.0.0.0 with a token refuses a non-loopback peer without it', async (t) => {
  const ip = Object.values(networkInterfaces())
    .flat()
    .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;
  if (ip === undefined) return t.skip('this machine has no non-loopback IPv4 address');
  const a = await origin('A');
  const { admin } = await start(config([a.url], { admin: { address: '0.0.0.0:0' } }));
  const base = `http://${ip}:${new URL(admin).port}`;
  assert.equal((await call(base, '/api/upstreams', { token: null })).status, 401);
  assert.equal((await call(base, '/api/upstreams')).status, 200);
});

test('a traffic listener and the admin never share an address', async () => {
  const bad = await loadConfigObject({
    listeners: { web: { address: '127.0.0.1:9901', protocol: 'http' } },
    admin: { address: '0.0.0.0:9901', token: 'x' },
  });
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.errors[0]!.message : '', /admin\.address: expected an address apart from the traffic listeners \(listener "web"/);
});

test('/api/config: the running config with the admin token and the Redis password redacted', async () => {
  const a = await origin('A');
  const { admin } = await start(config([a.url], { top: { state: { backend: 'memory', redis: { url: 'redis://app:hunter2-redis@127.0.0.1:6379/0' } } } }));
  const res = await call(admin, '/api/config');
  assert.equal(res.status, 200);
  assert.ok(!res.text.includes(TOKEN), 'no admin token');
  assert.ok(!res.text.includes('hunter2-redis'), 'no Redis password');
  const body = res.body as { state: { redis: { url: string } }; admin: { token: string }; upstreams: Record<string, unknown> };
  assert.equal(body.state.redis.url, 'redis://app:[redacted]@127.0.0.1:6379/0');
  assert.equal(body.admin.token, '[redacted]');
  assert.ok('app' in body.upstreams);
  const listeners = (await call(admin, '/api/listeners')).body as Array<{ name: string; url: string }>;
  assert.equal(listeners[0]!.name, 'web');
  assert.match(listeners[0]!.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const routes = (await call(admin, '/api/routes')).body as Array<{ name: string; upstream: string }>;
  assert.deepEqual(
    routes.map((r) => [r.name, r.upstream]),
    [['all', 'app']],
  );
  const workers = (await call(admin, '/api/workers')).body as Array<{ pid: number; state: string }>;
  assert.deepEqual(
    workers.map((w) => [w.pid, w.state]),
    [[process.pid, 'serving']],
  );
});

test('drain: no new requests to the endpoint, the one in flight finishes; enable brings it back; disable takes it out', async () => {
  let release: (() => void) | undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const a = await origin('A', (req, res) => {
    req.resume();
    const answer = (): void => void res.writeHead(200, { 'x-origin': 'A' }).end('A');
    if (req.url === '/slow') void held.then(answer);
    else answer();
  });
  const b = await origin('B');
  const { admin, traffic } = await start(config([a.url, b.url]));
  assert.deepEqual(await shares(traffic, 20), { A: 10, B: 10 });
  // A request in flight to A (round robin: the next pick is A).
  const slow = traffic.send({ path: '/slow' });
  await guard(
    (async () => {
      while (!a.seen.some((r) => r.url === '/slow')) await new Promise((r) => setImmediate(r));
    })(),
    'the slow request to reach A',
  );
  const drained = await call(admin, '/api/upstreams/app/endpoints/0/drain', { method: 'POST' });
  assert.equal(drained.status, 200, drained.text);
  const seenA = a.seen.length;
  assert.deepEqual(await shares(traffic, 20), { B: 20 });
  assert.equal(a.seen.length, seenA, 'no new request reached the drained endpoint');
  const view = (await call(admin, '/api/upstreams')).body as Array<{ name: string; endpoints: Array<{ url: string; admin: string; inFlight: number }> }>;
  const epA = view[0]!.endpoints[0]!;
  assert.deepEqual([epA.url, epA.admin, epA.inFlight], [a.url, 'drain', 1]);
  release!();
  assert.deepEqual([(await slow).status, (await slow).origin], [200, 'A'], 'the request in flight finished');
  // Enable (by URL this time), then disable.
  const byUrl = encodeURIComponent(a.url);
  assert.equal((await call(admin, `/api/upstreams/app/endpoints/${byUrl}/enable`, { method: 'POST' })).status, 200);
  assert.deepEqual(await shares(traffic, 20), { A: 10, B: 10 });
  assert.equal((await call(admin, '/api/upstreams/app/endpoints/1/disable', { method: 'POST' })).status, 200);
  assert.deepEqual(await shares(traffic, 10), { A: 10 });
  const after = (await call(admin, '/api/upstreams')).body as Array<{ endpoints: Array<{ admin: string }> }>;
  assert.deepEqual(
    after[0]!.endpoints.map((e) => e.admin),
    ['ready', 'maint'],
  );
});

test('weight: PUT shifts the share; a reload through the API clears runtime changes and swaps the config', async () => {
  const a = await origin('A');
  const b = await origin('B');
  const c = await origin('C');
  const file = join(dir, 'weights.yaml');
  const yaml = (urls: string[]): string =>
    `listeners:\n  web: { address: "127.0.0.1:0", protocol: http }\nupstreams:\n  app:\n    balancer: weighted-round-robin\n    endpoints: [${urls.map((u) => `{ url: "${u}" }`).join(', ')}]\nroutes:\n  all: { match: { path: / }, upstream: app }\nadmin: { address: "127.0.0.1:0", token: "${TOKEN}" }\n`;
  await writeFile(file, yaml([a.url, b.url]));
  const { admin, traffic } = await start(file);
  assert.deepEqual(await shares(traffic, 20), { A: 10, B: 10 });
  const set = await call(admin, '/api/upstreams/app/endpoints/1/weight', { method: 'PUT', body: JSON.stringify({ weight: 3 }) });
  assert.equal(set.status, 200, set.text);
  assert.deepEqual(await shares(traffic, 40), { A: 10, B: 30 });
  const up = (await call(admin, '/api/upstreams')).body as Array<{ endpoints: Array<{ weight: number; configWeight: number }> }>;
  assert.deepEqual([up[0]!.endpoints[1]!.weight, up[0]!.endpoints[1]!.configWeight], [3, 1]);
  // Reload with the same endpoints plus C: the runtime weight is gone, C serves.
  const gen = ((await call(admin, '/api/generation')).body as { number: number }).number;
  await writeFile(file, yaml([a.url, b.url, c.url]));
  const reloaded = await call(admin, '/api/reload', { method: 'POST' });
  assert.equal(reloaded.status, 200, reloaded.text);
  assert.equal(((await call(admin, '/api/generation')).body as { number: number }).number, gen + 1);
  assert.deepEqual(await shares(traffic, 30), { A: 10, B: 10, C: 10 });
});

test('readyz: 503 naming the upstream once every endpoint of a health-checked upstream is down', async () => {
  const a = await origin('A');
  // A timeout far above the interval: with fall 1, one check a loaded machine answered after a short
  // timeout would mark the up endpoint down and fail the first 200. Once a is closed, checks are refused at once.
  const { admin } = await start(
    config([a.url], { upstream: { healthCheck: { type: 'http', path: '/', interval: '50ms', timeout: '2s', rise: 1, fall: 1, jitter: 0 } } }),
  );
  assert.equal((await call(admin, '/readyz', { token: null })).status, 200);
  await a.close();
  let ready: Answer;
  await guard(
    (async () => {
      do ready = await call(admin, '/readyz', { token: null });
      while (ready.status === 200);
    })(),
    'readyz to turn 503',
    5000,
  );
  assert.equal(ready!.status, 503);
  assert.deepEqual((ready!.body as { upstreamsWithoutHealthyEndpoint: string[] }).upstreamsWithoutHealthyEndpoint, ['app']);
});

test('config-errors lists a rejected reload; bad requests get JSON errors (404, 405, 400, 413, CSRF 403)', async () => {
  const a = await origin('A');
  const file = join(dir, 'errors.yaml');
  const good = `listeners:\n  web: { address: "127.0.0.1:0", protocol: http }\nupstreams:\n  app: { endpoints: [{ url: "${a.url}" }] }\nroutes:\n  all: { match: { path: / }, upstream: app }\nadmin: { address: "127.0.0.1:0", token: "${TOKEN}" }\n`;
  await writeFile(file, good);
  const { admin } = await start(file);
  assert.deepEqual(((await call(admin, '/api/config-errors')).body as { errors: unknown[] }).errors, []);
  await writeFile(file, good.replace('round-robin', 'x').replace('endpoints: [', 'endpoints: [{ url: "ftp://nope" }, '));
  const rejected = await call(admin, '/api/reload', { method: 'POST' });
  assert.equal(rejected.status, 422);
  const errors = ((await call(admin, '/api/config-errors')).body as { errors: Array<{ at: string; errors: string[] }> }).errors;
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.errors.join('\n'), /upstreams\.app\.endpoints\[0\]\.url/);
  assert.ok(!Number.isNaN(Date.parse(errors[0]!.at)));

  const code = (r: Answer): [number, string] => [r.status, (r.body as { error: { code: string } }).error.code];
  assert.deepEqual(code(await call(admin, '/api/nothing')), [404, 'ADMIN_NOT_FOUND']);
  assert.deepEqual(code(await call(admin, '/api/config', { method: 'POST' })), [405, 'ADMIN_METHOD_NOT_ALLOWED']);
  assert.deepEqual(code(await call(admin, '/api/upstreams/app/endpoints/0/drain')), [405, 'ADMIN_METHOD_NOT_ALLOWED']);
  assert.deepEqual(code(await call(admin, '/api/upstreams/nope/endpoints/0/drain', { method: 'POST' })), [404, 'ADMIN_UNKNOWN_UPSTREAM']);
  assert.deepEqual(code(await call(admin, '/api/upstreams/app/endpoints/7/drain', { method: 'POST' })), [404, 'ADMIN_UNKNOWN_ENDPOINT']);
  assert.deepEqual(code(await call(admin, '/api/upstreams/app/endpoints/0/weight', { method: 'PUT', body: '{nope' })), [400, 'ADMIN_BAD_REQUEST']);
  assert.deepEqual(code(await call(admin, '/api/upstreams/app/endpoints/0/weight', { method: 'PUT', body: '{"weight": 0}' })), [400, 'ADMIN_BAD_WEIGHT']);
  assert.deepEqual(code(await call(admin, '/api/upstreams/app/endpoints/0/weight', { method: 'PUT', body: 'x'.repeat(10_000) })), [413, 'ADMIN_BODY_TOO_LARGE']);
  assert.deepEqual(code(await call(admin, '/api/upstreams/app/endpoints/0/drain', { method: 'POST', headers: { origin: 'http://evil.example' } })), [
    403,
    'ADMIN_CROSS_ORIGIN',
  ]);
  // The refused change changed nothing.
  const up = (await call(admin, '/api/upstreams')).body as Array<{ endpoints: Array<{ admin: string }> }>;
  assert.equal(up[0]!.endpoints[0]!.admin, 'ready');
});

test('a reload that moves the admin re-binds it; one whose admin address cannot bind changes nothing', async (t) => {
  const a = await origin('A');
  const file = join(dir, 'move.yaml');
  const yaml = (address: string): string =>
    `listeners:\n  web: { address: "127.0.0.1:0", protocol: http }\nupstreams:\n  app: { endpoints: [{ url: "${a.url}" }] }\nroutes:\n  all: { match: { path: / }, upstream: app }\nadmin: { address: "${address}", token: "${TOKEN}" }\n`;
  await writeFile(file, yaml('127.0.0.1:0'));
  const { gw, admin } = await start(file);
  await writeFile(file, yaml('127.0.0.2:0'));
  assert.equal((await call(admin, '/api/reload', { method: 'POST' })).status, 200);
  const moved = gw.adminUrl()!;
  assert.match(moved, /^http:\/\/127\.0\.0\.2:\d+$/);
  assert.equal((await call(moved, '/api/generation')).status, 200);
  // A new connection to the old address is refused.
  await assert.rejects(new Promise((resolve, reject) => http.get(`${admin}/healthz`, { agent: false }, resolve).on('error', reject)), /ECONNREFUSED/);
  // An address in use: the reload is refused, the admin stays.
  const taken = new URL(moved).port;
  const blocker = http.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.3', resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const busy = (blocker.address() as { port: number }).port;
  await writeFile(file, yaml(`127.0.0.3:${busy}`));
  const refused = await call(moved, '/api/reload', { method: 'POST' });
  assert.equal(refused.status, 422);
  assert.match(JSON.stringify(refused.body), /admin\.address: expected an admin address that can bind.*in use/);
  assert.equal(gw.adminUrl(), moved, 'the admin stays where it was');
  assert.equal(new URL(gw.adminUrl()!).port, taken);
});
