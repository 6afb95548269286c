/**
 * Policy config errors read like every other config error: `file:line:column: key.path: expected
 * …, found … (did you mean …?)`, from a YAML file through loadConfigFile and the gateway. And a
 * `respond` policy's `bodyFile`, read relative to the config file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigLoadError, loadConfigFile, loadConfigObject, type ConfigError } from '../../src/index.ts';
import { policyTypes } from '../../src/policies/registry.ts';
import { h1Client } from './helpers/clients.ts';
import { startTestGateway } from './helpers/gateway.ts';

let dir: string;
let n = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchboard-policies-'));
});

after(() => rm(dir, { recursive: true, force: true }));

/** Writes `yaml` to a new file; returns its path. */
async function configFile(yaml: string): Promise<string> {
  const file = join(dir, `switchboard-${n++}.yaml`);
  await writeFile(file, yaml);
  return file;
}

/** The errors of `yaml` as loadConfigFile reports them (the file must be invalid). */
async function errorsOf(yaml: string): Promise<{ file: string; errors: ConfigError[] }> {
  const file = await configFile(yaml);
  const result = await loadConfigFile(file, {});
  assert.equal(result.ok, false, 'the config must be refused');
  return { file, errors: result.ok ? [] : result.errors };
}

/** The registered types, as the messages list them: `headers, cors, …` (more as types are added). */
const TYPES = policyTypes.map((t) => t.type);

const TAIL = `listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  api: { endpoints: [{ url: "http://127.0.0.1:9" }] }
`;

test('an unknown policy type: one of the types, with a suggestion', async () => {
  const { file, errors } = await errorsOf(`policies:
  stamp: { type: heders, response: { set: { x-served-by: switchboard } } }
routes:
  api: { match: { path: /api/ }, upstream: api, policies: [stamp] }
${TAIL}`);
  const expected = `one of ${TYPES.map((t) => JSON.stringify(t)).join(', ')}`;
  assert.match(expected, /^one of "headers", "cors", "respond", "hsts", "https-redirect"/);
  assert.deepEqual(errors, [
    {
      file,
      line: 2,
      column: 18,
      path: 'policies.stamp.type',
      expected,
      found: '"heders"',
      hint: 'headers',
      message: `${file}:2:18: policies.stamp.type: expected ${expected}, found "heders" (did you mean "headers"?)`,
    },
  ]);
});

test('a missing type names the types; a missing required key points at the policy', async () => {
  const { file, errors } = await errorsOf(`policies:
  stamp: { response: { set: { x-served-by: switchboard } } }
  web-app: { type: cors, credentials: true }
routes:
  api: { match: { path: /api/ }, upstream: api, policies: [stamp, web-app] }
${TAIL}`);
  assert.deepEqual(
    errors.map((e) => e.message),
    [
      `${file}:2:3: policies.stamp: expected key "type" (one of: ${TYPES.join(', ')}), found it missing`,
      `${file}:3:3: policies.web-app: expected key "origins", found it missing`,
    ],
  );
});

test('a route or a listener naming an unknown policy: the names defined, with a suggestion', async () => {
  const { file, errors } = await errorsOf(`policies:
  stamp: { type: headers, response: { set: { x-served-by: switchboard } } }
  web-app: { type: cors, origins: ["https://app.example.com"] }
listeners:
  web: { address: "127.0.0.1:0", protocol: http, policies: [stmp] }
routes:
  api: { match: { path: /api/ }, upstream: api, policies: [stamp, webapp] }
upstreams:
  api: { endpoints: [{ url: "http://127.0.0.1:9" }] }
`);
  const expected = 'the name of a policy (one of: stamp, web-app)';
  assert.deepEqual(errors, [
    {
      file,
      line: 5,
      column: 61,
      path: 'listeners.web.policies[0]',
      expected,
      found: '"stmp"',
      hint: 'stamp',
      message: `${file}:5:61: listeners.web.policies[0]: expected ${expected}, found "stmp" (did you mean "stamp"?)`,
    },
    {
      file,
      line: 7,
      column: 67,
      path: 'routes.api.policies[1]',
      expected,
      found: '"webapp"',
      hint: 'web-app',
      message: `${file}:7:67: routes.api.policies[1]: expected ${expected}, found "webapp" (did you mean "web-app"?)`,
    },
  ]);
});

test('an unknown key inside a policy: the keys of its type, with a suggestion, at the key', async () => {
  const { file, errors } = await errorsOf(`policies:
  web-app:
    type: cors
    origins: ["https://app.example.com"]
    credential: true
  stamp:
    type: headers
    response: { sett: { x-served-by: switchboard } }
routes:
  api: { match: { path: /api/ }, upstream: api, policies: [stamp, web-app] }
${TAIL}`);
  const corsKeys = 'one of the keys type, origins, methods, requestHeaders, exposedHeaders, credentials, maxAge, privateNetwork';
  assert.deepEqual(errors, [
    {
      file,
      line: 5,
      column: 5,
      path: 'policies.web-app.credential',
      expected: corsKeys,
      found: '"credential"',
      hint: 'credentials',
      message: `${file}:5:5: policies.web-app.credential: expected ${corsKeys}, found "credential" (did you mean "credentials"?)`,
    },
    {
      file,
      line: 8,
      column: 17,
      path: 'policies.stamp.response.sett',
      expected: 'one of the keys remove, rename, set, add',
      found: '"sett"',
      hint: 'set',
      message: `${file}:8:17: policies.stamp.response.sett: expected one of the keys remove, rename, set, add, found "sett" (did you mean "set"?)`,
    },
  ]);
});

test('what a policy type checks itself is reported with file:line:column too, at the key or the value', async () => {
  const { file, errors } = await errorsOf(`policies:
  web-app: { type: cors, origins: ["*"], credentials: true }
  site: { type: cors, origins: ["https://app.example.com/login"] }
  stamp: { type: headers, request: { add: { Host: a.example } } }
  page: { type: respond, bodyFile: missing.html }
  to-https: { type: https-redirect, status: 303 }
routes:
  api: { match: { path: /api/ }, upstream: api, policies: [web-app, site, stamp, page, to-https] }
${TAIL}`);
  assert.deepEqual(
    errors.map((e) => e.message),
    [
      `${file}:2:36: policies.web-app.origins[0]: expected listed origins with \`credentials: true\` (browsers refuse "*" with credentials), found "*"`,
      `${file}:3:33: policies.site.origins[0]: expected an origin \`scheme://host[:port]\` (no path), \`scheme://*.domain\`, "null" or "*", found "https://app.example.com/login"`,
      `${file}:4:45: policies.stamp.request.add.Host: expected host only under \`set\` (a request has exactly one Host), found "Host"`,
      `${file}:5:36: policies.page.bodyFile: expected a readable file (relative to the config file), found "missing.html" (ENOENT)`,
      `${file}:6:45: policies.to-https.status: expected one of 301, 302, 307, 308, found 303`,
    ],
  );
});

test('a mistyped template variable in a YAML file names the template variables, as in a config object', async () => {
  const policies = { stamp: { type: 'headers', request: { set: { 'x-id': '${reqest.id}' } } } };
  const routes = { api: { match: { path: '/api/' }, upstream: 'api', policies: ['stamp'] } };
  const upstreams = { api: { endpoints: [{ url: 'http://127.0.0.1:9' }] } };
  const fromObject = loadConfigObject({ policies, routes, upstreams, listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } } });
  assert.equal(fromObject.ok, false);
  const objectError = fromObject.ok ? undefined : fromObject.errors[0];
  assert.match(objectError!.expected, /^a template variable: \$\{client\.ip\}/, 'the policy names its template variables');
  const { file, errors } = await errorsOf(`policies:
  stamp: { type: headers, request: { set: { x-id: "\${reqest.id}" } } }
routes:
  api: { match: { path: /api/ }, upstream: api, policies: [stamp] }
${TAIL}`);
  assert.deepEqual(
    errors.map((e) => e.message),
    [`${file}:2:51: policies.stamp.request.set.x-id: expected ${objectError!.expected}, found "\${reqest.id}"`],
  );
});

test('a route without upstream and without policies is a config error at the route', async () => {
  const { file, errors } = await errorsOf(`routes:
  health:
    match: { path: { exact: /healthz } }
${TAIL}`);
  const expected = 'key "upstream" or "static" (or policies that answer every request, such as respond)';
  assert.deepEqual(errors, [
    { file, line: 2, column: 3, path: 'routes.health', expected, found: 'it missing', message: `${file}:2:3: routes.health: expected ${expected}, found it missing` },
  ]);
  // The gateway refuses to start with the same message.
  await assert.rejects(startTestGateway(file), (err: unknown) => {
    assert.ok(err instanceof ConfigLoadError);
    assert.equal(err.errors[0].message, `${file}:2:3: routes.health: expected ${expected}, found it missing`);
    return true;
  });
});

test("the issue's example from a YAML file; a respond bodyFile is read relative to the config file", async () => {
  await writeFile(join(dir, 'maintenance.html'), '<h1>Back soon</h1>\n');
  const file = await configFile(`policies:
  stamp:   { type: headers, response: { set: { x-served-by: switchboard }, remove: [server] } }
  web-app: { type: cors, origins: ["https://app.example.com", "https://*.example.org"], methods: [GET, POST], credentials: true, maxAge: 10m }
  healthz: { type: respond, status: 200, headers: { content-type: text/plain }, body: "ok\\n" }
  page:    { type: respond, status: 503, bodyFile: maintenance.html }
listeners:
  web: { address: "127.0.0.1:0", protocol: http, policies: [stamp] }
routes:
  health: { match: { path: { exact: /healthz } }, policies: [healthz] }
  down:   { match: { path: /maintenance }, policies: [page] }
  api:    { match: { path: /api/ }, upstream: api, policies: [web-app] }
upstreams:
  api: { endpoints: [{ url: "http://127.0.0.1:9" }] }
`);
  const gw = await startTestGateway(file);
  const c = h1Client(gw.url);
  try {
    const health = await c.send('/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok\n');
    assert.equal(health.headers['x-served-by'], 'switchboard');
    const page = await c.send('/maintenance');
    assert.equal(page.status, 503);
    assert.equal(page.body, '<h1>Back soon</h1>\n');
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    const pre = await c.send('/api/x', { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-max-age'], '600');
  } finally {
    await c.close();
    await gw.stop();
  }
});
