import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteConfig, StaticConfig } from '../config/types.ts';
import { compileCacheRule, StaticSite, typeOf } from './static-site.ts';

const config: StaticConfig = {
  root: '/nonexistent-root',
  index: ['index.html'],
  stripPrefix: true,
  precompressed: true,
  followSymlinks: false,
  dotfiles: false,
  cacheControl: [],
};

function site(extra: Partial<StaticConfig> = {}, path = '/static/'): StaticSite {
  const route = { match: { path: { kind: 'prefix', value: path } }, rewrite: undefined } as unknown as RouteConfig;
  return new StaticSite({ ...config, ...extra }, route);
}

test('resolve: strips the prefix, decodes once, refuses encoded separators, NUL, backslashes, bad escapes and dotfiles', () => {
  const s = site();
  const cases: Array<[string, string | 400 | 404]> = [
    ['/static/a.css', '/a.css'],
    ['/static/', '/'],
    ['/static/a%20b.txt', '/a b.txt'],
    ['/static/%252e%252e', '/%2e%2e'],
    ['/static/..%2fx', 400],
    ['/static/%2F', 400],
    ['/static/%5cx', 400],
    ['/static/a%00', 400],
    ['/static/%zz', 400],
    ['/static/a\\b', 400],
    ['/static/.env', 404],
    ['/static/a/.git/config', 404],
    ['/static/a.b/c', '/a.b/c'],
  ];
  for (const [p, want] of cases) assert.equal(s.resolve(p), want, p);
  assert.equal(site({ dotfiles: true }).resolve('/static/.well-known/x'), '/.well-known/x');
  assert.equal(site({ stripPrefix: false }).resolve('/static/a.css'), '/static/a.css');
});

test('Cache-Control patterns: file-name globs, path prefixes, path globs', () => {
  assert.ok(compileCacheRule('*.css', 'v').re.test('a.css'));
  assert.ok(!compileCacheRule('*.css', 'v').re.test('a.css.map'));
  const s = site({
    cacheControl: [
      { match: '/img/', value: 'img' },
      { match: '/js/*.js', value: 'js' },
      { match: '/deep/**.json', value: 'json' },
      { match: '*.css', value: 'css' },
    ],
  });
  assert.equal(s.cacheControl('/img/a/b.png', 'b.png'), 'img');
  assert.equal(s.cacheControl('/js/app.js', 'app.js'), 'js');
  assert.equal(s.cacheControl('/js/x/app.js', 'app.js'), undefined);
  assert.equal(s.cacheControl('/deep/a/b.json', 'b.json'), 'json');
  assert.equal(s.cacheControl('/x/y.css', 'y.css'), 'css');
  assert.equal(s.cacheControl('/x/y.txt', 'y.txt'), undefined);
});

test('typeOf: charset for text, octet-stream when unknown', () => {
  assert.equal(typeOf('a.html'), 'text/html; charset=utf-8');
  assert.equal(typeOf('a.JS'), 'text/javascript; charset=utf-8');
  assert.equal(typeOf('a.png'), 'image/png');
  assert.equal(typeOf('a.unknownext'), 'application/octet-stream');
  assert.equal(typeOf('Makefile'), 'application/octet-stream');
});
