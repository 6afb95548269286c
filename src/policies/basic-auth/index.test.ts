import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { argon2Sync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import bcrypt from 'bcryptjs';
import { fakeDeps, fakeResolveContext, headerList, pairs } from '../../../test/helpers/policy.ts';
import { fakeSession } from '../../../test/helpers/session.ts';
import type { Filter, Reply, Session } from '../filter.ts';
import { basicAuthPolicy, decodeBasic } from './index.ts';
import type { RawBasicAuth } from './config.ts';

/** bcryptjs as verify.ts loads it (lazily, with require: its CommonJS build, another object than the ES import above). */
const bcryptRequired: typeof bcrypt = createRequire(import.meta.url)('bcryptjs');

const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');
/** An argon2id PHC string of `password`, small parameters (tests). */
export function argon2Hash(password: string): string {
  const salt = randomBytes(16);
  const tag = argon2Sync('argon2id', { message: password, nonce: salt, parallelism: 1, tagLength: 32, memory: 256, passes: 2 });
  return `$argon2id$v=19$m=256,t=2,p=1$${b64(salt)}$${b64(tag)}`;
}

const consumers = {
  alice: { groups: ['gold'], credentials: [{ type: 'basic' as const, username: 'alice', password: bcrypt.hashSync('wonderland', 4) }] },
  carol: { credentials: [{ type: 'basic' as const, username: 'carol', password: argon2Hash('pässwörd:with colon') }] },
};

function filter(raw: RawBasicAuth = {}): Filter {
  return basicAuthPolicy.create(basicAuthPolicy.resolve(basicAuthPolicy.config.parse(raw), fakeResolveContext().ctx), fakeDeps({ name: 'login', consumers }));
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function run(f: Filter, authorization?: string): Promise<{ s: Session; verdict: Reply | undefined }> {
  const s = fakeSession({ route: 'r', request: { headers: authorization === undefined ? {} : { authorization } } });
  return { s, verdict: await f.onRequest!(s) };
}

test('bcrypt and argon2 hashes verify; the consumer is identified', async () => {
  const f = filter();
  const a = await run(f, basic('alice', 'wonderland'));
  assert.equal(a.verdict, undefined);
  assert.deepEqual(a.s.identity, { consumer: { name: 'alice', groups: ['gold'], metadata: {} }, credential: 'alice/basic/0', policy: 'login' });
  const c = await run(f, basic('carol', 'pässwörd:with colon'));
  assert.equal(c.verdict, undefined);
  assert.equal(c.s.identity?.credential, 'carol/basic/0');
  assert.equal((await run(f, `bAsIc ${Buffer.from('alice:wonderland').toString('base64')}`)).verdict, undefined, 'the scheme is case-insensitive');
});

test('no header or another scheme: 401 AUTH_REQUIRED; wrong user, password or encoding: 401 AUTH_INVALID; both with the realm', async () => {
  const f = filter({ realm: 'api' });
  const challenge = 'Basic realm="api", charset="UTF-8"';
  for (const h of [undefined, 'Bearer abc']) {
    assert.deepEqual((await run(f, h)).verdict, {
      status: 401,
      headers: { 'www-authenticate': [challenge] },
      error: { code: 'AUTH_REQUIRED', message: 'this route needs a credential' },
    });
  }
  for (const h of [
    basic('alice', 'wonderlanD'),
    basic('alicE', 'wonderland'),
    basic('bob', 'wonderland'),
    basic('carol', 'pässwörd'),
    'Basic',
    'Basic !!!',
    `Basic ${Buffer.from('nocolon').toString('base64')}`,
  ]) {
    const { s, verdict } = await run(f, h);
    assert.deepEqual(
      verdict,
      { status: 401, headers: { 'www-authenticate': challenge }, error: { code: 'AUTH_INVALID', message: 'the credential was not accepted' } },
      h,
    );
    assert.equal(s.identity, undefined);
  }
});

test('successful checks are cached by header; failures are not; concurrent requests share one check', async (t) => {
  const compare = mock.method(bcryptRequired, 'compare');
  t.after(() => compare.mock.restore());
  const f = filter();
  const good = basic('alice', 'wonderland');
  await Promise.all([run(f, good), run(f, good), run(f, good)]);
  assert.equal(compare.mock.callCount(), 1, 'one check for three concurrent requests');
  assert.equal((await run(f, good)).s.identity?.consumer.name, 'alice');
  assert.equal(compare.mock.callCount(), 1, 'then from the cache');
  await run(f, basic('alice', 'nope'));
  await run(f, basic('alice', 'nope'));
  assert.equal(compare.mock.callCount(), 3, 'a failure is checked each time');
  await run(f, basic('nobody', 'x'));
  assert.equal(compare.mock.callCount(), 4, 'an unknown user costs a check too (against a dummy hash)');
  assert.equal((await run(filter(), good)).s.identity?.consumer.name, 'alice');
  assert.equal(compare.mock.callCount(), 5, 'a new filter (a new generation) starts with an empty cache');
});

test('upstream: Authorization (Basic) removed unless hideCredentials: false; identity headers set', async () => {
  const f = filter();
  const { s } = await run(f, basic('alice', 'wonderland'));
  const headers = headerList([
    ['authorization', basic('alice', 'wonderland')],
    ['x-consumer-name', 'root'],
  ]);
  f.onUpstreamRequest!(s, { method: 'GET', target: '/', headers, endpoint: 'http://x', attempt: 1 });
  assert.deepEqual(pairs(headers), [
    ['x-consumer-name', 'alice'],
    ['x-consumer-groups', 'gold'],
  ]);
  const kept = filter({ hideCredentials: false });
  const h2 = headerList([['authorization', 'Basic x']]);
  kept.onUpstreamRequest!(s, { method: 'GET', target: '/', headers: h2, endpoint: 'http://x', attempt: 1 });
  assert.equal(h2.get('authorization'), 'Basic x');
});

test('decodeBasic', () => {
  assert.deepEqual(decodeBasic(`Basic ${Buffer.from('u:p:q').toString('base64')}`), { user: 'u', password: 'p:q' });
  assert.deepEqual(decodeBasic(`Basic ${Buffer.from('u:').toString('base64')}`), { user: 'u', password: '' });
  assert.equal(decodeBasic(`Basic ${Buffer.from(':p').toString('base64')}`), undefined);
});

test('htpasswd: the file’s users are accepted by the policy naming the file (beside the consumers’), not by another', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'basic-htpasswd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'users.htpasswd'), `# users\nbob:${bcrypt.hashSync('builder', 4).replace(/^\$2b\$/, '$2y$')}\ndora:${argon2Hash('explorer')}\n`);
  const policies = { login: { type: 'basic-auth', htpasswd: 'users.htpasswd' }, plain: { type: 'basic-auth' } };
  const deps = (name: string) => fakeDeps({ name, consumers, policies, baseDir: dir });
  const make = (name: string, raw: RawBasicAuth): Filter =>
    basicAuthPolicy.create(basicAuthPolicy.resolve(basicAuthPolicy.config.parse(raw), fakeResolveContext({ baseDir: dir }).ctx), deps(name));
  const withFile = make('login', { htpasswd: 'users.htpasswd' });
  const b = await run(withFile, basic('bob', 'builder'));
  assert.equal(b.verdict, undefined);
  assert.deepEqual(b.s.identity, { consumer: { name: 'bob', groups: [], metadata: {} }, credential: 'bob/htpasswd', policy: 'login' });
  assert.equal((await run(withFile, basic('dora', 'explorer'))).s.identity?.credential, 'dora/htpasswd');
  assert.equal((await run(withFile, basic('alice', 'wonderland'))).s.identity?.credential, 'alice/basic/0', 'the consumers’ credentials too');
  assert.equal((await run(withFile, basic('bob', 'builder!'))).verdict?.error?.code, 'AUTH_INVALID');
  const without = make('plain', {});
  assert.equal((await run(without, basic('bob', 'builder'))).verdict?.error?.code, 'AUTH_INVALID', 'a policy without the file does not know bob');
});

test('checkPassword (a socks5 listener’s RFC 1929 pair): the same credentials and cache, keyed apart from headers', async (t) => {
  const compare = mock.method(bcryptRequired, 'compare');
  t.after(() => compare.mock.restore());
  const f = filter();
  const match = await f.checkPassword!('alice', 'wonderland');
  assert.deepEqual(match?.consumer, { name: 'alice', groups: ['gold'], metadata: {} });
  assert.equal(match?.credential, 'alice/basic/0');
  assert.equal((await f.checkPassword!('alice', 'wonderland'))?.credential, 'alice/basic/0');
  assert.equal(compare.mock.callCount(), 1, 'the second check came from the cache');
  assert.equal((await f.checkPassword!('carol', 'pässwörd:with colon'))?.credential, 'carol/basic/0');
  assert.equal(await f.checkPassword!('alice', 'wonderlanD'), undefined);
  assert.equal(await f.checkPassword!('alic', 'ewonderland'), undefined, 'the split between user and password is part of the key');
  assert.equal(await f.checkPassword!('nobody', 'x'), undefined);
  assert.equal((await run(f, basic('alice', 'wonderland'))).verdict, undefined);
  assert.equal(compare.mock.callCount(), 5, 'a header is not answered from a pair’s cache entry');
});
