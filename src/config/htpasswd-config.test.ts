/**
 * `basic-auth`'s `htpasswd`: the file's lines parsed (bcrypt and argon2 only), its users made
 * consumers, and every refused line or clash reported at the policy's `htpasswd` with the file's
 * line, never the hash.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { loadConfigText } from './load-text.ts';
import { parseHtpasswd } from './htpasswd-file.ts';
import { redact } from '../admin/redact.ts';

const BCRYPT = bcrypt.hashSync('pw', 4).replace(/^\$2b\$/, '$2y$');
const ARGON2 = '$argon2id$v=19$m=19456,t=2,p=1$AQEBAQEBAQEBAQEBAQEBAQ$ufDirYhp4ddiSGjP9p2TFGN2hPhJdIsQq+QkSP8OqdA';
const APR1 = '$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/';
const SHA = '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=';

test('parseHtpasswd: comments, blank lines, CRLF and later fields as Apache reads them; each other kind refused by line', () => {
  const { users, problems } = parseHtpasswd(
    `# made by htpasswd -B\r\nbob:${BCRYPT}\r\n\r\ncarol:${ARGON2}:a comment field\n  \ndave:${APR1}\nerin:${SHA}\nfrank:plaintext\ngina:abcdefghijklm\n:${BCRYPT}\nnocolon\nhal:$2y$04$short\nivy:\n`,
  );
  assert.deepEqual(
    users.map((u) => [u.username, u.password.kind, u.line]),
    [
      ['bob', 'bcrypt', 2],
      ['carol', 'argon2', 4],
    ],
  );
  assert.deepEqual(problems, [
    { line: 6, found: 'the entry of "dave" is an MD5 ($apr1$) hash (not shown)' },
    { line: 7, found: 'the entry of "erin" is a SHA-1 ({SHA}) hash (not shown)' },
    { line: 8, found: 'the entry of "frank" is a plain-text password, or a hash of a kind Switchboard does not verify (not shown)' },
    { line: 9, found: 'the entry of "gina" is a crypt() (DES) hash, or a plain-text password (not shown)' },
    { line: 10, found: 'an entry without a username' },
    { line: 11, found: 'a line that is not user:hash (not shown)' },
    { line: 12, found: 'the entry of "hal" is a bcrypt hash that does not parse, or with a cost out of range (not shown)' },
    { line: 13, found: 'the entry of "ivy" is an empty password (not shown)' },
  ]);
});

const dir = mkdtempSync(join(tmpdir(), 'htpasswd-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function load(main: string, files: Record<string, string>) {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'sb.yaml'), main);
  const r = loadConfigText(main, join(dir, 'sb.yaml'), {});
  return { r, errors: r.ok ? [] : r.errors.map((e) => e.message.replace(dir, '<dir>')) };
}

const BASE = `listeners:
  web: { address: "127.0.0.1:8080", protocol: http }
`;

test('the users of an htpasswd file become consumers, kept under the file for the policies that name it; /api/config shows no hash', () => {
  const { r } = load(
    `${BASE}consumers:\n  alice: {}\npolicies:\n  login: { type: basic-auth, htpasswd: users.htpasswd }\n  again: { type: basic-auth, htpasswd: ./users.htpasswd }\n`,
    {
      'users.htpasswd': `bob:${BCRYPT}\ncarol:${ARGON2}\n`,
    },
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.map((e) => e.message).join('\n'));
  const d = r.config.consumers;
  const users = d.htpasswd(join(dir, 'users.htpasswd'));
  assert.deepEqual([...(users?.keys() ?? [])], ['bob', 'carol']);
  assert.deepEqual(users?.get('bob')?.consumer, { name: 'bob', groups: [], metadata: {} });
  assert.equal(users?.get('bob')?.credential, 'bob/htpasswd');
  assert.equal(d.consumer('carol')?.name, 'carol');
  assert.equal(d.basic('bob'), undefined, 'not a Basic credential of every basic-auth policy');
  const shown = JSON.stringify(redact(r.config));
  assert.ok(shown.includes('bob/htpasswd'), shown);
  for (const secret of [BCRYPT, ARGON2.slice(40)]) assert.ok(!shown.includes(secret), 'a hash in /api/config');
});

test('refused lines, clashes with consumers and with other files, a missing file: errors at the policy’s htpasswd naming the file’s line, never a hash', () => {
  const { errors } = load(
    `${BASE}consumers:
  alice: {}
  x: { credentials: [{ type: basic, username: shared, password: "${BCRYPT}" }] }
policies:
  login: { type: basic-auth, htpasswd: users.htpasswd }
  other: { type: basic-auth, htpasswd: other.htpasswd }
  gone: { type: basic-auth, htpasswd: missing.htpasswd }
`,
    {
      'users.htpasswd': `bob:${BCRYPT}\ndave:${APR1}\nalice:${BCRYPT}\nshared:${BCRYPT}\nbob:${BCRYPT}\n"odd name":${BCRYPT}\n`,
      'other.htpasswd': `bob:${BCRYPT}\n`,
    },
  );
  const how = 'expected a bcrypt ($2y$…) or argon2 ($argon2id$…) hash on every line: make the entry with `htpasswd -B users.htpasswd USER`';
  assert.deepEqual(errors, [
    `<dir>/sb.yaml:7:40: policies.login.htpasswd: ${how} (or \`htpasswd -nbBC 12 USER 'PASSWORD'\`), found users.htpasswd:2: the entry of "dave" is an MD5 ($apr1$) hash (not shown)`,
    '<dir>/sb.yaml:7:40: policies.login.htpasswd: expected a username that is not also the name of a consumer, found users.htpasswd:3: "alice", also defined at consumers.alice',
    '<dir>/sb.yaml:7:40: policies.login.htpasswd: expected a username defined once, found users.htpasswd:5: "bob" again (also at users.htpasswd:1)',
    '<dir>/sb.yaml:7:40: policies.login.htpasswd: expected a username of letters, digits and ._@- (it becomes a consumer name, sent upstream in a header), found users.htpasswd:6: "\\"odd name\\""',
    '<dir>/sb.yaml:7:40: policies.login.htpasswd: expected a username no Basic credential of consumers has, found users.htpasswd:4: "shared", also the username of consumers.x.credentials[0].username',
    '<dir>/sb.yaml:8:40: policies.other.htpasswd: expected a username defined once, found other.htpasswd:1: "bob" again (also at users.htpasswd:1)',
    '<dir>/sb.yaml:9:39: policies.gone.htpasswd: expected a readable htpasswd file (user:hash lines), found "missing.htpasswd" (ENOENT)',
  ]);
  for (const e of errors) for (const hash of [BCRYPT, APR1]) assert.ok(!e.includes(hash), e);
});
