import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { HeaderList } from '../../http/header-list.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import type { Filter, PolicyProblem, ResponseHead, Session } from '../filter.ts';
import { hasNoTransform, compressPolicy } from './index.ts';
import { chooseCoding, Negotiator, parseAcceptEncoding, parseQ } from './negotiate.ts';
import { MediaTypes } from './media-types.ts';
import type { Coding } from './config.ts';

function build(raw: unknown): { problems: PolicyProblem[]; filter: Filter } {
  const parsed = compressPolicy.config.parse(raw);
  const problems: PolicyProblem[] = [];
  const resolved = compressPolicy.resolve(parsed, { baseDir: '.', env: {}, problem: (p) => problems.push(p) });
  return { problems, filter: compressPolicy.create(resolved) };
}

const ALL: readonly Coding[] = ['zstd', 'br', 'gzip'];

test('qvalues: the RFC 9110 grammar, in thousandths; anything else is -1', () => {
  const table: Array<[string, number]> = [
    ['0', 0],
    ['1', 1000],
    ['0.5', 500],
    ['0.123', 123],
    ['0.05', 50],
    ['1.000', 1000],
    ['1.', 1000],
    ['0.', 0],
    ['1.001', -1],
    ['0.1234', -1],
    ['2', -1],
    ['-1', -1],
    ['.5', -1],
    ['', -1],
    ['0,5', -1],
    ['0.5a', -1],
  ];
  for (const [text, q] of table) assert.equal(parseQ(text), q, text);
});

test('Accept-Encoding parsing: codings lower-cased, OWS, parameters, malformed q dropped, first mention wins', () => {
  assert.deepEqual(
    [...parseAcceptEncoding('gzip, deflate, br, zstd')],
    [
      ['gzip', 1000],
      ['deflate', 1000],
      ['br', 1000],
      ['zstd', 1000],
    ],
  );
  assert.deepEqual(
    [...parseAcceptEncoding(' GZIP ;Q=0.5 ,\tbr; q=1 , , *;q=0')],
    [
      ['gzip', 500],
      ['br', 1000],
      ['*', 0],
    ],
  );
  assert.deepEqual([...parseAcceptEncoding('br;q=2, gzip;foo=bar;q=0.3, gzip;q=1')], [['gzip', 300]]);
  assert.deepEqual([...parseAcceptEncoding('')], []);
  assert.deepEqual([...parseAcceptEncoding(',,;q=1')], []);
});

test('negotiation: highest q wins, ties go to the server order, q=0 refuses, * and identity', () => {
  const table: Array<[string | undefined, readonly Coding[], Coding | undefined]> = [
    [undefined, ALL, undefined],
    ['', ALL, undefined],
    ['identity', ALL, undefined],
    ['gzip, deflate, br, zstd', ALL, 'zstd'],
    ['gzip, deflate, br', ALL, 'br'],
    ['gzip, deflate, br', ['gzip', 'br'], 'gzip'],
    ['gzip;q=1, br;q=0.8, zstd;q=0.5', ALL, 'gzip'],
    ['br;q=0.9, gzip;q=0.9', ALL, 'br'],
    ['br;q=0, gzip', ALL, 'gzip'],
    ['br;q=0, gzip;q=0', ALL, undefined],
    ['*', ALL, 'zstd'],
    ['*;q=0.5, br', ALL, 'br'],
    ['*;q=0', ALL, undefined],
    ['*, zstd;q=0', ALL, 'br'],
    ['x-gzip', ALL, 'gzip'],
    ['deflate', ALL, undefined],
    ['gzip;q=0.5, identity', ALL, undefined],
    ['gzip;q=0.5, identity;q=0.5', ALL, 'gzip'],
    ['gzip, identity;q=0', ALL, 'gzip'],
    ['identity;q=0', ALL, undefined],
    ['gzip;q=abc, br', ALL, 'br'],
    ['GZip', ['gzip'], 'gzip'],
  ];
  for (const [value, offered, expected] of table) assert.equal(chooseCoding(value, offered), expected, `${value} of ${offered.join(',')}`);
});

test('the negotiator remembers choices, boundedly, and answers as chooseCoding does', () => {
  const n = new Negotiator(ALL);
  assert.equal(n.choose('gzip, br'), 'br');
  assert.equal(n.choose('gzip, br'), 'br');
  assert.equal(n.choose('identity'), undefined);
  assert.equal(n.choose('identity'), undefined);
  for (let i = 0; i < Negotiator.MAX_REMEMBERED * 2; i++) assert.equal(n.choose(`gzip;q=0.${i % 10}, x-${i}`), i % 10 === 0 ? undefined : 'gzip');
});

test('media types: exact, type/*, type/*+suffix, parameters and case ignored, event streams never', () => {
  const m = new MediaTypes();
  for (const t of ['text/*', 'application/json', 'application/*+xml']) assert.equal(m.add(t), true);
  for (const t of ['nope', '*/json', 'text/', '/x', 'a b/c']) assert.equal(m.add(t), false, t);
  const table: Array<[string, boolean]> = [
    ['text/html', true],
    ['Text/HTML; charset=utf-8', true],
    ['application/json;charset=utf-8', true],
    ['application/jsonx', false],
    ['application/atom+xml', true],
    ['application/xml', false],
    ['image/png', false],
    ['text/event-stream', false],
    ['text/event-stream; charset=utf-8', false],
    ['', false],
    ['garbage', false],
  ];
  for (const [ct, yes] of table) assert.equal(m.matches(ct), yes, ct);
});

test('no-transform: as a whole directive, any case', () => {
  const table: Array<[string, boolean]> = [
    ['no-transform', true],
    ['public, No-Transform, max-age=60', true],
    ['max-age=60,no-transform', true],
    ['no-transformer', false],
    ['x-no-transform', false],
    ['max-age=60', false],
  ];
  for (const [cc, yes] of table) assert.equal(hasNoTransform(cc), yes, cc);
});

test('config problems: repeated codings, bad media types, text/event-stream', () => {
  const { problems } = build({ encodings: ['br', 'br'], types: ['text/html', 'bad', 'text/event-stream'] });
  assert.deepEqual(
    problems.map((p) => p.path.join('.')),
    ['encodings.1', 'types.1', 'types.2'],
  );
  assert.throws(() => compressPolicy.config.parse({ encodings: ['deflate'] }));
  assert.throws(() => compressPolicy.config.parse({ level: { br: 12 } }));
});

/** The head after onResponse, as a record (lower-case names), and the session it ran in. */
function decide(
  f: Filter,
  request: { method?: string; headers?: Record<string, string> },
  status: number,
  raw: string[],
): { headers: Record<string, string>; s: Session } {
  const s = fakeSession({ request: { method: request.method ?? 'GET', headers: request.headers ?? {} } });
  const head: ResponseHead = { status, headers: new HeaderList([...raw]), fromUpstream: true };
  assert.equal(f.onResponse!(s, head), undefined);
  const headers: Record<string, string> = {};
  head.headers.forEach((value, name) => {
    const n = name.toLowerCase();
    headers[n] = headers[n] === undefined ? value : `${headers[n]}, ${value}`;
  });
  return { headers, s };
}

function unchanged(f: Filter, s: Session): boolean {
  return typeof f.bodyUnchanged === 'function' && f.bodyUnchanged(s);
}

test('the decision: what is compressed, what is skipped, and when Vary is added', () => {
  const f = build({}).filter;
  const br = { headers: { 'accept-encoding': 'gzip, br' } };
  const json = ['content-type', 'application/json', 'content-length', '5000'];
  const cases: Array<[string, { method?: string; headers?: Record<string, string> }, number, string[], string | undefined, boolean]> = [
    // name, request, status, response headers, expected content-encoding, Vary expected
    ['compressible and accepted', br, 200, json, 'br', true],
    ['unknown length', br, 200, ['content-type', 'text/html'], 'br', true],
    ['not accepted: Vary only', { headers: { 'accept-encoding': 'identity' } }, 200, json, undefined, true],
    ['no Accept-Encoding: Vary only', {}, 200, json, undefined, true],
    ['Range request: Vary only', { headers: { 'accept-encoding': 'br', range: 'bytes=0-1' } }, 200, json, undefined, true],
    ['HEAD', { method: 'HEAD', headers: br.headers }, 200, json, undefined, false],
    ['204', br, 204, json, undefined, false],
    ['304', br, 304, json, undefined, false],
    ['206', br, 206, [...json, 'content-range', 'bytes 0-4999/9999'], undefined, false],
    ['Content-Range', br, 200, [...json, 'content-range', 'bytes 0-4999/9999'], undefined, false],
    ['already encoded', br, 200, [...json, 'content-encoding', 'gzip'], 'gzip', false],
    ['no-transform', br, 200, [...json, 'cache-control', 'public, no-transform'], undefined, false],
    ['small', br, 200, ['content-type', 'application/json', 'content-length', '1023'], undefined, false],
    ['empty', br, 200, ['content-type', 'application/json', 'content-length', '0'], undefined, false],
    ['image', br, 200, ['content-type', 'image/png', 'content-length', '5000'], undefined, false],
    ['no content type', br, 200, ['content-length', '5000'], undefined, false],
    ['event stream', br, 200, ['content-type', 'text/event-stream'], undefined, false],
    ['a 404 page', br, 404, ['content-type', 'text/html', 'content-length', '5000'], 'br', true],
  ];
  for (const [name, request, status, raw, encoding, vary] of cases) {
    const { headers, s } = decide(f, request, status, raw);
    assert.equal(headers['content-encoding'], encoding, name);
    assert.equal(headers.vary === 'Accept-Encoding', vary, `${name}: vary ${headers.vary}`);
    const compressing = encoding !== undefined && !raw.includes('content-encoding');
    assert.equal(unchanged(f, s), !compressing, `${name}: bodyUnchanged`);
    if (compressing) assert.equal(headers['content-length'], undefined, name);
  }
});

test('when compressing: Vary merged once, strong ETag weakened, Accept-Ranges dropped', () => {
  const f = build({ minSize: 0 }).filter;
  const ae = { headers: { 'accept-encoding': 'gzip' } };
  let r = decide(f, ae, 200, ['content-type', 'text/plain', 'vary', 'Origin', 'etag', '"abc"', 'accept-ranges', 'bytes']).headers;
  assert.equal(r.vary, 'Origin, Accept-Encoding');
  assert.equal(r.etag, 'W/"abc"');
  assert.equal(r['accept-ranges'], undefined);
  r = decide(f, ae, 200, ['content-type', 'text/plain', 'vary', 'origin, accept-encoding', 'etag', 'W/"x"']).headers;
  assert.equal(r.vary, 'origin, accept-encoding');
  assert.equal(r.etag, 'W/"x"');
  r = decide(f, ae, 200, ['content-type', 'text/plain', 'vary', '*']).headers;
  assert.equal(r.vary, '*');
  // Not accepted: the ETag stays strong (the bytes are the origin's).
  r = decide(f, { headers: { 'accept-encoding': 'identity' } }, 200, ['content-type', 'text/plain', 'etag', '"abc"']).headers;
  assert.equal(r.etag, '"abc"');
});

/** Runs `body` through the filter's body hook as the pipeline would, in `parts` chunks. */
async function stream(f: Filter, s: Session, body: Buffer, parts: number): Promise<Buffer> {
  const out: Buffer[] = [];
  const step = Math.ceil(body.length / parts);
  for (let i = 0; i < body.length; i += step) {
    const r = await f.onResponseBody!(s, body.subarray(i, i + step), false);
    if (r !== undefined) out.push(r);
  }
  const last = await f.onResponseBody!(s, Buffer.alloc(0), true);
  if (last !== undefined) out.push(last);
  f.onLog!(s);
  return Buffer.concat(out);
}

test('the body: each coding round-trips through node:zlib, in chunks', async () => {
  const body = Buffer.from(Array.from({ length: 4000 }, (_, i) => `line ${i} of a compressible text\n`).join(''));
  const decoders: Record<Coding, (b: Buffer) => Buffer> = { gzip: zlib.gunzipSync, br: zlib.brotliDecompressSync, zstd: zlib.zstdDecompressSync };
  for (const coding of ALL) {
    const f = build({ level: { br: 5 } }).filter;
    const { headers, s } = decide(f, { headers: { 'accept-encoding': coding } }, 200, ['content-type', 'text/plain']);
    assert.equal(headers['content-encoding'], coding);
    const compressed = await stream(f, s, body, 37);
    assert.ok(compressed.length < body.length / 4, `${coding} compresses (${compressed.length} of ${body.length})`);
    assert.deepEqual(decoders[coding](compressed), body, coding);
  }
});

test('the body hook passes responses it does not compress', () => {
  const f = build({}).filter;
  const { s } = decide(f, {}, 200, ['content-type', 'text/plain']);
  assert.equal(f.onResponseBody!(s, Buffer.from('x'), false), undefined);
  assert.equal(f.onResponseBody!(s, Buffer.alloc(0), true), undefined);
  f.onLog!(s);
});
