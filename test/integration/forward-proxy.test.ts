/**
 * The forward proxy's HTTP side (issue 15 §1): absolute-form requests through a `protocol: forward`
 * listener with real clients (curl -x, undici ProxyAgent without a tunnel, raw sockets), Host
 * rewritten from the authority (EDGE-CASES 9), bad targets (EDGE-CASES 10), hop-by-hop and proxy
 * headers never forwarded, Via and the anonymity levels, loops (our Via, our own address) and
 * keep-alive to destinations. Destinations are origins on 127.0.0.1, allowed by a rule as a user
 * would.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { forwardConfig } from './helpers/forward.ts';
import { rawRequest } from './helpers/raw.ts';

const run = promisify(execFile);

interface Echoed {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

async function curl(args: string[]): Promise<{ status: number; headers: string; body: string }> {
  const { stdout } = await run('curl', ['-s', '-S', '-i', '--max-time', '10', ...args]);
  // Skip a `200 Connection established` head (CONNECT) before the real response's.
  const parts = stdout.split('\r\n\r\n');
  let i = 0;
  while (i < parts.length - 1 && /^HTTP\/1\.1 200 Connection established/i.test(parts[i])) i++;
  const head = parts[i];
  return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body: parts.slice(i + 1).join('\r\n\r\n') };
}

describe('forward proxy: absolute-form requests', () => {
  let origin: Origin;
  let gw: TestGateway;
  let proxy: string;
  let connections = 0;

  before(async () => {
    origin = await startOrigin('o');
    origin.server.on('connection', () => connections++);
    gw = await startTestGateway(forwardConfig(), 'proxy');
    proxy = `http://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    await gw?.stop();
    await origin?.close();
  });

  test('curl -x: the request reaches the destination with Host from the authority, Via added, no client address', async () => {
    const r = await curl(['-x', proxy, '-H', 'X-Forwarded-For: 6.6.6.6', '-H', 'Forwarded: for=6.6.6.6', `${origin.url}/hello/a?x=1`]);
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as Echoed;
    assert.equal(seen.url, '/hello/a?x=1');
    assert.equal(seen.headers.host, `127.0.0.1:${origin.port}`);
    assert.equal(seen.headers.via, '1.1 switchboard');
    // anonymous (the default): no client address, and the client's own forwarding headers are not passed on.
    for (const h of ['x-forwarded-for', 'forwarded', 'x-forwarded-proto', 'x-forwarded-host', 'proxy-connection', 'proxy-authorization'])
      assert.equal(seen.headers[h], undefined, h);
    assert.match(r.headers, /^via: 1\.1 switchboard$/im);
  });

  test('the absolute-form authority wins over Host, which is rewritten from it (EDGE-CASES 9)', async () => {
    const r = await rawRequest(
      gw.port,
      `GET http://127.0.0.1:${origin.port}/h HTTP/1.1\r\nHost: elsewhere.example\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic c2VjcmV0OnNlY3JldA==\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(r.status, 200, r.text);
    const seen = JSON.parse(r.text.slice(r.text.indexOf('{'), r.text.lastIndexOf('}') + 1)) as Echoed;
    assert.equal(seen.headers.host, `127.0.0.1:${origin.port}`);
    assert.equal(seen.headers['proxy-authorization'], undefined);
    assert.equal(seen.headers['proxy-connection'], undefined);
  });

  test('bad targets: origin-form, CONNECT /, *, https:// absolute-form, userinfo → 400 with the JSON body', async () => {
    const cases = [
      `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nConnection: close\r\n\r\n`,
      `CONNECT / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
      `CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
      `OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      `GET https://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      `GET http://user:pw@127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
      `GET http://127.0.0.1:99999/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    ];
    const before = origin.seen.length;
    for (const bytes of cases) {
      const r = await rawRequest(gw.port, bytes);
      assert.equal(r.status, 400, `${bytes.split('\r\n')[0]} → ${r.text}`);
      const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { error: { code: string } };
      assert.match(body.error.code, /^(INVALID_TARGET|INVALID_HOST|BAD_REQUEST)$/);
    }
    assert.equal(origin.seen.length, before, 'nothing reached the origin');
  });

  test('undici ProxyAgent without a tunnel: absolute-form, bodies both ways, keep-alive to the destination', async () => {
    const agent = new ProxyAgent({ uri: proxy, proxyTunnel: false });
    try {
      const before = connections;
      for (let i = 0; i < 3; i++) {
        const res = await undiciFetch(`${origin.url}/post/${i}`, { method: 'POST', body: `payload-${i}`, dispatcher: agent });
        assert.equal(res.status, 200);
        const seen = (await res.json()) as Echoed;
        assert.equal(seen.method, 'POST');
        assert.equal(seen.body, `payload-${i}`);
        assert.equal(seen.url, `/post/${i}`);
      }
      // The earlier tests' keep-alive connection may still be pooled: then none is opened at all.
      assert.ok(connections - before <= 1, `one pooled connection to the destination carried the three requests (${connections - before} opened)`);
    } finally {
      await agent.close();
    }
  });

  test('a request whose Via names us is a loop: 508 PROXY_LOOP, nothing forwarded', async () => {
    const before = origin.seen.length;
    const r = await curl(['-x', proxy, '-H', 'Via: 1.0 other, 1.1 switchboard', `${origin.url}/loop`]);
    assert.equal(r.status, 508);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'PROXY_LOOP');
    assert.equal(origin.seen.length, before);
  });

  test('a destination that is one of our own listening addresses is a loop: 508', async () => {
    const r = await curl(['-x', proxy, `${proxy}/again`]);
    assert.equal(r.status, 508);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'PROXY_LOOP');
  });

  test('a reload swaps the forward settings for new requests; the listener keeps its socket', async () => {
    const result = await gw.gw.reload(forwardConfig({ via: 'reloaded-proxy' }));
    assert.equal(result.ok, true, JSON.stringify(result));
    const r = await curl(['-x', proxy, `${origin.url}/after-reload`]);
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as Echoed).headers.via, '1.1 reloaded-proxy');
    const back = await gw.gw.reload(forwardConfig());
    assert.equal(back.ok, true);
  });

  test('a destination nothing listens on: 502 from the connect failure', async () => {
    const dead = await startOrigin('dead');
    const port = dead.port;
    await dead.close();
    const r = await curl(['-x', proxy, `http://127.0.0.1:${port}/`]);
    assert.equal(r.status, 502);
    assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'UPSTREAM_CONNECT_REFUSED');
  });
});

describe('forward proxy: more clients (absolute-form)', () => {
  let origin: Origin;
  let gw: TestGateway;
  let proxy: string;
  before(async () => {
    origin = await startOrigin('o');
    gw = await startTestGateway(forwardConfig(), 'proxy');
    proxy = `http://127.0.0.1:${gw.port}`;
  });
  after(async () => {
    await gw?.stop();
    await origin?.close();
  });

  test('Python urllib with HTTP_PROXY', async () => {
    const script = `import json, urllib.request\nprint(json.load(urllib.request.urlopen(${JSON.stringify(`${origin.url}/py?x=1`)}, timeout=10))["headers"].get("via"))`;
    const { stdout } = await run('python3', ['-c', script], {
      env: { ...process.env, HTTP_PROXY: proxy, http_proxy: proxy, NO_PROXY: '', no_proxy: '' },
      timeout: 20_000,
    });
    assert.equal(stdout.trim(), '1.1 switchboard');
    assert.equal(origin.seen.at(-1)?.url, '/py?x=1');
  });

  test('wget with http_proxy', async () => {
    const { stdout } = await run('wget', ['-q', '-O', '-', '-e', 'use_proxy=yes', '-e', `http_proxy=${proxy}`, `${origin.url}/wget`], {
      env: { ...process.env, no_proxy: '', NO_PROXY: '' },
      timeout: 20_000,
    });
    const seen = JSON.parse(stdout) as Echoed;
    assert.equal(seen.url, '/wget');
    assert.equal(seen.headers.via, '1.1 switchboard');
  });
});

describe('forward proxy: anonymity levels and Via', () => {
  let origin: Origin;
  before(async () => {
    origin = await startOrigin('o');
  });
  after(async () => {
    await origin?.close();
  });

  async function through(forward: object, headers: string[] = []): Promise<{ seen: Echoed; head: string }> {
    const gw = await startTestGateway(forwardConfig(forward), 'proxy');
    try {
      const r = await curl(['-x', `http://127.0.0.1:${gw.port}`, ...headers.flatMap((h) => ['-H', h]), `${origin.url}/a`]);
      assert.equal(r.status, 200);
      return { seen: JSON.parse(r.body) as Echoed, head: r.headers };
    } finally {
      await gw.stop();
    }
  }

  test('transparent: X-Forwarded-For and Forwarded name the client, Via is added', async () => {
    const { seen } = await through({ anonymity: 'transparent', via: 'edge-1' }, ['X-Forwarded-For: 6.6.6.6']);
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'replaced, not appended: the client is not a trusted proxy');
    assert.match(seen.headers.forwarded, /for=127\.0\.0\.1/);
    assert.equal(seen.headers.via, '1.1 edge-1');
  });

  test('elite: no Via, no forwarding headers, and the client-sent ones are removed', async () => {
    const { seen, head } = await through({ anonymity: 'elite' }, ['Via: 1.1 upstream-proxy', 'X-Forwarded-For: 6.6.6.6']);
    for (const h of ['via', 'x-forwarded-for', 'forwarded', 'x-request-id']) assert.equal(seen.headers[h], undefined, h);
    assert.doesNotMatch(head, /^via:/im);
  });

  test('anonymous with via: false adds no Via; a client Via is passed on', async () => {
    const { seen } = await through({ via: false }, ['Via: 1.1 upstream-proxy']);
    assert.equal(seen.headers.via, '1.1 upstream-proxy');
    assert.equal(seen.headers['x-forwarded-for'], undefined);
  });
});
