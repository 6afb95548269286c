/** `switchboard state get|incr` run as a user runs it, against a redis-server of the test's own. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliRun } from './helpers/run-cli.ts';
import { closedPort } from './helpers/origin.ts';
import { type RedisServer, startRedis } from './helpers/redis-server.ts';

let redis: RedisServer;
let dir: string;

before(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'sb-state-cli-'));
});

after(async () => {
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const run = (args: string[]): Promise<CliRun> => runCli(args);

async function config(name: string, state: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, `listeners:\n  web:\n    address: "127.0.0.1:0"\n    protocol: http\n${state}`);
  return file;
}

function redisCli(...args: string[]): string {
  return execFileSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8', timeout: 5000 }).trim();
}

test('state incr and get count in Redis under the configured prefix, with the expiry set at creation', async () => {
  const file = await config('redis.yaml', `state:\n  backend: redis\n  redis: { url: "${redis.url}", prefix: "cli:" }\n`);
  assert.deepEqual(await run(['state', 'get', 'visits', '-c', file]), { code: 0, stdout: '0\n', stderr: '' });
  assert.deepEqual(await run(['state', 'incr', 'visits', '--by', '5', '--ttl', '10s', '-c', file]), { code: 0, stdout: '5\n', stderr: '' });
  assert.deepEqual(await run(['state', 'incr', 'visits', '-c', file]), { code: 0, stdout: '6\n', stderr: '' });
  assert.deepEqual(await run(['state', 'get', 'visits', '-c', file]), { code: 0, stdout: '6\n', stderr: '' });
  assert.equal(redisCli('GET', 'cli:visits'), '6');
  const ttl = Number(redisCli('PTTL', 'cli:visits'));
  assert.ok(ttl > 0 && ttl <= 10_000, `expiry from the first incr's --ttl (${ttl}ms)`);
});

test('state with the memory backend explains where the state lives and exits 2', async () => {
  const file = await config('memory.yaml', '');
  const r = await run(['state', 'get', 'visits', '-c', file]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /memory backend: its state lives inside the running instance/);
});

test('state with Redis unreachable fails within the connect timeout, exit 1, password not shown', async () => {
  const port = await closedPort();
  const file = await config('down.yaml', `state:\n  backend: redis\n  redis: { url: "redis://:secret@127.0.0.1:${port}", connectTimeout: 300ms }\n`);
  const r = await run(['state', 'incr', 'visits', '-c', file]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`redis at redis://:\\*\\*\\*@127\\.0\\.0\\.1:${port}: redis not reachable within 300ms`));
  assert.doesNotMatch(r.stderr, /secret/);
});

test('state: config problems and bad options exit 2 with their message', async () => {
  const file = await config('bad.yaml', 'state:\n  backend: redis\n  redis: { url: "http://127.0.0.1:6379" }\n');
  const ok = await config('ok.yaml', `state:\n  backend: redis\n  redis: { url: "${redis.url}" }\n`);
  const [r, by, ttl] = await Promise.all([
    run(['state', 'get', 'visits', '-c', file]),
    run(['state', 'incr', 'visits', '--by', '1.5', '-c', ok]),
    run(['state', 'incr', 'visits', '--ttl', '0', '-c', ok]),
  ]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.yaml:7:17: state\.redis\.url: expected a redis:\/\/ or rediss:\/\/ URL/);
  assert.deepEqual([by.code, by.stderr], [2, 'switchboard state: --by must be an integer, found "1.5"\n']);
  assert.deepEqual([ttl.code, ttl.stderr], [2, 'switchboard state: --ttl must be a duration such as 60s or 1h, found "0"\n']);
});
