import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatConfigError, loadConfigObject, type ConfigError } from './load.ts';
import { loadConfigFile, loadConfigText } from './load-text.ts';
import { jsonSchema } from './schema.ts';

/** A valid base: one listener (line 2), one upstream `api` (line 6), one route (line 10). */
const BASE = `listeners:
  web:
    address: "127.0.0.1:8080"
    protocol: http
upstreams:
  api:
    endpoints:
      - url: http://127.0.0.1:9001
routes:
  main:
    upstream: api
`;

/** A valid udp base: listener `dns` (line 2) over upstream `resolvers` (line 7). */
const UDP = `listeners:
  dns:
    address: "127.0.0.1:1053"
    protocol: udp
    upstream: resolvers
upstreams:
  resolvers:
    endpoints:
      - url: udp://127.0.0.1:53
`;

/** A valid tls-passthrough listener (line 2): sni entries on line 5, fallback on line 6. */
const PASS = `listeners:
  edge:
    address: "127.0.0.1:9443"
    protocol: tls-passthrough
    sni: { "a.example.com": site-a, "*.B.example.com": site-b }
    upstream: fallback
upstreams:
  site-a:
    endpoints: [ { url: "tcp://127.0.0.1:9001" } ]
  site-b:
    endpoints: [ { url: "tcp://127.0.0.1:9002" } ]
  fallback:
    endpoints: [ { url: "tcp://127.0.0.1:9003" } ]
`;

interface Expect {
  /** `line:column` */
  at: string;
  path: string;
  /** Words the message must contain. */
  words: string[];
  hint?: string;
}

interface Case {
  name: string;
  text: string;
  env?: Record<string, string>;
  errors: Expect[];
}

const cases: Case[] = [
  {
    name: 'unknown top-level key, with suggestion',
    text: `${BASE}upstream:\n  x: 1\n`,
    errors: [{ at: '12:1', path: 'upstream', words: ['one of the keys listeners, routes, upstreams, policies, drainTimeout', 'found "upstream"'], hint: 'upstreams' }],
  },
  {
    name: 'unknown nested key',
    text: BASE.replace('    address: "127.0.0.1:8080"', '    address: "127.0.0.1:8080"\n    adress: x'),
    errors: [{ at: '4:5', path: 'listeners.web.adress', words: ['one of the keys address, protocol', 'found "adress"'], hint: 'address' }],
  },
  {
    name: 'wrong type',
    text: BASE.replace('    upstream: api', '    upstream: api\n    priority: high'),
    errors: [{ at: '12:15', path: 'routes.main.priority', words: ['expected a number', 'found "high"'] }],
  },
  {
    name: 'a list where a map belongs',
    text: BASE.replace('    upstream: api', '    upstream: api\n    match: [a, b]'),
    errors: [{ at: '12:12', path: 'routes.main.match', words: ['expected a map', 'found a list'] }],
  },
  {
    name: 'bad enum',
    text: BASE.replace('protocol: http', 'protocol: htp'),
    errors: [{ at: '4:15', path: 'listeners.web.protocol', words: ['expected one of "http", "https"', 'found "htp"'], hint: 'http' }],
  },
  {
    name: 'bad enum with several values',
    text: BASE.replace('protocol: http', 'protocol: http\n    headersWithUnderscores: drp'),
    errors: [{ at: '5:29', path: 'listeners.web.headersWithUnderscores', words: ['one of "allow", "drop", "reject"', 'found "drp"'], hint: 'drop' }],
  },
  {
    name: 'bad duration',
    text: BASE.replace('protocol: http', 'protocol: http\n    headerTimeout: 5 seconds'),
    errors: [{ at: '5:20', path: 'listeners.web.headerTimeout', words: ['expected a duration such as 250ms, 5s, 1m', 'found "5 seconds"'] }],
  },
  {
    name: 'duration given as a bare number',
    text: `${BASE}drainTimeout: 30\n`,
    errors: [{ at: '12:15', path: 'drainTimeout', words: ['expected a duration', 'found 30'] }],
  },
  {
    name: 'bad size',
    text: BASE.replace('    upstream: api', '    upstream: api\n    maxBodySize: 10 megs'),
    errors: [{ at: '12:18', path: 'routes.main.maxBodySize', words: ['expected a size such as 16KiB, 10MB', 'found "10 megs"'] }],
  },
  {
    name: 'route with unknown upstream points at it, with suggestion',
    text: BASE.replace('upstream: api', 'upstream: apx'),
    errors: [{ at: '11:15', path: 'routes.main.upstream', words: ['the name of an upstream (one of: api)', 'found "apx"'], hint: 'api' }],
  },
  {
    name: 'route with unknown listener',
    text: BASE.replace('    upstream: api', '    upstream: api\n    listeners: [web, wev]'),
    errors: [{ at: '12:22', path: 'routes.main.listeners[1]', words: ['the name of a listener (one of: web)', 'found "wev"'], hint: 'web' }],
  },
  {
    name: 'bad listen address',
    text: BASE.replace('"127.0.0.1:8080"', '"127.0.0.1"'),
    errors: [{ at: '3:14', path: 'listeners.web.address', words: ['host:port', 'found "127.0.0.1"'] }],
  },
  {
    name: 'request timeout shorter than the header timeout',
    text: BASE.replace('    protocol: http', '    protocol: http\n    headerTimeout: 10s\n    requestTimeout: 5s'),
    errors: [{ at: '6:21', path: 'listeners.web.requestTimeout', words: ['at least the headerTimeout (10s)', 'found "5s"'] }],
  },
  {
    name: 'endpoint URL with another scheme',
    text: BASE.replace('http://127.0.0.1:9001', 'ftp://127.0.0.1:9001'),
    errors: [{ at: '8:14', path: 'upstreams.api.endpoints[0].url', words: ['an http://, https://, tcp:// or udp:// URL', 'found "ftp://127.0.0.1:9001"'] }],
  },
  {
    name: 'tcp listener without an upstream',
    text: BASE.replace('protocol: http', 'protocol: tcp'),
    errors: [{ at: '3:5', path: 'listeners.web.upstream', words: ['the upstream a tcp listener forwards to', 'found nothing'] }],
  },
  {
    name: 'tcp listener over an upstream with http endpoints',
    text: BASE.replace('protocol: http', 'protocol: tcp\n    upstream: api'),
    errors: [{ at: '5:15', path: 'listeners.web.upstream', words: ['an upstream with tcp:// endpoints', 'found "api"'] }],
  },
  {
    name: 'route to an upstream with tcp endpoints',
    text: BASE.replace('http://127.0.0.1:9001', 'tcp://127.0.0.1:9001'),
    errors: [{ at: '11:15', path: 'routes.main.upstream', words: ['an upstream with http(s) endpoints', 'found "api"'] }],
  },
  {
    name: 'udp listener without an upstream',
    text: UDP.replace('    upstream: resolvers\n', ''),
    errors: [{ at: '3:5', path: 'listeners.dns.upstream', words: ['the upstream a udp listener forwards to', 'found nothing'] }],
  },
  {
    name: 'udp listener over an upstream with tcp endpoints',
    text: UDP.replace('udp://127.0.0.1:53', 'tcp://127.0.0.1:53'),
    errors: [{ at: '5:15', path: 'listeners.dns.upstream', words: ['an upstream with udp:// endpoints (upstream "resolvers" has tcp ones)', 'found "resolvers"'] }],
  },
  {
    name: 'tcp listener over an upstream with udp endpoints',
    text: UDP.replace('protocol: udp', 'protocol: tcp'),
    errors: [{ at: '5:15', path: 'listeners.dns.upstream', words: ['an upstream with tcp:// endpoints (upstream "resolvers" has udp ones)', 'found "resolvers"'] }],
  },
  {
    name: 'route to an upstream with udp endpoints',
    text: `${UDP}routes:\n  r:\n    upstream: resolvers\n`,
    errors: [{ at: '12:15', path: 'routes.r.upstream', words: ['an upstream with http(s) endpoints (upstream "resolvers" has udp:// ones', 'found "resolvers"'] }],
  },
  {
    name: 'route on a udp listener',
    text: `${UDP.replace('      - url: udp://127.0.0.1:53', '      - url: udp://127.0.0.1:53\n  api:\n    endpoints:\n      - url: http://127.0.0.1:9001')}routes:\n  r:\n    listeners: [dns]\n    upstream: api\n`,
    errors: [{ at: '15:17', path: 'routes.r.listeners[0]', words: ['routes do not apply to', 'udp listeners)', 'found "dns"'] }],
  },
  {
    name: 'an upstream mixing udp and tcp endpoints',
    text: UDP.replace('      - url: udp://127.0.0.1:53', '      - url: udp://127.0.0.1:53\n      - url: tcp://127.0.0.1:53'),
    errors: [
      { at: '5:15', path: 'listeners.dns.upstream', words: ['an upstream with udp:// endpoints (upstream "resolvers" has tcp ones)'] },
      { at: '10:14', path: 'upstreams.resolvers.endpoints[1].url', words: ['a udp:// URL like the other endpoints of this upstream', 'found "tcp://127.0.0.1:53"'] },
    ],
  },
  {
    name: 'udp:// URL without a port',
    text: UDP.replace('udp://127.0.0.1:53', 'udp://127.0.0.1'),
    errors: [{ at: '9:14', path: 'upstreams.resolvers.endpoints[0].url', words: ['a udp:// URL with a port', 'found "udp://127.0.0.1"'] }],
  },
  {
    name: 'udp settings on an http listener',
    text: BASE.replace('    protocol: http', '    protocol: http\n    udp: { maxSessions: 5 }'),
    errors: [{ at: '5:10', path: 'listeners.web.udp', words: ['no udp settings on a http listener', 'found a map'] }],
  },
  {
    name: 'hsts on a udp listener',
    text: UDP.replace('    protocol: udp', '    protocol: udp\n    hsts: {}'),
    errors: [{ at: '5:11', path: 'listeners.dns.hsts', words: ['no hsts on a udp listener'] }],
  },
  {
    name: 'two udp listeners on one address',
    text: UDP.replace('listeners:\n', 'listeners:\n  dns2: { address: "127.0.0.1:1053", protocol: udp, upstream: resolvers }\n'),
    errors: [{ at: '4:14', path: 'listeners.dns.address', words: ['an address no other listener uses (listener "dns2" has it)'] }],
  },
  {
    name: 'tls-passthrough sni naming an unknown upstream',
    text: PASS.replace('site-b }', 'site-c }'),
    errors: [
      { at: '5:56', path: 'listeners.edge.sni.*.B.example.com', words: ['the name of an upstream (one of: site-a, site-b, fallback)', 'found "site-c"'], hint: 'site-a' },
    ],
  },
  {
    name: 'tls-passthrough sni naming an upstream with http endpoints',
    text: PASS.replace('tcp://127.0.0.1:9002', 'http://127.0.0.1:9002'),
    errors: [{ at: '5:56', path: 'listeners.edge.sni.*.B.example.com', words: ['an upstream with tcp:// endpoints', 'found "site-b"'] }],
  },
  {
    name: 'tls-passthrough fallback upstream misspelt',
    text: PASS.replace('upstream: fallback', 'upstream: fallbak'),
    errors: [{ at: '6:15', path: 'listeners.edge.upstream', words: ['the name of an upstream', 'found "fallbak"'], hint: 'fallback' }],
  },
  {
    name: 'sni on a tcp listener',
    text: PASS.replace('protocol: tls-passthrough', 'protocol: tcp'),
    errors: [{ at: '5:10', path: 'listeners.edge.sni', words: ['no sni on a tcp listener', 'found a map'] }],
  },
  {
    name: 'tls-passthrough listener with neither sni nor upstream',
    text: PASS.replace(/ {4}sni: .*\n {4}upstream: fallback\n/, ''),
    errors: [{ at: '3:5', path: 'listeners.edge.sni', words: ['a tls-passthrough listener needs sni or upstream', 'found nothing'] }],
  },
  {
    name: 'tls on a tls-passthrough listener',
    text: PASS.replace('    upstream: fallback\n', '    upstream: fallback\n    tls: { certificates: [ { cert: a.pem, key: a-key.pem } ] }\n'),
    errors: [{ at: '7:10', path: 'listeners.edge.tls', words: ['no tls on a tls-passthrough listener', 'found a map'] }],
  },
  {
    name: 'tls-passthrough sni with a malformed name',
    text: PASS.replace('"a.example.com"', '"a..example.com"'),
    errors: [{ at: '5:30', path: 'listeners.edge.sni.a..example.com', words: ['a server name like "a.example.com" or a wildcard', 'found "a..example.com"'] }],
  },
  {
    name: 'tls-passthrough sni with one name twice in different case',
    text: PASS.replace('"*.B.example.com": site-b', '"A.example.com": site-b'),
    errors: [{ at: '5:54', path: 'listeners.edge.sni.A.example.com', words: ['each server name once', 'found "A.example.com" again'] }],
  },
  {
    name: 'route on a tls-passthrough listener',
    text: `${PASS}routes:\n  r:\n    upstream: site-a\n    listeners: [edge]\n`,
    errors: [
      { at: '16:15', path: 'routes.r.upstream', words: ['an upstream with http(s) endpoints', 'found "site-a"'] },
      { at: '17:17', path: 'routes.r.listeners[0]', words: ['routes do not apply to tcp, tls, tls-passthrough and udp listeners', 'found "edge"'] },
    ],
  },
  {
    name: 'https listener without tls',
    text: BASE.replace('protocol: http', 'protocol: https'),
    errors: [{ at: '3:5', path: 'listeners.web.tls', words: ['TLS settings with at least one certificate', 'found nothing'] }],
  },
  {
    name: 'h2 upstream with a cleartext endpoint',
    text: BASE.replace('  api:\n', '  api:\n    protocol: h2\n'),
    errors: [{ at: '9:14', path: 'upstreams.api.endpoints[0].url', words: ['an https:// URL (protocol h2 is HTTP/2 over TLS', 'found "http://127.0.0.1:9001"'] }],
  },
  {
    name: 'endpoint with a path',
    text: BASE.replace('http://127.0.0.1:9001', 'http://127.0.0.1:9001/api'),
    errors: [{ at: '8:14', path: 'upstreams.api.endpoints[0].url', words: ['an origin only', 'found "http://127.0.0.1:9001/api"'] }],
  },
  {
    name: 'duplicate endpoint',
    text: BASE.replace('      - url: http://127.0.0.1:9001', '      - url: http://127.0.0.1:9001\n      - url: http://127.0.0.1:9001/'),
    errors: [{ at: '9:14', path: 'upstreams.api.endpoints[1].url', words: ['each endpoint once', 'again'] }],
  },
  {
    name: 'invalid regex',
    text: BASE.replace('    upstream: api', '    upstream: api\n    match:\n      path: { regex: "^/(a" }'),
    errors: [{ at: '13:22', path: 'routes.main.match.path.regex', words: ['a valid regular expression', '"^/(a"'] }],
  },
  {
    name: 'unknown key inside a union (path match)',
    text: BASE.replace('    upstream: api', '    upstream: api\n    match:\n      path: { prefx: /a }'),
    errors: [{ at: '13:15', path: 'routes.main.match.path.prefx', words: ['one of the keys prefix, exact, regex'], hint: 'prefix' }],
  },
  {
    name: 'union value of the wrong kind gives one message',
    text: BASE.replace('    upstream: api', '    upstream: api\n    match:\n      path: 5'),
    errors: [{ at: '13:13', path: 'routes.main.match.path', words: ['expected a string or a map with one of the keys prefix, exact, regex', 'found 5'] }],
  },
  {
    name: 'a match map with two forms at once',
    text: BASE.replace('    upstream: api', '    upstream: api\n    match:\n      path: { prefix: /a, exact: /b }'),
    errors: [{ at: '13:13', path: 'routes.main.match.path', words: ['exactly one of the keys prefix, exact, regex', 'found the keys prefix, exact'] }],
  },
  {
    name: 'rewrite with both',
    text: BASE.replace('    upstream: api', '    upstream: api\n    rewrite:\n      stripPrefix: /a\n      replacePrefix: { from: /a, to: /b }'),
    errors: [{ at: '13:7', path: 'routes.main.rewrite', words: ['either stripPrefix or replacePrefix, not both'] }],
  },
  {
    name: 'missing required key points at the parent',
    text: BASE.replace('    upstream: api', '    priority: 1'),
    errors: [{ at: '10:3', path: 'routes.main', words: ['expected key "upstream"', 'found it missing'] }],
  },
  {
    name: 'empty endpoint list',
    text: BASE.replace('      - url: http://127.0.0.1:9001', '      []'),
    errors: [{ at: '8:7', path: 'upstreams.api.endpoints', words: ['at least 1 item', 'found an empty list'] }],
  },
  {
    name: 'YAML syntax errors, all of them',
    text: 'listeners:\n  web:\n    address: ":8080"\n   protocol: http\nroutes: [a\n',
    errors: [
      { at: '4:1', path: '', words: ['valid YAML', 'same column'] },
      { at: '6:1', path: '', words: ['valid YAML', 'end with a ]'] },
    ],
  },
  {
    name: 'duplicate key',
    text: BASE.replace('    protocol: http', '    protocol: http\n    protocol: http'),
    errors: [{ at: '5:5', path: '', words: ['each key once', 'found "protocol" again'] }],
  },
  {
    name: 'unset environment variable',
    text: BASE.replace('"127.0.0.1:8080"', '"${HOST}:8080"'),
    errors: [{ at: '3:14', path: 'listeners.web.address', words: ['environment variable HOST to be set', 'found it unset'] }],
  },
  {
    name: 'malformed variable reference',
    text: BASE.replace('"127.0.0.1:8080"', '"${1HOST}:8080"'),
    errors: [{ at: '3:14', path: 'listeners.web.address', words: ['${NAME:-default}', 'found "${1HOST}"'] }],
  },
  {
    name: 'substituted value is shown with its source',
    text: BASE.replace('"127.0.0.1:8080"', '"${HOST}"'),
    env: { HOST: 'localhost' },
    errors: [{ at: '3:14', path: 'listeners.web.address', words: ['host:port', 'found "localhost" (from "${HOST}")'] }],
  },
  {
    name: 'several errors at once, a reference error beside schema errors',
    text: `listeners:
  a:
    address: ":8080"
    protocl: http
  b:
    address: ":8081"
    protocol: http
upstreams:
  api:
    endpoints:
      - url: http://127.0.0.1:9001
        weight: 0
routes:
  r1:
    upstream: web
  r2:
    upstream: api
    listeners: [a, nope]
`,
    errors: [
      { at: '2:3', path: 'listeners.a', words: ['key "protocol"', 'it missing'] },
      { at: '4:5', path: 'listeners.a.protocl', words: ['one of the keys'], hint: 'protocol' },
      { at: '12:17', path: 'upstreams.api.endpoints[0].weight', words: ['at least 1', 'found 0'] },
      { at: '15:15', path: 'routes.r1.upstream', words: ['the name of an upstream (one of: api)', 'found "web"'] },
      { at: '18:20', path: 'routes.r2.listeners[1]', words: ['the name of a listener (one of: a, b)', 'found "nope"'] },
    ],
  },
  {
    name: 'references to an entry with schema errors are not reported as unknown',
    text: BASE.replace('      - url: http://127.0.0.1:9001', '      - 5'),
    errors: [{ at: '8:9', path: 'upstreams.api.endpoints[0]', words: ['expected a map', 'found 5'] }],
  },
  {
    name: 'no listeners',
    text: 'upstreams: {}\n',
    errors: [{ at: '1:1', path: '', words: ['expected key "listeners"', 'found it missing'] }],
  },
  {
    name: 'empty file',
    text: '',
    errors: [{ at: '1:1', path: '', words: ['expected a map', 'found nothing'] }],
  },
];

function check(actual: ConfigError, want: Expect): void {
  assert.equal(`${actual.line}:${actual.column}`, want.at, actual.message);
  assert.equal(actual.path, want.path, actual.message);
  for (const w of want.words) assert.ok(actual.message.includes(w), `${JSON.stringify(w)} not in: ${actual.message}`);
  assert.equal(actual.hint, want.hint, actual.message);
  assert.ok(actual.message.startsWith(`switchboard.yaml:${want.at}: `), actual.message);
}

for (const c of cases) {
  test(`rejects: ${c.name}`, () => {
    const result = loadConfigText(c.text, 'switchboard.yaml', c.env ?? {});
    assert.equal(result.ok, false, 'expected the config to be rejected');
    if (result.ok) return;
    const messages = result.errors.map((e) => e.message).join('\n');
    assert.equal(result.errors.length, c.errors.length, messages);
    c.errors.forEach((want, i) => {
      check(result.errors[i], want);
    });
  });
}

test('a tls-passthrough listener resolves with its sni names lower-cased', () => {
  const result = loadConfigText(PASS, 'switchboard.yaml', {});
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.message).join('\n'));
  const edge = result.config.listeners[0];
  assert.equal(edge.protocol, 'tls-passthrough');
  assert.deepEqual(
    [...(edge.sni ?? [])],
    [
      ['a.example.com', 'site-a'],
      ['*.b.example.com', 'site-b'],
    ],
  );
  assert.equal(edge.upstream, 'fallback');
});

test('the message format', () => {
  const result = loadConfigText(BASE.replace('upstream: api', 'upstream: apx'), 'switchboard.yaml', {});
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.equal(
    result.errors[0].message,
    'switchboard.yaml:11:15: routes.main.upstream: expected the name of an upstream (one of: api), found "apx" (did you mean "api"?)',
  );
  assert.equal(formatConfigError({ file: 'f', path: '', expected: 'x', found: 'y' }), 'f: expected x, found y');
});

test('a udp listener resolves with session defaults, and may share its address with a tcp listener', () => {
  const text = UDP.replace(
    'upstreams:\n',
    '  dnsTcp: { address: "127.0.0.1:1053", protocol: tcp, upstream: tcpResolvers }\nupstreams:\n  tcpResolvers:\n    endpoints: [{ url: "tcp://127.0.0.1:53" }]\n',
  );
  const result = loadConfigText(`${text}    healthCheck: { type: tcp }\n`, 'switchboard.yaml', {});
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.message).join('\n'));
  const dns = result.config.listeners.find((l) => l.name === 'dns')!;
  assert.equal(dns.protocol, 'udp');
  assert.deepEqual(dns.udp, { sessionIdle: 30_000, maxSessions: 10_000 });
  assert.equal(result.config.listeners.find((l) => l.name === 'dnsTcp')!.udp, undefined);
  const endpoint = result.config.upstreams.get('resolvers')!.endpoints[0];
  assert.deepEqual([endpoint.scheme, endpoint.origin], ['udp', 'udp://127.0.0.1:53']);
  const custom = loadConfigText(UDP.replace('    protocol: udp', '    protocol: udp\n    udp: { sessionIdle: 2s, maxSessions: 5 }'), 'switchboard.yaml', {});
  assert.ok(custom.ok);
  assert.deepEqual(custom.config.listeners[0].udp, { sessionIdle: 2000, maxSessions: 5 });
});

test('a valid config resolves with defaults applied', () => {
  const result = loadConfigText(BASE, 'switchboard.yaml', {});
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.message).join('\n'));
  const { config, raw } = result;
  assert.equal(config.listeners[0].headerTimeout, 20_000);
  assert.equal(config.listeners[0].maxHeaderSize, 16 * 1024);
  assert.deepEqual(config.listeners[0].address, { host: '127.0.0.1', port: 8080 });
  const api = config.upstreams.get('api');
  assert.equal(api?.balancer, 'round-robin');
  assert.equal(api?.endpoints[0].weight, 1);
  assert.equal(api?.timeouts.connect, 5000);
  assert.equal(config.routes[0].upstream, 'api');
  assert.equal(config.drainTimeout, 30_000);
  assert.equal(raw.listeners.web.headerTimeout, undefined);
});

test('environment: values, defaults and the $${ escape', () => {
  const text = `listeners:
  web:
    address: "\${HOST:-127.0.0.1}:\${PORT}"
    protocol: http
upstreams:
  api:
    endpoints:
      - url: http://127.0.0.1:9001
        weight: \${WEIGHT}
routes:
  main:
    upstream: api
    match:
      headers:
        x-template: "$\${literal}"
        x-empty: "\${EMPTY:-fallback}"
`;
  const result = loadConfigText(text, 'switchboard.yaml', { PORT: '9000', EMPTY: '', WEIGHT: '3' });
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.message).join('\n'));
  assert.deepEqual(result.config.listeners[0].address, { host: '127.0.0.1', port: 9000 });
  assert.equal(result.config.upstreams.get('api')?.endpoints[0].weight, 3);
  assert.deepEqual(result.config.routes[0].match.headers, [
    ['x-template', { kind: 'exact', value: '${literal}' }],
    ['x-empty', { kind: 'exact', value: 'fallback' }],
  ]);
});

test('JSON input is accepted', () => {
  const json = JSON.stringify(
    {
      listeners: { web: { address: ':8080', protocol: 'http' } },
      upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:9001', weight: 2 }] } },
      routes: { main: { upstream: 'api', match: { path: '/api' } } },
    },
    null,
    2,
  );
  const result = loadConfigText(json, 'switchboard.json', {});
  assert.ok(result.ok, result.ok ? '' : result.errors.map((e) => e.message).join('\n'));
  assert.equal(result.config.upstreams.get('api')?.endpoints[0].weight, 2);
  const bad = loadConfigText(json.replace('"weight": 2', '"weight": "2"'), 'switchboard.json', {});
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.match(bad.errors[0].message, /^switchboard\.json:13:21: upstreams\.api\.endpoints\[0\]\.weight: expected a number, found "2"$/);
});

test('loadConfigObject: same checks, no positions', () => {
  const good = loadConfigObject({ listeners: { web: { address: ':8080', protocol: 'http' } } });
  assert.ok(good.ok);
  const bad = loadConfigObject({
    listeners: { web: { address: ':8080', protocol: 'http', adress: 1 } },
    routes: { r: { upstream: 'nope' } },
  });
  assert.equal(bad.ok, false);
  if (bad.ok) return;
  assert.deepEqual(
    bad.errors.map((e) => [e.line, e.path]),
    [
      [undefined, 'listeners.web.adress'],
      [undefined, 'routes.r.upstream'],
    ],
  );
  assert.equal(bad.errors[1].message, '<config object>: routes.r.upstream: expected the name of an upstream (none are defined), found "nope"');
});

test('loadConfigFile: reads a file, and reports one that cannot be read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-load-'));
  try {
    const file = join(dir, 'switchboard.yaml');
    await writeFile(file, BASE);
    const ok = await loadConfigFile(file, {});
    assert.ok(ok.ok);
    assert.equal(ok.file, file);
    const missing = await loadConfigFile(join(dir, 'nope.yaml'), {});
    assert.equal(missing.ok, false);
    if (!missing.ok) {
      assert.equal(missing.errors.length, 1);
      assert.match(missing.errors[0].found, /ENOENT/);
      assert.match(missing.errors[0].message, /nope\.yaml: expected a readable config file, found ENOENT/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('jsonSchema() describes the config', () => {
  const schema = jsonSchema() as { properties?: Record<string, unknown> };
  assert.equal(typeof schema.properties?.listeners, 'object');
});

test('a policy key the schema refuses is the only error of that policy: its resolve does not then report the key missing', () => {
  const r = loadConfigObject({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    policies: { bearer: { type: 'jwt', issuer: 'https://idp.example', audiences: ['api'], secret: 'short' } },
    routes: { all: { match: { path: '/' }, policies: ['bearer'], upstream: 'u' } },
    upstreams: { u: { endpoints: [{ url: 'http://127.0.0.1:9' }] } },
  });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.deepEqual(
    r.errors.map((e) => e.path),
    ['policies.bearer.secret'],
  );
});
