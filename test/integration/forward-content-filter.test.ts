/**
 * The content-filter policy (issue 15 §2: content filtering on plain HTTP) on a forward listener,
 * through curl `-x` and undici's ProxyAgent, and on a reverse-proxy route over HTTP/1.1 and HTTP/2:
 * URLs refused by prefix, glob, regex and a file's list; responses refused by media type and by a
 * declared length (without reading the body); a body without a length cut once it passes maxSize;
 * what passes arrives byte for byte.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ProxyAgent, request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';

const run = promisify(execFile);
const MAX = 256 * 1024;
const BLOB = randomBytes(200 * 1024);

async function curl(args: string[]): Promise<{ code: number; out: Buffer }> {
  try {
    const { stdout } = await run('curl', ['-s', '--max-time', '10', ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: Buffer };
    return { code: e.code, out: e.stdout };
  }
}

describe('content-filter', () => {
  let origin: Server;
  let originUrl: string;
  let gw: TestGateway;
  let proxy: string;
  let web: string;
  let dir: string;
  /** Requests the origin saw, by path. */
  const seen: string[] = [];
  /** Resolves when the origin's `/huge` request closes (the gateway stopped reading it). */
  let hugeClosed: Promise<number>;
  let hugeClosedResolve: (bytes: number) => void;
  const ends: Array<{ url: string; status: number; error: string | undefined }> = [];
  const onEnd = (m: unknown): void => {
    const s = m as { url: string; status: number; error: string | undefined };
    ends.push({ url: s.url, status: s.status, error: s.error });
  };

  before(async () => {
    hugeClosed = new Promise((resolve) => {
      hugeClosedResolve = resolve;
    });
    origin = createServer((req, res) => {
      const path = (req.url ?? '').replace(/^http:\/\/[^/]+/, '');
      seen.push(path);
      if (path === '/blob') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BLOB.length });
        res.end(BLOB);
      } else if (path === '/setup') {
        res.writeHead(200, { 'content-type': 'application/x-msdownload' });
        res.end('MZ');
      } else if (path === '/movie') {
        res.writeHead(200, { 'content-type': 'Video/MP4; codecs=avc1' });
        res.end('....');
      } else if (path === '/huge') {
        // Declares 1 GiB and sends a first piece, then waits: the gateway must refuse from the head.
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 2 ** 30 });
        let sent = 0;
        const piece = Buffer.alloc(16 * 1024);
        res.write(piece);
        sent += piece.length;
        res.on('close', () => hugeClosedResolve(sent));
      } else if (path === '/stream' || path === '/stream-small') {
        // Chunked, 16 KiB at a time as the client takes it: 1 MiB, or half the limit.
        const total = path === '/stream' ? 1024 * 1024 : MAX / 2;
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        let sent = 0;
        const next = (): void => {
          while (sent < total && !res.destroyed) {
            sent += 16 * 1024;
            if (!res.write(BLOB.subarray(0, 16 * 1024))) return void res.once('drain', next);
          }
          if (!res.destroyed) res.end();
        };
        next();
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`hello ${path}`);
      }
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'content-filter-it-'));
    writeFileSync(join(dir, 'blocked.txt'), '# trackers\n*/tracker/*   # any host\n\n');
    diagnostics.subscribe('switchboard:request:end', onEnd);
    gw = await startTestGateway(
      {
        listeners: {
          proxy: {
            address: '127.0.0.1:0',
            protocol: 'forward',
            policies: ['filter'],
            forward: { rules: [{ action: 'allow', destinations: ['127.0.0.0/8'] }] },
          },
          web: { address: '127.0.0.1:0', protocol: 'http', h2c: true },
        },
        routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['filter'] } },
        upstreams: { app: { endpoints: [{ url: originUrl }] } },
        policies: {
          filter: {
            type: 'content-filter',
            urls: [`${originUrl}/ads/`, '*.exe', '~/dl/[0-9]+$'],
            urlFiles: [join(dir, 'blocked.txt')],
            types: ['application/x-msdownload', 'video/*'],
            maxSize: MAX,
          },
        },
      },
      'proxy',
    );
    proxy = gw.url;
    web = gw.gw.url('web');
  });
  after(async () => {
    diagnostics.unsubscribe('switchboard:request:end', onEnd);
    await gw?.stop();
    origin?.closeAllConnections();
    await new Promise((resolve) => origin?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('URLs refused by prefix, glob, regex and a file list: 403 CONTENT_BLOCKED, nothing sent to the origin', async () => {
    for (const path of ['/ads/banner.png', '/files/setup.EXE', '/dl/42', '/a/tracker/pixel.gif']) {
      const before = seen.length;
      const r = await curl(['-i', '-x', proxy, `${originUrl}${path}`]);
      const out = r.out.toString();
      assert.match(out, /^HTTP\/1\.1 403 /, path);
      assert.match(out, /"code":"CONTENT_BLOCKED"/, path);
      assert.match(out, /rule: url/, path);
      assert.equal(seen.length, before, `${path} reached the origin`);
    }
    const r = await curl(['-x', proxy, `${originUrl}/dl/42x`]);
    assert.equal(r.out.toString(), 'hello /dl/42x');
  });

  test('media types refused before the head goes out: application/x-msdownload, video/*', async () => {
    for (const path of ['/setup', '/movie']) {
      const r = await curl(['-i', '-x', proxy, `${originUrl}${path}`]);
      assert.match(r.out.toString(), /^HTTP\/1\.1 403 [\s\S]*"code":"CONTENT_BLOCKED"[\s\S]*rule: type/, path);
    }
  });

  test('a declared length over maxSize: 403 at once, the origin body not read', async () => {
    const dispatcher = new ProxyAgent(proxy);
    try {
      const r = await request(`${originUrl}/huge`, { dispatcher });
      assert.equal(r.statusCode, 403);
      const body = (await r.body.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'CONTENT_BLOCKED');
      assert.match(body.error.message, /rule: size/);
    } finally {
      await dispatcher.close();
    }
    // The gateway dropped the exchange: the origin's 1 GiB response ended after its first piece.
    assert.equal(await hugeClosed, 16 * 1024);
  });

  test('a chunked body growing past maxSize: the client sees a cut response, the access log CONTENT_BLOCKED', async () => {
    const r = await curl(['-x', proxy, `${originUrl}/stream`]);
    assert.equal(r.code, 18, `curl exit code ${r.code}`);
    assert.ok(r.out.length <= MAX, `${r.out.length} bytes reached the client`);
    const dispatcher = new ProxyAgent(proxy);
    try {
      const res = await request(`${originUrl}/stream`, { dispatcher });
      assert.equal(res.statusCode, 200);
      await assert.rejects(res.body.arrayBuffer());
    } finally {
      await dispatcher.close();
    }
    const cut = ends.filter((e) => e.url.endsWith('/stream'));
    assert.ok(cut.length >= 2);
    for (const e of cut) assert.deepEqual([e.status, e.error], [200, 'CONTENT_BLOCKED']);
  });

  test('what passes arrives byte for byte: a known length under maxSize, a chunked body under it', async () => {
    const blob = await curl(['-x', proxy, `${originUrl}/blob`]);
    assert.equal(blob.code, 0);
    assert.ok(blob.out.equals(BLOB));
    const small = await curl(['-x', proxy, `${originUrl}/stream-small`]);
    assert.equal(small.code, 0);
    assert.equal(small.out.length, MAX / 2);
  });

  test('CONNECT tunnels are not looked into: a blocked URL pattern does not refuse the tunnel', async () => {
    // curl --proxytunnel opens a CONNECT tunnel, then sends GET /ads/… inside it: opaque to the proxy.
    const r = await curl(['-p', '-x', proxy, `${originUrl}/ads/banner.png`]);
    assert.equal(r.out.toString(), 'hello /ads/banner.png');
  });

  test('a reverse-proxy route: URL (Host + path), type and size, over HTTP/1.1 and HTTP/2', async () => {
    const host = new URL(web).host;
    const r = await curl(['-i', `${web}/x/setup.exe`]);
    assert.match(r.out.toString(), /^HTTP\/1\.1 403 [\s\S]*rule: url/);
    assert.match((await curl(['-i', `${web}/movie`])).out.toString(), /^HTTP\/1\.1 403 [\s\S]*rule: type/);
    assert.equal((await curl([`${web}/stream`])).code, 18);
    assert.ok((await curl([`${web}/blob`])).out.equals(BLOB));

    const session = connect(web);
    try {
      const get = (path: string): Promise<{ status: number; body: Buffer; error?: Error }> =>
        new Promise((resolve) => {
          const stream = session.request({ ':path': path, ':authority': host });
          let status = 0;
          const chunks: Buffer[] = [];
          stream.on('response', (h) => {
            status = Number(h[':status']);
          });
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', (error: Error) => resolve({ status, body: Buffer.concat(chunks), error }));
          stream.on('close', () => resolve({ status, body: Buffer.concat(chunks), error: stream.rstCode === 0 ? undefined : new Error(`reset ${stream.rstCode}`) }));
        });
      const blocked = await get('/dl/7');
      assert.equal(blocked.status, 403);
      assert.match(blocked.body.toString(), /"code":"CONTENT_BLOCKED"[\s\S]*rule: url/);
      const type = await get('/setup');
      assert.equal(type.status, 403);
      const cut = await get('/stream');
      assert.equal(cut.status, 200);
      assert.ok(cut.error !== undefined, 'the HTTP/2 stream was reset');
      assert.ok(cut.body.length <= MAX);
      const ok = await get('/blob');
      assert.ok(ok.body.equals(BLOB));
    } finally {
      session.close();
    }
  });
});
