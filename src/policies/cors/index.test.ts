import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HeaderList } from '../../http/header-list.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import type { Filter, PolicyProblem, Reply, ResponseHead } from '../filter.ts';
import { corsPolicy } from './index.ts';

/** Parses and resolves `raw` as the loader would, returning the problems and (when none) the filter. */
function build(raw: unknown): { problems: PolicyProblem[]; filter: Filter } {
  const parsed = corsPolicy.config.parse(raw);
  const problems: PolicyProblem[] = [];
  const resolved = corsPolicy.resolve(parsed, { baseDir: '.', env: {}, problem: (p) => problems.push(p) });
  return { problems, filter: corsPolicy.create(resolved) };
}

function filterOf(raw: unknown): Filter {
  const { problems, filter } = build(raw);
  assert.deepEqual(problems, []);
  return filter;
}

/** The preflight answer (undefined: the request goes on). */
function preflight(f: Filter, headers: Record<string, string>, method = 'OPTIONS'): Reply | undefined {
  return f.onRequest!(fakeSession({ request: { method, headers } })) as Reply | undefined;
}

/** The response headers after onResponse, as a lower-case record (repeated names joined). */
function respond(f: Filter, requestHeaders: Record<string, string>, raw: string[] = [], fromUpstream = true): Record<string, string> {
  const head: ResponseHead = { status: 200, headers: new HeaderList(['content-type', 'text/plain', ...raw]), fromUpstream };
  assert.equal(f.onResponse!(fakeSession({ request: { headers: requestHeaders } }), head), undefined);
  const out: Record<string, string> = {};
  head.headers.forEach((value, name) => {
    const n = name.toLowerCase();
    out[n] = out[n] === undefined ? value : `${out[n]}, ${value}`;
  });
  delete out['content-type'];
  return out;
}

const example = { origins: ['https://app.example.com', 'https://*.example.org'], methods: ['GET', 'POST'], credentials: true, maxAge: '10m' };

test('origin matching: exact, *. wildcard, anchored regex, null', () => {
  const f = filterOf({
    origins: [
      'https://app.example.com',
      'https://*.example.org',
      { regex: 'https://[a-z]+\\.example\\.net' },
      'http://localhost:3000',
      'HTTPS://Upper.Example.com:443',
      'https://*.example.com:8443',
      'chrome-extension://abcdefgh',
    ],
  });
  const table: Array<[string, boolean]> = [
    ['https://app.example.com', true],
    ['https://APP.example.com', true],
    ['http://app.example.com', false],
    ['https://app.example.com:444', false],
    ['https://app.example.com.evil.com', false],
    ['https://evil.com/https://app.example.com', false],
    ['https://app.example.com, https://evil.com', false],
    ['https://a.example.org', true],
    ['https://a.b.example.org', true],
    ['https://example.org', false],
    ['https://evilexample.org', false],
    ['https://.example.org', false],
    ['https://a.example.org:8443', false],
    ['http://a.example.org', false],
    ['https://x.example.net', true],
    ['https://x.example.net.evil.com', false],
    ['https://x.y.example.net', false],
    ['http://localhost:3000', true],
    ['http://localhost', false],
    ['https://upper.example.com', true],
    ['https://a.example.com:8443', true],
    ['https://a.example.com', false],
    ['https://example.com:8443', false],
    ['chrome-extension://abcdefgh', true],
    ['null', false],
    ['', false],
  ];
  for (const [origin, allowed] of table) {
    const h = respond(f, { origin });
    assert.equal(h['access-control-allow-origin'], allowed ? origin : undefined, origin);
    assert.equal(h.vary, 'Origin', origin);
  }
});

test('null is allowed only when listed literally; * allows any origin with a literal *', () => {
  assert.equal(respond(filterOf({ origins: [{ regex: '.*' }] }), { origin: 'null' })['access-control-allow-origin'], undefined);
  assert.equal(respond(filterOf({ origins: ['https://*.example.org'] }), { origin: 'null' })['access-control-allow-origin'], undefined);
  assert.equal(respond(filterOf({ origins: ['null'] }), { origin: 'null' })['access-control-allow-origin'], 'null');
  const star = filterOf({ origins: ['*'], exposedHeaders: ['*'] });
  for (const origin of ['https://anything.test', 'null']) {
    assert.deepEqual(respond(star, { origin }), { 'access-control-allow-origin': '*', 'access-control-expose-headers': '*' });
  }
});

test('preflight: allowed answers 204 with the Allow-* headers; refused answers 403 without them', () => {
  const f = filterOf({ ...example, requestHeaders: ['Content-Type', 'X-Token'], privateNetwork: true });
  const allowed = {
    status: 204,
    headers: {
      vary: 'Origin',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'Content-Type, X-Token',
      'access-control-max-age': '600',
      'access-control-allow-origin': 'https://app.example.com',
    },
  };
  const refused = (what: string) => ({
    status: 403,
    headers: { vary: 'Origin' },
    error: { code: 'CORS_FORBIDDEN', message: `CORS preflight refused: ${what} not allowed` },
  });
  const origin = 'https://app.example.com';
  const table: Array<[string, Record<string, string>, unknown]> = [
    ['allowed', { origin, 'access-control-request-method': 'POST' }, allowed],
    ['allowed headers', { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-token' }, allowed],
    ['header case', { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'X-TOKEN' }, allowed],
    [
      'wildcard origin',
      { origin: 'https://a.example.org', 'access-control-request-method': 'GET' },
      { ...allowed, headers: { ...allowed.headers, 'access-control-allow-origin': 'https://a.example.org' } },
    ],
    [
      'private network',
      { origin, 'access-control-request-method': 'GET', 'access-control-request-private-network': 'true' },
      { ...allowed, headers: { ...allowed.headers, 'access-control-allow-private-network': 'true' } },
    ],
    ['origin', { origin: 'https://evil.com', 'access-control-request-method': 'GET' }, refused('origin')],
    ['apex', { origin: 'https://example.org', 'access-control-request-method': 'GET' }, refused('origin')],
    ['null origin', { origin: 'null', 'access-control-request-method': 'GET' }, refused('origin')],
    ['method', { origin, 'access-control-request-method': 'PUT' }, refused('method')],
    ['method case', { origin, 'access-control-request-method': 'post' }, refused('method')],
    ['header', { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'content-type,x-other' }, refused('request headers')],
    ['authorization', { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }, refused('request headers')],
  ];
  for (const [name, headers, expected] of table) assert.deepEqual(preflight(f, headers), expected, name);
});

test('only OPTIONS with Origin and Access-Control-Request-Method is a preflight', () => {
  const f = filterOf(example);
  const origin = 'https://app.example.com';
  assert.equal(preflight(f, { origin }), undefined);
  assert.equal(preflight(f, { 'access-control-request-method': 'GET' }), undefined);
  assert.equal(preflight(f, { origin, 'access-control-request-method': 'GET' }, 'GET'), undefined);
  assert.equal(preflight(f, { origin: 'https://evil.com' }, 'POST'), undefined, 'a disallowed actual request is forwarded');
});

test('defaults: GET, HEAD, POST; any requested header answered with the requested names', () => {
  const f = filterOf({ origins: ['https://app.example.com'] });
  const origin = 'https://app.example.com';
  const ok = preflight(f, { origin, 'access-control-request-method': 'HEAD', 'access-control-request-headers': 'authorization,x-custom' });
  assert.deepEqual(ok, {
    status: 204,
    headers: {
      vary: 'Origin',
      'access-control-allow-methods': 'GET, HEAD, POST',
      'access-control-allow-origin': origin,
      'access-control-allow-headers': 'authorization,x-custom',
    },
  });
  assert.equal(preflight(f, { origin, 'access-control-request-method': 'DELETE' })?.status, 403);
  assert.equal(preflight(f, { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-a\r\nx-b' })?.status, 403);
  assert.equal(preflight(f, { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-a;b' })?.status, 403);
  assert.deepEqual(respond(f, { origin }), { vary: 'Origin', 'access-control-allow-origin': origin });
  // No allowed request headers at all.
  assert.equal(
    preflight(filterOf({ origins: [origin], requestHeaders: [] }), { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-a' })?.status,
    403,
  );
});

test('methods ["*"] answers with the requested method, with credentials too', () => {
  const f = filterOf({ origins: ['https://app.example.com'], methods: ['*'], credentials: true });
  const origin = 'https://app.example.com';
  const ok = preflight(f, { origin, 'access-control-request-method': 'PATCH' });
  assert.equal(ok?.status, 204);
  assert.equal(ok?.headers?.['access-control-allow-methods'], 'PATCH');
  assert.equal(ok?.headers?.['access-control-allow-credentials'], 'true');
  assert.equal(preflight(f, { origin, 'access-control-request-method': 'BAD METHOD' })?.status, 403);
});

test('origins ["*"] without credentials: constant headers, no Vary, also without an Origin', () => {
  const f = filterOf({ origins: ['*'], methods: ['GET', 'PUT'], requestHeaders: ['X-Token'], maxAge: 0 });
  assert.deepEqual(preflight(f, { origin: 'https://a.test', 'access-control-request-method': 'PUT' }), {
    status: 204,
    headers: {
      'access-control-allow-methods': 'GET, PUT',
      'access-control-allow-headers': 'X-Token',
      'access-control-max-age': '0',
      'access-control-allow-origin': '*',
    },
  });
  assert.deepEqual(preflight(f, { origin: 'https://a.test', 'access-control-request-method': 'DELETE' }), {
    status: 403,
    headers: {},
    error: { code: 'CORS_FORBIDDEN', message: 'CORS preflight refused: method not allowed' },
  });
  assert.deepEqual(respond(f, { origin: 'https://a.test' }, ['Vary', 'Accept-Encoding']), { vary: 'Accept-Encoding', 'access-control-allow-origin': '*' });
  assert.deepEqual(respond(f, {}), { 'access-control-allow-origin': '*' });
});

test('actual responses: credentials, exposed headers, Vary, and the upstream CORS headers replaced', () => {
  const f = filterOf({ ...example, exposedHeaders: ['X-Request-Id', 'ETag'] });
  const origin = 'https://a.example.org';
  const allowed = {
    'access-control-allow-origin': origin,
    'access-control-allow-credentials': 'true',
    'access-control-expose-headers': 'X-Request-Id, ETag',
  };
  const upstreamCors = ['Access-Control-Allow-Origin', '*', 'access-control-allow-methods', 'DELETE', 'Access-Control-Allow-Credentials', 'true'];
  const table: Array<[string, Record<string, string>, string[], Record<string, string>]> = [
    ['allowed', { origin }, [], { vary: 'Origin', ...allowed }],
    ['disallowed', { origin: 'https://evil.com' }, [], { vary: 'Origin' }],
    ['no origin', {}, [], { vary: 'Origin' }],
    ['existing vary', { origin }, ['Vary', 'Accept-Encoding'], { vary: 'Accept-Encoding, Origin', ...allowed }],
    ['vary has origin', { origin }, ['Vary', 'accept-encoding, ORIGIN'], { vary: 'accept-encoding, ORIGIN', ...allowed }],
    ['vary *', { origin }, ['Vary', '*'], { vary: '*', ...allowed }],
    ['two vary fields', { origin }, ['Vary', 'Accept', 'vary', 'Cookie'], { vary: 'Accept, Cookie, Origin', ...allowed }],
    ['upstream cors, allowed', { origin }, upstreamCors, { vary: 'Origin', ...allowed }],
    ['upstream cors, disallowed', { origin: 'https://evil.com' }, upstreamCors, { vary: 'Origin' }],
    ['upstream cors, no origin', {}, upstreamCors, { vary: 'Origin' }],
  ];
  for (const [name, request, raw, expected] of table) assert.deepEqual(respond(f, request, raw), expected, name);
  assert.equal(respond(f, { origin, vary: 'x' }, ['Vary', 'Origin']).vary, 'Origin', 'no duplicate');
  assert.deepEqual(respond(f, { origin }, [], false), { vary: 'Origin', ...allowed }, "another policy's reply (a 401) too");
});

test('private network access: only answered when enabled; never refuses', () => {
  const origin = 'https://app.example.com';
  const ask = { origin, 'access-control-request-method': 'GET', 'access-control-request-private-network': 'true' };
  const on = preflight(filterOf({ origins: [origin], privateNetwork: true }), ask);
  assert.equal(on?.headers?.['access-control-allow-private-network'], 'true');
  const off = preflight(filterOf({ origins: [origin] }), ask);
  assert.equal(off?.status, 204);
  assert.equal(off?.headers?.['access-control-allow-private-network'], undefined);
  const notAsked = preflight(filterOf({ origins: [origin], privateNetwork: true }), { origin, 'access-control-request-method': 'GET' });
  assert.equal(notAsked?.headers?.['access-control-allow-private-network'], undefined);
});

test('maxAge in whole seconds', () => {
  const table: Array<[string | number | undefined, string | undefined]> = [
    ['10m', '600'],
    ['2h', '7200'],
    ['1500ms', '1'],
    [0, '0'],
    [undefined, undefined],
  ];
  for (const [maxAge, expected] of table) {
    const answer = preflight(filterOf({ origins: ['https://a.test'], maxAge }), { origin: 'https://a.test', 'access-control-request-method': 'GET' });
    assert.equal(answer?.headers?.['access-control-max-age'], expected, String(maxAge));
  }
});

test('config problems', () => {
  const table: Array<[string, unknown, Array<{ path: PolicyProblem['path']; found: string | RegExp }>]> = [
    ['fixed example', example, []],
    ['* with credentials', { origins: ['*'], credentials: true }, [{ path: ['origins', 0], found: '"*"' }]],
    ['* beside others', { origins: ['https://a.test', '*'] }, [{ path: ['origins', 1], found: '"*" beside other entries' }]],
    ['path', { origins: ['https://app.example.com/'] }, [{ path: ['origins', 0], found: '"https://app.example.com/"' }]],
    ['no scheme', { origins: ['app.example.com'] }, [{ path: ['origins', 0], found: '"app.example.com"' }]],
    ['user info', { origins: ['https://u@app.example.com'] }, [{ path: ['origins', 0], found: '"https://u@app.example.com"' }]],
    ['wildcard inside', { origins: ['https://a.*.example.org'] }, [{ path: ['origins', 0], found: '"https://a.*.example.org"' }]],
    ['bare wildcard', { origins: ['https://*'] }, [{ path: ['origins', 0], found: '"https://*"' }]],
    ['wildcard with path', { origins: ['https://*.example.org/x'] }, [{ path: ['origins', 0], found: '"https://*.example.org/x"' }]],
    ['wildcard over an IP', { origins: ['https://*.[::1]'] }, [{ path: ['origins', 0], found: '"https://*.[::1]"' }]],
    ['bad regex', { origins: [{ regex: 'https://(a' }] }, [{ path: ['origins', 0, 'regex'], found: /^"https:\/\/\(a" \(Invalid regular expression: .*\)$/ }]],
    ['regex escaping its anchors', { origins: [{ regex: 'a)|(b' }] }, [{ path: ['origins', 0, 'regex'], found: /^"a\)\|\(b" \(Invalid regular expression/ }]],
    ['exposed * with credentials', { origins: ['https://a.test'], exposedHeaders: ['*'], credentials: true }, [{ path: ['exposedHeaders', 0], found: '"*"' }]],
    ['methods * beside others', { origins: ['https://a.test'], methods: ['GET', '*'] }, [{ path: ['methods', 1], found: '"*" beside other entries' }]],
    [
      'requestHeaders * beside others',
      { origins: ['https://a.test'], requestHeaders: ['*', 'X-A'] },
      [{ path: ['requestHeaders', 0], found: '"*" beside other entries' }],
    ],
  ];
  for (const [name, raw, expected] of table) {
    const { problems } = build(raw);
    assert.equal(problems.length, expected.length, name);
    problems.forEach((p, i) => {
      assert.deepEqual(p.path, expected[i].path, name);
      const found = expected[i].found;
      if (typeof found === 'string') assert.equal(p.found, found, name);
      else assert.match(p.found, found, name);
      assert.ok(p.expected.length > 0, name);
    });
  }
});

test('schema: strict, upper-case methods, durations, and a description on every key', () => {
  const rejected: unknown[] = [
    { origins: [] },
    { origins: ['https://a.test'], type: 'cors' },
    { origins: ['https://a.test'], methods: ['get'] },
    { origins: ['https://a.test'], maxAge: '10 minutes' },
    { origins: ['https://a.test'], requestHeaders: ['X A'] },
    { origins: [{ regex: 'a', flags: 'i' }] },
  ];
  for (const raw of rejected) assert.equal(corsPolicy.config.safeParse(raw).success, false, JSON.stringify(raw));
  for (const [key, schema] of Object.entries(corsPolicy.config.shape)) assert.ok(schema.meta()?.description, key);
});
