import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PoolRegistry } from './pools.ts';

const opts = { connections: 4, keepAliveTimeout: 1000, connectTimeout: 500, protocol: 'http1' as const, tls: undefined, settingsKey: 'k' };

test('pools are shared by origin and settings, and closed when the last holder releases them', async () => {
  const registry = new PoolRegistry();
  const a = registry.acquire('http://127.0.0.1:9', opts);
  const again = registry.acquire('http://127.0.0.1:9', opts);
  const otherTimeout = registry.acquire('http://127.0.0.1:9', { ...opts, connectTimeout: 100 });
  assert.equal(a, again, 'same origin and settings: one pool');
  assert.notEqual(a, otherTimeout, 'another connect timeout: another pool');
  assert.equal(registry.size, 2);
  registry.release([a]);
  assert.equal(registry.size, 2, 'still held once');
  assert.equal(a.closed, false);
  registry.release([again, otherTimeout]);
  assert.equal(registry.size, 0);
  assert.equal(a.closed, true);
  assert.equal(otherTimeout.closed, true);
  await registry.closeAll();
});
