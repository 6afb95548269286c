/**
 * Traces (docs/tracing.md): a real OTLP/HTTP receiver on 127.0.0.1:0 decodes the JSON export of the
 * real gateway; a real origin shows the `traceparent` it got. Spans are waited for by stopping the
 * gateway, which flushes its exporter (no sleeps).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfigObject } from '../../src/config/load.ts';
import { startGateway } from '../../src/index.ts';
import { guard } from './helpers/guard.ts';
import { closedPort, startOrigin, type Origin } from './helpers/origin.ts';
import { closedWs, openWs, startWsOrigin, until, wsUrl } from './helpers/websocket.ts';

/** One span as the OTLP JSON encoding carries it (ids in hex). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** 2 SERVER, 3 CLIENT. */
  kind: number;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: number | string } }>;
  status?: { code?: number };
}

interface Receiver {
  url: string;
  spans: OtlpSpan[];
  /** `service.name` of each export. */
  services: string[];
  close(): Promise<void>;
}

const SERVER = 2;
const CLIENT = 3;

/** An OTLP/HTTP traces receiver: POST /v1/traces with `application/json`, answered 200 `{}`. */
async function startReceiver(): Promise<Receiver> {
  const spans: OtlpSpan[] = [];
  const services: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(400).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
      };
      for (const rs of body.resourceSpans) {
        services.push(String(rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue));
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/traces`, spans, services, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function attr(span: OtlpSpan, key: string): string | number | undefined {
  const v = span.attributes.find((a) => a.key === key)?.value;
  if (v === undefined) return undefined;
  return v.stringValue ?? (v.intValue === undefined ? undefined : Number(v.intValue));
}

/** `00-<trace>-<span>-<flags>` split, or undefined. */
function parseTraceparent(v: string | string[] | undefined): { traceId: string; spanId: string; flags: string } | undefined {
  const m = typeof v === 'string' ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(v) : null;
  return m === null ? undefined : { traceId: m[1], spanId: m[2], flags: m[3] };
}

interface Run {
  status: number;
  /** What each try brought to the origin. */
  seen: http.IncomingMessage[];
  originUrl: string;
  /** The access log lines. */
  log: Array<Record<string, unknown>>;
  receiver: Receiver;
}

/**
 * Starts a receiver, an origin (unless `origin` is given) and the gateway with `tracing` (merged
 * into the config; undefined: no tracing section), sends one GET with `headers`, stops the gateway
 * (which flushes the exporter) and returns what every party saw.
 */
async function run(opts: {
  tracing?: Record<string, unknown> | undefined;
  headers?: Record<string, string>;
  listener?: object;
  endpoints?: (origin: Origin) => Promise<Array<{ url: string; weight?: number }>>;
}): Promise<Run> {
  const receiver = await startReceiver();
  const origin = await startOrigin('A');
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-tracing-'));
  const logFile = join(dir, 'access.log');
  try {
    const endpoints = opts.endpoints ? await opts.endpoints(origin) : [{ url: origin.url }];
    const gw = await startGateway({
      config: {
        listeners: { web: { address: '127.0.0.1:0', protocol: 'http', ...opts.listener } },
        routes: { all: { match: { path: '/' }, upstream: 'app' } },
        upstreams: { app: { balancer: 'weighted-round-robin', endpoints } },
        ...(opts.tracing === undefined ? {} : { tracing: { otlp: { endpoint: receiver.url }, ...opts.tracing } }),
      },
      accessLog: logFile,
      logLevel: 'silent',
    });
    let status = 0;
    try {
      const res = await guard(fetch(`${gw.url('web')}/items/7?q=1`, { headers: opts.headers }), 'the proxied GET', 10_000);
      await res.arrayBuffer();
      status = res.status;
    } finally {
      await gw.stop({ drainTimeout: 2000 });
    }
    const log = (await readFile(logFile, 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    return { status, seen: origin.seen, originUrl: origin.url, log, receiver };
  } finally {
    await origin.close();
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test('one server span and one client span, linked, exported over OTLP/HTTP; the origin and the access log see the trace id', async () => {
  const r = await run({ tracing: { sampleRate: 1, serviceName: 'edge' } });
  assert.equal(r.status, 200);
  const server = r.receiver.spans.filter((s) => s.kind === SERVER);
  const client = r.receiver.spans.filter((s) => s.kind === CLIENT);
  assert.equal(server.length, 1, 'one server span');
  assert.equal(client.length, 1, 'one client span for the one try');
  assert.deepEqual([...new Set(r.receiver.services)], ['edge']);
  const [sv] = server;
  const [cl] = client;
  assert.equal(sv.name, 'GET all');
  assert.equal(sv.parentSpanId || undefined, undefined, 'a new trace: the server span is its root');
  assert.equal(cl.traceId, sv.traceId);
  assert.equal(cl.parentSpanId, sv.spanId, 'the client span is the server span’s child');
  assert.equal(attr(sv, 'http.request.method'), 'GET');
  assert.equal(attr(sv, 'url.path'), '/items/7');
  assert.equal(attr(sv, 'http.response.status_code'), 200);
  assert.equal(attr(sv, 'switchboard.listener'), 'web');
  assert.equal(attr(sv, 'switchboard.route'), 'all');
  assert.equal(attr(sv, 'switchboard.upstream'), 'app');
  assert.equal(attr(cl, 'http.response.status_code'), 200);
  assert.equal(attr(cl, 'http.request.resend_count'), 0);
  assert.equal(attr(cl, 'server.address'), '127.0.0.1');
  assert.equal(r.seen.length, 1);
  const tp = parseTraceparent(r.seen[0].headers.traceparent);
  assert.ok(tp, `the origin got a traceparent: ${r.seen[0].headers.traceparent}`);
  assert.equal(tp.traceId, sv.traceId, 'the origin saw the spans’ trace id');
  assert.equal(tp.spanId, cl.spanId, 'its parent is the client span of its try');
  assert.equal(tp.flags, '01');
  assert.equal(r.log.length, 1);
  assert.equal(r.log[0].traceId, sv.traceId, 'the access log line carries the trace id');
});

test('a retried request: two client spans, retry numbers 0 and 1, the refused one an error', async () => {
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const r = await run({
    tracing: { sampleRate: 1 },
    endpoints: async (origin) => [
      { url: dead, weight: 1000 },
      { url: origin.url, weight: 1 },
    ],
  });
  assert.equal(r.status, 200);
  const [sv] = r.receiver.spans.filter((s) => s.kind === SERVER);
  const client = r.receiver.spans
    .filter((s) => s.kind === CLIENT)
    .sort((a, b) => Number(attr(a, 'http.request.resend_count')) - Number(attr(b, 'http.request.resend_count')));
  assert.equal(client.length, 2);
  assert.deepEqual(
    client.map((c) => [attr(c, 'http.request.resend_count'), attr(c, 'switchboard.endpoint'), attr(c, 'http.response.status_code'), c.parentSpanId, c.traceId]),
    [
      [0, dead, undefined, sv.spanId, sv.traceId],
      [1, r.originUrl, 200, sv.spanId, sv.traceId],
    ],
  );
  assert.equal(attr(client[0], 'error.type'), 'UPSTREAM_CONNECT_REFUSED');
  assert.equal(client[0].status?.code, 2, 'the refused try is an error span');
  const tp = parseTraceparent(r.seen[0].headers.traceparent);
  assert.equal(tp?.spanId, client[1].spanId, 'the origin’s traceparent names the second try');
  assert.equal(r.log[0].traceId, sv.traceId);
});

const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_SPAN = '00f067aa0ba902b7';

test('a trusted peer’s traceparent is continued and its tracestate passed on', async () => {
  const r = await run({
    tracing: { sampleRate: 1 },
    listener: { trustedProxies: ['127.0.0.1'] },
    headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01`, tracestate: 'vendor=abc' },
  });
  const [sv] = r.receiver.spans.filter((s) => s.kind === SERVER);
  assert.equal(sv.traceId, PARENT_TRACE);
  assert.equal(sv.parentSpanId, PARENT_SPAN, 'the server span’s parent is the incoming span');
  const tp = parseTraceparent(r.seen[0].headers.traceparent);
  assert.equal(tp?.traceId, PARENT_TRACE);
  assert.notEqual(tp?.spanId, PARENT_SPAN);
  assert.equal(r.seen[0].headers.tracestate, 'vendor=abc');
});

test('tracing.trust overrides the listener’s trusted proxies; an untrusted traceparent starts a new trace and is not passed on', async () => {
  const r = await run({
    tracing: { sampleRate: 1, trust: ['10.0.0.0/8'] },
    listener: { trustedProxies: ['127.0.0.1'] },
    headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01`, tracestate: 'vendor=abc' },
  });
  const [sv] = r.receiver.spans.filter((s) => s.kind === SERVER);
  assert.notEqual(sv.traceId, PARENT_TRACE, 'a new trace');
  assert.equal(sv.parentSpanId || undefined, undefined);
  assert.equal(r.seen[0].rawHeaders.filter((h) => h.toLowerCase() === 'traceparent').length, 1, 'one traceparent: ours');
  const tp = parseTraceparent(r.seen[0].headers.traceparent);
  assert.equal(tp?.traceId, sv.traceId);
  assert.equal(r.seen[0].headers.tracestate, undefined, 'the untrusted tracestate is dropped');
});

test('sampleRate 0: nothing exported, the trace context still propagated (not sampled), the trace id logged', async () => {
  const r = await run({ tracing: { sampleRate: 0 } });
  assert.equal(r.status, 200);
  assert.equal(r.receiver.spans.length, 0);
  const tp = parseTraceparent(r.seen[0].headers.traceparent);
  assert.ok(tp, 'a traceparent went to the origin');
  assert.equal(tp.flags, '00');
  assert.equal(r.log[0].traceId, tp.traceId);
});

test('sampleRate 0 with a trusted sampled parent: parent-based, so the request is recorded', async () => {
  const r = await run({
    tracing: { sampleRate: 0 },
    listener: { trustedProxies: ['127.0.0.1'] },
    headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` },
  });
  assert.deepEqual(
    r.receiver.spans.map((s) => [s.kind, s.traceId]).sort(),
    [
      [SERVER, PARENT_TRACE],
      [CLIENT, PARENT_TRACE],
    ].sort(),
  );
});

test('tracing off: no traceparent added, nothing exported, no trace id in the access log', async () => {
  const r = await run({ tracing: undefined });
  assert.equal(r.status, 200);
  assert.equal(r.seen[0].headers.traceparent, undefined);
  assert.equal(r.receiver.spans.length, 0);
  assert.equal(r.log[0].traceId, null);
  // A client's own traceparent passes through untouched, as any other header.
  const passed = await run({ tracing: undefined, headers: { traceparent: `00-${PARENT_TRACE}-${PARENT_SPAN}-01` } });
  assert.equal(passed.seen[0].headers.traceparent, `00-${PARENT_TRACE}-${PARENT_SPAN}-01`);
});

test('a WebSocket upgrade gets a server span (status 101) and a client span for its handshake', async () => {
  const receiver = await startReceiver();
  const origin = await startWsOrigin('W');
  try {
    const gw = await startGateway({
      config: {
        listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
        routes: { ws: { match: { path: '/' }, upstream: 'app' } },
        upstreams: { app: { endpoints: [{ url: origin.url }] } },
        tracing: { otlp: { endpoint: receiver.url }, sampleRate: 1 },
      },
      logLevel: 'silent',
    });
    try {
      const { ws } = await openWs(wsUrl(gw.url('web'), '/chat'));
      const closed = closedWs(ws);
      ws.close();
      await closed;
    } finally {
      await gw.stop({ drainTimeout: 2000 });
    }
    const [sv] = receiver.spans.filter((s) => s.kind === SERVER);
    const [cl] = receiver.spans.filter((s) => s.kind === CLIENT);
    assert.equal(sv.name, 'GET ws');
    assert.equal(attr(sv, 'http.response.status_code'), 101);
    assert.equal(cl.parentSpanId, sv.spanId);
    assert.equal(attr(cl, 'http.response.status_code'), 101);
    assert.equal(parseTraceparent(origin.upgrades[0].headers.traceparent)?.spanId, cl.spanId);
  } finally {
    await origin.close();
    await receiver.close();
  }
});

test('tracing config errors name the key, what was expected and what was found', async () => {
  const result = await loadConfigObject({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    tracing: { otlp: { endpoint: 'ftp://collector', timeout: 0 }, sampleRate: 2, trust: ['not-an-address'] },
  });
  assert.equal(result.ok, false);
  const messages = result.ok ? [] : result.errors.map((e) => `${e.path}: expected ${e.expected}, found ${e.found}`);
  assert.ok(
    messages.some((m) => m.startsWith('tracing.sampleRate')),
    messages.join('\n'),
  );
  const second = await loadConfigObject({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    tracing: { otlp: { endpoint: 'ftp://collector', timeout: 0 }, trust: ['not-an-address'] },
  });
  const found = second.ok ? [] : second.errors.map((e) => `${e.path}: expected ${e.expected}, found ${e.found}`);
  assert.deepEqual(found.sort(), [
    'tracing.otlp.endpoint: expected an http:// or https:// URL such as "http://127.0.0.1:4318/v1/traces", found "ftp://collector"',
    'tracing.otlp.timeout: expected a duration above 0, such as 10s, found 0',
    'tracing.trust[0]: expected an IP address or CIDR range, found "not-an-address"',
  ]);
});

test('a reload turns tracing on, changes it, and turns it off', async () => {
  const first = await startReceiver();
  const second = await startReceiver();
  const origin = await startOrigin('A');
  const base = {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    routes: { all: { match: { path: '/' }, upstream: 'app' } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
  };
  const gw = await startGateway({ config: base, logLevel: 'silent' });
  const get = async (path: string): Promise<void> => {
    const res = await guard(fetch(`${gw.url('web')}${path}`), `GET ${path}`, 10_000);
    await res.arrayBuffer();
  };
  const paths = (r: Receiver): unknown[] => r.spans.filter((s) => s.kind === SERVER).map((s) => attr(s, 'url.path'));
  try {
    await get('/off');
    assert.equal((await gw.reload({ ...base, tracing: { otlp: { endpoint: first.url } } })).ok, true);
    await get('/first');
    // The old tracing is flushed and shut down once the old generation's requests are over.
    assert.equal((await gw.reload({ ...base, tracing: { otlp: { endpoint: second.url } } })).ok, true);
    await until(() => paths(first).length > 0, 'the replaced tracing to flush');
    await get('/second');
    assert.equal((await gw.reload(base)).ok, true);
    await get('/off-again');
  } finally {
    await gw.stop({ drainTimeout: 2000 });
    await origin.close();
    await first.close();
    await second.close();
  }
  assert.deepEqual(paths(first), ['/first']);
  assert.deepEqual(paths(second), ['/second']);
  assert.deepEqual(
    origin.seen.map((r) => r.headers.traceparent === undefined),
    [true, false, false, true],
  );
});
