/**
 * Retries (EDGE-CASES 28-29): a try that sent nothing is always retried; one that sent the request
 * only for idempotent methods without a body; never after response bytes went out; each retry to an
 * endpoint not tried yet, within the attempt limit and the retry budget. And the headline: killing
 * one of three origins under steady load loses no idempotent request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import diagnostics from 'node:diagnostics_channel';
import { Agent, fetch as undiciFetch } from 'undici';
import type { RequestSession as RequestContext } from '../../src/http/session.ts';
import { closedPort, echo, startOrigin, type Origin } from './helpers/origin.ts';
import { guard } from './helpers/guard.ts';
import { simpleConfig, startTestGateway } from './helpers/gateway.ts';

interface Answer {
  status: number;
  body: string;
  code: string | undefined;
  origin: string | null;
}

async function send(url: string, init: Parameters<typeof undiciFetch>[1] = {}): Promise<Answer> {
  const res = await undiciFetch(url, init);
  const body = await res.text();
  const code =
    res.headers.get('content-type')?.startsWith('application/json') && res.status >= 400 ? (JSON.parse(body) as { error?: { code: string } }).error?.code : undefined;
  return { status: res.status, body, code, origin: res.headers.get('x-origin') };
}

/** An origin that reads the whole request, then resets the connection without answering. */
function resetter(name: string): Promise<Origin> {
  return startOrigin(name, (req, res) => {
    req.resume();
    req.on('end', () => res.socket?.resetAndDestroy());
  });
}

async function withGateway(config: object, fn: (url: string) => Promise<void>, closers: Array<{ close(): Promise<void> }>): Promise<void> {
  const gw = await startTestGateway(config);
  try {
    await fn(gw.url);
  } finally {
    await gw.stop();
    for (const c of closers) await c.close();
  }
}

test('killing one of three origins under steady load of GETs loses no request', async () => {
  const origins = await Promise.all(['a', 'b', 'c'].map((n) => startOrigin(n)));
  const [, , c] = origins;
  const agent = new Agent({ connections: 16 });
  await withGateway(
    simpleConfig(origins.map((o) => o.url)),
    async (url) => {
      const total = 900;
      let sent = 0;
      let killedAt = -1;
      const failures: string[] = [];
      const byOrigin = new Map<string, number>();
      const worker = async (): Promise<void> => {
        while (sent < total) {
          const n = sent++;
          if (n === 300) {
            killedAt = n;
            void c.close();
          }
          const a = await send(`${url}/item/${n}`, { dispatcher: agent });
          if (a.status !== 200) failures.push(`#${n}: ${a.status} ${a.code}`);
          else byOrigin.set(JSON.parse(a.body).origin, (byOrigin.get(JSON.parse(a.body).origin) ?? 0) + 1);
        }
      };
      await guard(Promise.all(Array.from({ length: 12 }, worker)), 'the load to finish', 20_000);
      assert.equal(killedAt, 300);
      assert.deepEqual(failures, [], 'every request was answered 200');
      assert.equal(
        [...byOrigin.values()].reduce((x, y) => x + y, 0),
        total,
      );
      assert.ok((byOrigin.get('a') ?? 0) > 300 && (byOrigin.get('b') ?? 0) > 300, 'the survivors took the rest');
    },
    [...origins.slice(0, 2), { close: () => agent.close() }],
  );
});

test('a POST whose body was sent is not retried: 502, and no other endpoint sees it', async () => {
  const bad = await resetter('bad');
  const good = await startOrigin('good');
  await withGateway(
    simpleConfig([bad.url, good.url], {
      upstream: {
        balancer: 'weighted-round-robin',
        endpoints: [
          { url: bad.url, weight: 1000 },
          { url: good.url, weight: 1 },
        ],
      },
    }),
    async (url) => {
      const a = await send(`${url}/orders`, { method: 'POST', body: 'x'.repeat(1000), headers: { 'content-type': 'text/plain' } });
      assert.equal(a.status, 502);
      assert.equal(a.code, 'UPSTREAM_RESET');
      assert.equal(bad.seen.length, 1);
      assert.equal(good.seen.length, 0, 'not retried');
      // The same failure for a GET (idempotent, no body) is retried to the other endpoint.
      const g = await send(`${url}/orders`);
      assert.equal(g.status, 200);
      assert.equal(JSON.parse(g.body).origin, 'good');
      assert.equal(bad.seen.length, 2);
    },
    [bad, good],
  );
});

test('a connect failure is retried for any method, body intact (nothing was sent)', async () => {
  const port = await closedPort();
  const good = await startOrigin('good');
  const dead = `http://127.0.0.1:${port}`;
  await withGateway(
    simpleConfig([dead, good.url], {
      upstream: {
        balancer: 'weighted-round-robin',
        endpoints: [
          { url: dead, weight: 1000 },
          { url: good.url, weight: 1 },
        ],
      },
    }),
    async (url) => {
      const body = JSON.stringify({ order: 42, pad: 'y'.repeat(20_000) });
      const ended: Array<[number, string | undefined, string | undefined]> = [];
      const onEnd = (m: unknown): void => {
        const ctx = m as RequestContext;
        ended.push([ctx.tries, ctx.endpoint?.origin, ctx.error]);
      };
      diagnostics.subscribe('switchboard:request:end', onEnd);
      const fixed = await send(`${url}/orders`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }).finally(() =>
        diagnostics.unsubscribe('switchboard:request:end', onEnd),
      );
      assert.deepEqual(ended, [[2, good.url, undefined]], 'two tries, the last one to the good endpoint, no error');
      assert.equal(fixed.status, 200);
      const echoed = JSON.parse(fixed.body) as { origin: string; method: string; body: string };
      assert.equal(echoed.origin, 'good');
      assert.equal(echoed.method, 'POST');
      assert.equal(echoed.body, body);
      // A chunked body too.
      const stream = new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode('part1-'));
          c.enqueue(new TextEncoder().encode('part2'));
          c.close();
        },
      });
      const chunked = await send(`${url}/orders`, { method: 'POST', body: stream, duplex: 'half' });
      assert.equal(chunked.status, 200);
      assert.equal((JSON.parse(chunked.body) as { body: string }).body, 'part1-part2');
    },
    [good],
  );
});

test('configured statuses are retried for idempotent requests only; the last answer is relayed when no retry is left', async () => {
  const busy = await startOrigin('busy', (req, res) => {
    req.resume();
    res.writeHead(503, { 'x-origin': 'busy' }).end('busy');
  });
  const good = await startOrigin('good');
  const config = simpleConfig([busy.url, good.url], {
    upstream: {
      balancer: 'weighted-round-robin',
      endpoints: [
        { url: busy.url, weight: 1000 },
        { url: good.url, weight: 1 },
      ],
      retries: { statuses: [503] },
    },
  });
  await withGateway(
    config,
    async (url) => {
      const g = await send(`${url}/x`);
      assert.equal(g.status, 200);
      assert.equal(JSON.parse(g.body).origin, 'good');
      const p = await send(`${url}/x`, { method: 'POST', body: 'data' });
      assert.equal(p.status, 503, 'a POST with a body is not retried');
      assert.equal(p.origin, 'busy');
    },
    [busy, good],
  );
});

test('per-try timeout: a try that does not answer in time is abandoned and retried elsewhere', async () => {
  const held: http.ServerResponse[] = [];
  const stuck = await startOrigin('stuck', (_req, res) => held.push(res));
  const good = await startOrigin('good');
  await withGateway(
    simpleConfig([stuck.url, good.url], {
      upstream: {
        balancer: 'weighted-round-robin',
        endpoints: [
          { url: stuck.url, weight: 1000 },
          { url: good.url, weight: 1 },
        ],
        retries: { perTryTimeout: '150ms' },
      },
    }),
    async (url) => {
      const a = await guard(send(`${url}/slow`), 'the retried request', 3000);
      assert.equal(a.status, 200);
      assert.equal(JSON.parse(a.body).origin, 'good');
      assert.equal(stuck.seen.length, 1);
    },
    [
      {
        close: async () => {
          for (const r of held) r.destroy();
        },
      },
      stuck,
      good,
    ],
  );
});

test('per-try timeout: a stall of the event loop does not let the timer pre-empt a connection made in time', async () => {
  // Node runs due timers before it polls for I/O. On a loaded machine the loop can stall past the
  // per-try timeout between the dispatch and the connect completing: the timer then fired first and
  // gave the try up before its request was written, so the stuck endpoint never saw it (the
  // intermittent failure of the test above). The stall is made here on purpose: the thread is
  // blocked for 300 ms right after the client starts connecting to the stuck endpoint.
  const held: http.ServerResponse[] = [];
  const stuck = await startOrigin('stuck', (_req, res) => held.push(res));
  const good = await startOrigin('good');
  let stalls = 0;
  const stall = (m: unknown): void => {
    const origin = (m as { origin: string }).origin;
    if (origin !== stuck.url || stalls++ > 0) return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
  };
  diagnostics.subscribe('switchboard:upstream:connect', stall);
  await withGateway(
    simpleConfig([stuck.url, good.url], {
      upstream: {
        balancer: 'weighted-round-robin',
        endpoints: [
          { url: stuck.url, weight: 1000 },
          { url: good.url, weight: 1 },
        ],
        retries: { perTryTimeout: '150ms' },
      },
    }),
    async (url) => {
      const a = await guard(send(`${url}/slow`), 'the retried request', 3000).finally(() => diagnostics.unsubscribe('switchboard:upstream:connect', stall));
      assert.equal(stalls, 1, 'the try to the stuck endpoint was stalled');
      assert.equal(a.status, 200);
      assert.equal(JSON.parse(a.body).origin, 'good');
      assert.equal(stuck.seen.length, 1, 'the stuck endpoint got the request before its try was given up');
    },
    [
      {
        close: async () => {
          for (const r of held) r.destroy();
        },
      },
      stuck,
      good,
    ],
  );
});

test('the attempt limit bounds tries, each to an endpoint not tried yet', async () => {
  const origins = await Promise.all(['r1', 'r2', 'r3', 'r4'].map((n) => resetter(n)));
  await withGateway(
    simpleConfig(
      origins.map((o) => o.url),
      { upstream: { retries: { attempts: 3 } } },
    ),
    async (url) => {
      const a = await send(`${url}/x`);
      assert.equal(a.status, 502);
      assert.equal(a.code, 'UPSTREAM_RESET');
      const tried = origins.map((o) => o.seen.length);
      assert.equal(
        tried.reduce((x, y) => x + y, 0),
        3,
        'three tries',
      );
      assert.ok(
        tried.every((n) => n <= 1),
        `never the same endpoint twice: ${tried.join(',')}`,
      );
    },
    origins,
  );
});

test('retry budget: retries in flight are capped, so a second failing request is not retried while one retry is in flight', async () => {
  const port = await closedPort();
  const dead = `http://127.0.0.1:${port}`;
  const held: http.ServerResponse[] = [];
  let onHeld!: () => void;
  const firstHeld = new Promise<void>((resolve) => (onHeld = resolve));
  const good = await startOrigin('good', (_req, res) => {
    held.push(res);
    onHeld();
  });
  const config = (minConcurrent: number): object =>
    simpleConfig([dead, good.url], {
      upstream: {
        balancer: 'weighted-round-robin',
        endpoints: [
          { url: dead, weight: 1000 },
          { url: good.url, weight: 1 },
        ],
        retries: { budget: { percent: 0, minConcurrent } },
        outlierDetection: { consecutiveFailures: 0 },
      },
    });
  await withGateway(
    config(1),
    async (url) => {
      const first = send(`${url}/1`);
      await guard(firstHeld, 'the first request, retried, held at the good origin');
      const second = await send(`${url}/2`);
      assert.equal(second.status, 502, 'budget spent: the second is not retried');
      assert.equal(second.code, 'UPSTREAM_CONNECT_REFUSED');
      held.shift()!.end('ok');
      assert.equal((await first).status, 200);
      // With the retry over, the budget is free again.
      const third = send(`${url}/3`);
      await guard(
        new Promise<void>((resolve) => {
          if (held.length > 0) resolve();
          else onHeld = resolve;
        }),
        'the third request held',
      );
      held.shift()!.end('ok');
      assert.equal((await third).status, 200);
    },
    [good],
  );
});

test('no retry once response bytes went to the client: a failure mid-body aborts the response', async () => {
  const dying = await startOrigin('dying', (_req, res) => {
    res.writeHead(200, { 'content-length': '100', 'x-origin': 'dying' });
    res.write('partial');
    setImmediate(() => res.socket?.destroy());
  });
  const good = await startOrigin('good', echo('good'));
  await withGateway(
    simpleConfig([dying.url, good.url], {
      upstream: {
        balancer: 'weighted-round-robin',
        endpoints: [
          { url: dying.url, weight: 1000 },
          { url: good.url, weight: 1 },
        ],
      },
    }),
    async (url) => {
      const res = await undiciFetch(`${url}/x`);
      assert.equal(res.status, 200);
      await assert.rejects(res.text());
      assert.equal(good.seen.length, 0);
    },
    [dying, good],
  );
});
