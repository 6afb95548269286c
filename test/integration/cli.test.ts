/** The `switchboard` command as a user runs it: validate, schema, version, help, start errors, demo. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guard } from './helpers/guard.ts';
import { runCli, type CliRun } from './helpers/run-cli.ts';
import { MAIN, NODE, ROOT } from './helpers/paths.ts';

/** Runs the CLI to completion. */
const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> => runCli(args, { env });

const GOOD = `listeners:
  web:
    address: "127.0.0.1:0"
    protocol: http
routes:
  all:
    match: { path: / }
    upstream: app
upstreams:
  app:
    endpoints:
      - url: http://127.0.0.1:9001
      - url: http://127.0.0.1:9002
`;

// Three problems, at known places: line 4 (a bad enum value), line 8 (an unknown upstream), line 13
// (a malformed duration).
const BAD = `listeners:
  web:
    address: "127.0.0.1:0"
    protocol: htp
routes:
  all:
    match: { path: / }
    upstream: nope
upstreams:
  app:
    endpoints:
      - url: http://127.0.0.1:9001
    timeouts: { connect: 5 seconds }
`;

async function fixtures(): Promise<{ dir: string; good: string; bad: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'switchboard-cli-'));
  const good = join(dir, 'good.yaml');
  const bad = join(dir, 'bad.yaml');
  await writeFile(good, GOOD);
  await writeFile(bad, BAD);
  return { dir, good, bad };
}

function assertBadReport(stderr: string): void {
  const lines = stderr.split('\n').filter((l) => l.includes('bad.yaml:'));
  assert.ok(
    lines.some((l) => /bad\.yaml:4:15: listeners\.web\.protocol: expected .*, found "htp"/.test(l)),
    stderr,
  );
  assert.ok(
    lines.some((l) => /bad\.yaml:8:15: routes\.all\.upstream: expected .*app.*, found "nope"/.test(l)),
    stderr,
  );
  assert.ok(
    lines.some((l) => /bad\.yaml:13:26: upstreams\.app\.timeouts\.connect: expected .*duration.*, found "5 seconds"/.test(l)),
    stderr,
  );
}

test('validate: a good file exits 0; a bad one exits 2 with file:line:col and the key path of every problem', async () => {
  const { dir, good, bad } = await fixtures();
  try {
    const ok = await run(['validate', '-c', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /good\.yaml: valid \(1 listeners, 1 routes, 1 upstreams\)/);
    assert.equal(ok.stderr, '');

    const ko = await run(['validate', '-c', bad]);
    assert.equal(ko.code, 2);
    assertBadReport(ko.stderr);
    assert.match(ko.stderr, /3 problems in .*bad\.yaml/);

    const missing = await run(['validate', '-c', join(dir, 'absent.yaml')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent\.yaml: expected a readable config file, found .*ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('start with a bad file exits 2 and prints every problem', async () => {
  const { dir, bad } = await fixtures();
  try {
    const r = await run(['start', '-c', bad, '--no-watch', '--access-log', 'off']);
    assert.equal(r.code, 2);
    assertBadReport(r.stderr);
    assert.doesNotMatch(r.stderr, /switchboard started/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('schema prints the JSON Schema of the config', async () => {
  const r = await run(['schema']);
  assert.equal(r.code, 0, r.stderr);
  const schema = JSON.parse(r.stdout) as { properties?: Record<string, { type?: string }> };
  assert.ok(schema.properties?.listeners, 'properties.listeners');
  assert.ok(schema.properties?.routes && schema.properties.upstreams && schema.properties.drainTimeout);
});

test('--version prints the package version; --help lists the commands', async () => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const v = await run(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), pkg.version);

  const h = await run(['--help']);
  assert.equal(h.code, 0);
  for (const cmd of ['start', 'validate', 'demo', 'schema']) assert.match(h.stdout, new RegExp(`^\\s+${cmd}\\b`, 'm'), `--help lists ${cmd}`);
  assert.match(h.stdout, /--log-level/);
});

test('demo: three origins behind the gateway, round robin, SIGTERM exits 0', async () => {
  const env: NodeJS.ProcessEnv = {
    DEMO_PORT: '0',
    DEMO_ADMIN_PORT: '0',
    DEMO_TLS_PORT: '0',
    DEMO_ORIGIN_1: undefined,
    DEMO_ORIGIN_2: undefined,
    DEMO_ORIGIN_3: undefined,
  };
  const child = spawn(NODE, [MAIN, 'demo', '--log-level', 'silent'], {
    cwd: ROOT,
    env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (c, signal) => resolve(c ?? signal ?? -1)));
  try {
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const url = await guard(
      new Promise<string>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          stdout += d;
          const m = /^\s*gateway\s+(http:\/\/127\.0\.0\.1:\d+)\s/m.exec(stdout);
          if (m) resolve(m[1]!);
        });
        void exited.then((c) => reject(new Error(`demo exited (${c}): ${stderr}`)));
      }),
      'the demo banner',
      15_000,
    );
    assert.notEqual(new URL(url).port, '8080', 'DEMO_PORT=0 picks a free port');

    const origins: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${url}/`);
      const body = await res.text();
      assert.equal(res.status, 200, body);
      origins.push(res.headers.get('x-origin') ?? '');
      assert.match(body, new RegExp(`^Hello from ${origins[i]} \\(GET /,`));
    }
    assert.deepEqual(origins, ['origin-1', 'origin-2', 'origin-3', 'origin-1', 'origin-2', 'origin-3']);

    // The admin listener it prints serves the dashboard and the metrics of the requests just made.
    const admin = /^\s*admin\s+(http:\/\/127\.0\.0\.1:\d+)\/dashboard\s/m.exec(stdout)?.[1];
    assert.ok(admin, `the demo prints its admin listener: ${stdout}`);
    assert.equal((await fetch(`${admin}/dashboard`)).status, 200);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    assert.match(metrics, /^switchboard_requests_total\{listener="web",route="all",upstream="demo",status_class="2xx",code=""\} 6$/m);

    // The demo's /api route strips the prefix.
    const api = await fetch(`${url}/api/hello`);
    assert.match(await api.text(), /\(GET \/hello,/);

    // The "two Host headers" line it prints, run as printed, really sends two (curl would send one).
    const line = stdout.split('\n').find((l) => l.includes('# two Host headers'));
    assert.ok(line, 'the demo prints a two-Host-headers command');
    const command = line.slice(0, line.indexOf('   #')).trim();
    const { stdout: answer } = await guard(promisify(execFile)('sh', ['-c', command], { cwd: ROOT }), command, 10_000);
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /"code":"DUPLICATE_HOST"/);

    child.kill('SIGTERM');
    assert.equal(await guard(exited, 'the demo to exit', 10_000), 0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
