import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigObject } from '../config/load.ts';
import type { EndpointView, UpstreamView } from '../upstream/state.ts';
import { endpointOrigin, mergeUpstreams } from './backend.ts';

function ep(url: string, over: Partial<EndpointView> = {}): EndpointView {
  return {
    index: 0,
    url,
    healthy: true,
    ejected: false,
    admin: 'ready',
    weight: 1,
    configWeight: 1,
    weightFactor: 1,
    inFlight: 0,
    latencyMs: 0,
    checked: false,
    ...over,
  };
}

test('mergeUpstreams: in flight summed, ejected when any worker ejected, latency the mean of the sampled, each worker kept', () => {
  const w1: UpstreamView[] = [{ name: 'app', balancer: 'round-robin', endpoints: [ep('http://a', { inFlight: 2, latencyMs: 10 }), ep('http://b', { index: 1 })] }];
  const w2: UpstreamView[] = [
    { name: 'app', balancer: 'round-robin', endpoints: [ep('http://a', { inFlight: 3, latencyMs: 0, ejected: true }), ep('http://b', { index: 1, weightFactor: 0.5 })] },
  ];
  const [app] = mergeUpstreams([
    { worker: 1, pid: 11, upstreams: w1 },
    { worker: 2, pid: 12, upstreams: w2 },
  ]);
  const [a, b] = app!.endpoints;
  assert.deepEqual([a!.inFlight, a!.ejected, a!.latencyMs], [5, true, 10]);
  assert.deepEqual(
    a!.workers!.map((w) => [w.worker, w.pid, w.inFlight]),
    [
      [1, 11, 2],
      [2, 12, 3],
    ],
  );
  assert.equal(b!.weightFactor, 0.5);
});

test('endpointOrigin: by index or by URL (encoded or not); unknown ones are undefined', async () => {
  const r = await loadConfigObject({
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
    upstreams: { app: { endpoints: [{ url: 'http://10.0.0.1:80' }, { url: 'http://10.0.0.2:8080' }] } },
  });
  assert.ok(r.ok);
  assert.equal(endpointOrigin(r.config, 'app', '1'), 'http://10.0.0.2:8080');
  assert.equal(endpointOrigin(r.config, 'app', 'http://10.0.0.2:8080'), 'http://10.0.0.2:8080');
  assert.equal(endpointOrigin(r.config, 'app', 'http://10.0.0.1'), 'http://10.0.0.1', 'the default port');
  assert.equal(endpointOrigin(r.config, 'app', '2'), undefined);
  assert.equal(endpointOrigin(r.config, 'app', 'http://10.0.0.3'), undefined);
  assert.equal(endpointOrigin(r.config, 'nope', '0'), undefined);
});
