import { after, test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import bcrypt from 'bcryptjs';
import { loadConfigText } from './load-text.ts';
import { sha256Hex } from '../policies/consumers.ts';
import { redact } from '../admin/redact.ts';

const BASE = `listeners:
  web:
    address: "127.0.0.1:8080"
    protocol: http
`;
const KEY = 'alice-key-0123456789abcdef';
const BOB_KEY = 'bob-key-0123456789abcdefgh';
const HASH = bcrypt.hashSync('s3cret-pass', 4);

function errors(text: string, env: Record<string, string> = {}): string[] {
  const r = loadConfigText(text, 'sb.yaml', env);
  return r.ok ? [] : r.errors.map((e) => e.message);
}

test('consumers: keys are kept as hashes and looked up by the key; usernames by name; ids say where, not what', () => {
  const r = loadConfigText(
    `${BASE}consumers:
  alice:
    groups: [gold]
    metadata: { plan: pro }
    credentials:
      - { type: api-key, key: "\${ALICE_KEY}" }
      - { type: basic, username: alice, password: "${HASH}" }
      - { type: jwt, subject: "alice@example.com" }
  bob:
    credentials:
      - { type: api-key, keyHash: "sha256:${sha256Hex(BOB_KEY).toUpperCase()}" }
`,
    'sb.yaml',
    { ALICE_KEY: KEY },
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  const d = r.config.consumers;
  assert.deepEqual(d.apiKey(KEY), { consumer: { name: 'alice', groups: ['gold'], metadata: { plan: 'pro' } }, credential: 'alice/api-key/0' });
  assert.equal(d.apiKey(BOB_KEY)?.credential, 'bob/api-key/0');
  assert.equal(d.apiKey(`${KEY}x`), undefined);
  assert.equal(d.basic('alice')?.credential, 'alice/basic/1');
  assert.equal(d.basic('alice')?.password.kind, 'bcrypt');
  assert.equal(d.basic('Alice'), undefined);
  assert.equal(d.subject('https://idp', 'alice@example.com')?.credential, 'alice/jwt/2');
  assert.equal(d.consumer('bob')?.name, 'bob');
  // What /api/config shows: names, groups, metadata and credential ids; no key, hash or password hash.
  const shown = JSON.stringify(redact(r.config));
  assert.ok(shown.includes('alice/api-key/0'), shown);
  for (const secret of [KEY, sha256Hex(KEY), HASH, sha256Hex(BOB_KEY)]) assert.ok(!shown.toLowerCase().includes(secret.toLowerCase()), 'a secret in /api/config');
});

test('consumers: a plain password, a short key, both or neither of key and keyHash, a bad hash: errors that never show the secret', () => {
  const got = errors(`${BASE}consumers:
  alice:
    credentials:
      - { type: basic, username: alice, password: "hunter2-plain" }
      - { type: api-key, key: "short-secret" }
      - { type: api-key }
      - { type: api-key, keyHash: "md5:abcdef-secret" }
`);
  assert.deepEqual(got, [
    "sb.yaml:8:51: consumers.alice.credentials[0].password: expected a bcrypt ($2b$…) or argon2 ($argon2id$v=19$…) hash of the password, never the password: `htpasswd -nbBC 12 USER 'PASSWORD'` prints USER:<bcrypt hash>, found a plain-text password (not shown)",
    'sb.yaml:9:31: consumers.alice.credentials[1].key: expected a key of at least 16 characters (e.g. from `openssl rand -hex 24`), found a key of 12 characters',
    'sb.yaml:10:9: consumers.alice.credentials[2]: expected exactly one of key, keyHash, found neither',
    'sb.yaml:11:35: consumers.alice.credentials[3].keyHash: expected "sha256:" and 64 hex digits (the SHA-256 of the key), found something else (not shown)',
  ]);
  for (const e of got) for (const secret of ['hunter2', 'short-secret', 'abcdef-secret']) assert.ok(!e.includes(secret), e);
  // A schema error at a secret (a number where the key goes) describes the value without showing it.
  assert.deepEqual(errors(`${BASE}consumers:\n  alice:\n    credentials:\n      - { type: api-key, key: 12345678901234567 }\n`), [
    'sb.yaml:8:31: consumers.alice.credentials[0].key: expected a string, found a value that is not shown (a secret)',
  ]);
});

test('consumers: the same key, username or subject twice is an error naming both places, never the key', () => {
  const got = errors(
    `${BASE}consumers:
  alice:
    credentials:
      - { type: api-key, key: "\${K}" }
      - { type: basic, username: shared, password: "${HASH}" }
  bob:
    credentials:
      - { type: api-key, keyHash: "sha256:${sha256Hex(KEY)}" }
      - { type: basic, username: shared, password: "${HASH}" }
      - { type: jwt, subject: s }
      - { type: jwt, subject: s }
`,
    { K: KEY },
  );
  assert.deepEqual(got, [
    'sb.yaml:12:9: consumers.bob.credentials[0]: expected an API key no other credential has, found the same API key as consumers.alice.credentials[0]',
    'sb.yaml:13:34: consumers.bob.credentials[1].username: expected a username no other credential has, found the same username as consumers.alice.credentials[1].username',
    'sb.yaml:15:31: consumers.bob.credentials[3].subject: expected a subject no other credential has, found the same subject as consumers.bob.credentials[2].subject',
  ]);
  for (const e of got) assert.ok(!e.includes(KEY) && !e.includes(sha256Hex(KEY)), e);
});

test('consumers: argon2 PHC hashes parse; names and groups must be header-safe', () => {
  const phc = '$argon2id$v=19$m=19456,t=2,p=1$AQEBAQEBAQEBAQEBAQEBAQ$ufDirYhp4ddiSGjP9p2TFGN2hPhJdIsQq+QkSP8OqdA';
  const r = loadConfigText(`${BASE}consumers:\n  carol:\n    credentials:\n      - { type: basic, username: carol, password: "${phc}" }\n`, 'sb.yaml', {});
  assert.ok(r.ok);
  assert.equal(r.config.consumers.basic('carol')?.password.kind, 'argon2');
  assert.deepEqual(errors(`${BASE}consumers:\n  "a b":\n    groups: ["x,y"]\n`), [
    'sb.yaml:6:3: consumers.a b: expected a name of letters, digits and ._@- (it is sent upstream in a header), found "a b"',
    'sb.yaml:7:14: consumers.a b.groups[0]: expected a name of letters, digits and ._@- (it is sent upstream in a header), found "x,y"',
  ]);
});

const dir = mkdtempSync(join(tmpdir(), 'consumers-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function loadWithFile(main: string, files: Record<string, string>) {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'sb.yaml'), main);
  return loadConfigText(main, join(dir, 'sb.yaml'), {});
}

test('consumers.file: consumers from a YAML or JSON file join the inline ones', () => {
  const r = loadWithFile(`${BASE}consumers:\n  file: users.yaml\n  alice: { groups: [gold], credentials: [{ type: api-key, key: "${KEY}" }] }\n`, {
    'users.yaml': `bob:\n  groups: [silver]\n  credentials:\n    - { type: api-key, key: "${BOB_KEY}" }\n`,
  });
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  assert.equal(r.config.consumers.apiKey(BOB_KEY)?.credential, 'bob/api-key/0');
  assert.equal(r.config.consumers.apiKey(KEY)?.credential, 'alice/api-key/0');
  const json = loadWithFile(`${BASE}consumers: { file: users.json }\n`, {
    'users.json': JSON.stringify({ carol: { credentials: [{ type: 'basic', username: 'carol', password: HASH }] } }),
  });
  assert.ok(json.ok);
  assert.equal(json.config.consumers.basic('carol')?.credential, 'carol/basic/0');
});

test('consumers.file: problems inside the file name its line:column and key path, at consumers.file; secrets never shown', () => {
  const errs = (main: string, files: Record<string, string>): string[] => {
    const r = loadWithFile(main, files);
    return r.ok ? [] : r.errors.map((e) => e.message.replace(dir, '<dir>'));
  };
  assert.deepEqual(
    errs(`${BASE}consumers:\n  file: users.yaml\n  alice: { credentials: [{ type: api-key, key: "${KEY}" }] }\n`, {
      'users.yaml': `bob:\n  credentials:\n    - { type: basic, username: bob, password: "plain-secret-pw" }\n    - { type: api-key, key: "${KEY}" }\nalice: {}\n`,
    }),
    [
      "<dir>/sb.yaml:6:9: consumers.file: expected a bcrypt ($2b$…) or argon2 ($argon2id$v=19$…) hash of the password, never the password: `htpasswd -nbBC 12 USER 'PASSWORD'` prints USER:<bcrypt hash>, found users.yaml:3:47: bob.credentials[0].password: a plain-text password (not shown)",
      '<dir>/sb.yaml:7:3: consumers.alice: expected a consumer name defined once, found "alice" again (also at users.yaml:5:8 (alice))',
      '<dir>/sb.yaml:7:26: consumers.alice.credentials[0]: expected an API key no other credential has, found the same API key as users.yaml:4:7 (bob.credentials[1])',
    ],
  );
  assert.deepEqual(
    errs(`${BASE}consumers:\n  file: users.yaml\n`, { 'users.yaml': 'bob:\n  credentials:\n    - { type: api-key, key: 123456789012345678 }\n    - { type: apikey }\n' }),
    [
      '<dir>/sb.yaml:6:9: consumers.file: expected a string, found users.yaml:3:29: bob.credentials[0].key: a value that is not shown (a secret)',
      '<dir>/sb.yaml:6:9: consumers.file: expected one of "api-key", "basic", "jwt", found users.yaml:4:15: bob.credentials[1].type: "apikey" (did you mean "api-key"?)',
    ],
  );
  assert.deepEqual(errs(`${BASE}consumers:\n  file: absent.yaml\n  bob: some-path\n`, {}), [
    '<dir>/sb.yaml:6:9: consumers.file: expected a readable YAML or JSON file of consumers (a map of names to consumers), found "absent.yaml" (ENOENT)',
    '<dir>/sb.yaml:7:8: consumers.bob: expected a consumer (a map of groups, metadata, credentials); only the key `file` takes a path, found "some-path"',
  ]);
});
