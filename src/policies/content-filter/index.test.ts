import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { linearRegExp } from '../../util/linear-regexp.ts';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeDeps, fakeResolveContext, headerList } from '../../../test/helpers/policy.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import type { PolicyDecisionEvent } from '../events.ts';
import { ResponseCut, type Filter, type Reply, type RequestView, type ResponseHead, type Session } from '../filter.ts';
import type { RawContentFilterConfig } from './config.ts';
import { contentFilterPolicy } from './index.ts';
import { globMatches } from './url-patterns.ts';

const dir = mkdtempSync(join(tmpdir(), 'content-filter-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function resolve(raw: unknown) {
  const parsed = contentFilterPolicy.config.safeParse(raw);
  assert.ok(parsed.success, parsed.error?.message);
  const { ctx, problems } = fakeResolveContext({ baseDir: dir });
  return { problems, resolved: contentFilterPolicy.resolve(parsed.data, ctx) };
}

function filter(raw: RawContentFilterConfig): Filter {
  const { problems, resolved } = resolve(raw);
  assert.deepEqual(problems, []);
  return contentFilterPolicy.create(resolved, fakeDeps({ name: 'cf', type: 'content-filter' }));
}

/** The request phase's verdict for a request, as the forward proxy hands it (absolute-form `http://…`). */
function onRequest(f: Filter, request: Partial<RequestView>): Reply | undefined {
  const v = f.onRequest!(fakeSession({ request }));
  assert.ok(!(v instanceof Promise));
  return v;
}

function blockedUrl(f: Filter, url: string, method = 'GET'): boolean {
  const u = new URL(url);
  return onRequest(f, { method, scheme: u.protocol.slice(0, -1), authority: url.split('/')[2], path: u.pathname, query: u.search }) !== undefined;
}

test('URL patterns: prefixes, globs and regexes, with and without a scheme', () => {
  const f = filter({
    urls: ['http://ads.example/', 'tracker.example/pixel', 'http://cdn.', '*.exe', 'http://*.example/banner/*', '*/dl?file=*', '~^http://[^/]+/[0-9]+\\.bin$', '~Secret'],
  });
  const table: Array<[string, boolean]> = [
    ['http://ads.example/', true],
    ['http://ads.example/x/y?z', true],
    ['http://ADS.example:80/x', true],
    ['http://ads.example:8080/x', false],
    ['http://ads.example.org/', false],
    ['http://tracker.example/pixel.gif', true],
    ['https://tracker.example/pixel', true],
    ['http://tracker.example/other', false],
    ['http://cdn.anything.example/', true],
    ['http://files.example/setup.exe', true],
    ['http://files.example/SETUP.EXE', true],
    ['http://files.example/setup.exe?x=1', false],
    ['http://a.b.example/banner/1.png', true],
    ['http://example/banner/1.png', false],
    ['http://files.example/dl?file=a', true],
    ['http://files.example/123.bin', true],
    ['http://files.example/x123.bin', false],
    ['http://files.example/Secret', true],
    ['http://files.example/secret', false],
    ['http://files.example/ok.html', false],
  ];
  for (const [url, want] of table) assert.equal(blockedUrl(f, url), want, url);
});

test('the refusal: 403 CONTENT_BLOCKED naming the rule, never the URL; CONNECT is never looked at', () => {
  const f = filter({ urls: ['*'] });
  const reply = onRequest(f, { path: '/x', query: '?token=hunter2' });
  assert.equal(reply?.status, 403);
  assert.equal(reply?.error?.code, 'CONTENT_BLOCKED');
  assert.match(reply!.error!.message, /rule: url/);
  assert.doesNotMatch(reply!.error!.message, /hunter2/);
  assert.equal(onRequest(f, { method: 'CONNECT', authority: 'ads.example:443', path: '' }), undefined);
});

test('globs match piece by piece, leftmost, without backtracking', () => {
  const table: Array<[string, string, boolean]> = [
    ['a*b', 'ab', true],
    ['a*b', 'aXb', true],
    ['a*b', 'aXbY', false],
    ['*a*a*', 'aa', true],
    ['*a*a*', 'a', false],
    ['ab*ba', 'aba', false],
    ['*x*y*z', 'xxyyzz', true],
    ['*x*y*z', 'zyx', false],
  ];
  for (const [glob, text, want] of table) assert.equal(globMatches(glob.split('*'), text), want, `${glob} ~ ${text}`);
});

test('regexes are compiled for the linear-time engine; patterns that backtrack for minutes elsewhere answer on a 16 KB URL', () => {
  // Behaviour, not timing: the patterns are compiled with V8's non-backtracking engine (flag `l`),
  // and the catastrophic inputs for a backtracking engine are answered (a backtracking run of
  // `.*.*.*.*z` over 16 KB would not finish within the test's timeout).
  for (const source of ['.*.*.*.*z', '(a+)+b']) {
    const r = linearRegExp(source);
    assert.ok(r instanceof RegExp && r.flags.includes('l'), `${source}: ${String(r)}`);
  }
  const f = filter({ urls: ['~.*.*.*.*z', '~(a+)+b'] });
  assert.equal(blockedUrl(f, `http://h.example/${'a'.repeat(16_000)}`), false);
  assert.equal(blockedUrl(f, `http://h.example/${'a'.repeat(16_000)}z`), true);
});

test('bad config: what cannot run in linear time, bad regexes, bad types, no key, unreadable files', () => {
  const table: Array<[unknown, string]> = [
    [{ urls: ['~(a)\\1'] }, 'linear time'],
    [{ urls: ['~(?=a)b'] }, 'linear time'],
    [{ urls: ['~(unclosed'] }, 'Invalid regular expression'],
    [{ types: ['video'] }, 'media type'],
    [{ types: ['*/*'] }, 'media type'],
    [{ types: ['video/mp4*'] }, 'media type'],
    [{}, 'at least one'],
    [{ urlFiles: ['missing.txt'] }, 'ENOENT'],
  ];
  for (const [raw, want] of table) {
    const { problems } = resolve(raw);
    assert.ok(problems.length > 0, JSON.stringify(raw));
    assert.match(`${problems[0].expected} ${problems[0].found}`, new RegExp(want.replace(/[()\\]/g, '\\$&')), JSON.stringify(raw));
  }
  assert.equal(contentFilterPolicy.config.safeParse({ maxSize: 'lots' }).success, false);
});

test('urlFiles: one pattern a line, comments and blank lines skipped, bad lines named, relative to the config file', () => {
  writeFileSync(join(dir, 'urls.txt'), '# blocked\r\nhttp://ads.example/\r\n\r\n  *.msi  # installers\n~^http://x/[0-9]+$\n~(a)\\1\n');
  const { problems, resolved } = resolve({ urlFiles: ['urls.txt'] });
  assert.equal(problems.length, 1);
  assert.match(problems[0].found, /urls\.txt line 6/);
  assert.deepEqual(problems[0].path, ['urlFiles', 0]);
  const f = contentFilterPolicy.create(resolved, fakeDeps());
  for (const [url, want] of [
    ['http://ads.example/a', true],
    ['http://h.example/a.msi', true],
    ['http://x/42', true],
    ['http://x/a42', false],
  ] as const)
    assert.equal(blockedUrl(f, url), want, url);
});

function upstreamHead(status: number, pairs: Array<[string, string]>, fromUpstream = true): ResponseHead {
  return { status, headers: headerList(pairs), fromUpstream };
}

function onResponse(f: Filter, s: Session, head: ResponseHead): Reply | undefined {
  const v = f.onResponse!(s, head);
  assert.ok(!(v instanceof Promise));
  return v;
}

test('types: exact and type/*, any case, parameters ignored; our own answers and responses without a type pass', () => {
  const f = filter({ types: ['application/x-msdownload', 'Video/*'] });
  const table: Array<[string | undefined, boolean]> = [
    ['application/x-msdownload', true],
    ['Application/X-MSDownload; charset=binary', true],
    ['video/mp4', true],
    ['VIDEO/webm;codecs=vp9', true],
    ['videos/x', false],
    ['application/x-msdownloads', false],
    ['text/html', false],
    [undefined, false],
  ];
  for (const [type, want] of table) {
    const head = upstreamHead(200, type === undefined ? [] : [['Content-Type', type]]);
    const reply = onResponse(f, fakeSession(), head);
    assert.equal(reply !== undefined, want, String(type));
    if (want) assert.match(reply!.error!.message, /rule: type/);
  }
  assert.equal(onResponse(f, fakeSession(), upstreamHead(403, [['content-type', 'video/mp4']], false)), undefined);
  assert.equal(f.onResponseBody, undefined, 'no body hook without maxSize');
});

test('maxSize: a declared length over it is refused; a body without one is counted and cut past it', () => {
  const f = filter({ maxSize: '1KiB' });
  assert.equal(f.onRequest, undefined, 'no request hook without urls');
  assert.equal(f.bodyUnchanged, true);
  const over = onResponse(f, fakeSession(), upstreamHead(200, [['content-length', '1025']]));
  assert.match(over!.error!.message, /rule: size/);
  assert.equal(onResponse(f, fakeSession(), upstreamHead(200, [['content-length', '1024']])), undefined);
  assert.equal(onResponse(f, fakeSession({ request: { method: 'HEAD' } }), upstreamHead(200, [['content-length', '99999']])), undefined);

  // Declared within the limit: nothing counted.
  const declared = fakeSession();
  onResponse(f, declared, upstreamHead(200, [['content-length', '1000']]));
  assert.equal(f.onResponseBody!(declared, Buffer.alloc(1000), false), undefined);

  const chunked = fakeSession();
  assert.equal(onResponse(f, chunked, upstreamHead(200, [['transfer-encoding', 'chunked']])), undefined);
  assert.equal(f.onResponseBody!(chunked, Buffer.alloc(1000), false), undefined);
  assert.equal(f.onResponseBody!(chunked, Buffer.alloc(24), false), undefined);
  assert.throws(
    () => f.onResponseBody!(chunked, Buffer.alloc(1), false),
    (err) => err instanceof ResponseCut && err.code === 'CONTENT_BLOCKED' && /rule: size/.test(err.message),
  );
});

test('decisions: one message per result, labels from the config only', () => {
  const seen: PolicyDecisionEvent[] = [];
  const listen = (m: unknown) => seen.push(m as PolicyDecisionEvent);
  diagnostics.subscribe('switchboard:policy:decision', listen);
  try {
    const f = filter({ urls: ['http://ads.example/'], types: ['video/*'], maxSize: 10 });
    blockedUrl(f, 'http://ads.example/?key=secret');
    blockedUrl(f, 'http://fine.example/');
    onResponse(f, fakeSession(), upstreamHead(200, [['content-type', 'video/mp4']]));
    onResponse(f, fakeSession(), upstreamHead(200, [['content-length', '11']]));
  } finally {
    diagnostics.unsubscribe('switchboard:policy:decision', listen);
  }
  assert.deepEqual(
    seen.map((e) => [e.policy, e.type, e.result]),
    [
      ['cf', 'content-filter', 'blocked_url'],
      ['cf', 'content-filter', 'blocked_type'],
      ['cf', 'content-filter', 'blocked_size'],
    ],
  );
});
