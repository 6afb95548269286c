/**
 * `switchboard demo`: three small origins in this process, and the gateway on 127.0.0.1:8080
 * (DEMO_PORT overrides) balancing across them with examples/demo.yaml.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startGateway } from '../gateway.ts';
import type { AccessLogTarget } from '../observability/access-log.ts';
import type { LogLevel } from '../observability/logger.ts';
import { runUntilSignal } from './signals.ts';

export const DEMO_CONFIG = fileURLToPath(new URL('../../examples/demo.yaml', import.meta.url));

async function startDemoOrigin(name: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const body = `Hello from ${name} (${req.method} ${req.url}, request id ${String(req.headers['x-request-id'])})\n`;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'x-origin': name });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

export async function demo(opts: { accessLog: AccessLogTarget; logLevel: LogLevel }): Promise<void> {
  const origins = await Promise.all(['origin-1', 'origin-2', 'origin-3'].map(startDemoOrigin));
  origins.forEach((o, i) => {
    process.env[`DEMO_ORIGIN_${i + 1}`] = String((o.address() as AddressInfo).port);
  });
  const gw = await startGateway({ config: DEMO_CONFIG, accessLog: opts.accessLog, logLevel: opts.logLevel, watch: true });
  const url = gw.url('web');
  const lines = [
    '',
    'Switchboard demo',
    `  gateway  ${url}   (config: examples/demo.yaml, round robin, health checks)`,
    ...origins.map((o, i) => `  origin-${i + 1} http://127.0.0.1:${(o.address() as AddressInfo).port}`),
    '',
    'Try:',
    `  for i in 1 2 3 4 5 6; do curl -s ${url}/; done     # origin-1, origin-2, origin-3, in turn`,
    `  curl -s ${url}/api/hello                          # the route strips /api: the origin sees /hello`,
    `  curl -si ${url}/ -H 'X-Request-Id: my-id-1'        # request ids pass through both ways`,
    `  curl -s -H 'Host: a' -H 'Host: b' ${url}/          # two Host headers: 400, JSON error body`,
    `  npx switchboard simulate --scenario all            # which balancing algorithm for which fleet`,
    '',
    'Access log lines (JSON) follow. Ctrl-C stops.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
  await runUntilSignal(gw, async () => {
    for (const o of origins) o.closeAllConnections();
    await Promise.all(origins.map((o) => new Promise((resolve) => o.close(resolve))));
  });
}
