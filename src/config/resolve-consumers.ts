/**
 * The `consumers` section resolved into the directory the authentication policies look credentials
 * up in (src/policies/consumers.ts): API keys hashed (SHA-256), password hashes parsed, and every
 * credential that would be ambiguous refused: the same API key, Basic username or token subject
 * on two credentials is an error naming both places (never the key).
 *
 * Secrets never reach a problem's `found`: a bad key or password is described ("a plain-text
 * password", "a key of 9 characters"), not shown.
 */
import { Consumers, parsePasswordHash, sha256Hex, type ConsumerSummary } from '../policies/consumers.ts';
import { show, type KeyPath, type Problem } from './problems.ts';
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

/** Resolves `raw.consumers` (absent: an empty directory). */
export function resolveConsumers(raw: RawConfig, problems: Problem[]): Consumers {
  const summaries = new Map<string, ConsumerSummary>();
  const entries = Object.entries(raw.consumers ?? {});
  for (const [name, c] of entries) {
    if (!NAME.test(name)) problems.push({ path: ['consumers', name], atKey: true, expected: NAME_TEXT, found: show(name) });
    c.groups?.forEach((g, i) => {
      if (!NAME.test(g)) problems.push({ path: ['consumers', name, 'groups', i], expected: NAME_TEXT, found: show(g) });
    });
    const ids = (c.credentials ?? []).map((cred, i) => `${name}/${cred.type}/${i}`);
    summaries.set(name, Object.freeze({ name, groups: Object.freeze([...(c.groups ?? [])]), metadata: Object.freeze({ ...(c.metadata ?? {}) }), credentialIds: ids }));
  }
  const directory = new Consumers(summaries);
  // Where each key hash, username and subject was first seen, for the duplicate errors.
  const keys = new Map<string, KeyPath>();
  const usernames = new Map<string, KeyPath>();
  const subjects = new Map<string, KeyPath>();
  const duplicate = (seen: Map<string, KeyPath>, id: string, at: KeyPath, what: string): boolean => {
    const first = seen.get(id);
    if (first === undefined) {
      seen.set(id, at);
      return false;
    }
    problems.push({ path: at, expected: `${what} no other credential has`, found: `the same ${what.replace(/^an? /, '')} as ${formatPath(first)}` });
    return true;
  };
  for (const [name, c] of entries) {
    c.credentials?.forEach((cred, i) => {
      const at: KeyPath = ['consumers', name, 'credentials', i];
      const id = `${name}/${cred.type}/${i}`;
      switch (cred.type) {
        case 'api-key': {
          let hash: string | undefined;
          if ((cred.key === undefined) === (cred.keyHash === undefined)) {
            problems.push({ path: at, expected: 'exactly one of key, keyHash', found: cred.key === undefined ? 'neither' : 'both' });
          } else if (cred.key !== undefined) {
            if (cred.key.length < MIN_KEY_LENGTH) {
              problems.push({
                path: [...at, 'key'],
                expected: `a key of at least ${MIN_KEY_LENGTH} characters (e.g. from \`openssl rand -hex 24\`)`,
                found: `a key of ${cred.key.length} characters`,
              });
            } else hash = sha256Hex(cred.key);
          } else {
            const m = KEY_HASH.exec(cred.keyHash ?? '');
            if (m === null)
              problems.push({ path: [...at, 'keyHash'], expected: '"sha256:" and 64 hex digits (the SHA-256 of the key)', found: 'something else (not shown)' });
            else hash = m[1].toLowerCase();
          }
          if (hash !== undefined && !duplicate(keys, hash, at, 'an API key')) directory.addKeyHash(hash, name, id);
          break;
        }
        case 'basic': {
          if (cred.username.includes(':'))
            problems.push({ path: [...at, 'username'], expected: 'a username without ":" (Basic credentials are user:password)', found: show(cred.username) });
          const hash = parsePasswordHash(cred.password);
          if (hash === undefined) {
            const plain = !cred.password.startsWith('$');
            problems.push({
              path: [...at, 'password'],
              expected:
                "a bcrypt ($2b$…) or argon2 ($argon2id$v=19$…) hash of the password, never the password: `htpasswd -nbBC 12 USER 'PASSWORD'` prints USER:<bcrypt hash>",
              found: plain ? 'a plain-text password (not shown)' : 'a hash in another format, or with parameters out of range (not shown)',
            });
          }
          if (!duplicate(usernames, cred.username, [...at, 'username'], 'a username') && hash !== undefined) directory.addPassword(cred.username, hash, name, id);
          break;
        }
        case 'jwt':
          if (!duplicate(subjects, `${cred.issuer ?? ''}\n${cred.subject}`, [...at, 'subject'], 'a subject')) directory.addSubject(cred.issuer, cred.subject, name, id);
          break;
      }
    });
  }
  return directory;
}

/** A policy's `anonymous` must name a consumer. */
export function anonymousConsumerProblems(raw: RawConfig, problems: Problem[]): void {
  const names = Object.keys(raw.consumers ?? {});
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
