import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketDelta, buckets, parseMetrics, quantile, rate, sumBy, total } from './prom.ts';

const TEXT = `# HELP switchboard_requests_total Requests.
# TYPE switchboard_requests_total counter
switchboard_requests_total{listener="web",route="all",upstream="app",status_class="2xx",code=""} 90
switchboard_requests_total{listener="web",route="all",upstream="app",status_class="5xx",code="UPSTREAM_TIMEOUT"} 10
switchboard_requests_total{listener="web",route="a \\"quoted\\", name",upstream="app",status_class="2xx",code=""} 5
switchboard_request_duration_seconds_bucket{listener="web",route="all",le="0.001"} 0
switchboard_request_duration_seconds_bucket{listener="web",route="all",le="0.01"} 50
switchboard_request_duration_seconds_bucket{listener="web",route="all",le="0.1"} 100
switchboard_request_duration_seconds_bucket{listener="web",route="all",le="+Inf"} 100
process_start_time_seconds 1.7e9
broken line
`;

test('parseMetrics reads samples, labels with escapes, and skips what it cannot read', () => {
  const s = parseMetrics(TEXT);
  assert.equal(s.length, 8);
  assert.equal(total(s, 'switchboard_requests_total'), 105);
  assert.deepEqual(
    [...sumBy(s, 'switchboard_requests_total', 'route')],
    [
      ['all', 100],
      ['a "quoted", name', 5],
    ],
  );
  assert.equal(
    total(s, 'switchboard_requests_total', (l) => l.status_class === '5xx'),
    10,
  );
  assert.equal(total(s, 'process_start_time_seconds'), 1.7e9);
});

test('quantile interpolates within the bucket, as histogram_quantile does', () => {
  const b = buckets(parseMetrics(TEXT), 'switchboard_request_duration_seconds');
  assert.ok(Math.abs(quantile(0.5, b)! - 0.01) < 1e-9);
  assert.ok(Math.abs(quantile(0.25, b)! - 0.0055) < 1e-9);
  assert.ok(Math.abs(quantile(0.99, b)! - 0.0982) < 1e-9);
  assert.equal(quantile(0.5, new Map([[Infinity, 0]])), undefined);
  // Past the highest finite bound: that bound.
  assert.equal(
    quantile(
      0.9,
      new Map([
        [0.1, 1],
        [Infinity, 10],
      ]),
    ),
    0.1,
  );
});

test('deltas and rates: a counter reset counts from zero', () => {
  const now = new Map([
    [0.01, 5],
    [Infinity, 8],
  ]);
  assert.deepEqual(
    [
      ...bucketDelta(
        now,
        new Map([
          [0.01, 2],
          [Infinity, 3],
        ]),
      ),
    ],
    [
      [0.01, 3],
      [Infinity, 5],
    ],
  );
  assert.deepEqual(
    [
      ...bucketDelta(
        now,
        new Map([
          [0.01, 9],
          [Infinity, 9],
        ]),
      ),
    ],
    [
      [0.01, 5],
      [Infinity, 8],
    ],
  );
  assert.equal(rate(30, 10, 2), 10);
  assert.equal(rate(4, 10, 2), 2);
  assert.equal(rate(4, undefined, 2), 0);
});
