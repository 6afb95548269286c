/**
 * `basic-auth` with an htpasswd file (issue 13) through the real gateway: a file made by Apache's
 * `htpasswd -B` when it is installed (else the same `$2y$` bcrypt lines made with bcryptjs), plus
 * an argon2 entry; curl and fetch as clients; the file's users are consumers only for the policy
 * naming the file; a reload reads the file again; MD5 entries are refused at load (reload and
 * `switchboard validate`) naming the file's line, never the hash.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { argon2Sync, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';
import { runCli } from './helpers/run-cli.ts';

const run = promisify(execFile);
/** An MD5 entry as `htpasswd -m` writes it (Apache's default before 2.5). */
const MD5_LINE = 'dave:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/';

/** Whether Apache's htpasswd (Debian apache2-utils) is on this machine. */
async function hasHtpasswd(): Promise<boolean> {
  try {
    await run('sh', ['-c', 'command -v htpasswd']);
    return true;
  } catch {
    return false;
  }
}

/** Adds `user` with a bcrypt hash of `password` to `file`: with `htpasswd -B` when installed, else as it would. */
async function addUser(file: string, user: string, password: string, tool: boolean): Promise<void> {
  if (tool) await run('htpasswd', ['-bB', '-C', '5', file, user, password]);
  else await appendFile(file, `${user}:${bcrypt.hashSync(password, 5).replace(/^\$2b\$/, '$2y$')}\n`);
}

function argon2Line(user: string, password: string): string {
  const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');
  const salt = randomBytes(16);
  const tag = argon2Sync('argon2id', { message: password, nonce: salt, parallelism: 1, tagLength: 32, memory: 256, passes: 2 });
  return `${user}:$argon2id$v=19$m=256,t=2,p=1$${b64(salt)}$${b64(tag)}\n`;
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('basic-auth with an htpasswd file', () => {
  let origin: Origin;
  let gw: TestGateway;
  let dir: string;
  let users: string;
  let tool: boolean;

  before(async () => {
    tool = await hasHtpasswd();
    origin = await startOrigin('o');
    dir = await mkdtemp(path.join(tmpdir(), 'switchboard-htpasswd-'));
    users = path.join(dir, 'users.htpasswd');
    await writeFile(users, '# made by the test\n');
    await addUser(users, 'bob', 'builder', tool);
    await appendFile(users, argon2Line('carol', 'c:arol-pw'));
    await writeFile(
      path.join(dir, 'sb.yaml'),
      `listeners:
  web: { address: "127.0.0.1:0", protocol: http }
consumers:
  alice: { credentials: [{ type: basic, username: alice, password: "${bcrypt.hashSync('alice-pw', 4)}" }] }
policies:
  login: { type: basic-auth, realm: api, htpasswd: ./users.htpasswd }
  plain: { type: basic-auth, realm: plain }
routes:
  file:  { match: { path: /file/ }, upstream: app, policies: [login] }
  plain: { match: { path: /plain/ }, upstream: app, policies: [plain] }
upstreams:
  app: { endpoints: [{ url: "${origin.url}" }] }
`,
    );
    gw = await startTestGateway(path.join(dir, 'sb.yaml'));
  });
  after(async () => {
    await gw.stop();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function get(route: string, authorization?: string): Promise<{ status: number; challenge: string | null; consumer?: string; authorization?: string }> {
    const res = await fetch(`${gw.url}${route}`, { headers: authorization === undefined ? {} : { authorization } });
    const json = (await res.json()) as { headers?: Record<string, string> };
    return {
      status: res.status,
      challenge: res.headers.get('www-authenticate'),
      consumer: json.headers?.['x-consumer-name'],
      authorization: json.headers?.authorization,
    };
  }

  test('the file holds $2y$ bcrypt lines (made by htpasswd -B when installed) and curl -u passes as the consumer named by the username', async () => {
    const text = await readFile(users, 'utf8');
    assert.match(text, /^bob:\$2y\$05\$/m);
    const { stdout } = await run('curl', ['-s', '-u', 'bob:builder', `${gw.url}/file/x`]);
    const echo = JSON.parse(stdout) as { headers: Record<string, string> };
    assert.equal(echo.headers['x-consumer-name'], 'bob');
    assert.equal(echo.headers['x-consumer-groups'], undefined);
    assert.equal(echo.headers.authorization, undefined, 'the credential is not sent upstream');
  });

  test('argon2 entries and the consumers’ own credentials work; a wrong password or unknown user is 401 with the realm', async () => {
    assert.equal((await get('/file/x', basic('carol', 'c:arol-pw'))).consumer, 'carol');
    assert.equal((await get('/file/x', basic('alice', 'alice-pw'))).consumer, 'alice');
    for (const h of [basic('bob', 'builder!'), basic('carol', 'builder'), basic('nobody', 'builder'), undefined]) {
      const r = await get('/file/x', h);
      assert.equal(r.status, 401);
      assert.equal(r.challenge, 'Basic realm="api", charset="UTF-8"');
    }
  });

  test('a basic-auth policy that does not name the file does not know its users', async () => {
    const r = await get('/plain/x', basic('bob', 'builder'));
    assert.equal(r.status, 401);
    assert.equal(r.challenge, 'Basic realm="plain", charset="UTF-8"');
    assert.equal((await get('/plain/x', basic('alice', 'alice-pw'))).consumer, 'alice');
  });

  test('a reload reads the file again; an MD5 line makes it fail naming the line, and the running config keeps serving', async () => {
    await addUser(users, 'dora', 'explorer', tool);
    assert.equal((await get('/file/x', basic('dora', 'explorer'))).status, 401, 'not before the reload');
    assert.equal((await gw.gw.reload()).ok, true);
    assert.equal((await get('/file/x', basic('dora', 'explorer'))).consumer, 'dora');

    const good = await readFile(users, 'utf8');
    const md5 = tool ? (await run('htpasswd', ['-nbm', 'dave', 'dave-pw'])).stdout.trim() : MD5_LINE;
    assert.match(md5, /^dave:\$apr1\$/);
    await writeFile(users, `${good}${md5}\n`);
    const bad = await gw.gw.reload();
    assert.equal(bad.ok, false);
    const line = good.split('\n').length; // the MD5 line's number
    assert.ok(
      !bad.ok &&
        bad.errors.some(
          (e) =>
            e.path === 'policies.login.htpasswd' &&
            e.found === `./users.htpasswd:${line}: the entry of "dave" is an MD5 ($apr1$) hash (not shown)` &&
            e.expected.includes('htpasswd -B'),
        ),
      JSON.stringify(bad),
    );
    assert.ok(!JSON.stringify(bad).includes(md5.slice('dave:$apr1$'.length)), 'the hash is never shown');
    assert.equal((await get('/file/x', basic('dora', 'explorer'))).consumer, 'dora', 'the running config keeps serving');
  });

  test('switchboard validate: the MD5 entry is an error at the policy’s htpasswd naming the file’s line, never the hash', async () => {
    const r = await runCli(['validate', '-c', path.join(dir, 'sb.yaml')]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /sb\.yaml:6:52: policies\.login\.htpasswd: expected a bcrypt .*`htpasswd -B \.\/users\.htpasswd USER`.*, found \.\/users\.htpasswd:5: the entry of "dave" is an MD5 \(\$apr1\$\) hash \(not shown\)/,
    );
    const md5 = (await readFile(users, 'utf8')).trimEnd().split('\n').at(-1)!;
    assert.ok(!`${r.stdout}${r.stderr}`.includes(md5.slice('dave:$apr1$'.length)), 'the hash is never shown');
  });
});
