/**
 * `switchboard demo`: three small origins in this process, and the gateway on 127.0.0.1:8080
 * (DEMO_PORT overrides) balancing across them with examples/demo.yaml.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type * as http from 'node:http';
import nodeHttp from '../util/node-http.ts';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseDocument } from 'yaml';
import { startGateway } from '../index.ts';
import type { AccessLogDestination, AccessLogFormat } from '../observability/access-log.ts';
import type { LogFormat, LogLevel } from '../observability/logger.ts';
import { runUntilSignal } from './signals.ts';
import { compactAtStart } from '../util/heap.ts';

export const DEMO_CONFIG = fileURLToPath(new URL('../../examples/demo.yaml', import.meta.url));

async function startDemoOrigin(name: string): Promise<http.Server> {
  const server = nodeHttp.createServer((req, res) => {
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

/**
 * A throwaway self-signed certificate for localhost and 127.0.0.1, made with the openssl command;
 * undefined when openssl is not there (the demo then runs without its https listener).
 */
async function demoCertificate(): Promise<{ dir: string; cert: string; key: string } | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-demo-'));
  const cert = join(dir, 'localhost.pem');
  const key = join(dir, 'localhost-key.pem');
  try {
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '7',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ]);
    return { dir, cert, key };
  } catch {
    await rm(dir, { recursive: true, force: true });
    return undefined;
  }
}

/**
 * A command that really sends two Host headers (curl keeps only one of two -H 'Host: …'): a raw
 * socket from Node, which whoever runs the demo has. Exported for the test that runs it.
 */
export function duplicateHostCommand(url: string): string {
  const { hostname, port } = new URL(url);
  return `node -e "const s = require('net').connect(${port}, '${hostname}'); s.pipe(process.stdout); s.write('GET / HTTP/1.1\\r\\nHost: a\\r\\nHost: b\\r\\n\\r\\n')"`;
}

export async function demo(opts: { accessLog: AccessLogDestination; accessLogFormat: AccessLogFormat; logLevel: LogLevel; logFormat: LogFormat }): Promise<void> {
  const origins = await Promise.all(['origin-1', 'origin-2', 'origin-3'].map(startDemoOrigin));
  origins.forEach((o, i) => {
    process.env[`DEMO_ORIGIN_${i + 1}`] = String((o.address() as AddressInfo).port);
  });
  const tls = await demoCertificate();
  let config = DEMO_CONFIG;
  if (tls) {
    // examples/demo.yaml has no https listener, so that it validates without a certificate on disk;
    // the demo's run config is a copy with one, using the certificate just made.
    const doc = parseDocument(await readFile(DEMO_CONFIG, 'utf8'));
    doc.setIn(
      ['listeners', 'secure'],
      doc.createNode({
        address: `127.0.0.1:${process.env.DEMO_TLS_PORT ?? '8443'}`,
        protocol: 'https',
        tls: { certificates: [{ cert: tls.cert, key: tls.key }] },
        hsts: { maxAge: '1h' },
      }),
    );
    config = join(tls.dir, 'demo.yaml');
    await writeFile(config, doc.toString());
  } else {
    process.stderr.write('openssl was not found: the demo runs without its https listener.\n');
  }
  const gw = await startGateway({ ...opts, config, watch: true, beforeListening: compactAtStart });
  const url = gw.url('web');
  const secure = tls ? gw.url('secure').replace('127.0.0.1', 'localhost') : undefined;
  const admin = gw.adminUrl();
  const lines = [
    '',
    'Switchboard demo',
    `  gateway  ${url}   (config: examples/demo.yaml, round robin, health checks)`,
    ...(secure ? [`  https    ${secure}   (HTTP/2 and HTTP/1.1, a self-signed certificate made for this run)`] : []),
    ...(admin ? [`  admin    ${admin}/dashboard   (live dashboard; ${admin}/metrics for Prometheus)`] : []),
    ...origins.map((o, i) => `  origin-${i + 1} http://127.0.0.1:${(o.address() as AddressInfo).port}`),
    '',
    'Try:',
    `  for i in 1 2 3 4 5 6; do curl -s ${url}/; done     # origin-1, origin-2, origin-3, in turn`,
    `  curl -s ${url}/api/hello                          # the route strips /api: the origin sees /hello`,
    `  curl -si ${url}/ -H 'X-Request-Id: my-id-1'        # request ids pass through both ways`,
    `  ${duplicateHostCommand(url)}   # two Host headers: 400, JSON error body`,
    `  curl -si ${url}/healthz                           # answered by a policy (respond), stamped by another (headers)`,
    `  curl -si -X OPTIONS ${url}/api/x -H 'Origin: http://localhost:3000' -H 'Access-Control-Request-Method: POST'   # CORS preflight`,
    ...(secure ? [`  curl -sk --http2 -w ' %{http_version}\\n' ${secure}/     # HTTP/2 over TLS, answered by an HTTP/1.1 origin`] : []),
    ...(admin ? [`  curl -s ${admin}/api/upstreams                    # endpoints: health, in flight, latency, picks`] : []),
    `  npx switchboard simulate --scenario all            # which balancing algorithm for which fleet`,
    '',
    'Access log lines (JSON) follow. Ctrl-C stops.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
  await runUntilSignal(Promise.resolve(gw), async () => {
    if (tls) await rm(tls.dir, { recursive: true, force: true });
    for (const o of origins) o.closeAllConnections();
    await Promise.all(origins.map((o) => new Promise((resolve) => o.close(resolve))));
  });
}
