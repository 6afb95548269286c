import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { GatewayConfig } from './types.ts';
import { configChanges } from './diff.ts';
import { loadConfigObject } from './load.ts';

function load(key: string): GatewayConfig {
  const r = loadConfigObject({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    consumers: { alice: { credentials: [{ type: 'api-key', key }] } },
    policies: { keys: { type: 'api-key' } },
    routes: { all: { match: { path: '/' }, upstream: 'u', policies: ['keys'] } },
    upstreams: { u: { endpoints: [{ url: 'http://127.0.0.1:9' }] } },
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  return r.config;
}

test('a reload that only changes a consumer’s key reports consumers as changed; the same config reports nothing', () => {
  const before = load('alice-key-0123456789abcdef');
  assert.deepEqual(configChanges(before, load('alice-key-0123456789abcdef')), {});
  assert.deepEqual(configChanges(before, load('alice-key-fedcba9876543210')), { settings: ['consumers'] });
});
