/**
 * The request pipeline's phases through real listeners, with a test policy type (`probe`,
 * helpers/probe-policy.ts) registered through the public API: the order of the phases, filters
 * that answer at each phase (the filters before them still see the answer, in reverse order),
 * filters that throw at each phase (their request fails, nothing else), async hooks, the request
 * body prefix over HTTP/1.1 and HTTP/2, the same request phases for WebSocket upgrades, and a
 * response-body filter on a large streamed response.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import { request } from 'undici';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { closeSession, connectH2, h2request } from './helpers/h2-client.ts';
import { logged, registerProbe } from './helpers/probe-policy.ts';
import { refusedWs, startWsOrigin, wsUrl, openWs, closedWs, type WsOrigin } from './helpers/websocket.ts';

registerProbe();

const probes = {
  L1: { type: 'probe', tag: 'L1' },
  R1: { type: 'probe', tag: 'R1' },
  R2: { type: 'probe', tag: 'R2' },
  'R2-asks': { type: 'probe', tag: 'R2', answerAt: 'request' },
  'R2-replaces': { type: 'probe', tag: 'R2', answerAt: 'response' },
  'L1-asks': { type: 'probe', tag: 'L1', answerAt: 'request' },
  A1: { type: 'probe', tag: 'A1', async: true },
  'A2-asks': { type: 'probe', tag: 'A2', async: true, answerAt: 'request' },
  'A2-replaces': { type: 'probe', tag: 'A2', async: true, answerAt: 'response' },
  body: { type: 'probe', tag: 'B', bodyBytes: 1000 },
  'body-asks': { type: 'probe', tag: 'B', bodyBytes: 64, answerAt: 'body' },
  'throw-request': { type: 'probe', tag: 'T', throwAt: 'request' },
  'reject-request': { type: 'probe', tag: 'T', throwAt: 'request', async: true },
  'throw-body': { type: 'probe', tag: 'T', throwAt: 'body', bodyBytes: 10 },
  'throw-upstream': { type: 'probe', tag: 'T', throwAt: 'upstream' },
  'throw-response': { type: 'probe', tag: 'T', throwAt: 'response' },
  'throw-body-out': { type: 'probe', tag: 'T', throwAt: 'responseBody' },
  'throw-log': { type: 'probe', tag: 'T', throwAt: 'log' },
};

/** A route on `/<name>/` with `policies`, to the origin. */
function routes(list: Record<string, string[]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, policies] of Object.entries(list)) out[name] = { match: { path: `/${name}/` }, upstream: 'app', policies };
  return out;
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function get(url: string, init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Got> {
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers: init.headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** The x-trace values of a response, in the order they were appended. */
function trace(h: Got['headers']): string[] {
  const v = h['x-trace'];
  return v === undefined ? [] : (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(/,\s*/));
}

describe('phases', () => {
  let origin: Origin;
  let gw: TestGateway;

  before(async () => {
    origin = await startOrigin('o');
    gw = await startTestGateway({
      listeners: {
        web: { address: '127.0.0.1:0', protocol: 'http', h2c: true, policies: ['L1'] },
        bare: { address: '127.0.0.1:0', protocol: 'http', policies: ['L1-asks'] },
      },
      policies: probes,
      routes: {
        ...routes({
          plain: ['R1', 'R2'],
          asks: ['R1', 'R2-asks'],
          replaces: ['R1', 'R2-replaces'],
          async: ['A1', 'A2-replaces'],
          'async-asks': ['A1', 'A2-asks'],
          body: ['body'],
          'body-asks': ['R1', 'body-asks'],
          'throw-request': ['R1', 'throw-request'],
          'reject-request': ['R1', 'reject-request'],
          'throw-body': ['R1', 'throw-body'],
          'throw-upstream': ['R1', 'throw-upstream'],
          'throw-response': ['R1', 'throw-response'],
          'throw-body-out': ['throw-body-out'],
          'throw-log': ['throw-log'],
        }),
      },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
    });
  });
  after(async () => {
    await gw.stop();
    await origin.close();
  });

  test('request phases in order, the upstream request phase each try, response phases in reverse order', async () => {
    const r = await get(`${gw.url}/plain/x`);
    assert.equal(r.status, 200);
    assert.deepEqual(trace(r.headers), ['R2', 'R1', 'L1']);
    assert.equal(r.headers['content-length'], undefined, 'a body filter may change the length: none is sent');
    const echoed = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(echoed.headers['x-up-l1'], '1');
    assert.equal(echoed.headers['x-up-r2'], '1');
    assert.equal(echoed.headers['x-upgrade-r2'], 'false', 'a plain request is no upgrade');
  });

  test('a route filter that answers: no upstream, the filters before it see the answer', async () => {
    const seen = origin.seen.length;
    const r = await get(`${gw.url}/asks/x`);
    assert.equal(r.status, 418);
    assert.equal(r.body, 'answered by R2 at asks');
    assert.deepEqual(trace(r.headers), ['R1', 'L1'], 'R2 answered: only R1 and L1 see it, route first');
    assert.equal(origin.seen.length, seen);
  });

  test('a listener filter that answers: before routing, for every path, nothing forwarded', async () => {
    const seen = origin.seen.length;
    const r = await get(`${gw.gw.url('bare')}/no-such-route`);
    assert.equal(r.status, 418);
    assert.equal(r.body, 'answered by L1 at the listener');
    assert.deepEqual(trace(r.headers), []);
    assert.equal(origin.seen.length, seen);
  });

  test("a filter that replaces the response: the upstream's body is dropped, filters before it see the reply", async () => {
    const seen = origin.seen.length;
    const r = await get(`${gw.url}/replaces/x`);
    assert.equal(r.status, 203);
    assert.equal(r.body, 'replaced by R2');
    assert.deepEqual(trace(r.headers), ['R1', 'L1'], "the reply's head, seen by the filters before R2");
    assert.equal(origin.seen.length, seen + 1, 'the upstream was asked');
  });

  test('async hooks: the pipeline waits for them, at the request and the response phase', async () => {
    const replaced = await get(`${gw.url}/async/x`);
    assert.equal(replaced.status, 203);
    assert.equal(replaced.body, 'replaced by A2');
    const asked = await get(`${gw.url}/async-asks/x`);
    assert.equal(asked.status, 418);
    assert.deepEqual(trace(asked.headers), ['A1', 'L1']);
  });

  test("the gateway's own errors go through the listener's response phase", async () => {
    const r = await get(`${gw.url}/nothing-here`);
    assert.equal(r.status, 404);
    assert.deepEqual(trace(r.headers), ['L1']);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'ROUTE_NOT_FOUND');
  });

  describe('a filter that throws fails only its request', () => {
    for (const phase of ['request', 'body', 'upstream', 'response']) {
      test(`at the ${phase} phase: 500 POLICY_ERROR, the next request is served`, async () => {
        const init = phase === 'body' ? { method: 'POST', body: 'some body bytes' } : {};
        const r = await get(`${gw.url}/throw-${phase}/x`, init);
        assert.equal(r.status, 500, r.body);
        assert.equal((JSON.parse(r.body) as { error: { code: string; message: string } }).error.code, 'POLICY_ERROR');
        assert.match(r.body, /policy \\"throw-/);
        assert.deepEqual(trace(r.headers).at(-1), 'L1', 'the listener filter still stamps the error');
        assert.equal((await get(`${gw.url}/plain/after-${phase}`)).status, 200);
      });
    }

    test('a rejected promise at the request phase: 500 POLICY_ERROR', async () => {
      const r = await get(`${gw.url}/reject-request/x`);
      assert.equal(r.status, 500);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'POLICY_ERROR');
    });

    test('at the response body phase: the response is cut (never a clean short body), the next one is fine', async () => {
      await assert.rejects(get(`${gw.url}/throw-body-out/x`));
      assert.equal((await get(`${gw.url}/plain/after-body-out`)).status, 200);
    });

    test('at the log phase: the request is answered and logged by the others', async () => {
      const r = await get(`${gw.url}/throw-log/x`);
      assert.equal(r.status, 200);
      await until(() => logged.includes('T 200 -'));
      assert.ok(logged.includes('L1 200 -'));
    });
  });

  describe('request body phase', () => {
    const big = Buffer.alloc(100_000, 'abcdefghij');
    const small = Buffer.from('0123456789');
    const fingerprint = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 16);

    for (const [what, body, framing] of [
      ['Content-Length', big, 'length'],
      ['chunked', big, 'chunked'],
      ['a short body', small, 'length'],
    ] as const) {
      test(`HTTP/1.1, ${what}: the filter sees the prefix, the origin gets the whole body in order`, async () => {
        const ended = new Promise<number>((resolve) => {
          const onEnd = (m: unknown): void => {
            const r = m as { path: string; bytesIn: number };
            if (r.path !== '/body/x') return;
            diagnostics.unsubscribe('switchboard:request:end', onEnd);
            resolve(r.bytesIn);
          };
          diagnostics.subscribe('switchboard:request:end', onEnd);
        });
        const got = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
          const req = http.request(
            `${gw.url}/body/x`,
            { method: 'POST', headers: framing === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length } },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
            },
          );
          req.on('error', reject);
          // Several writes, so the body arrives in chunks.
          for (let i = 0; i < body.length; i += 7000) req.write(body.subarray(i, i + 7000));
          req.end();
        });
        assert.equal(got.status, 200);
        const n = Math.min(1000, body.length);
        assert.equal(got.headers['x-prefix-b'], `${n} ${body.length <= 1000} ${fingerprint(body.subarray(0, n))}`);
        assert.equal((JSON.parse(got.body) as { body: string }).body, body.toString());
        assert.equal(await ended, body.length, 'the access log counts the body read for the filter');
      });
    }

    test('HTTP/2: the same prefix, the whole body to the origin', async () => {
      const s = await connectH2(gw.url);
      try {
        const r = await h2request(s, { ':method': 'POST', ':path': '/body/h2' }, big);
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-prefix-b'], `1000 false ${fingerprint(big.subarray(0, 1000))}`);
        assert.equal((JSON.parse(r.body) as { body: string }).body, big.toString());
      } finally {
        await closeSession(s);
      }
    });

    test('a filter answering from the body phase: nothing forwarded, the filters before it see the answer', async () => {
      const seen = origin.seen.length;
      const r = await get(`${gw.url}/body-asks/x`, { method: 'POST', body: big });
      assert.equal(r.status, 422);
      assert.equal(r.body, `body prefix 64 false ${fingerprint(big.subarray(0, 64))}`);
      assert.deepEqual(trace(r.headers), ['R1', 'L1']);
      assert.equal(origin.seen.length, seen);
    });
  });
});

/** Waits until `cond` holds (checked on every turn of the event loop), at most 2 s. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = performance.now() + 2000;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setImmediate(r));
  }
}

describe('WebSocket upgrades and HTTP/2 run the same request phases', () => {
  let ws: WsOrigin;
  let gw: TestGateway;

  before(async () => {
    ws = await startWsOrigin('ws');
    gw = await startTestGateway({
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http', h2c: true } },
      policies: { guard: { type: 'probe', tag: 'G', answerAt: 'request' }, stamp: { type: 'probe', tag: 'S' } },
      routes: {
        guarded: { match: { path: '/guarded' }, upstream: 'app', policies: ['guard'] },
        stamped: { match: { path: '/stamped' }, upstream: 'app', policies: ['stamp'] },
      },
      upstreams: { app: { endpoints: [{ url: ws.url }] } },
    });
  });
  after(async () => {
    await gw.stop();
    await ws.close();
  });

  test('a filter answering in the request phase refuses the upgrade: its answer, closed, the origin never asked', async () => {
    const refused = await refusedWs(wsUrl(gw.url, '/guarded'));
    assert.equal(refused.status, 418);
    assert.equal(refused.body, 'answered by G at guarded');
    assert.equal(ws.upgrades.length, 0);
  });

  test('the same filter refuses the request over HTTP/1.1 and HTTP/2', async () => {
    assert.equal((await get(`${gw.url}/guarded`)).status, 418);
    const s = await connectH2(gw.url);
    try {
      const r = await h2request(s, { ':path': '/guarded' });
      assert.equal(r.status, 418);
      assert.equal(r.body, 'answered by G at guarded');
    } finally {
      await closeSession(s);
    }
    assert.equal(ws.requests.length, 0);
  });

  test('the upstream request phase runs for the upgrade, the response phase on its 101', async () => {
    const { ws: client, headers } = await openWs(wsUrl(gw.url, '/stamped'));
    assert.equal(ws.upgrades.at(-1)?.headers['x-up-s'], '1');
    assert.equal(ws.upgrades.at(-1)?.headers['x-upgrade-s'], 'true', 'the request phase saw an upgrade');
    assert.equal(headers['x-trace'], 'S', 'the 101 carries what the response phase added');
    client.close();
    await closedWs(client);
  });
});

describe('a policy that never decides', () => {
  let origin: Origin;
  let gw: TestGateway;

  before(async () => {
    origin = await startOrigin('o');
    gw = await startTestGateway({
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http', policyTimeout: '100ms', policies: ['stamp'] } },
      policies: {
        stamp: { type: 'probe', tag: 'S' },
        'hang-request': { type: 'probe', tag: 'H', hangAt: 'request' },
        'hang-response': { type: 'probe', tag: 'H', hangAt: 'response' },
      },
      routes: routes({ 'hang-request': ['hang-request'], 'hang-response': ['hang-response'], plain: [] }),
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
    });
  });
  after(async () => {
    await gw.stop();
    await origin.close();
  });

  for (const phase of ['request', 'response']) {
    test(`at the ${phase} phase: 503 POLICY_TIMEOUT after policyTimeout, the policy named; the next request is served`, async () => {
      const r = await get(`${gw.url}/hang-${phase}/x`);
      assert.equal(r.status, 503, r.body);
      const e = (JSON.parse(r.body) as { error: { code: string; message: string } }).error;
      assert.equal(e.code, 'POLICY_TIMEOUT');
      assert.match(e.message, /hang-/);
      assert.deepEqual(trace(r.headers), ['S'], 'the filters before it still see the answer');
      assert.equal((await get(`${gw.url}/plain/after`)).status, 200);
    });
  }
});
