import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from '@prometheus-io/client';
import { SeriesCounter, SeriesHistogram } from './series-metrics.ts';

const BOUNDS = [0.001, 0.01, 0.1, 1];
const VALUES = [0.0005, 0.001, 0.002, 0.05, 0.05, 0.7, 3];

/** The exposition of one registry, with the metric names made equal. */
async function text(r: Registry, name: string): Promise<string> {
  return (await r.metrics()).replaceAll(name, 'm');
}

test('series cells render exactly as the client library’s own counter and histogram, in both formats', async () => {
  const lib = new Registry();
  const ours = new Registry();
  const c = new Counter({ name: 'lib_total', help: 'h', labelNames: ['route', 'code'], registers: [lib] });
  const h = new Histogram({ name: 'lib_seconds', help: 'h', labelNames: ['route'], buckets: BOUNDS, registers: [lib] });
  const sc = new SeriesCounter('ours_total', 'h', ours);
  const sh = new SeriesHistogram('ours_seconds', 'h', BOUNDS, ours);
  const cell = sc.cell({ route: 'a', code: '' });
  const hcell = sh.cell({ route: 'a' });
  for (const v of VALUES) {
    c.inc({ route: 'a', code: '' });
    h.observe({ route: 'a' }, v);
    cell.value++;
    hcell.observe(v);
  }
  const norm = (s: string): string => s.replaceAll('lib_', 'x_').replaceAll('ours_', 'x_');
  assert.equal(norm(await text(ours, 'ours')), norm(await text(lib, 'lib')));
  ours.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  lib.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  assert.equal(norm(await text(ours, 'ours')), norm(await text(lib, 'lib')));
  // Aggregated as the workers' are (JSON, summed).
  const twice = Registry.aggregate([await ours.getMetricsAsJSON(), await ours.getMetricsAsJSON()]);
  assert.match(await twice.metrics(), /^ours_seconds_count\{route="a"\} 14$/m);
  assert.match(await twice.metrics(), /^ours_seconds_bucket\{le="0\.01",route="a"\} 6$/m);
});
