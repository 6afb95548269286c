/**
 * A program, not a module: a steady load for failover tests (`node failover-load.ts <url> <everyMs>
 * <timeoutMs> <maxMs>`). Every `everyMs` it sends one GET on a new connection (no keep-alive: each
 * request is what a new client sees, never a connection pinned to a dead instance), gives up on it
 * after `timeoutMs`, and prints one JSON line per finished request:
 * `{"start":<epoch ms>,"end":<epoch ms>,"ok":true,"by":"<body>"}` or `{…,"ok":false,"error":"<code>"}`.
 * Stops after `maxMs`, or when its stdin closes (the test that started it is gone).
 */
import http from 'node:http';

const [url = 'http://127.0.0.1:8080/', every = '20', timeout = '500', max = '30000'] = process.argv.slice(2);

function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function once(): void {
  const start = Date.now();
  let settled = false;
  const fail = (error: string): void => {
    if (settled) return;
    settled = true;
    report({ start, end: Date.now(), ok: false, error });
  };
  const req = http.get(url, { agent: false, timeout: Number(timeout) }, (res) => {
    let body = '';
    res.setEncoding('utf8').on('data', (d: string) => (body += d));
    res.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
    res.on('end', () => {
      if (res.statusCode !== 200) return fail(`status ${res.statusCode}`);
      settled = true;
      report({ start, end: Date.now(), ok: true, by: body });
    });
  });
  req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
}

const ticker = setInterval(once, Number(every));
setTimeout(() => {
  clearInterval(ticker);
  process.exit(0);
}, Number(max)).unref();
process.stdin.resume().on('end', () => process.exit(0));
