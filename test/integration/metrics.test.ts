/**
 * Prometheus metrics (issue 12, §1): the real gateway on port 0 with real origins, real requests,
 * then the exposition `gw.metrics.render()` gives (what the admin listener serves as /metrics),
 * parsed and checked family by family.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { Agent, fetch } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { closedPort, startOrigin, type Origin } from './helpers/origin.ts';
import { createPki, type TestPki } from './helpers/certs.ts';
import { has, samples, switchboardSeries, total, type Sample } from './helpers/metrics.ts';

const origins: Origin[] = [];
const gateways: Gateway[] = [];
let pki: TestPki | undefined;
after(async () => {
  for (const gw of gateways) await gw.stop({ drainTimeout: 1000 });
  await Promise.all(origins.map((o) => o.close()));
  await pki?.cleanup();
});

/** An origin answering `hello` (5 bytes) to everything. */
async function hello(name: string): Promise<Origin> {
  const o = await startOrigin(name, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello');
  });
  origins.push(o);
  return o;
}

async function start(config: object): Promise<Gateway> {
  const gw = await startGateway({ config, accessLog: 'off', logLevel: 'silent', metrics: true });
  gateways.push(gw);
  return gw;
}

async function scrape(gw: Gateway): Promise<Sample[]> {
  const { contentType, body } = await gw.metrics!.render(undefined);
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  return samples(body);
}

async function get(url: string, init?: Parameters<typeof fetch>[1]): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

test('requests, latency, bytes, picks, retries, ejections and endpoint state are counted per listener, route, upstream and endpoint', async () => {
  const a = await hello('A');
  const b = await hello('B');
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const gw = await start({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: {
      api: { match: { path: '/api/' }, upstream: 'app' },
      flaky: { match: { path: '/flaky/' }, upstream: 'flaky' },
    },
    upstreams: {
      app: { balancer: 'round-robin', endpoints: [{ url: a.url }, { url: b.url }] },
      flaky: {
        balancer: 'round-robin',
        endpoints: [{ url: dead }, { url: a.url }],
        retries: { attempts: 2 },
        outlierDetection: { consecutiveFailures: 2, baseEjectionTime: '60s', maxEjectedPercent: 50 },
      },
    },
  });
  const base = gw.url('web');
  for (let i = 0; i < 20; i++) assert.equal(await get(`${base}/api/${i}`), 200);
  for (let i = 0; i < 3; i++) assert.equal(await get(`${base}/nowhere/${i}`), 404);
  for (let i = 0; i < 10; i++) assert.equal(await get(`${base}/flaky/${i}`), 200);

  const m = await scrape(gw);
  const ok = { listener: 'web', route: 'api', upstream: 'app', status_class: '2xx', code: '' };
  assert.equal(total(m, 'switchboard_requests_total', ok), 20);
  assert.equal(
    total(m, 'switchboard_requests_total', { listener: 'web', route: '(none)', upstream: '(none)', status_class: '4xx', code: 'ROUTE_NOT_FOUND' }),
    3,
    'a request no route matched is counted under route="(none)"',
  );
  assert.equal(total(m, 'switchboard_request_duration_seconds_count', { listener: 'web', route: 'api' }), 20);
  assert.ok(has(m, 'switchboard_request_duration_seconds_bucket', { route: 'api', le: '0.0005' }), 'buckets start at 0.5 ms');
  assert.equal(total(m, 'switchboard_request_duration_seconds_bucket', { route: 'api', le: '+Inf' }), 20);
  assert.equal(total(m, 'switchboard_upstream_duration_seconds_count', { upstream: 'app' }), 20);
  assert.equal(total(m, 'switchboard_upstream_duration_seconds_count', { upstream: 'app', endpoint: a.url }), 10);
  assert.equal(total(m, 'switchboard_response_bytes_total', { listener: 'web', route: 'api' }), 20 * 5);
  // Round robin: each endpoint of `app` was picked for half of the requests.
  assert.equal(total(m, 'switchboard_endpoint_picks_total', { upstream: 'app', endpoint: a.url }), 10);
  assert.equal(total(m, 'switchboard_endpoint_picks_total', { upstream: 'app', endpoint: b.url }), 10);
  // Every try at the dead endpoint failed to connect and was retried on the live one.
  const deadPicks = total(m, 'switchboard_endpoint_picks_total', { upstream: 'flaky', endpoint: dead });
  assert.ok(deadPicks >= 2, `the dead endpoint was tried until ejected (${deadPicks})`);
  assert.equal(total(m, 'switchboard_upstream_retries_total', { upstream: 'flaky' }), deadPicks);
  assert.equal(total(m, 'switchboard_requests_total', { route: 'flaky', status_class: '2xx' }), 10);
  assert.equal(total(m, 'switchboard_endpoint_ejections_total', { upstream: 'flaky', endpoint: dead }), 1);
  assert.equal(total(m, 'switchboard_endpoint_ejected', { upstream: 'flaky', endpoint: dead }), 1);
  assert.equal(total(m, 'switchboard_endpoint_ejected', { upstream: 'app', endpoint: a.url }), 0);
  assert.equal(total(m, 'switchboard_endpoint_healthy', { upstream: 'app', endpoint: a.url }), 1);
  assert.equal(total(m, 'switchboard_endpoint_in_flight', { upstream: 'app' }), 0, 'nothing in flight once answered');
  assert.ok(total(m, 'switchboard_connections_accepted_total', { listener: 'web' }) >= 1);
  assert.ok(has(m, 'switchboard_connections_open', { listener: 'web' }));
  // Process and event-loop metrics, under their usual names.
  assert.ok(has(m, 'process_cpu_user_seconds_total'));
  assert.ok(has(m, 'nodejs_eventloop_lag_p99_seconds'));
});

test('in flight per endpoint is read at scrape time; config reloads are counted by result', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let arrived!: () => void;
  const arrival = new Promise<void>((resolve) => (arrived = resolve));
  const slow = await startOrigin('slow', (_req, res) => {
    arrived();
    void held.then(() => res.end('late'));
  });
  origins.push(slow);
  const config = {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { all: { match: { path: '/' }, upstream: 'app' } },
    upstreams: { app: { endpoints: [{ url: slow.url }] } },
  };
  const gw = await start(config);
  const pending = get(`${gw.url('web')}/wait`);
  await arrival;
  let m = await scrape(gw);
  assert.equal(total(m, 'switchboard_endpoint_in_flight', { upstream: 'app', endpoint: slow.url }), 1);
  assert.equal(total(m, 'switchboard_connections_open', { listener: 'web' }), 1);
  release();
  assert.equal(await pending, 200);

  assert.equal(total(m, 'switchboard_config_reloads_total', { result: 'failure' }), 0);
  const started = total(m, 'switchboard_config_last_reload_success_timestamp_seconds');
  assert.ok(started > 0, 'the start counts as a successful load');
  assert.equal((await gw.reload({ listeners: { web: { address: '127.0.0.1:0', protocol: 'nope' } } })).ok, false);
  m = await scrape(gw);
  assert.equal(total(m, 'switchboard_config_reloads_total', { result: 'failure' }), 1);
  assert.equal(total(m, 'switchboard_config_last_reload_successful'), 0);
  assert.equal((await gw.reload(config)).ok, true);
  m = await scrape(gw);
  assert.equal(total(m, 'switchboard_config_reloads_total', { result: 'success' }), 1);
  assert.equal(total(m, 'switchboard_config_last_reload_successful'), 1);
  assert.ok(total(m, 'switchboard_config_last_reload_success_timestamp_seconds') >= started);
});

test('OpenMetrics is served when the Accept header asks for it', async () => {
  const a = await hello('OM');
  const gw = await start({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { all: { match: { path: '/' }, upstream: 'app' } },
    upstreams: { app: { endpoints: [{ url: a.url }] } },
  });
  assert.equal(await get(`${gw.url('web')}/`), 200);
  const om = await gw.metrics!.render('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5');
  assert.match(om.contentType, /^application\/openmetrics-text; version=1\.0\.0/);
  assert.match(om.body, /# EOF\n?$/);
  assert.match(om.body, /^switchboard_requests_total\{listener="web",route="all",upstream="app",status_class="2xx",code=""\} 1$/m);
  const text = await gw.metrics!.render('text/plain');
  assert.match(text.contentType, /^text\/plain; version=0\.0\.4/);
  assert.doesNotMatch(text.body, /# EOF/);
});

test('10,000 distinct paths, matched and unmatched, add no series', async () => {
  const a = await hello('C');
  const gw = await start({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { api: { match: { path: '/api/' }, upstream: 'app' } },
    upstreams: { app: { endpoints: [{ url: a.url }] } },
  });
  const base = gw.url('web');
  // One request of each kind first, so that every series the test can create exists.
  assert.equal(await get(`${base}/api/warm`), 200);
  assert.equal(await get(`${base}/warm`), 404);
  const before = switchboardSeries(await scrape(gw));
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < 10_000; i = next++) {
      const path = i % 2 === 0 ? `/api/${i}-${Math.random().toString(36).slice(2)}` : `/x${i}/${Math.random().toString(36).slice(2)}?q=${i}`;
      await get(`${base}${path}`, { headers: { 'x-request-id': `id-${i}`, 'user-agent': `agent-${i}` } });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const m = await scrape(gw);
  assert.equal(total(m, 'switchboard_requests_total', { route: 'api' }), 5001);
  assert.equal(total(m, 'switchboard_requests_total', { route: '(none)' }), 5001);
  assert.equal(switchboardSeries(m), before, 'the same series as before the 10,000 paths');
});

test('layer 4 connections and bytes, TLS handshakes and failures, HTTP/2 GOAWAYs', async () => {
  pki = await createPki();
  const site = await pki.issue({ names: ['localhost', '127.0.0.1'] });
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  const echoPort = (echo.address() as net.AddressInfo).port;
  after(() => new Promise<void>((resolve) => echo.close(() => resolve())));
  const a = await hello('D');
  const gw = await start({
    listeners: {
      l4: { address: '127.0.0.1:0', protocol: 'tcp', upstream: 'echo' },
      secure: { address: '127.0.0.1:0', protocol: 'https', tls: { certificates: [{ cert: site.certFile, key: site.keyFile }] } },
    },
    routes: { all: { match: { path: '/' }, upstream: 'app' } },
    upstreams: { echo: { endpoints: [{ url: `tcp://127.0.0.1:${echoPort}` }] }, app: { endpoints: [{ url: a.url }] } },
  });

  // A layer 4 connection: 11 bytes each way.
  const l4 = gw.address('l4');
  const c = net.connect(l4.port, l4.host);
  c.write('hello there');
  let got = '';
  for await (const chunk of c) {
    got += String(chunk);
    if (got.length >= 11) break;
  }
  c.destroy();
  assert.equal(got, 'hello there');

  // A good handshake over HTTP/2 (undici with allowH2), and a client that speaks no TLS at all.
  const agent = new Agent({ connect: { ca: pki.ca.cert }, allowH2: true });
  assert.equal(await get(`${gw.url('secure')}/`, { dispatcher: agent }), 200);
  const plain = net.connect(gw.address('secure').port, '127.0.0.1');
  plain.on('error', () => undefined);
  plain.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((resolve) => plain.once('close', resolve));
  // A TLS client that trusts nothing fails on its side: the server sees a reset or an alert.
  const wary = tls.connect({ port: gw.address('secure').port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: true });
  await new Promise((resolve) => wary.once('error', resolve));
  wary.destroy();

  // Poll: the layer 4 close and the failed handshakes are seen by the gateway a moment later.
  let m: Sample[] = [];
  for (let i = 0; i < 100; i++) {
    m = await scrape(gw);
    const closed = total(m, 'switchboard_l4_bytes_total', { listener: 'l4', direction: 'in' }) === 11;
    if (closed && total(m, 'switchboard_tls_handshake_failures_total', { listener: 'secure' }) >= 1) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(total(m, 'switchboard_l4_connections_total', { listener: 'l4', upstream: 'echo', endpoint: `tcp://127.0.0.1:${echoPort}` }), 1);
  assert.equal(total(m, 'switchboard_l4_bytes_total', { listener: 'l4', direction: 'in' }), 11);
  assert.equal(total(m, 'switchboard_l4_bytes_total', { listener: 'l4', direction: 'out' }), 11);
  assert.equal(total(m, 'switchboard_connections_accepted_total', { listener: 'l4' }), 1);
  assert.equal(total(m, 'switchboard_tls_handshakes_total', { listener: 'secure' }), 1);
  assert.equal(total(m, 'switchboard_tls_handshake_failures_total', { listener: 'secure', reason: 'protocol' }), 1, 'plain HTTP on a TLS port');
  assert.ok(total(m, 'switchboard_tls_handshake_failures_total', { listener: 'secure' }) >= 1);

  // Stopping sends the HTTP/2 client a GOAWAY (drain); the metrics keep their last values.
  const metrics = gw.metrics!;
  gateways.splice(gateways.indexOf(gw), 1);
  await gw.stop({ drainTimeout: 1000 });
  await agent.close();
  m = samples((await metrics.render(undefined)).body);
  assert.equal(total(m, 'switchboard_http2_goaways_total', { listener: 'secure', reason: 'drain' }), 1);
});
