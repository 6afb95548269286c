/**
 * The `compress` policy through a real gateway and a real origin: curl (`--compressed`, and raw
 * bytes decoded here with node:zlib), node:http and node:http2 clients, and Chromium (Debian's,
 * driven by playwright-core; skipped only when /usr/bin/chromium is absent).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type http2 from 'node:http2';
import zlib from 'node:zlib';
import { launchChromium, skipWithoutChromium } from './helpers/browser.ts';
import { chooseCoding } from '../../src/policies/compress/negotiate.ts';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { guard } from './helpers/guard.ts';
import { connectH2 } from './helpers/h2-client.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

/** Text that compresses, but not to nothing: numbered lines. */
function text(bytes: number, seed = 'line'): Buffer {
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const line = `${seed} ${i} ${(i * 2654435761) % 1000003} of the body, compressible enough\n`;
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

const TEXT = text(64 * 1024);
const JSON_BODY = Buffer.from(JSON.stringify({ items: Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item ${i}` })) }));
const PNG = Buffer.alloc(8192, 7);
const SMALL = Buffer.from('{"ok":true}');
const HALF = 2.5 * 1024 * 1024;
const STREAMED = text(2 * HALF, 'streamed');
const PAGE = '<!doctype html><meta charset="utf-8"><title>compress</title><p>page</p>';

let origin: Origin;
let gw: TestGateway;
/** Resolves the /stream origin's hold: it sends the second half once the client saw compressed bytes. */
let release: (() => void) | undefined;
/** Whether the /stream origin finished sending. */
let streamDone = false;

before(async () => {
  origin = await startOrigin('app', (req, res) => {
    req.resume();
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/text') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': TEXT.length, etag: '"v1"', vary: 'Origin', 'accept-ranges': 'bytes' });
      res.end(TEXT);
    } else if (path === '/json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON_BODY);
    } else if (path === '/png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
      res.end(PNG);
    } else if (path === '/small') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': SMALL.length });
      res.end(SMALL);
    } else if (path === '/encoded') {
      const gz = zlib.gzipSync(TEXT);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'content-length': gz.length });
      res.end(gz);
    } else if (path === '/no-transform') {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, no-transform', 'content-length': TEXT.length });
      res.end(TEXT);
    } else if (path === '/stream') {
      streamDone = false;
      res.writeHead(200, { 'content-type': 'text/plain' });
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const write = async (from: number, to: number): Promise<void> => {
        for (let i = from; i < to; i += 65536) {
          if (!res.write(STREAMED.subarray(i, Math.min(i + 65536, to)))) await new Promise((r) => res.once('drain', r));
        }
      };
      void (async () => {
        await write(0, HALF);
        await held;
        await write(HALF, STREAMED.length);
        streamDone = true;
        res.end();
      })();
    } else {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    }
  });
  gw = await startTestGateway({
    policies: { squeeze: { type: 'compress' } },
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http', h2c: true } },
    routes: { all: { match: { path: '/' }, upstream: 'app', policies: ['squeeze'] } },
    upstreams: { app: { endpoints: [{ url: origin.url }] } },
  });
});

after(async () => {
  release?.();
  await gw.stop();
  await origin.close();
});

interface Fetched {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** curl with `args`; `-i` output split into the last head's headers and the body. */
function curl(args: string[], path: string): Promise<Fetched> {
  return guard(
    new Promise((resolve, reject) => {
      execFile('curl', ['-s', '-i', ...args, `${gw.url}${path}`], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
        if (err) return reject(err);
        let at = 0;
        let head = '';
        // Skip interim heads; the last head ends at the first blank line after a final status.
        for (;;) {
          const end = stdout.indexOf('\r\n\r\n', at);
          head = stdout.subarray(at, end).toString('latin1');
          at = end + 4;
          if (!/^HTTP\/\S+ 1\d\d/.test(head)) break;
        }
        const lines = head.split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).toLowerCase();
          const value = line.slice(colon + 1).trim();
          headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
        }
        resolve({ status: Number(lines[0].split(' ')[1]), headers, body: stdout.subarray(at) });
      });
    }),
    `curl ${path}`,
    20_000,
  );
}

const DECODE: Record<string, (b: Buffer) => Buffer> = { gzip: zlib.gunzipSync, br: zlib.brotliDecompressSync, zstd: zlib.zstdDecompressSync };

test('curl --compressed: the decoded body is the origin’s; the head says how', async () => {
  const r = await curl(['--compressed'], '/text');
  assert.equal(r.status, 200);
  assert.ok(['zstd', 'br', 'gzip'].includes(r.headers['content-encoding']), `content-encoding ${r.headers['content-encoding']}`);
  assert.deepEqual(r.body, TEXT);
  assert.equal(r.headers.vary, 'Origin, Accept-Encoding');
  assert.equal(r.headers.etag, 'W/"v1"', 'a strong ETag is weakened');
  assert.equal(r.headers['content-length'], undefined);
  assert.equal(r.headers['accept-ranges'], undefined);
  assert.equal(r.headers['transfer-encoding'], 'chunked');
});

test('raw bytes for each coding (HTTP/1.1 and HTTP/2 curl), decoded with node:zlib, equal the origin’s', async () => {
  for (const proto of [[], ['--http2-prior-knowledge']]) {
    for (const coding of ['gzip', 'br', 'zstd']) {
      for (const [path, body] of [
        ['/text', TEXT],
        ['/json', JSON_BODY],
      ] as const) {
        const r = await curl([...proto, '-H', `Accept-Encoding: ${coding}`], path);
        assert.equal(r.headers['content-encoding'], coding, `${coding} ${path} ${proto.join('')}`);
        assert.ok(r.body.length < body.length / 2, `${coding} ${path}: ${r.body.length} of ${body.length} bytes`);
        assert.deepEqual(DECODE[coding](r.body), body, `${coding} ${path} ${proto.join('')}`);
      }
    }
  }
});

test('q-values pick the coding; identity only, or none acceptable: the origin’s bytes, with Vary', async () => {
  const table: Array<[string, string | undefined]> = [
    ['gzip;q=1, br;q=0.5, zstd;q=0.1', 'gzip'],
    ['gzip;q=0.5, br;q=0.9', 'br'],
    ['br;q=0, gzip;q=0.2, *;q=0.1', 'gzip'],
    ['*', 'zstd'],
    ['identity', undefined],
    ['gzip;q=0, br;q=0, zstd;q=0', undefined],
    ['deflate', undefined],
  ];
  for (const [ae, coding] of table) {
    const r = await curl(['-H', `Accept-Encoding: ${ae}`], '/text');
    assert.equal(r.headers['content-encoding'], coding, ae);
    assert.equal(r.headers.vary, 'Origin, Accept-Encoding', ae);
    if (coding === undefined) {
      assert.deepEqual(r.body, TEXT, ae);
      assert.equal(r.headers['content-length'], String(TEXT.length), `${ae}: uncompressed keeps its Content-Length`);
      assert.equal(r.headers.etag, '"v1"', `${ae}: the ETag stays strong`);
    } else assert.deepEqual(DECODE[coding](r.body), TEXT, ae);
  }
});

test('left alone: already encoded, no-transform, below minSize, not compressible, Range, HEAD', async () => {
  const enc = await curl(['-H', 'Accept-Encoding: br, gzip'], '/encoded');
  assert.equal(enc.headers['content-encoding'], 'gzip');
  assert.deepEqual(zlib.gunzipSync(enc.body), TEXT, 'the origin’s gzip passed once, not compressed twice');
  assert.equal(enc.headers.vary, undefined);
  for (const [path, body] of [
    ['/no-transform', TEXT],
    ['/small', SMALL],
    ['/png', PNG],
  ] as const) {
    const r = await curl(['-H', 'Accept-Encoding: gzip, br, zstd'], path);
    assert.equal(r.headers['content-encoding'], undefined, path);
    assert.equal(r.headers.vary, undefined, path);
    assert.equal(r.headers['content-length'], String(body.length), `${path} keeps its Content-Length`);
    assert.deepEqual(r.body, body, path);
  }
  const range = await curl(['-H', 'Accept-Encoding: gzip', '-H', 'Range: bytes=0-99'], '/text');
  assert.equal(range.headers['content-encoding'], undefined, 'a Range request is not compressed');
  assert.deepEqual(range.body, TEXT, 'the origin ignores Range here: the whole body, as it is');
  const head = await curl(['-I', '-H', 'Accept-Encoding: gzip'], '/text');
  assert.equal(head.headers['content-encoding'], undefined, 'HEAD');
  assert.equal(head.headers['content-length'], String(TEXT.length));
});

test('HTTP/2 client (node:http2): gzip, br and zstd decoded equal the origin’s', async () => {
  const session = await connectH2(gw.url);
  try {
    for (const coding of ['gzip', 'br', 'zstd']) {
      const r = await guard(
        new Promise<Fetched>((resolve, reject) => {
          const stream = session.request({ ':path': '/json', 'accept-encoding': coding });
          let headers: http2.IncomingHttpHeaders = {};
          const chunks: Buffer[] = [];
          stream.on('response', (h) => (headers = h));
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => resolve({ status: Number(headers[':status']), headers: headers as Record<string, string>, body: Buffer.concat(chunks) }));
          stream.on('error', reject);
        }),
        `h2 ${coding}`,
      );
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], coding);
      assert.equal(r.headers.vary, 'Accept-Encoding');
      assert.deepEqual(DECODE[coding](r.body), JSON_BODY, coding);
    }
  } finally {
    session.close();
  }
});

test('a 5 MiB body is compressed as it streams: compressed bytes reach the client while the origin still holds half of it', async () => {
  for (const coding of ['gzip', 'br', 'zstd']) {
    const body = await guard(
      new Promise<Buffer>((resolve, reject) => {
        const req = http.get(`${gw.url}/stream`, { headers: { 'accept-encoding': coding } }, (res) => {
          assert.equal(res.headers['content-encoding'], coding);
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            if (chunks.length === 0) {
              assert.equal(streamDone, false, 'the first compressed bytes came before the origin finished');
              release?.();
            }
            chunks.push(c);
          });
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.on('error', reject);
        });
        req.on('error', reject);
      }),
      `the streamed ${coding} response (a gateway that buffers whole bodies never sends the first bytes)`,
      30_000,
    );
    assert.equal(streamDone, true);
    assert.ok(body.length < STREAMED.length / 3, `${coding}: ${body.length} of ${STREAMED.length}`);
    assert.deepEqual(DECODE[coding](body), STREAMED, coding);
  }
});

test('Chromium: a fetched JSON resource arrives compressed and the page reads it decoded', { timeout: 60_000 }, async (t) => {
  const chrome = await launchChromium();
  if (skipWithoutChromium(t, chrome)) return;
  try {
    const page = await chrome.context.newPage();
    const seen: Array<{ url: string; encoding: string | undefined; vary: string | undefined }> = [];
    page.on('response', (r) => {
      const h = r.headers();
      seen.push({ url: r.url(), encoding: h['content-encoding'], vary: h.vary });
    });
    await page.goto(`${gw.url}/`, { timeout: 15_000 });
    const got = await guard(
      page.evaluate(async () => {
        const r = await fetch('/json?from=page');
        return { status: r.status, text: await r.text() };
      }),
      'the page’s fetch',
      15_000,
    );
    assert.equal(got.status, 200);
    assert.equal(got.text, JSON_BODY.toString(), 'Chromium decoded the body');
    const json = seen.find((r) => r.url.endsWith('/json?from=page'));
    assert.ok(json !== undefined, `Chromium saw the response: ${JSON.stringify(seen)}`);
    const asked = origin.seen.findLast((r) => r.url === '/json?from=page')?.headers['accept-encoding'];
    assert.ok(asked !== undefined, 'Chromium sent Accept-Encoding');
    const expected = chooseCoding(asked, ['zstd', 'br', 'gzip']);
    assert.ok(expected !== undefined, `Chromium accepts one of ours: ${asked}`);
    assert.equal(json.encoding, expected, `Chromium asked ${asked}`);
    assert.equal(json.vary, 'Accept-Encoding');
  } finally {
    await chrome.close();
  }
});
