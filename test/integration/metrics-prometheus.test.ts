/**
 * A real Prometheus (Debian's `prometheus`, issue 12 §7) scrapes Switchboard's exposition, and a
 * PromQL query returns the request count sent; `promtool check metrics` finds nothing to lint.
 * Prometheus scrapes `GET /metrics` of the gateway's admin listener, with its bearer token.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch } from 'undici';
import { startGateway, type Gateway } from '../../src/index.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const TOKEN = 'prometheus-test-token';
const PROMTOOL = '/usr/bin/promtool';
const missing = !existsSync(PROMETHEUS) || !existsSync(PROMTOOL);
const skip = missing ? 'Debian prometheus is not installed (apt-get install prometheus; .ci/run installs it)' : false;

let gw: Gateway | undefined;
let origin: Origin | undefined;
let prom: ChildProcess | undefined;
let dir: string | undefined;
after(async () => {
  if (prom?.pid !== undefined && prom.exitCode === null) process.kill(prom.pid, 'SIGKILL');
  await gw?.stop({ drainTimeout: 1000 });
  await origin?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** A port free now (bound, read, released): prometheus takes only an address to listen on. */
async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

test('prometheus scrapes the exposition; PromQL returns the requests sent; promtool finds no lint', { skip, timeout: 90_000 }, async () => {
  origin = await startOrigin('A', (_req, res) => res.end('ok'));
  gw = await startGateway({
    config: {
      listeners: { web: { address: '127.0.0.1:0', protocol: 'http' } },
      routes: { all: { match: { path: '/' }, upstream: 'app' } },
      upstreams: { app: { endpoints: [{ url: origin.url }] } },
      // Metrics are on with an admin listener, which serves them.
      admin: { address: '127.0.0.1:0', token: TOKEN },
    },
    accessLog: 'off',
    logLevel: 'silent',
  });
  const metrics = gw.metrics!;
  const target = new URL(gw.adminUrl()!).host;

  const sent = 37;
  for (let i = 0; i < sent; i++) {
    const res = await fetch(`${gw.url('web')}/p${i}`);
    await res.arrayBuffer();
    assert.equal(res.status, 200);
  }

  // promtool lints the exposition as Prometheus reads it.
  const exposition = (await metrics.render(undefined)).body;
  const lint = spawnSync(PROMTOOL, ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  assert.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  assert.equal(`${lint.stdout}${lint.stderr}`.trim(), '', 'no lint findings');

  dir = await mkdtemp(join(tmpdir(), 'switchboard-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(
    configFile,
    `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: switchboard
    authorization: { credentials: "${TOKEN}" }
    static_configs: [{ targets: ["${target}"] }]
`,
  );
  const port = await freePort();
  prom = spawn(PROMETHEUS, [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  prom.stderr!.on('data', (c: Buffer) => (stderr = (stderr + String(c)).slice(-4000)));

  const query = encodeURIComponent('sum(switchboard_requests_total{listener="web",route="all",status_class="2xx"})');
  let value: string | undefined;
  const deadline = performance.now() + 60_000;
  while (performance.now() < deadline && prom.exitCode === null) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${query}`);
      const body = (await res.json()) as { status: string; data?: { result: Array<{ value: [number, string] }> } };
      value = body.data?.result[0]?.value[1];
      if (value === String(sent)) break;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.equal(value, String(sent), `PromQL answered ${value}; prometheus said: ${stderr}`);
  // Prometheus saw the target up, through the OpenMetrics it negotiates.
  const up = (await (await fetch(`http://127.0.0.1:${port}/api/v1/query?query=up`)).json()) as { data: { result: Array<{ value: [number, string] }> } };
  assert.equal(up.data.result[0]?.value[1], '1');
});
