import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Filter, PolicyProblem, Reply } from '../filter.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import { fakeResolveContext } from '../../../test/helpers/policy.ts';
import { respondPolicy, type ResolvedRespond } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'respond-policy-'));
mkdirSync(join(dir, 'pages'));
writeFileSync(join(dir, 'pages', 'maintenance.html'), '<h1>Back soon</h1>\n');
writeFileSync(join(dir, 'blob.bin'), Buffer.from([0, 1, 2, 255]));
after(() => rmSync(dir, { recursive: true, force: true }));

function resolved(input: unknown): { config: ResolvedRespond; problems: PolicyProblem[] } {
  const { ctx, problems } = fakeResolveContext({ baseDir: dir });
  return { config: respondPolicy.resolve(respondPolicy.config.parse(input), ctx), problems };
}

function filterOf(input: unknown): Filter {
  const { config, problems } = resolved(input);
  assert.deepEqual(problems, []);
  return respondPolicy.create(config);
}

function replyOf(input: unknown): Reply {
  const reply = filterOf(input).onRequest!(fakeSession());
  assert.ok(reply !== undefined && !(reply instanceof Promise));
  return reply;
}

const text = (body: Reply['body']): string | undefined => (body === undefined ? undefined : Buffer.from(body as Uint8Array).toString());

const replies: Array<{ name: string; input: object; status: number; headers: Record<string, string | readonly string[]>; body: string | undefined }> = [
  {
    name: 'the healthz example',
    input: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok\n' },
    status: 200,
    headers: { 'content-type': 'text/plain' },
    body: 'ok\n',
  },
  { name: 'nothing given: 200, no body', input: {}, status: 200, headers: {}, body: undefined },
  { name: 'a body gets text/plain', input: { status: 503, body: 'down' }, status: 503, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'down' },
  { name: 'an empty body is none', input: { body: '' }, status: 200, headers: {}, body: undefined },
  {
    name: 'a given Content-Type is kept, any case',
    input: { headers: { 'Content-Type': 'application/json' }, body: '{}' },
    status: 200,
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  },
  {
    name: 'a list of values, names as written',
    input: { status: 403, headers: { 'Set-Cookie': ['a=1', 'b=2'], 'Cache-Control': 'no-store' } },
    status: 403,
    headers: { 'Set-Cookie': ['a=1', 'b=2'], 'Cache-Control': 'no-store' },
    body: undefined,
  },
  { name: '204 without a body', input: { status: 204 }, status: 204, headers: {}, body: undefined },
  { name: 'UTF-8 body', input: { body: 'grüß 👋' }, status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'grüß 👋' },
  {
    name: 'bodyFile relative to the config file, type from the extension',
    input: { status: 503, bodyFile: 'pages/maintenance.html', headers: { 'retry-after': '120' } },
    status: 503,
    headers: { 'retry-after': '120', 'content-type': 'text/html; charset=utf-8' },
    body: '<h1>Back soon</h1>\n',
  },
];

for (const c of replies) {
  test(`respond: ${c.name}`, () => {
    const reply = replyOf(c.input);
    assert.equal(reply.status, c.status);
    assert.deepEqual(reply.headers, c.headers);
    assert.equal(text(reply.body), c.body);
    assert.equal('body' in reply, c.body !== undefined);
    assert.equal(reply.error, undefined);
  });
}

test('respond: bodyFile bytes as they are, octet-stream for an unknown extension', () => {
  const reply = replyOf({ bodyFile: 'blob.bin' });
  assert.deepEqual([...(reply.body as Uint8Array)], [0, 1, 2, 255]);
  assert.deepEqual(reply.headers, { 'content-type': 'application/octet-stream' });
});

test('respond: the same frozen Reply for every request, on listeners too', () => {
  assert.equal(respondPolicy.onListeners, true);
  const filter = filterOf({ status: 200, body: 'ok\n' });
  assert.deepEqual(Object.keys(filter), ['onRequest']);
  const first = filter.onRequest!(fakeSession());
  const second = filter.onRequest!(fakeSession({ route: 'health', request: { method: 'HEAD', path: '/healthz' } }));
  const third = filter.onRequest!(fakeSession({ listener: 'admin' }));
  assert.equal(first, second);
  assert.equal(second, third);
  assert.ok(Object.isFrozen(first) && Object.isFrozen((first as Reply).headers));
});

// `atKey`: the problem is about a header name (a map key), so it points at the key.
const problems: Array<{ name: string; input: object; want: Array<{ path: Array<string | number>; expected: RegExp; atKey?: boolean }> }> = [
  { name: 'body and bodyFile', input: { body: 'x', bodyFile: 'blob.bin' }, want: [{ path: ['bodyFile'], expected: /either body or bodyFile/ }] },
  { name: 'an unreadable bodyFile', input: { bodyFile: 'missing.html' }, want: [{ path: ['bodyFile'], expected: /a readable file/ }] },
  { name: 'a directory as bodyFile', input: { bodyFile: 'pages' }, want: [{ path: ['bodyFile'], expected: /a readable file/ }] },
  { name: '204 with a body', input: { status: 204, body: 'x' }, want: [{ path: ['body'], expected: /no body with status 204/ }] },
  { name: '304 with a bodyFile', input: { status: 304, bodyFile: 'blob.bin' }, want: [{ path: ['bodyFile'], expected: /no body with status 304/ }] },
  { name: '205 with a body', input: { status: 205, body: 'x' }, want: [{ path: ['body'], expected: /no body with status 205/ }] },
  {
    name: 'content-length',
    input: { headers: { 'Content-Length': '3' }, body: 'abc' },
    want: [{ path: ['headers', 'Content-Length'], expected: /computed/, atKey: true }],
  },
  {
    name: 'framing and hop-by-hop names',
    input: { headers: { 'transfer-encoding': 'chunked', connection: 'close' } },
    want: [
      { path: ['headers', 'transfer-encoding'], expected: /Switchboard writes those itself/, atKey: true },
      { path: ['headers', 'connection'], expected: /Switchboard writes those itself/, atKey: true },
    ],
  },
  { name: 'a name given twice', input: { headers: { 'x-a': '1', 'X-A': '2' } }, want: [{ path: ['headers', 'X-A'], expected: /each header name once/, atKey: true }] },
  {
    name: 'CR/LF in a value',
    input: { headers: { location: '/a\r\nset-cookie: x=1', link: ['ok', 'bad\0'] } },
    want: [
      { path: ['headers', 'location'], expected: /without control characters/ },
      { path: ['headers', 'link', 1], expected: /without control characters/ },
    ],
  },
];

for (const c of problems) {
  test(`respond problem: ${c.name}`, () => {
    const got = resolved(c.input).problems;
    assert.equal(got.length, c.want.length, JSON.stringify(got));
    c.want.forEach((w, i) => {
      assert.deepEqual(got[i].path, w.path);
      assert.match(got[i].expected, w.expected);
      assert.equal(got[i].atKey === true, w.atKey === true, `atKey of ${JSON.stringify(w.path)}`);
    });
  });
}

const schemaRefusals: Array<{ name: string; input: unknown }> = [
  { name: 'an informational status', input: { status: 100 } },
  { name: 'a status above 599', input: { status: 600 } },
  { name: 'a fractional status', input: { status: 200.5 } },
  { name: 'a status as text', input: { status: '200' } },
  { name: 'a header name that is not a token', input: { headers: { 'x a': '1' } } },
  { name: 'an unknown key', input: { code: 200 } },
  { name: 'a type key (the config schema adds it)', input: { type: 'respond' } },
];

for (const c of schemaRefusals) {
  test(`respond schema refuses ${c.name}`, () => {
    assert.equal(respondPolicy.config.safeParse(c.input).success, false);
  });
}
