/**
 * Static files (`static:` on a route, docs/static.md): content and types, validators and
 * conditional requests, ranges, HEAD, precompressed siblings, index files without listings, no
 * escape from the root (dot segments, encoded separators, NUL, symbolic links, double encoding),
 * 405, route policies, HTTP/2, and no file descriptor left open after aborted downloads.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import type { ConfigLoadError } from '../../src/index.ts';
import { h1Client, h2Client, type Client } from './helpers/clients.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { rawRequest } from './helpers/raw.ts';

const dir = mkdtempSync(join(tmpdir(), 'sb-static-'));
const root = join(dir, 'public');
const CSS = 'body { color: red; }\n'.repeat(20);
const BIG = Buffer.alloc(8 * 1024 * 1024, 'x');
const old = new Date('2024-01-01T00:00:00Z');

before(() => {
  mkdirSync(join(root, 'docs'), { recursive: true });
  mkdirSync(join(root, 'empty'));
  mkdirSync(join(root, '.git'));
  writeFileSync(join(dir, 'secret.txt'), 'SECRET OUTSIDE ROOT');
  writeFileSync(join(root, 'index.html'), '<h1>home</h1>');
  writeFileSync(join(root, 'docs', 'index.html'), '<h1>docs</h1>');
  writeFileSync(join(root, 'docs', 'a b.txt'), 'spaced');
  writeFileSync(join(root, 'app.css'), CSS);
  writeFileSync(join(root, 'app.css.br'), brotliCompressSync(CSS));
  writeFileSync(join(root, 'app.css.gz'), gzipSync(CSS));
  writeFileSync(join(root, 'data.bin'), Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
  writeFileSync(join(root, 'digits.txt'), '0123456789');
  writeFileSync(join(root, 'big.bin'), BIG);
  writeFileSync(join(root, 'stale.js'), 'fresh();');
  writeFileSync(join(root, 'stale.js.gz'), gzipSync('old();'));
  utimesSync(join(root, 'stale.js.gz'), old, old);
  writeFileSync(join(root, '.env'), 'HIDDEN');
  writeFileSync(join(root, '.git', 'config'), 'HIDDEN');
  writeFileSync(join(root, 'percent%2e.txt'), 'literal percent name');
  symlinkSync(join(dir, 'secret.txt'), join(root, 'link-out.txt'));
  symlinkSync(join(root, 'digits.txt'), join(root, 'link-in.txt'));
  symlinkSync(dir, join(root, 'dirlink'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function config(extra: Record<string, unknown> = {}): object {
  return {
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http', h2c: true } },
    policies: {
      tag: { type: 'headers', response: { set: { 'x-served-by': 'switchboard' } } },
      closed: { type: 'respond', status: 503, body: 'maintenance' },
    },
    routes: {
      assets: {
        match: { path: '/static/' },
        policies: ['tag'],
        static: {
          root,
          cacheControl: [
            { match: '*.css', value: 'public, max-age=31536000, immutable' },
            { match: '/docs/', value: 'no-cache' },
          ],
          ...extra,
        },
      },
      closed: { match: { path: '/closed/' }, policies: ['closed'], static: { root } },
    },
  };
}

const SECRET = 'SECRET OUTSIDE ROOT';

describe('static files', () => {
  let gw: TestGateway;
  let h1: Client;
  before(async () => {
    gw = await startTestGateway(config());
    h1 = h1Client(gw.url);
  });
  after(async () => {
    await h1.close();
    await gw.stop();
  });

  test('content, Content-Type with charset, nosniff, validators, Cache-Control by pattern, a route policy applied', async () => {
    const r = await h1.send('/static/app.css');
    assert.equal(r.status, 200);
    assert.equal(r.body, CSS);
    assert.equal(r.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(r.headers['content-length'], String(CSS.length));
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.match(r.headers.etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.ok(r.headers['last-modified']);
    assert.equal(r.headers['x-served-by'], 'switchboard');
    assert.equal(r.headers['content-encoding'], undefined);
    const bin = await h1.send('/static/data.bin');
    assert.equal(bin.headers['content-type'], 'application/octet-stream');
    const spaced = await h1.send('/static/docs/a%20b.txt');
    assert.equal(spaced.body, 'spaced');
    assert.equal(spaced.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(spaced.headers['cache-control'], 'no-cache');
    assert.equal((await h1.send('/static/percent%252e.txt')).body, 'literal percent name');
  });

  test('conditional requests: 304 by ETag and by date, 412 by If-Match and If-Unmodified-Since', async () => {
    const first = await h1.send('/static/app.css');
    const etag = first.headers.etag;
    const lm = first.headers['last-modified'];
    const byTag = await h1.send('/static/app.css', { headers: { 'if-none-match': `"nope", ${etag}` } });
    assert.equal(byTag.status, 304);
    assert.equal(byTag.body, '');
    assert.equal(byTag.headers.etag, etag);
    assert.equal(byTag.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal((await h1.send('/static/app.css', { headers: { 'if-none-match': `W/${etag}` } })).status, 304);
    assert.equal((await h1.send('/static/app.css', { headers: { 'if-none-match': '"other"' } })).status, 200);
    assert.equal((await h1.send('/static/app.css', { headers: { 'if-modified-since': lm } })).status, 304);
    assert.equal((await h1.send('/static/app.css', { headers: { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' } })).status, 200);
    // If-None-Match wins over If-Modified-Since.
    assert.equal((await h1.send('/static/app.css', { headers: { 'if-none-match': '"other"', 'if-modified-since': lm } })).status, 200);
    const pre = await h1.send('/static/app.css', { headers: { 'if-match': '"other"' } });
    assert.equal(pre.status, 412);
    assert.equal(JSON.parse(pre.body).error.code, 'PRECONDITION_FAILED');
    assert.equal((await h1.send('/static/app.css', { headers: { 'if-match': etag } })).status, 200);
    assert.equal((await h1.send('/static/app.css', { headers: { 'if-unmodified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' } })).status, 412);
  });

  test('Range: 206 with Content-Range, suffix and open ranges, 416 with bytes */size, If-Range, several ranges served whole', async () => {
    const r = await h1.send('/static/digits.txt', { headers: { range: 'bytes=2-4' } });
    assert.equal(r.status, 206);
    assert.equal(r.body, '234');
    assert.equal(r.headers['content-range'], 'bytes 2-4/10');
    assert.equal(r.headers['content-length'], '3');
    assert.equal((await h1.send('/static/digits.txt', { headers: { range: 'bytes=-3' } })).body, '789');
    assert.equal((await h1.send('/static/digits.txt', { headers: { range: 'bytes=7-' } })).body, '789');
    assert.equal((await h1.send('/static/digits.txt', { headers: { range: 'bytes=8-100' } })).headers['content-range'], 'bytes 8-9/10');
    const bad = await h1.send('/static/digits.txt', { headers: { range: 'bytes=10-12' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], 'bytes */10');
    assert.equal(JSON.parse(bad.body).error.code, 'RANGE_NOT_SATISFIABLE');
    const multi = await h1.send('/static/digits.txt', { headers: { range: 'bytes=0-1,4-5' } });
    assert.equal(multi.status, 200);
    assert.equal(multi.body, '0123456789');
    const etag = r.headers.etag;
    assert.equal((await h1.send('/static/digits.txt', { headers: { range: 'bytes=0-0', 'if-range': etag } })).status, 206);
    const changed = await h1.send('/static/digits.txt', { headers: { range: 'bytes=0-0', 'if-range': '"stale"' } });
    assert.equal(changed.status, 200);
    assert.equal(changed.body, '0123456789');
    assert.equal((await h1.send('/static/digits.txt', { headers: { range: 'bytes=0-0', 'if-range': r.headers['last-modified'] } })).status, 206);
  });

  test('HEAD: the GET head with no body', async () => {
    const r = await h1.send('/static/app.css', { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.body, '');
    assert.equal(r.headers['content-length'], String(CSS.length));
    assert.equal(r.headers['content-type'], 'text/css; charset=utf-8');
  });

  test('precompressed siblings chosen by Accept-Encoding q-values; a sibling older than its file is ignored', async () => {
    const br = await h1.send('/static/app.css', { headers: { 'accept-encoding': 'gzip, br' } });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers.vary, 'Accept-Encoding');
    assert.equal(br.headers['content-type'], 'text/css; charset=utf-8');
    const gz = await h1.send('/static/app.css', { headers: { 'accept-encoding': 'br;q=0.5, gzip' } });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.notEqual(gz.headers.etag, br.headers.etag);
    const none = await h1.send('/static/app.css', { headers: { 'accept-encoding': 'br;q=0, gzip;q=0, identity' } });
    assert.equal(none.headers['content-encoding'], undefined);
    assert.equal(none.body, CSS);
    const star = await h1.send('/static/app.css', { headers: { 'accept-encoding': 'br;q=0, *;q=0.1' } });
    assert.equal(star.headers['content-encoding'], 'gzip');
    // The raw bytes really are the sibling's (undici does not decode on request()).
    const curl = await run('curl', ['-s', '--compressed', '-H', 'accept-encoding: br', `${gw.url}/static/app.css`]);
    assert.equal(curl, CSS);
    const stale = await h1.send('/static/stale.js', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(stale.headers['content-encoding'], undefined);
    assert.equal(stale.body, 'fresh();');
  });

  test('index.html for a directory path, 301 to the slash, no listing', async () => {
    assert.equal((await h1.send('/static/')).body, '<h1>home</h1>');
    assert.equal((await h1.send('/static/docs/')).body, '<h1>docs</h1>');
    const moved = await h1.send('/static/docs?x=1');
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.location, '/static/docs/?x=1');
    const empty = await h1.send('/static/empty/');
    assert.equal(empty.status, 404);
    assert.equal(JSON.parse(empty.body).error.code, 'FILE_NOT_FOUND');
    assert.equal((await h1.send('/static/nothing.txt')).status, 404);
  });

  test('no escape from the root: dot segments, encoded separators, NUL, double encoding, symbolic links, dotfiles', async () => {
    const attempts = [
      '/static/../secret.txt',
      '/static/..%2fsecret.txt',
      '/static/%2e%2e/secret.txt',
      '/static/%2e%2e%2fsecret.txt',
      '/static/%2E%2E%2Fsecret.txt',
      '/static/..%5csecret.txt',
      '/static/%252e%252e/secret.txt',
      '/static/%252e%252e%252fsecret.txt',
      '/static/docs/%2e%2e/%2e%2e/secret.txt',
      '/static/app.css%00.txt',
      '/static/%00',
      '/static/%zz',
      '/static/..\\secret.txt',
      '/static/link-out.txt',
      '/static/link-in.txt',
      '/static/dirlink/secret.txt',
      '/static/dirlink/public/digits.txt',
      '/static/.env',
      '/static/.git/config',
      '/static/%2egit/config',
      '//static/../../secret.txt',
    ];
    for (const path of attempts) {
      const r = await rawRequest(gw.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.ok(!r.text.includes('SECRET') && !r.text.includes('HIDDEN') && !r.text.includes('0123456789'), `${path} revealed: ${r.text}`);
      assert.ok([400, 404].includes(r.status), `${path}: ${r.status}`);
    }
    const encoded = await h1.send('/static/..%2fsecret.txt');
    assert.equal(encoded.status, 400);
    assert.equal(JSON.parse(encoded.body).error.code, 'INVALID_FILE_PATH');
    const curl = await run('curl', ['-s', '--path-as-is', `${gw.url}/static/../secret.txt`]);
    assert.ok(!curl.includes(SECRET));
  });

  test('methods other than GET and HEAD: 405 with Allow', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      const r = await h1.send('/static/app.css', { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
      assert.equal(JSON.parse(r.body).error.code, 'FILE_METHOD_NOT_ALLOWED');
    }
  });

  test('a route policy that answers (respond) answers before any file is served', async () => {
    const r = await h1.send('/closed/app.css');
    assert.equal(r.status, 503);
    assert.equal(r.body, 'maintenance');
  });

  test('HTTP/2 (h2c): content, 304, range, HEAD, precompressed', async () => {
    const h2 = await h2Client(gw.url);
    try {
      const r = await h2.send('/static/app.css');
      assert.equal(r.status, 200);
      assert.equal(r.body, CSS);
      assert.equal(r.headers['x-served-by'], 'switchboard');
      assert.equal((await h2.send('/static/app.css', { headers: { 'if-none-match': r.headers.etag } })).status, 304);
      const part = await h2.send('/static/digits.txt', { headers: { range: 'bytes=1-2' } });
      assert.equal(part.status, 206);
      assert.equal(part.body, '12');
      const head = await h2.send('/static/app.css', { method: 'HEAD' });
      assert.equal(head.body, '');
      assert.equal(head.headers['content-length'], String(CSS.length));
      assert.equal((await h2.send('/static/app.css', { headers: { 'accept-encoding': 'gzip' } })).headers['content-encoding'], 'gzip');
      const big = await h2.send('/static/big.bin');
      assert.equal(big.body.length, BIG.length);
      assert.equal((await h2.send('/static/../secret.txt')).status === 200, false);
    } finally {
      await h2.close();
    }
  });

  test('a large file streams whole; aborted downloads, HEADs and 304s leave no file descriptor open', async () => {
    const whole = await new Promise<number>((resolve, reject) => {
      http.get(`${gw.url}/static/big.bin`, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
    });
    assert.equal(whole, BIG.length);
    const etag = (await h1.send('/static/big.bin', { method: 'HEAD' })).headers.etag;
    // The client can have the last byte before the server's asynchronous close of the file has run:
    // wait for it as below (the descriptor must close; how soon is the event loop's).
    assert.ok(await until(() => openFilesUnder(root) === 0, 5000), `${openFilesUnder(root)} descriptors on served files still open after a whole download and a HEAD`);
    const before = fdCount();
    for (let i = 0; i < 40; i++) {
      await abortedDownload(`${gw.url}/static/big.bin`);
      await h1.send('/static/big.bin', { method: 'HEAD' });
      await h1.send('/static/big.bin', { headers: { 'if-none-match': etag } });
      await h1.send('/static/app.css', { headers: { 'accept-encoding': 'br, gzip' } });
    }
    // Closing is asynchronous (libuv's thread pool): wait for the condition, a bounded while.
    const closed = await until(() => openFilesUnder(root) === 0, 5000);
    assert.ok(closed, `${openFilesUnder(root)} descriptors on served files still open`);
    assert.ok(fdCount() <= before + 4, `descriptors: ${before} before, ${fdCount()} after`);
  });
});

describe('static config', () => {
  test('stripPrefix false maps the whole path under the root; index false turns index files off', async () => {
    const gw = await startTestGateway(config({ root: dir, stripPrefix: false, index: false }));
    const h1 = h1Client(gw.url);
    try {
      writeFileSync(join(dir, 'static-probe.txt'), 'x');
      mkdirSync(join(dir, 'static'), { recursive: true });
      writeFileSync(join(dir, 'static', 'here.txt'), 'whole path');
      writeFileSync(join(dir, 'static', 'index.html'), 'index');
      assert.equal((await h1.send('/static/here.txt')).body, 'whole path');
      assert.equal((await h1.send('/static/')).status, 404);
    } finally {
      await h1.close();
      await gw.stop();
    }
  });

  test('a route with both upstream and static, or a root that is not a directory, is a config error', async () => {
    await assert.rejects(
      startTestGateway({
        listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
        upstreams: { app: { endpoints: [{ url: 'http://127.0.0.1:1' }] } },
        routes: { r: { upstream: 'app', static: { root } } },
      }),
      /upstream.*static|static.*upstream/s,
    );
    await assert.rejects(
      startTestGateway({ listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } }, routes: { r: { static: { root: join(root, 'app.css') } } } }),
      /directory/,
    );
    await assert.rejects(
      startTestGateway({ listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } }, routes: { r: { static: { root: join(dir, 'missing') } } } }),
      /ENOENT/,
    );
  });

  test('config errors name file:line:column and the key path', async () => {
    const file = join(dir, 'both.yaml');
    writeFileSync(
      file,
      `listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "http://127.0.0.1:1" }] }
routes:
  r:
    upstream: app
    static: { root: ./public }
  s:
    static: { root: ./public/app.css }
`,
    );
    await assert.rejects(startTestGateway(file), (err: unknown) => {
      const messages = (err as ConfigLoadError).errors.map((e) => e.message);
      assert.deepEqual(messages, [
        `${file}:8:5: routes.r.static: expected either "upstream" or "static" on a route, not both, found both`,
        `${file}:10:21: routes.s.static.root: expected a directory, found "./public/app.css" (${join(root, 'app.css')}: not a directory)`,
      ]);
      return true;
    });
  });

  test('followSymlinks: true follows links', async () => {
    const gw = await startTestGateway(config({ followSymlinks: true }));
    const h1 = h1Client(gw.url);
    try {
      assert.equal((await h1.send('/static/link-in.txt')).body, '0123456789');
    } finally {
      await h1.close();
      await gw.stop();
    }
  });
});

/** Polls `cond` until it holds or `ms` pass. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** How many of this process's descriptors point at a file under `dir`. */
function openFilesUnder(d: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(d)) n++;
    } catch {
      // Closed meanwhile.
    }
  }
  return n;
}

/** Starts a download, reads its first chunk, and destroys the connection. */
function abortedDownload(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        res.destroy();
        resolve();
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve() : reject(err)));
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}
