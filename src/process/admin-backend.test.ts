import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MachineRuntime } from './admin-backend.ts';

test('MachineRuntime keeps the last change of each kind per endpoint; enable forgets the state change', () => {
  const m = new MachineRuntime();
  m.add({ upstream: 'u', endpoint: 'e', action: 'drain' });
  m.add({ upstream: 'u', endpoint: 'e', action: 'weight', weight: 3 });
  m.add({ upstream: 'u', endpoint: 'e', action: 'disable' });
  assert.deepEqual(
    m.list().map((c) => c.action),
    ['weight', 'disable'],
  );
  m.add({ upstream: 'u', endpoint: 'e', action: 'enable' });
  assert.deepEqual(
    m.list().map((c) => c.action),
    ['weight'],
  );
  m.clear();
  assert.deepEqual(m.list(), []);
});
