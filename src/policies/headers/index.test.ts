import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Filter, PolicyProblem, ResponseHead, Session, UpstreamRequestHead } from '../filter.ts';
import { fakeSession, type FakeSessionInit } from '../../../test/helpers/session.ts';
import { fakeResolveContext, headerList, pairs } from '../../../test/helpers/policy.ts';
import { headersPolicy, type ResolvedHeaders } from './index.ts';
import { compileTemplate, fillTemplate } from './template.ts';

type Pairs = Array<[string, string]>;

function resolved(input: unknown, env: Record<string, string | undefined> = {}): { config: ResolvedHeaders; problems: PolicyProblem[] } {
  const { ctx, problems } = fakeResolveContext({ env });
  return { config: headersPolicy.resolve(headersPolicy.config.parse(input), ctx), problems };
}

function filterOf(input: unknown, env: Record<string, string | undefined> = {}): Filter {
  const { config, problems } = resolved(input, env);
  assert.deepEqual(problems, []);
  return headersPolicy.create(config);
}

function upstreamRequest(filter: Filter, s: Session, before: Pairs): Pairs {
  const head: UpstreamRequestHead = { method: 'GET', target: '/', headers: headerList(before), endpoint: 'http://10.0.0.1:8080', attempt: 1 };
  filter.onUpstreamRequest!(s, head);
  return pairs(head.headers as ReturnType<typeof headerList>);
}

function response(filter: Filter, s: Session, before: Pairs): Pairs {
  const head: ResponseHead = { status: 200, headers: headerList(before), fromUpstream: true };
  assert.equal(filter.onResponse!(s, head), undefined);
  assert.equal(head.status, 200);
  return pairs(head.headers as ReturnType<typeof headerList>);
}

const operations: Array<{ name: string; ops: object; before: Pairs; after: Pairs; session?: FakeSessionInit }> = [
  {
    name: 'the example: set x-served-by, remove server',
    ops: { set: { 'x-served-by': 'switchboard' }, remove: ['server'] },
    before: [
      ['Server', 'origin/1.0'],
      ['content-type', 'text/plain'],
    ],
    after: [
      ['content-type', 'text/plain'],
      ['x-served-by', 'switchboard'],
    ],
  },
  {
    name: 'remove takes every field of the name, any case',
    ops: { remove: ['X-Debug'] },
    before: [
      ['x-debug', '1'],
      ['a', '1'],
      ['X-DEBUG', '2'],
    ],
    after: [['a', '1']],
  },
  {
    name: 'rename keeps value and position, and fields already under the new name',
    ops: { rename: { 'x-old': 'X-New' } },
    before: [
      ['X-OLD', '1'],
      ['a', '1'],
      ['x-new', '2'],
    ],
    after: [
      ['X-New', '1'],
      ['a', '1'],
      ['x-new', '2'],
    ],
  },
  {
    name: 'rename of an absent name does nothing',
    ops: { rename: { 'x-old': 'x-new' } },
    before: [['a', '1']],
    after: [['a', '1']],
  },
  {
    name: 'set replaces every field of the name, at the first one, any case',
    ops: { set: { 'Cache-Control': 'no-store' } },
    before: [
      ['cache-control', 'max-age=60'],
      ['a', '1'],
      ['CACHE-CONTROL', 'public'],
    ],
    after: [
      ['cache-control', 'no-store'],
      ['a', '1'],
    ],
  },
  {
    name: 'set adds an absent name as written',
    ops: { set: { 'X-Frame-Options': 'DENY' } },
    before: [],
    after: [['X-Frame-Options', 'DENY']],
  },
  {
    name: 'set to an empty value removes',
    ops: { set: { server: '' } },
    before: [['server', 'origin']],
    after: [],
  },
  {
    name: 'add keeps repeated fields (set-cookie) and adds one more',
    ops: { add: { 'set-cookie': 'sb=1; Path=/' } },
    before: [
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ],
    after: [
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['set-cookie', 'sb=1; Path=/'],
    ],
  },
  {
    name: 'add with a list adds one field per value, in order',
    ops: { add: { link: ['</a.css>; rel=preload', '</b.js>; rel=preload'] } },
    before: [],
    after: [
      ['link', '</a.css>; rel=preload'],
      ['link', '</b.js>; rel=preload'],
    ],
  },
  {
    name: 'add of an empty value adds nothing',
    ops: { add: { 'x-empty': '' } },
    before: [],
    after: [],
  },
  {
    name: 'order: remove, rename, set, add (whatever the key order)',
    ops: { add: { 'x-a': 'added' }, set: { 'x-a': 'set' }, rename: { 'x-b': 'x-a' }, remove: ['x-a'] },
    before: [
      ['x-a', 'client'],
      ['x-b', 'renamed'],
    ],
    after: [
      ['x-a', 'set'],
      ['x-a', 'added'],
    ],
  },
  {
    name: 'remove before rename: a trusted header cannot be spoofed by the client',
    ops: { remove: ['x-user'], rename: { 'x-auth-user': 'x-user' } },
    before: [
      ['x-user', 'spoofed'],
      ['x-auth-user', 'ann'],
    ],
    after: [['x-user', 'ann']],
  },
  {
    name: 'set from an absent request header removes the client copy',
    ops: { set: { 'x-tenant': '${header.x-tenant-id}' } },
    before: [['x-tenant', 'spoofed']],
    after: [],
  },
];

for (const direction of ['request', 'response'] as const) {
  for (const c of operations) {
    test(`headers ${direction}: ${c.name}`, () => {
      const filter = filterOf({ [direction]: c.ops });
      const s = fakeSession(c.session);
      const after = direction === 'request' ? upstreamRequest(filter, s, c.before) : response(filter, s, c.before);
      assert.deepEqual(after, c.after);
    });
  }
}

test('headers: a direction with nothing to do adds no hook', () => {
  assert.deepEqual(Object.keys(filterOf({ request: { set: { a: '1' } } })), ['onUpstreamRequest']);
  assert.deepEqual(Object.keys(filterOf({ response: { remove: ['server'] } })), ['onResponse']);
  assert.deepEqual(Object.keys(filterOf({ request: {}, response: { set: {} } })), []);
  assert.deepEqual(Object.keys(filterOf({})), []);
});

test('headers: request and response changes apply to their own direction only', () => {
  const filter = filterOf({ request: { set: { 'x-to-upstream': '1' } }, response: { set: { 'x-to-client': '1' } } });
  const s = fakeSession();
  assert.deepEqual(upstreamRequest(filter, s, []), [['x-to-upstream', '1']]);
  assert.deepEqual(response(filter, s, []), [['x-to-client', '1']]);
});

test('headers: response changes apply to answers not from the upstream', () => {
  const filter = filterOf({ response: { set: { 'x-served-by': 'switchboard' } } });
  const head: ResponseHead = { status: 502, headers: headerList([['content-type', 'application/json']]), fromUpstream: false };
  filter.onResponse!(fakeSession({ error: 'UPSTREAM_UNAVAILABLE' }), head);
  assert.equal(head.status, 502);
  assert.deepEqual(pairs(head.headers as ReturnType<typeof headerList>), [
    ['content-type', 'application/json'],
    ['x-served-by', 'switchboard'],
  ]);
});

const templates: Array<{ name: string; value: string; want: string; session?: FakeSessionInit; env?: Record<string, string> }> = [
  { name: 'constant', value: 'switchboard', want: 'switchboard' },
  { name: '${client.ip}', value: 'for=${client.ip}', want: 'for=198.51.100.7', session: { client: { ip: '198.51.100.7' } } },
  { name: '${request.id}', value: '${request.id}', want: 'abc-123', session: { id: 'abc-123' } },
  { name: '${route}', value: 'route=${route}', want: 'route=api', session: { route: 'api' } },
  { name: '${route} before routing is empty', value: 'route=${route}', want: 'route=' },
  { name: '${header.NAME}, any case', value: 't=${header.X-Tenant}', want: 't=acme', session: { request: { headers: { 'x-tenant': 'acme' } } } },
  { name: '${header.NAME} absent is empty', value: 't=${header.x-tenant}', want: 't=' },
  { name: '${header.NAME} repeated is joined', value: '${header.x-a}', want: '1, 2', session: { request: { headers: { 'x-a': ['1', '2'] } } } },
  {
    name: '${header.host} is the Host (HTTP/1.1)',
    value: 'h=${header.host}',
    want: 'h=a.example:8080',
    session: { request: { authority: 'a.example:8080', headers: { host: 'a.example:8080' } } },
  },
  {
    name: "${header.host} is HTTP/2's :authority (no Host header)",
    value: 'h=${header.Host}',
    want: 'h=b.example',
    session: { request: { authority: 'b.example', headers: {} } },
  },
  { name: '${header.NAME} loses CR, LF and NUL', value: '${header.x-a}', want: 'ab', session: { request: { headers: { 'x-a': 'a\r\n\0b' } } } },
  { name: '${env.NAME} is filled once', value: '${env.REGION}-1', want: 'eu-west-1', env: { REGION: 'eu-west' } },
  { name: '$${ is a literal ${', value: '$${route} $5 $$', want: '${route} $5 $$' },
  { name: 'several variables', value: '${client.ip}/${route}/${request.id}', want: '192.0.2.1/web/req-1', session: { route: 'web' } },
];

for (const c of templates) {
  test(`headers template: ${c.name}`, () => {
    const filter = filterOf({ request: { set: { 'x-out': c.value } } }, c.env);
    const out = upstreamRequest(filter, fakeSession(c.session), []);
    assert.deepEqual(out, c.want === '' ? [] : [['x-out', c.want]]);
  });
}

test('headers template: a constant compiles to the string itself, filled without building one', () => {
  const noProblem = (): never => assert.fail('no problem expected');
  for (const text of ['switchboard', '${env.A}x', '$${literal}', '']) {
    const t = compileTemplate(text, { A: 'a' }, noProblem);
    assert.equal(typeof t, 'string');
    assert.equal(fillTemplate(t, fakeSession()), t);
  }
  const withVariable = compileTemplate('a${route}b', {}, noProblem);
  assert.deepEqual(withVariable, ['a', { kind: 'route', name: '' }, 'b']);
});

// `atKey`: the problem is about a name that is a map key (set, add, rename's old name), so it points at the key.
const problems: Array<{ name: string; input: object; env?: Record<string, string>; want: Array<{ path: Array<string | number>; expected: RegExp; atKey?: boolean }> }> = [
  {
    name: 'unknown template variable names the allowed forms',
    input: { response: { set: { 'x-a': 'v=${client.port}' } } },
    want: [{ path: ['response', 'set', 'x-a'], expected: /\$\{client\.ip\}, \$\{request\.id\}, \$\{route\}, \$\{header\.NAME\} or \$\{env\.NAME\}/ }],
  },
  {
    name: 'unclosed template variable',
    input: { request: { add: { 'x-a': ['ok', 'v=${route'] } } },
    want: [{ path: ['request', 'add', 'x-a', 1], expected: /template variable/ }],
  },
  {
    name: 'header variable with a bad name',
    input: { request: { set: { 'x-a': '${header.a b}' } } },
    want: [{ path: ['request', 'set', 'x-a'], expected: /template variable/ }],
  },
  {
    name: 'unset environment variable',
    input: { request: { set: { 'x-a': '${env.NOPE}' } } },
    want: [{ path: ['request', 'set', 'x-a'], expected: /environment variable NOPE to be set/ }],
  },
  {
    name: 'CR/LF in a value',
    input: { response: { set: { 'x-a': 'a\r\nb: c' } } },
    want: [{ path: ['response', 'set', 'x-a'], expected: /without control characters/ }],
  },
  {
    name: 'CR/LF in a value from the environment',
    input: { response: { add: { 'x-a': '${env.BAD}' } } },
    env: { BAD: 'a\nb' },
    want: [{ path: ['response', 'add', 'x-a'], expected: /without control characters/ }],
  },
  {
    name: 'content-length is never changed',
    input: { response: { set: { 'Content-Length': '5' } }, request: { remove: ['content-length'] } },
    want: [
      { path: ['request', 'remove', 0], expected: /other than .*content-length/ },
      { path: ['response', 'set', 'Content-Length'], expected: /other than .*content-length/, atKey: true },
    ],
  },
  {
    name: 'hop-by-hop names are refused in every operation',
    input: {
      request: { remove: ['connection'], add: { te: 'trailers' } },
      response: { rename: { 'transfer-encoding': 'x-te', 'x-up': 'Upgrade' }, set: { 'keep-alive': 'timeout=5' } },
    },
    want: [
      { path: ['request', 'remove', 0], expected: /Switchboard writes those itself/ },
      { path: ['request', 'add', 'te'], expected: /Switchboard writes those itself/, atKey: true },
      { path: ['response', 'rename', 'transfer-encoding'], expected: /Switchboard writes those itself/, atKey: true },
      { path: ['response', 'rename', 'x-up'], expected: /Switchboard writes those itself/ },
      { path: ['response', 'set', 'keep-alive'], expected: /Switchboard writes those itself/, atKey: true },
    ],
  },
  {
    name: 'host only under request set',
    input: { request: { set: { Host: 'api.internal' }, add: { host: 'b' }, remove: ['HOST'], rename: { 'x-host': 'host' } } },
    want: [
      { path: ['request', 'remove', 0], expected: /host only under `set`/ },
      { path: ['request', 'rename', 'x-host'], expected: /host only under `set`/ },
      { path: ['request', 'add', 'host'], expected: /host only under `set`/, atKey: true },
    ],
  },
  {
    name: 'expect is never sent upstream',
    input: { request: { set: { expect: '100-continue' } } },
    want: [{ path: ['request', 'set', 'expect'], expected: /other than expect/, atKey: true }],
  },
  {
    name: 'a name given twice (names are case-insensitive)',
    input: { response: { set: { 'x-a': '1', 'X-A': '2' } } },
    want: [{ path: ['response', 'set', 'X-A'], expected: /each header name once/, atKey: true }],
  },
  {
    name: 'chained renames',
    input: { request: { rename: { a: 'b', b: 'a' } } },
    want: [
      { path: ['request', 'rename', 'a'], expected: /not renamed itself/ },
      { path: ['request', 'rename', 'b'], expected: /not renamed itself/ },
    ],
  },
  {
    name: 'host may be set on requests, anything on responses but framing',
    input: { request: { set: { host: 'api.internal' }, rename: { 'x-a': 'X-A' } }, response: { set: { host: 'x' }, remove: ['expect'] } },
    want: [],
  },
];

for (const c of problems) {
  test(`headers problem: ${c.name}`, () => {
    const got = resolved(c.input, c.env).problems;
    assert.equal(got.length, c.want.length, JSON.stringify(got));
    c.want.forEach((w, i) => {
      assert.deepEqual(got[i].path, w.path);
      assert.match(got[i].expected, w.expected);
      assert.equal(got[i].atKey === true, w.atKey === true, `atKey of ${JSON.stringify(w.path)}`);
    });
  });
}

const schemaRefusals: Array<{ name: string; input: unknown }> = [
  { name: 'a header name that is not a token', input: { response: { set: { 'x a': '1' } } } },
  { name: 'a bad name in remove', input: { request: { remove: ['x:a'] } } },
  { name: 'a bad new name in rename', input: { request: { rename: { a: 'b c' } } } },
  { name: 'an unknown operation', input: { request: { append: { a: '1' } } } },
  { name: 'an unknown direction', input: { both: {} } },
  { name: 'a number as value', input: { response: { set: { a: 1 } } } },
  { name: 'an empty add list', input: { response: { add: { a: [] } } } },
];

for (const c of schemaRefusals) {
  test(`headers schema refuses ${c.name}`, () => {
    assert.equal(headersPolicy.config.safeParse(c.input).success, false);
  });
}
