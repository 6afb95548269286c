import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigObject } from './load.ts';
import { loadConfigText } from './load-text.ts';
import { parseParentUrl } from './parent-url.ts';
import type { Problem } from './problems.ts';

test('parent URLs are taken apart, credentials percent-decoded', () => {
  const cases: Array<[string, object]> = [
    [
      'http://eu-proxy.example:3128',
      { protocol: 'http', host: 'eu-proxy.example', port: 3128, label: 'http://eu-proxy.example:3128', username: undefined, password: undefined },
    ],
    ['socks5://u%40x:p%3Aw@10.0.0.1:1080', { protocol: 'socks5', host: '10.0.0.1', port: 1080, label: 'socks5://10.0.0.1:1080', username: 'u@x', password: 'p:w' }],
    ['http://[::1]:8080/', { protocol: 'http', host: '::1', port: 8080, label: 'http://[::1]:8080', username: undefined, password: undefined }],
    ['http://token@proxy.example:80', { protocol: 'http', host: 'proxy.example', port: 80, username: 'token', password: undefined }],
  ];
  for (const [url, expected] of cases) {
    const problems: Problem[] = [];
    const parsed = parseParentUrl(url, ['x'], problems);
    assert.deepEqual(problems, [], url);
    assert.deepEqual({ ...parsed, label: (expected as { label?: string }).label ?? parsed?.label }, { label: parsed?.label, ...expected }, url);
  }
});

test('a bad parent URL is a problem at its key path, never showing the password', () => {
  const cases: Array<[string, RegExp]> = [
    ['eu-proxy.example:3128', /scheme `http` or `socks5`/],
    ['not a url', /a URL such as/],
    ['https://proxy.example:443', /scheme `http` or `socks5`/],
    ['socks4://proxy.example:1080', /scheme `http` or `socks5`/],
    ['http://proxy.example', /explicit port/],
    ['http://user:secret@proxy.example:3128/path', /no path/],
    ['http://user:%E0%A4%A@proxy.example:3128', /percent-encoding/],
    [`socks5://${'u'.repeat(256)}:secret@proxy.example:1080`, /255 bytes/],
  ];
  for (const [url, expected] of cases) {
    const problems: Problem[] = [];
    assert.equal(parseParentUrl(url, ['listeners', 'proxy', 'forward', 'parent', 'url'], problems), undefined, url);
    assert.equal(problems.length, 1, url);
    assert.match(problems[0].expected, expected, url);
    assert.deepEqual(problems[0].path, ['listeners', 'proxy', 'forward', 'parent', 'url']);
    assert.doesNotMatch(problems[0].found, /secret|%E0/, url);
  }
});

test('forward.parent in a config: URLs resolved, a bad one reported at its key path without its password', () => {
  const config = (parent: unknown): unknown => ({
    listeners: { proxy: { address: '127.0.0.1:3128', protocol: 'forward', forward: { parent } } },
  });
  const ok = loadConfigObject(config([{ url: ['http://a:b%40c@10.0.0.1:3128', 'socks5://10.0.0.2:1080'], domains: ['*.EU.example'], balance: 'least-connections' }]));
  assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.errors));
  const parents = ok.config.listeners.find((l) => l.name === 'proxy')?.forward?.parents;
  assert.deepEqual(
    parents?.map((p) => [p.proxies.map((x) => `${x.label} ${x.username}/${x.password}`), p.domains, p.balance]),
    [[['http://10.0.0.1:3128 a/b@c', 'socks5://10.0.0.2:1080 undefined/undefined'], ['*.eu.example'], 'least-connections']],
  );
  const bad = loadConfigObject(config({ url: ['http://10.0.0.1:3128', 'ftp://user:hunter2@10.0.0.2:21'] }));
  assert.ok(!bad.ok);
  assert.equal(bad.errors.length, 1);
  assert.match(bad.errors[0].message, /listeners\.proxy\.forward\.parent\.url\[1\]/);
  assert.doesNotMatch(bad.errors[0].message, /hunter2/);
  const badRegex = loadConfigObject(config({ url: 'http://10.0.0.1:3128', domains: ['~(unclosed'] }));
  assert.ok(!badRegex.ok);
  assert.match(badRegex.errors[0].message, /parent\.domains\[0\]/);
});

test('forward.parent healthCheck: tcp checks with the upstream defaults; bad keys and values reported at file:line:column and key path', () => {
  const yaml = (check: string): string => `listeners:
  proxy:
    address: "127.0.0.1:3128"
    protocol: forward
    forward:
      parent:
        - url: http://10.0.0.1:3128
        - url: [http://10.0.0.2:3128, socks5://10.0.0.3:1080]
          healthCheck: ${check}
`;
  const ok = loadConfigText(yaml('{ interval: 500ms, fall: 2 }'), 'switchboard.yaml', {});
  assert.ok(ok.ok, JSON.stringify(!ok.ok && ok.errors));
  const parents = ok.config.listeners[0].forward!.parents;
  assert.equal(parents[0].healthCheck, undefined, 'no healthCheck: passive checks only');
  const hc = parents[1].healthCheck!;
  assert.deepEqual(
    [hc.type, hc.interval, hc.timeout, hc.jitter, hc.rise, hc.fall, hc.initialState],
    ['tcp', 500, 2000, 50, 2, 2, 'healthy'],
    'a TCP check, the rest from the upstream healthCheck defaults',
  );

  const cases: Array<[string, string]> = [
    ['{ type: http }', 'switchboard.yaml:9:32: listeners.proxy.forward.parent[1].healthCheck.type: expected "tcp", found "http"'],
    [
      '{ path: /healthz }',
      'switchboard.yaml:9:26: listeners.proxy.forward.parent[1].healthCheck.path: expected one of the keys interval, timeout, jitter, rise, fall, initialState, type, found "path"',
    ],
    ['{ interval: 0s }', 'switchboard.yaml:9:36: listeners.proxy.forward.parent[1].healthCheck.interval: expected a duration above 0, found 0'],
    ['{ fall: 0 }', 'switchboard.yaml:9:32: listeners.proxy.forward.parent[1].healthCheck.fall: expected a number of at least 1, found 0'],
  ];
  for (const [check, message] of cases) {
    const bad = loadConfigText(yaml(check), 'switchboard.yaml', {});
    assert.ok(!bad.ok, check);
    assert.equal(bad.errors.length, 1, `${check}: ${bad.errors.map((e) => e.message).join('; ')}`);
    assert.equal(bad.errors[0].message, message, check);
  }
});
