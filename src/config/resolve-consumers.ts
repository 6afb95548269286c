/**
 * The `consumers` section resolved into the directory the authentication policies look credentials
 * up in (src/policies/consumers.ts): API keys hashed (SHA-256), password hashes parsed, and every
 * credential that would be ambiguous refused: the same API key, Basic username or token subject
 * on two credentials is an error naming both places (never the key).
 *
 * Also resolved here, since they are consumers too:
 * - each consumer's `limits` (per-consumer overrides of counting policies): the name must be a
 *   policy whose type takes overrides (`PolicyType.overrideKeys`), with only the keys that type
 *   allows;
 * - the users of the htpasswd files that `basic-auth` policies name (`htpasswd`): each becomes a
 *   consumer named by its username, without groups. A username that is also a consumer's name, a
 *   Basic username of `consumers`, or a user of another htpasswd file is an error naming both places.
 *
 * Secrets never reach a problem's `found`: a bad key or password is described ("a plain-text
 * password", "a key of 9 characters"), not shown.
 */
import { Consumers, parsePasswordHash, sha256Hex, type ConsumerSummary } from '../policies/consumers.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
import type { RawConsumer } from './consumers-schema.ts';
import { readConsumersFile, type ConsumerSource } from './consumers-file.ts';
import { overridable, resolveLimits } from './consumer-limits.ts';
import { readHtpasswdFiles, type HtpasswdUser } from './htpasswd-file.ts';
import type { RawConfig } from './schema.ts';
import { suggest } from './suggest.ts';

/** Consumer and group names: they travel in headers (X-Consumer-Name, a comma-separated X-Consumer-Groups). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;
const NAME_TEXT = 'a name of letters, digits and ._@- (it is sent upstream in a header)';
/** Shortest `key` accepted: looking keys up by their hash is safe only for keys that cannot be guessed. */
export const MIN_KEY_LENGTH = 16;
const KEY_HASH = /^sha256:([0-9a-fA-F]{64})$/;

/** `consumers.alice.credentials[0]` (as the loader writes key paths; load.ts would make an import cycle). */
function formatPath(path: KeyPath): string {
  return path.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('');
}

/** The config's own `consumers` section as a source. */
function inlineSource(problems: Problem[]): ConsumerSource {
  return {
    report: (rel, p) => problems.push({ ...p, path: ['consumers', ...rel] }),
    where: (rel) => formatPath(['consumers', ...rel]),
  };
}

interface Entry {
  name: string;
  consumer: RawConsumer;
  src: ConsumerSource;
}

/**
 * Resolves `raw.consumers` (absent: an empty directory), with the consumers of `consumers.file`
 * (read relative to `baseDir`, on every load and reload).
 */
export function resolveConsumers(raw: RawConfig, problems: Problem[], baseDir = process.cwd()): Consumers {
  const inline = inlineSource(problems);
  const entries: Entry[] = [];
  for (const [name, c] of Object.entries(raw.consumers ?? {})) {
    if (typeof c === 'string') {
      if (name !== 'file') {
        inline.report([name], { expected: 'a consumer (a map of groups, metadata, credentials); only the key `file` takes a path', found: show(c) });
      } else {
        for (const e of readConsumersFile(c, baseDir, problems)) entries.push(e);
      }
      continue;
    }
    entries.push({ name, consumer: c, src: inline });
  }
  const summaries = new Map<string, ConsumerSummary>();
  const defined = new Map<string, ConsumerSource>();
  const policies = overridable(raw);
  for (const { name, consumer: c, src } of entries) {
    if (defined.has(name))
      src.report([name], { atKey: true, expected: 'a consumer name defined once', found: `${show(name)} again (also at ${defined.get(name)!.where([name])})` });
    defined.set(name, src);
    if (!NAME.test(name)) src.report([name], { atKey: true, expected: NAME_TEXT, found: show(name) });
    c.groups?.forEach((g, i) => {
      if (!NAME.test(g)) src.report([name, 'groups', i], { expected: NAME_TEXT, found: show(g) });
    });
    const ids = (c.credentials ?? []).map((cred, i) => `${name}/${cred.type}/${i}`);
    const limits = resolveLimits(raw, policies, name, c, src, problems);
    summaries.set(
      name,
      Object.freeze({
        name,
        groups: Object.freeze([...(c.groups ?? [])]),
        metadata: Object.freeze({ ...(c.metadata ?? {}) }),
        credentialIds: ids,
        ...(limits === undefined ? {} : { limits }),
      }),
    );
  }
  // The users of htpasswd files are consumers too: named by the username, in no group.
  const htpasswd = readHtpasswdFiles(raw, baseDir, problems);
  /** Username → where an htpasswd file defines it (`users.htpasswd:3`). */
  const fileUsers = new Map<string, string>();
  for (const source of htpasswd.values()) {
    const accepted: HtpasswdUser[] = [];
    for (const u of source.users) {
      const here = `${source.written}:${u.line}`;
      const report = (expected: string, found: string): void => {
        problems.push({ path: ['policies', source.policy, 'htpasswd'], expected, found: `${here}: ${found}` });
      };
      if (!NAME.test(u.username)) {
        report(`a username of letters, digits and ._@- (it becomes a consumer name, sent upstream in a header)`, show(u.username));
      } else if (fileUsers.has(u.username)) {
        report('a username defined once', `${show(u.username)} again (also at ${fileUsers.get(u.username)})`);
      } else if (defined.has(u.username)) {
        report('a username that is not also the name of a consumer', `${show(u.username)}, also defined at ${defined.get(u.username)!.where([u.username])}`);
      } else {
        fileUsers.set(u.username, here);
        summaries.set(u.username, Object.freeze({ name: u.username, groups: Object.freeze([]), metadata: Object.freeze({}), credentialIds: [`${u.username}/htpasswd`] }));
        accepted.push(u);
      }
    }
    source.users = accepted;
  }
  const directory = new Consumers(summaries);
  // Where each key hash, username and subject was first seen, for the duplicate errors.
  type Seen = Map<string, string>;
  const keys: Seen = new Map();
  const usernames: Seen = new Map();
  const subjects: Seen = new Map();
  const duplicate = (seen: Seen, id: string, src: ConsumerSource, at: KeyPath, what: string): boolean => {
    const first = seen.get(id);
    if (first === undefined) {
      seen.set(id, src.where(at));
      return false;
    }
    src.report(at, { expected: `${what} no other credential has`, found: `the same ${what.replace(/^an? /, '')} as ${first}` });
    return true;
  };
  for (const { name, consumer: c, src } of entries) {
    c.credentials?.forEach((cred, i) => {
      const at: KeyPath = [name, 'credentials', i];
      const id = `${name}/${cred.type}/${i}`;
      switch (cred.type) {
        case 'api-key': {
          let hash: string | undefined;
          if ((cred.key === undefined) === (cred.keyHash === undefined)) {
            src.report(at, { expected: 'exactly one of key, keyHash', found: cred.key === undefined ? 'neither' : 'both' });
          } else if (cred.key !== undefined) {
            if (cred.key.length < MIN_KEY_LENGTH) {
              src.report([...at, 'key'], {
                expected: `a key of at least ${MIN_KEY_LENGTH} characters (e.g. from \`openssl rand -hex 24\`)`,
                found: `a key of ${cred.key.length} characters`,
              });
            } else hash = sha256Hex(cred.key);
          } else {
            const m = KEY_HASH.exec(cred.keyHash ?? '');
            if (m === null) src.report([...at, 'keyHash'], { expected: '"sha256:" and 64 hex digits (the SHA-256 of the key)', found: 'something else (not shown)' });
            else hash = m[1].toLowerCase();
          }
          if (hash !== undefined && !duplicate(keys, hash, src, at, 'an API key')) directory.addKeyHash(hash, name, id);
          break;
        }
        case 'basic': {
          if (cred.username.includes(':'))
            src.report([...at, 'username'], { expected: 'a username without ":" (Basic credentials are user:password)', found: show(cred.username) });
          const hash = parsePasswordHash(cred.password);
          if (hash === undefined) {
            const plain = !cred.password.startsWith('$');
            src.report([...at, 'password'], {
              expected:
                "a bcrypt ($2b$…) or argon2 ($argon2id$v=19$…) hash of the password, never the password: `htpasswd -nbBC 12 USER 'PASSWORD'` prints USER:<bcrypt hash>",
              found: plain ? 'a plain-text password (not shown)' : 'a hash in another format, or with parameters out of range (not shown)',
            });
          }
          if (!duplicate(usernames, cred.username, src, [...at, 'username'], 'a username') && hash !== undefined) directory.addPassword(cred.username, hash, name, id);
          break;
        }
        case 'jwt':
          if (!duplicate(subjects, `${cred.issuer ?? ''}\n${cred.subject}`, src, [...at, 'subject'], 'a subject'))
            directory.addSubject(cred.issuer, cred.subject, name, id);
          break;
      }
    });
  }
  for (const [file, source] of htpasswd) {
    for (const u of source.users) {
      const first = usernames.get(u.username);
      if (first !== undefined) {
        problems.push({
          path: ['policies', source.policy, 'htpasswd'],
          expected: 'a username no Basic credential of consumers has',
          found: `${source.written}:${u.line}: ${show(u.username)}, also the username of ${first}`,
        });
      } else directory.addHtpasswd(file, u.username, u.password);
    }
  }
  return directory;
}

/** A policy's `anonymous` must name a consumer. */
export function anonymousConsumerProblems(raw: RawConfig, consumers: Consumers, problems: Problem[]): void {
  const names = [...consumers.consumers.keys()];
  for (const [policy, entry] of Object.entries(raw.policies ?? {})) {
    const anonymous = (entry as { anonymous?: unknown }).anonymous;
    if (typeof anonymous !== 'string' || names.includes(anonymous)) continue;
    problems.push({
      path: ['policies', policy, 'anonymous'],
      expected: names.length ? `the name of a consumer (one of: ${names.join(', ')})` : 'the name of a consumer (none are defined under consumers)',
      found: show(anonymous),
      hint: suggest(anonymous, names),
    });
  }
}
