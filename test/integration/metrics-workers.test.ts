/**
 * Metrics across workers (issue 12, §1): a supervisor with two workers, started programmatically
 * with metrics on; one scrape (`supervisor.metrics.render()`) shows the whole machine, the sum of
 * what each worker counted.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { Supervisor } from '../../src/process/supervisor.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { samples, total } from './helpers/metrics.ts';

const dir = await mkdtemp(join(tmpdir(), 'switchboard-metrics-workers-'));
let origin: Origin | undefined;
let sv: Supervisor | undefined;
let policed: Supervisor | undefined;
after(async () => {
  await sv?.stop();
  await policed?.stop();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

/** The sum of family `name` in one worker's JSON snapshot. */
function sumOf(json: unknown[], name: string): number {
  const family = (json as Array<{ name: string; values: Array<{ value: number }> }>).find((m) => m.name === name);
  return family?.values.reduce((n, v) => n + v.value, 0) ?? 0;
}

/** `switchboard_requests_total` of one worker's JSON snapshot. */
function requestsOf(json: unknown[]): number {
  return sumOf(json, 'switchboard_requests_total');
}

test('with two workers, one scrape shows the sum of both workers’ counts', async () => {
  origin = await startOrigin('A', (_req, res) => res.end('ok'));
  const file = join(dir, 'workers.yaml');
  await writeFile(
    file,
    `workers: 2
metrics: { enabled: true }
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
routes:
  all: { match: { path: / }, upstream: app }
`,
  );
  sv = await Supervisor.start({ config: file, accessLog: 'off', logLevel: 'silent', watch: false });
  const metrics = sv.metrics;
  assert.ok(metrics !== undefined, 'metrics.enabled turns the machine metrics on');
  const base = sv.addresses().web!;
  // Fresh connections (no keep-alive), until the kernel has handed some to each worker (bounded).
  let sent = 0;
  let perWorker: number[] = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 50; i++) {
      const res = await request(`${base}/r${sent}`, { headers: { connection: 'close' }, reset: true });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
      sent++;
    }
    perWorker = (await metrics.workerSnapshots()).map(requestsOf);
    if (perWorker.length === 2 && perWorker.every((n) => n > 0)) break;
  }
  assert.equal(perWorker.length, 2, 'both workers answered');
  assert.ok(
    perWorker.every((n) => n > 0),
    `requests went to both workers: ${perWorker.join(', ')}`,
  );
  assert.equal(
    perWorker.reduce((a, b) => a + b, 0),
    sent,
  );
  const m = samples((await metrics.render(undefined)).body);
  assert.equal(total(m, 'switchboard_requests_total', { listener: 'web', route: 'all', status_class: '2xx' }), sent, 'the machine’s count');
  assert.equal(total(m, 'switchboard_request_duration_seconds_count', { route: 'all' }), sent);
  assert.equal(total(m, 'switchboard_endpoint_picks_total', { upstream: 'app' }), sent);
  assert.equal(total(m, 'switchboard_connections_accepted_total', { listener: 'web' }), sent);
  assert.equal(total(m, 'switchboard_endpoint_healthy', { upstream: 'app' }), 1, 'health is the minimum over the workers, not their sum');
  assert.equal(total(m, 'switchboard_metrics_workers_missing'), 0);
  assert.equal(total(m, 'switchboard_config_reloads_total', { result: 'failure' }), 0, 'reloads are the supervisor’s');
  assert.ok(total(m, 'process_cpu_user_seconds_total') > 0);
});

test('with two workers, policies’ decisions are the sum of both workers’: the rate limit’s exact machine-wide split', async () => {
  // One supervisor per process at a time: the cluster module's workers and messages are the process's.
  await sv?.stop();
  sv = undefined;
  origin ??= await startOrigin('A', (_req, res) => res.end('ok'));
  const key = 'k-3f9a1c0e7d2b4a6c8e0f1a2b3c4d5e6f';
  const file = join(dir, 'policies.yaml');
  await writeFile(
    file,
    `workers: 2
metrics: { enabled: true }
listeners:
  web: { address: "127.0.0.1:0", protocol: http }
consumers:
  alice: { credentials: [{ type: api-key, key: "${key}" }] }
policies:
  keys: { type: api-key }
  per-consumer: { type: rate-limit, key: consumer, limit: 5, window: 1d }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
routes:
  all: { match: { path: / }, upstream: app, policies: [keys, per-consumer] }
`,
  );
  policed = await Supervisor.start({ config: file, accessLog: 'off', logLevel: 'silent', watch: false });
  const metrics = policed.metrics!;
  const base = policed.addresses().web!;
  // Fresh connections, until the kernel has handed some to each worker (bounded).
  let sent = 0;
  let perWorker: number[] = [];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 20; i++) {
      const res = await request(`${base}/r${sent}`, { headers: { connection: 'close', 'x-api-key': key }, reset: true });
      await res.body.dump();
      assert.equal(res.statusCode, sent < 5 ? 200 : 429, `request ${sent}`);
      sent++;
    }
    perWorker = (await metrics.workerSnapshots()).map((json) => sumOf(json, 'switchboard_auth_decisions_total'));
    if (perWorker.length === 2 && perWorker.every((n) => n > 0)) break;
  }
  assert.ok(perWorker.length === 2 && perWorker.every((n) => n > 0), `both workers decided: ${perWorker.join(', ')}`);
  const m = samples((await metrics.render(undefined)).body);
  assert.equal(total(m, 'switchboard_auth_decisions_total', { policy: 'keys', type: 'api-key', result: 'success' }), sent, 'the machine’s count');
  // The bucket is the supervisor's (one per machine): 5 allowed in all, whichever worker took them.
  assert.equal(total(m, 'switchboard_rate_limit_decisions_total', { policy: 'per-consumer', result: 'allowed' }), 5);
  assert.equal(total(m, 'switchboard_rate_limit_decisions_total', { policy: 'per-consumer', result: 'limited' }), sent - 5);
  assert.equal(total(m, 'switchboard_policy_answers_total', { policy: 'per-consumer', code: 'RATE_LIMITED' }), sent - 5);
});
