/**
 * Hot reload through the programmatic API: atomic swaps under load, rejected configs, in-flight
 * requests finishing on their own generation, kept pools, file watching, listeners coming and going.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configReload } from '../../src/observability/events.ts';
import { startGateway } from '../../src/index.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { simpleConfig, startTestGateway } from './helpers/gateway.ts';

interface Echoed {
  origin: string;
  url: string;
}

async function get(url: string): Promise<{ status: number; body: Echoed }> {
  const res = await fetch(url);
  const text = await res.text();
  assert.equal(res.status, 200, `GET ${url}: ${res.status} ${text}`);
  return { status: res.status, body: JSON.parse(text) as Echoed };
}

/** An origin that counts the TCP connections it accepts. */
async function countingOrigin(name: string): Promise<Origin & { connections: () => number }> {
  const o = await startOrigin(name);
  let n = 0;
  o.server.on('connection', () => n++);
  return Object.assign(o, { connections: () => n });
}

/** Config with endpoints for upstream `app` and a route `api` on /api/ with the given rewrite. */
function apiConfig(endpoints: Origin[], rewrite: object): Record<string, unknown> {
  return {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { api: { match: { path: '/api/' }, rewrite, upstream: 'app' } },
    upstreams: { app: { endpoints: endpoints.map((o) => ({ url: o.url })) } },
  };
}

test('ten reloads under steady load: every request 2xx, each answered by one whole generation, then the new config', async () => {
  const [a, b, c] = await Promise.all([startOrigin('A'), startOrigin('B'), startOrigin('C')]);
  // Generation 1: A,B with /api stripped; generation 2: B,C with /api replaced by /v2.
  const config1 = apiConfig([a, b], { stripPrefix: '/api' });
  const config2 = apiConfig([b, c], { replacePrefix: { from: '/api', to: '/v2' } });
  const tg = await startTestGateway(config1);
  try {
    let done = false;
    let completed = 0;
    const failures: string[] = [];
    const seen = { A: 0, B: 0, C: 0 } as Record<string, number>;
    let waiter: { target: number; resolve: () => void } | undefined;
    const loop = async (): Promise<void> => {
      // Bounded by count, in case the reloads never finish.
      for (let i = 0; i < 5000 && !done; i++) {
        try {
          const res = await fetch(`${tg.url}/api/x?i=${i}`);
          const text = await res.text();
          if (res.status < 200 || res.status > 299) {
            failures.push(`${res.status} ${text}`);
            continue;
          }
          const body = JSON.parse(text) as Echoed;
          seen[body.origin] = (seen[body.origin] ?? 0) + 1;
          // Endpoints and rewrite change together: A only ever with stripping, C only with /v2.
          const path = body.url.split('?')[0];
          if (body.origin === 'A' && path !== '/x') failures.push(`A answered ${body.url}`);
          if (body.origin === 'C' && path !== '/v2/x') failures.push(`C answered ${body.url}`);
          if (path !== '/x' && path !== '/v2/x') failures.push(`unexpected path ${body.url}`);
        } catch (err) {
          failures.push(`request failed: ${String((err as Error).cause ?? err)}`);
        }
        completed++;
        if (waiter && completed >= waiter.target) {
          waiter.resolve();
          waiter = undefined;
        }
      }
    };
    /** Resolves once `n` more requests have completed. */
    const moreRequests = (n: number): Promise<void> => guard(new Promise<void>((resolve) => (waiter = { target: completed + n, resolve })), `${n} more requests`, 10_000);

    const loops = Array.from({ length: 16 }, loop);
    await moreRequests(32);
    for (let i = 1; i <= 10; i++) {
      const next = i % 2 === 1 ? config2 : config1;
      const result = await tg.gw.reload(next);
      assert.deepEqual(result, { ok: true, errors: [] }, `reload ${i}`);
      await moreRequests(32);
    }
    done = true;
    await guard(Promise.all(loops), 'the load loops', 10_000);

    assert.deepEqual(failures, []);
    assert.ok(completed >= 32 * 11, `completed ${completed}`);
    assert.ok(seen.A! > 0 && seen.B! > 0 && seen.C! > 0, `every generation served: ${JSON.stringify(seen)}`);

    // The tenth reload went from config2 back to config1: A,B with stripping.
    const after = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const { body } = await get(`${tg.url}/api/y`);
      assert.equal(body.url, '/y');
      after.add(body.origin);
    }
    assert.deepEqual([...after].sort(), ['A', 'B']);
  } finally {
    await tg.stop();
    await Promise.all([a, b, c].map((o) => o.close()));
  }
});

test('a config with an unknown upstream is rejected with its path and the old config keeps serving', async () => {
  const a = await startOrigin('A');
  const tg = await startTestGateway(simpleConfig([a.url]));
  try {
    const bad = simpleConfig([a.url], { route: { upstream: 'nope' } });
    const result = await tg.gw.reload(bad);
    assert.equal(result.ok, false);
    const paths = result.errors.map((e) => e.path);
    assert.ok(paths.includes('routes.all.upstream'), `errors: ${JSON.stringify(result.errors)}`);
    const e = result.errors.find((x) => x.path === 'routes.all.upstream')!;
    assert.match(e.message, /routes\.all\.upstream/);
    assert.match(e.found, /nope/);

    assert.equal(tg.gw.config.routes[0]!.upstream, 'app');
    const { body } = await get(`${tg.url}/still`);
    assert.equal(body.origin, 'A');
    assert.equal(body.url, '/still');
  } finally {
    await tg.stop();
    await a.close();
  }
});

test('an in-flight request finishes on the old generation; new requests take the new one', async () => {
  let arrived!: () => void;
  const arrivedP = new Promise<void>((r) => (arrived = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const slow = await startOrigin('slow', (req, res) => {
    arrived();
    void released.then(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': 'slow' });
      res.end(`slow answered ${req.url}`);
    });
  });
  const a = await startOrigin('A');
  const tg = await startTestGateway(simpleConfig([slow.url]));
  try {
    const pending = fetch(`${tg.url}/slow`).then(async (res) => ({ status: res.status, origin: res.headers.get('x-origin'), text: await res.text() }));
    await guard(arrivedP, 'the slow request to reach its origin', 5000);

    const result = await tg.gw.reload(simpleConfig([a.url]));
    assert.equal(result.ok, true);
    const during = await get(`${tg.url}/during`);
    assert.equal(during.body.origin, 'A');

    release();
    const old = await guard(pending, 'the slow response', 5000);
    assert.deepEqual(old, { status: 200, origin: 'slow', text: 'slow answered /slow' });

    const afterwards = await get(`${tg.url}/after`);
    assert.equal(afterwards.body.origin, 'A');
    assert.equal(slow.seen.length, 1);
  } finally {
    release();
    await tg.stop();
    await Promise.all([slow.close(), a.close()]);
  }
});

test('a reload that keeps an endpoint keeps its pool and its keep-alive connection', async () => {
  const a = await countingOrigin('A');
  const b = await startOrigin('B');
  const tg = await startTestGateway(simpleConfig([a.url]));
  try {
    await get(`${tg.url}/one`);
    await get(`${tg.url}/two`);
    assert.equal(a.connections(), 1);

    // A change elsewhere (a new route and upstream, a rewrite) keeps A's endpoint and pool settings.
    const kept = {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      routes: {
        all: { match: { path: '/' }, upstream: 'app', rewrite: { replacePrefix: { from: '/', to: '/kept/' } } },
        other: { match: { path: '/other/' }, upstream: 'other' },
      },
      upstreams: { app: { endpoints: [{ url: a.url }] }, other: { endpoints: [{ url: b.url }] } },
    };
    assert.equal((await tg.gw.reload(kept)).ok, true);
    for (const p of ['three', 'four', 'five']) {
      const { body } = await get(`${tg.url}/${p}`);
      assert.equal(body.url, `/kept/${p}`);
    }
    assert.equal(a.connections(), 1, 'the same upstream connection served across the reload');
    assert.equal(a.seen.length, 5);

    // Control: a change to the pool's settings is a new pool, hence a new connection.
    assert.equal((await tg.gw.reload(simpleConfig([a.url], { upstream: { connectionsPerEndpoint: 7 } }))).ok, true);
    await get(`${tg.url}/six`);
    assert.equal(a.connections(), 2);
  } finally {
    await tg.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

test('the watched config file reloads on change; a bad edit keeps the old config', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-reload-'));
  const file = join(dir, 'switchboard.yaml');
  const [a, b] = await Promise.all([startOrigin('A'), startOrigin('B')]);
  const yaml = (origin: Origin, upstreamRef = 'app'): string =>
    [
      'listeners:',
      '  web:',
      '    address: "127.0.0.1:0"',
      '    protocol: http',
      'routes:',
      '  all:',
      '    match: { path: / }',
      `    upstream: ${upstreamRef}`,
      'upstreams:',
      '  app:',
      '    endpoints:',
      `      - url: ${origin.url}`,
      '',
    ].join('\n');
  await writeFile(file, yaml(a));

  const events: Array<{ ok: boolean; errors?: string[] }> = [];
  let notify: (() => void) | undefined;
  const onReload = (msg: unknown): void => {
    events.push(msg as { ok: boolean; errors?: string[] });
    notify?.();
  };
  /** Resolves with the first reload event (from now on) whose `ok` is `ok`. */
  const nextReload = (ok: boolean): Promise<{ ok: boolean; errors?: string[] }> => {
    const from = events.length;
    return guard(
      new Promise((resolve) => {
        notify = () => {
          const hit = events.slice(from).find((e) => e.ok === ok);
          if (hit) resolve(hit);
        };
      }),
      `a config reload event with ok=${ok}`,
      10_000,
    );
  };
  configReload.subscribe(onReload);
  const gw = await startGateway({ config: file, accessLog: 'off', logLevel: 'silent', watch: true });
  try {
    const url = gw.url('web');
    assert.equal((await get(`${url}/`)).body.origin, 'A');

    const good = nextReload(true);
    await writeFile(file, yaml(b));
    await good;
    assert.equal((await get(`${url}/`)).body.origin, 'B');

    const bad = nextReload(false);
    await writeFile(file, yaml(a, 'missing'));
    const rejected = await bad;
    assert.ok(
      rejected.errors?.some((e) => e.includes('switchboard.yaml:8:') && e.includes('routes.all.upstream')),
      JSON.stringify(rejected),
    );
    assert.equal((await get(`${url}/`)).body.origin, 'B');
    assert.equal(a.seen.length, 1);
  } finally {
    configReload.unsubscribe(onReload);
    await gw.stop({ drainTimeout: 2000 });
    await Promise.all([a.close(), b.close()]);
    await rm(dir, { recursive: true, force: true });
  }
});

/** Resolves with the connection error code, or 'connected' when the port accepted. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

test('a listener added by reload serves; a listener removed by reload stops accepting', async () => {
  const a = await startOrigin('A');
  const base = simpleConfig([a.url]);
  const tg = await startTestGateway(base);
  try {
    assert.throws(() => tg.gw.address('admin'), /no listener named admin/);
    const withAdmin = { ...base, listeners: { ...(base.listeners as object), admin: { address: '127.0.0.1:0', protocol: 'http' } } };
    assert.equal((await tg.gw.reload(withAdmin)).ok, true);
    const adminUrl = tg.gw.url('admin');
    const adminPort = tg.gw.address('admin').port;
    assert.notEqual(adminPort, tg.port);
    assert.equal((await get(`${adminUrl}/via-admin`)).body.url, '/via-admin');
    assert.equal(tg.gw.address('web').port, tg.port, 'the unchanged listener keeps its socket');

    // An idle keep-alive connection to the admin listener is open now; removal must not leave it serving.
    const agent = new http.Agent({ keepAlive: true });
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get(`${adminUrl}/ka`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        })
        .on('error', reject);
    });
    assert.equal(status, 200);
    const idle = Object.values(agent.freeSockets).flat()[0]!;
    const idleClosed = new Promise<void>((r) => idle.once('close', () => r()));

    assert.equal((await tg.gw.reload(base)).ok, true);
    assert.equal(await tryConnect(adminPort), 'ECONNREFUSED');
    await guard(idleClosed, 'the idle admin connection to close', 5000);
    agent.destroy();
    assert.throws(() => tg.gw.address('admin'), /no listener named admin/);
    assert.equal((await get(`${tg.url}/web-still`)).body.origin, 'A');
  } finally {
    await tg.stop();
    await a.close();
  }
});
