/**
 * The `cache` policy over HTTP/2 (issue 14 §4): every cache item through node:http2 clients, once
 * over h2c with prior knowledge and once over TLS with h2 chosen by ALPN — revalidation with 304
 * header updates, stale-while-revalidate with one background refresh, 100 concurrent streams
 * collapsed into one upstream request, Range and If-Range from a stored object, HEAD from a stored
 * GET, Vary variants, Cache-Status and Age, purge by tag, a compressed variant stored once
 * (`[cache, compress]`), stale-if-error, invalidation by POST and `only-if-cached`. Counts are asserted at the origin, never timings.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import type http from 'node:http';
import type http2 from 'node:http2';
import { gunzipSync } from 'node:zlib';
import { createPki, type TestPki } from './helpers/certs.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { closeSession, connectH2 } from './helpers/h2-client.ts';
import { guard } from './helpers/guard.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;
const handlers = new Map<string, Handler>();
const counts = new Map<string, number>();
let origin: Origin;
let gw: TestGateway;
let pki: TestPki;

before(async () => {
  origin = await startOrigin('o', (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    req.resume();
    const h = handlers.get(path);
    if (h === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    h(req, res, n);
  });
  pki = await createPki();
  const cert = await pki.issue({ names: ['localhost', '127.0.0.1'] });
  gw = await startTestGateway({
    policies: {
      'edge-cache': { type: 'cache', store: { memory: '4MiB' }, collapseTimeout: '1h' },
      compress: { type: 'compress' },
    },
    listeners: {
      web: { address: '127.0.0.1:0', protocol: 'http', h2c: true, policyTimeout: '1h' },
      tls: { address: '127.0.0.1:0', protocol: 'https', policyTimeout: '1h', tls: { certificates: [{ cert: cert.certFile, key: cert.keyFile }] } },
    },
    routes: {
      zipped: { match: { path: '/zip/' }, upstream: 'web', policies: ['edge-cache', 'compress'] },
      site: { match: { path: '/' }, upstream: 'web', policies: ['edge-cache'] },
    },
    upstreams: { web: { endpoints: [{ url: origin.url }], retries: { attempts: 1 } } },
  });
});

after(async () => {
  await gw.stop();
  await origin.close();
  await pki.cleanup();
});

interface Got {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One stream on `session`. */
function send(session: http2.ClientHttp2Session, method: string, path: string, headers: Record<string, string> = {}): Promise<Got> {
  return guard(
    new Promise<Got>((resolve, reject) => {
      const stream = session.request({ ':method': method, ':path': path, ...headers });
      let head: http2.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      stream.on('response', (h) => (head = h));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: Number(head[':status']), headers: head, body, text: body.toString() });
      });
      stream.on('error', reject);
    }),
    `HTTP/2 ${method} ${path}`,
  );
}

/** An origin path answering `body n` (n: the request's number at the origin) with `headers`. */
function serve(path: string, headers: Record<string, string>, body = path): void {
  handlers.set(path, (_req, res, n) => {
    res.writeHead(200, { 'content-type': 'text/plain', ...headers });
    res.end(`${body} ${n}`);
  });
}

const seen = (path: string): number => counts.get(path) ?? 0;

/** Resolves once the cache policy has published `n` decisions `result`. */
function decisions(result: string, n: number): Promise<void> {
  return new Promise((resolve) => {
    let count = 0;
    const ch = diagnostics.channel('switchboard:policy:decision');
    const on = (m: unknown): void => {
      const e = m as { policy: string; result: string };
      if (e.policy === 'edge-cache' && e.result === result && ++count === n) {
        ch.unsubscribe(on);
        resolve();
      }
    };
    ch.subscribe(on);
  });
}

/** An origin path whose first request is answered by `first` at once (when given), and every other one by `later` only after `release`. */
function held(path: string, first: Handler | undefined, later: Handler): { release: () => void; arrived: Promise<void>; conditionals: Array<string | undefined> } {
  const conditionals: Array<string | undefined> = [];
  let release!: () => void;
  const go = new Promise<void>((r) => {
    release = r;
  });
  let arrived!: () => void;
  const came = new Promise<void>((r) => {
    arrived = r;
  });
  handlers.set(path, (req, res, n) => {
    if (n === 1 && first !== undefined) return first(req, res, n);
    conditionals.push(req.headers['if-none-match']);
    arrived();
    void go.then(() => later(req, res, n));
  });
  return { release, arrived: came, conditionals };
}

for (const protocol of ['h2c', 'h2 (TLS, ALPN)'] as const) {
  // Each protocol has its own paths: the origin's counts stay apart.
  const short = protocol === 'h2c' ? 'c' : 't';
  const p = (path: string): string => `/${short}${path}`;
  const zp = (path: string): string => `/zip/${short}${path}`;

  describe(`over ${protocol}`, () => {
    let session: http2.ClientHttp2Session;
    before(async () => {
      session =
        protocol === 'h2c' ? await connectH2(gw.url) : await connectH2(`https://localhost:${gw.gw.address('tls').port}`, { ca: pki.ca.cert, servername: 'localhost' });
      if (protocol !== 'h2c') assert.equal(session.alpnProtocol, 'h2');
    });
    after(() => closeSession(session));
    const get = (path: string, headers?: Record<string, string>): Promise<Got> => send(session, 'GET', path, headers);

    test('a miss then a hit with Cache-Status and an Age that counts the origin’s Age', async () => {
      serve(p('/a'), { 'cache-control': 'max-age=60', age: '10' });
      const first = await get(p('/a'));
      assert.equal(first.status, 200);
      assert.match(String(first.headers['cache-status']), /^Switchboard; fwd=miss; fwd-status=200; (stored; )?ttl=(49|50)$/);
      const second = await get(p('/a'));
      assert.equal(second.text, `${p('/a')} 1`);
      assert.match(String(second.headers['cache-status']), /^Switchboard; hit; ttl=(49|50)$/);
      assert.ok(Number(second.headers.age) >= 10, `Age ${second.headers.age}`);
      assert.equal(seen(p('/a')), 1);
    });

    test('a stale object is validated; the 304’s headers update the stored ones; fresh again afterwards', async () => {
      const conditionals: Array<string | undefined> = [];
      handlers.set(p('/reval'), (req, res) => {
        conditionals.push(req.headers['if-none-match']);
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, { 'cache-control': 'max-age=60', etag: '"v1"', 'x-version': '2' });
          res.end();
          return;
        }
        res.writeHead(200, { 'cache-control': 'max-age=60', age: '100', etag: '"v1"', 'x-version': '1' });
        res.end('the body');
      });
      assert.equal((await get(p('/reval'))).headers['x-version'], '1');
      const validated = await get(p('/reval'));
      assert.equal(validated.status, 200);
      assert.equal(validated.text, 'the body');
      assert.equal(validated.headers['x-version'], '2');
      assert.match(String(validated.headers['cache-status']), /fwd=stale; fwd-status=304/);
      const hit = await get(p('/reval'));
      assert.match(String(hit.headers['cache-status']), /^Switchboard; hit/);
      assert.equal(hit.headers['x-version'], '2');
      assert.deepEqual(conditionals, [undefined, '"v1"']);
    });

    test('stale-while-revalidate: 30 concurrent streams answered stale at once, one background refresh at the origin', async () => {
      const h = held(
        p('/swr'),
        (_req, res) => {
          res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=600', age: '5', etag: '"s1"' });
          res.end('one');
        },
        (_req, res) => {
          res.writeHead(200, { 'cache-control': 'max-age=600', etag: '"s2"' });
          res.end('two');
        },
      );
      await get(p('/swr'));
      // The background request is held at the origin until every stream has its answer.
      const answers = await Promise.all(Array.from({ length: 30 }, () => get(p('/swr'))));
      for (const a of answers) {
        assert.equal(a.text, 'one');
        assert.match(String(a.headers['cache-status']), /^Switchboard; fwd=stale; detail=stale-while-revalidate; ttl=-\d+$/);
      }
      await h.arrived;
      assert.equal(seen(p('/swr')), 2, 'one background refresh for 30 stale answers');
      assert.deepEqual(h.conditionals, ['"s1"'], 'the stored validator was sent');
      const refreshed = decisions('revalidated', 1);
      h.release();
      await refreshed;
      const after = await get(p('/swr'));
      assert.equal(after.text, 'two');
      assert.match(String(after.headers['cache-status']), /^Switchboard; hit/);
      assert.equal(seen(p('/swr')), 2);
    });

    test('100 concurrent streams for one key make one upstream request', async () => {
      const h = held(p('/collapse'), undefined, (_req, res, n) => {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(`collapse ${n}`);
      });
      const waited = decisions('collapsed', 99);
      const all = Array.from({ length: 100 }, () => get(p('/collapse')));
      await h.arrived;
      await waited;
      h.release();
      const answers = await Promise.all(all);
      assert.equal(seen(p('/collapse')), 1);
      for (const a of answers) assert.equal(a.text, 'collapse 1');
      assert.equal(answers.filter((a) => /collapsed/.test(String(a.headers['cache-status']))).length, 99);
    });

    test('Range from a stored object: 206; If-Range that matches: 206; one that does not: 200 whole', async () => {
      serve(p('/range'), { 'cache-control': 'max-age=60', etag: '"r1"' }, '0123456789');
      const whole = `0123456789 1`;
      assert.equal((await get(p('/range'))).text, whole);
      const part = await get(p('/range'), { range: 'bytes=2-5' });
      assert.equal(part.status, 206);
      assert.equal(part.text, '2345');
      assert.equal(part.headers['content-range'], 'bytes 2-5/12');
      assert.match(String(part.headers['cache-status']), /^Switchboard; hit/);
      const matching = await get(p('/range'), { range: 'bytes=-3', 'if-range': '"r1"' });
      assert.equal(matching.status, 206);
      assert.equal(matching.text, '9 1');
      const other = await get(p('/range'), { range: 'bytes=2-5', 'if-range': '"r0"' });
      assert.equal(other.status, 200);
      assert.equal(other.text, whole);
      assert.equal(seen(p('/range')), 1);
    });

    test('HEAD is answered from a stored GET', async () => {
      serve(p('/head'), { 'cache-control': 'max-age=60' }, 'x'.repeat(100));
      await get(p('/head'));
      const head = await send(session, 'HEAD', p('/head'));
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers['content-length'], '102');
      assert.match(String(head.headers['cache-status']), /^Switchboard; hit/);
      assert.equal(seen(p('/head')), 1);
    });

    test('Vary keeps variants apart', async () => {
      handlers.set(p('/vary'), (req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
        res.end(`lang ${req.headers['accept-language']}`);
      });
      for (let i = 0; i < 2; i++) {
        assert.equal((await get(p('/vary'), { 'accept-language': 'de' })).text, 'lang de');
        assert.equal((await get(p('/vary'), { 'accept-language': 'fr' })).text, 'lang fr');
      }
      assert.equal(seen(p('/vary')), 2);
    });

    test('purge by tag: the tagged object is a miss afterwards, the others stay', async () => {
      serve(p('/tag/1'), { 'cache-control': 'max-age=600', 'surrogate-key': `t-${short} all` });
      serve(p('/tag/2'), { 'cache-control': 'max-age=600', 'cache-tag': 'other' });
      for (const path of [p('/tag/1'), p('/tag/2')]) {
        await get(path);
        assert.match(String((await get(path)).headers['cache-status']), /; hit/);
      }
      assert.equal(await gw.gw.purge('edge-cache', { tag: `t-${short}` }), 1);
      const purged = await get(p('/tag/1'));
      assert.match(String(purged.headers['cache-status']), /fwd=miss/);
      assert.equal(purged.text, `${p('/tag/1')} 2`);
      assert.match(String((await get(p('/tag/2'))).headers['cache-status']), /; hit/);
      assert.equal(seen(p('/tag/1')), 2);
      assert.equal(seen(p('/tag/2')), 1);
    });

    test('[cache, compress]: the gzip variant is made once and served as stored', async () => {
      const json = JSON.stringify({ items: Array.from({ length: 100 }, (_, i) => ({ id: i })) });
      handlers.set(zp('/items'), (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
        res.end(json);
      });
      const first = await get(zp('/items'), { 'accept-encoding': 'gzip' });
      assert.equal(first.headers['content-encoding'], 'gzip');
      assert.equal(gunzipSync(first.body).toString(), json);
      const again = await get(zp('/items'), { 'accept-encoding': 'gzip' });
      assert.match(String(again.headers['cache-status']), /; hit/);
      assert.deepEqual(again.body, first.body, 'the stored compressed bytes');
      assert.equal(seen(zp('/items')), 1);
      const plain = await get(zp('/items'));
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(plain.text, json);
      assert.equal(seen(zp('/items')), 2, 'identity is a variant of its own');
    });

    test('stale-if-error: the origin’s 503 is answered with the stale object', async () => {
      handlers.set(p('/sie'), (_req, res, n) => {
        res.writeHead(n === 1 ? 200 : 503, { 'cache-control': n === 1 ? 'max-age=60, stale-if-error=600' : 'no-store', age: '61' });
        res.end(`sie ${n}`);
      });
      await get(p('/sie'));
      const stale = await get(p('/sie'));
      assert.equal(stale.status, 200);
      assert.equal(stale.text, 'sie 1');
      assert.match(String(stale.headers['cache-status']), /fwd=stale; fwd-status=503; detail=stale-if-error/);
      assert.equal(seen(p('/sie')), 2);
    });

    test('a POST on its own stream invalidates the stored target', async () => {
      serve(p('/inv'), { 'cache-control': 'max-age=60' });
      await get(p('/inv'));
      assert.match(String((await get(p('/inv'))).headers['cache-status']), /; hit/);
      const posted = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': p('/inv') });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end('payload');
      });
      assert.equal(posted, 200);
      const after = await get(p('/inv'));
      assert.match(String(after.headers['cache-status']), /fwd=miss/);
      assert.equal(after.text, `${p('/inv')} 3`, 'GET, POST, GET again');
    });

    test('only-if-cached: 504 on a miss without asking the origin; a hit when stored', async () => {
      const miss = await get(p('/oic'), { 'cache-control': 'only-if-cached' });
      assert.equal(miss.status, 504);
      assert.equal(JSON.parse(miss.text).error.code, 'NOT_CACHED');
      assert.equal(seen(p('/oic')), 0);
      serve(p('/oic'), { 'cache-control': 'max-age=60' });
      await get(p('/oic'));
      const hit = await get(p('/oic'), { 'cache-control': 'only-if-cached' });
      assert.equal(hit.status, 200);
      assert.equal(seen(p('/oic')), 1);
    });
  });
}
