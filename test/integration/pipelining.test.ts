/**
 * HTTP/1.1 pipelining at the edge (RFC 9112 §9.3 and §9.6): requests on one connection are served
 * in order, one at a time; nothing pipelined behind a response that closes the connection is ever
 * processed (never forwarded on behalf of a client that will not see the answer); a request with a
 * non-WebSocket Upgrade (whose followers node:http drops) closes the connection after its answer.
 * Every case is raw bytes in one write, with a warm pool to the origin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { rawRequest } from './helpers/raw.ts';

const SECOND = 'GET /api/second HTTP/1.1\r\nHost: x\r\n\r\n';

/** Status lines of every response in `text`. */
function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
}

describe('pipelined requests', () => {
  let origin: Origin;
  let gw: TestGateway;

  before(async () => {
    origin = await startOrigin('o');
    gw = await startTestGateway({
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      routes: { api: { match: { path: '/api/' }, upstream: 'app', maxBodySize: 10 } },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
    });
    // A warm pool: a forwarded follower would go out at once.
    assert.equal((await fetch(`${gw.url}/api/warm`)).status, 200);
  });
  after(async () => {
    await gw.stop();
    await origin.close();
  });

  const refused: Array<[string, string, number]> = [
    ['a target with #', 'GET /api/a#b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['two Host headers', 'GET /api/a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', 400],
    ['a bad Host', 'GET /api/a HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
    ['no route, with a body', 'POST /nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', 404],
    ['a body over the route limit', 'POST /api/a HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n01234567890123456789', 413],
  ];
  for (const [what, first, status] of refused) {
    test(`behind ${what} (${status} + close), nothing is forwarded`, async () => {
      const seen = origin.seen.length;
      const r = await rawRequest(gw.port, first + SECOND);
      assert.deepEqual(statuses(r.text), [status], r.text.slice(0, 300));
      assert.match(r.text, /connection: close/i);
      assert.ok(r.closedByServer, 'the gateway closes the connection');
      assert.equal(
        origin.seen.length,
        seen,
        `forwarded: ${origin.seen
          .slice(seen)
          .map((q) => q.url)
          .join(', ')}`,
      );
    });
  }

  test('three pipelined requests are answered in order, each forwarded once', async () => {
    const seen = origin.seen.length;
    const r = await rawRequest(
      gw.port,
      `${['one', 'two', 'three'].map((p) => `GET /api/${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join('')}GET /api/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    assert.deepEqual(statuses(r.text), [200, 200, 200, 200]);
    assert.deepEqual(
      [...r.text.matchAll(/"url":"([^"]*)"/g)].map((m) => m[1]),
      ['/api/one', '/api/two', '/api/three', '/api/last'],
    );
    assert.deepEqual(
      origin.seen.slice(seen).map((q) => q.url),
      ['/api/one', '/api/two', '/api/three', '/api/last'],
    );
  });

  test('a client Connection: close ends the connection: what follows is not processed', async () => {
    const seen = origin.seen.length;
    const r = await rawRequest(gw.port, `GET /api/first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n${SECOND}`);
    assert.deepEqual(statuses(r.text), [200]);
    assert.ok(r.closedByServer);
    assert.deepEqual(
      origin.seen.slice(seen).map((q) => q.url),
      ['/api/first'],
    );
  });

  test('behind a non-WebSocket Upgrade, the answer closes the connection instead of leaving later requests unanswered', async () => {
    const seen = origin.seen.length;
    const r = await rawRequest(gw.port, `GET /api/first HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n${SECOND}`);
    assert.deepEqual(statuses(r.text), [200]);
    assert.match(r.text, /connection: close/i);
    assert.ok(r.closedByServer, 'closed, so the client knows to send the rest again');
    const forwarded = origin.seen.slice(seen);
    assert.deepEqual(
      forwarded.map((q) => q.url),
      ['/api/first'],
    );
    assert.equal(forwarded[0].headers.upgrade, undefined, 'the Upgrade header is hop-by-hop');
  });
});
