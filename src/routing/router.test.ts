import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router } from './router.ts';
import type { MatchInput } from './matchers.ts';
import type { RouteConfig, MatchConfig } from '../config/types.ts';
import { routeConfig } from '../../test/helpers/pipeline.ts';

function route(name: string, match: Partial<MatchConfig>, priority = 0): { config: RouteConfig } {
  return { config: routeConfig(name, match, priority) };
}

function input(host: string, path: string, extra: Partial<MatchInput> & { rawQuery?: string } = {}): MatchInput {
  const colon = host.lastIndexOf(':');
  const hostname = colon > host.lastIndexOf(']') ? host.slice(0, colon) : host;
  const port = colon > host.lastIndexOf(']') ? host.slice(colon + 1) : '';
  const q = new URLSearchParams(extra.rawQuery ?? '');
  return { hostname, port, method: 'GET', path, headers: {}, query: () => q, ...extra };
}

const routes = [
  route('any', {}),
  route('prefix-v1', { path: { kind: 'prefix', value: '/v1/' } }),
  route('prefix-v1-users', { path: { kind: 'prefix', value: '/v1/users' } }),
  route('exact-health', { path: { kind: 'exact', value: '/health' } }),
  route('regex-item', { path: { kind: 'regex', value: '^/items/[0-9]+$' } }),
  route('api-host', { hosts: ['api.example.com'] }),
  route('api-host-8080', { hosts: ['api.example.com:8080'] }),
  route('wild', { hosts: ['*.example.com'] }),
  route('wild-deeper', { hosts: ['*.eu.example.com'] }),
  route('post-only', { path: { kind: 'prefix', value: '/submit' }, methods: ['POST'] }),
  route('header-exact', { path: { kind: 'prefix', value: '/h' }, headers: [['x-env', { kind: 'exact', value: 'canary' }]] }),
  route('header-regex', { path: { kind: 'prefix', value: '/h' }, headers: [['x-env', { kind: 'regex', value: '^stag' }]] }),
  route('header-present', { path: { kind: 'prefix', value: '/h' }, headers: [['x-debug', { kind: 'present', value: true }]] }),
  route('query', { path: { kind: 'prefix', value: '/q' }, query: [['version', { kind: 'exact', value: '2' }]] }),
  route('forced', { path: { kind: 'prefix', value: '/forced' } }, 10),
  route('forced-loser', { path: { kind: 'exact', value: '/forced/x' } }),
];
const router = new Router(routes);

const cases: Array<[string, MatchInput, string | undefined]> = [
  ['no condition matches anything', input('other.test', '/x'), 'any'],
  ['prefix', input('other.test', '/v1/orders'), 'prefix-v1'],
  ['longer prefix wins', input('other.test', '/v1/users/7'), 'prefix-v1-users'],
  ['exact path', input('other.test', '/health'), 'exact-health'],
  ['exact does not match a longer path', input('other.test', '/health/x'), 'any'],
  ['regex path', input('other.test', '/items/42'), 'regex-item'],
  ['regex anchored', input('other.test', '/items/42/x'), 'any'],
  ['exact host', input('api.example.com', '/v1/x'), 'api-host'],
  ['host with a port the route names', input('api.example.com:8080', '/'), 'api-host-8080'],
  ['host with another port falls to the port-less route', input('api.example.com:9090', '/'), 'api-host'],
  ['wildcard host', input('www.example.com', '/'), 'wild'],
  ['longer wildcard wins', input('a.eu.example.com', '/'), 'wild-deeper'],
  ['wildcard does not match the bare domain', input('example.com', '/'), 'any'],
  ['method condition', input('x', '/submit', { method: 'POST' }), 'post-only'],
  ['method condition fails', input('x', '/submit', { method: 'GET' }), 'any'],
  ['header exact', input('x', '/h', { headers: { 'x-env': 'canary' } }), 'header-exact'],
  ['header regex', input('x', '/h', { headers: { 'x-env': 'staging' } }), 'header-regex'],
  ['header present', input('x', '/h', { headers: { 'x-debug': '1' } }), 'header-present'],
  ['header absent', input('x', '/h'), 'any'],
  ['query', input('x', '/q', { rawQuery: 'version=2' }), 'query'],
  ['query mismatch', input('x', '/q', { rawQuery: 'version=3' }), 'any'],
  ['priority beats specificity', input('x', '/forced/x'), 'forced'],
];

for (const [name, req, expected] of cases) {
  test(`router: ${name}`, () => {
    assert.equal(router.match(req)?.config.name, expected);
  });
}

test('router: no route at all gives undefined', () => {
  const only = new Router([route('only-api', { hosts: ['api.example.com'] })]);
  assert.equal(only.match(input('www.example.com', '/')), undefined);
});

test('router: equal specificity falls back to config order', () => {
  const r = new Router([
    route('first', { path: { kind: 'prefix', value: '/a' } }),
    route('second', { path: { kind: 'prefix', value: '/b' } }),
    route('third', { path: { kind: 'prefix', value: '/a' } }),
  ]);
  assert.equal(r.match(input('x', '/a'))?.config.name, 'first');
});
