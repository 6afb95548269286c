/**
 * The consumer directory: who may call, by credential. Built from the config's `consumers` section
 * (src/config/resolve-consumers.ts) once per config load, shared read-only by the generations
 * built from that load and handed to every policy through `PolicyDeps.consumers`. Per worker: each
 * worker resolves the config itself, so each holds its own copy (nothing in it changes between
 * loads, so the copies agree without talking).
 *
 * Secrets are kept only as hashes: an API key as its SHA-256, a Basic password as the bcrypt or
 * argon2 hash the config gave. The lookup maps live in private fields, so the admin API's
 * `/api/config` (which walks enumerable fields) never shows them; what it shows is `consumers`:
 * names, groups, metadata, credential ids and limits.
 *
 * Also here: the consumers' own limits by policy (`consumers.NAME.limits`, from the summaries), and
 * the Basic credentials of htpasswd files (`basic-auth`'s `htpasswd`), kept per file so that only
 * the policies naming a file accept its users.
 */
import { hash } from 'node:crypto';
import type { Consumer, ConsumerDirectory, CredentialMatch, LimitOverride, PasswordCredential, PasswordHash } from './filter.ts';

/** A consumer as `/api/config` shows it: no secret, not even a hash. */
export interface ConsumerSummary extends Consumer {
  readonly credentialIds: readonly string[];
  /** Its own limits, by policy name (`consumers.NAME.limits`); absent when it has none. */
  readonly limits?: Readonly<Record<string, LimitOverride>>;
}

/** SHA-256 of a UTF-8 string, lower-case hex: how API keys are stored and looked up. */
export function sha256Hex(text: string): string {
  // The one-shot hash: a third of createHash's cost, on every request of an api-key route.
  return hash('sha256', text, 'hex');
}

const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
const ARGON2 = /^\$(argon2id|argon2i|argon2d)\$v=(\d+)\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/**
 * A bcrypt (`$2a$`, `$2b$`, `$2y$`) or argon2 PHC (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) string,
 * parsed; undefined for anything else (a plain password among them). argon2 parameters are bounded
 * so that a config cannot make one verification take the machine (m ≤ 1 GiB, t ≤ 100, p ≤ 64).
 */
export function parsePasswordHash(text: string): PasswordHash | undefined {
  if (BCRYPT.test(text)) return { kind: 'bcrypt', hash: text };
  const m = ARGON2.exec(text);
  if (m === null || m[2] !== '19') return undefined;
  const memory = Number(m[3]);
  const passes = Number(m[4]);
  const parallelism = Number(m[5]);
  const salt = Buffer.from(m[6], 'base64');
  const tag = Buffer.from(m[7], 'base64');
  if (parallelism < 1 || parallelism > 64 || passes < 1 || passes > 100 || memory < 8 * parallelism || memory > 1024 * 1024) return undefined;
  if (salt.length < 8 || tag.length < 4) return undefined;
  return { kind: 'argon2', algorithm: m[1] as 'argon2id', memory, passes, parallelism, salt, tag };
}

/** The directory of one config load. Empty when the config has no `consumers`. */
export class Consumers implements ConsumerDirectory {
  /** What `/api/config` shows: consumers by name with their credential ids. */
  readonly consumers: ReadonlyMap<string, ConsumerSummary>;
  /**
   * SHA-256 over every credential as stored (key hashes, password hashes, subjects), in config
   * order: a reload compares it to tell that a credential changed although its id did not (the
   * "config reloaded" line). A digest of digests: it reveals nothing of a credential.
   */
  credentialDigest = '';
  readonly #byName = new Map<string, Consumer>();
  /** SHA-256 hex of an API key → its credential. */
  readonly #byKeyHash = new Map<string, CredentialMatch>();
  /** Basic username (exact, case-sensitive) → its credential. */
  readonly #byUsername = new Map<string, PasswordCredential>();
  /** `<issuer or ''>\n<subject>` of a jwt credential → its credential. */
  readonly #bySubject = new Map<string, CredentialMatch>();
  /** Policy name → consumer name → that consumer's override (only policies some consumer overrides). */
  readonly #limits = new Map<string, Map<string, LimitOverride>>();
  /** Absolute path of an htpasswd file → username → its credential. */
  readonly #htpasswd = new Map<string, Map<string, PasswordCredential>>();

  constructor(consumers: ReadonlyMap<string, ConsumerSummary> = new Map()) {
    this.consumers = consumers;
    for (const c of consumers.values()) {
      this.#byName.set(c.name, Object.freeze({ name: c.name, groups: c.groups, metadata: c.metadata }));
      for (const [policy, override] of Object.entries(c.limits ?? {})) {
        const byConsumer = this.#limits.get(policy) ?? new Map<string, LimitOverride>();
        this.#limits.set(policy, byConsumer);
        byConsumer.set(c.name, override);
      }
    }
  }

  /** Adds an API key credential by the SHA-256 hex of the key (resolve checks for duplicates first). */
  addKeyHash(hashHex: string, consumer: string, credential: string): void {
    this.#byKeyHash.set(hashHex, { consumer: this.#consumer(consumer), credential });
    this.#digest(`key ${credential} ${hashHex}`);
  }

  addPassword(username: string, password: PasswordHash, consumer: string, credential: string): void {
    this.#byUsername.set(username, { consumer: this.#consumer(consumer), credential, password });
    this.#digest(`basic ${credential} ${username} ${JSON.stringify(password)}`);
  }

  addSubject(issuer: string | undefined, subject: string, consumer: string, credential: string): void {
    this.#bySubject.set(`${issuer ?? ''}\n${subject}`, { consumer: this.#consumer(consumer), credential });
    this.#digest(`jwt ${credential} ${issuer ?? ''} ${subject}`);
  }

  /**
   * Adds the entry of `username` in the htpasswd file `file` (absolute path); the consumer of the
   * same name must exist (resolve adds one per user, and checks for clashes first). Its credential
   * id is `<username>/htpasswd`.
   */
  addHtpasswd(file: string, username: string, password: PasswordHash): void {
    const users = this.#htpasswd.get(file) ?? new Map<string, PasswordCredential>();
    this.#htpasswd.set(file, users);
    const credential = `${username}/htpasswd`;
    users.set(username, { consumer: this.#consumer(username), credential, password });
    this.#digest(`htpasswd ${file} ${username} ${JSON.stringify(password)}`);
  }

  #digest(entry: string): void {
    this.credentialDigest = sha256Hex(`${this.credentialDigest}\n${entry}`);
  }

  #consumer(name: string): Consumer {
    const c = this.#byName.get(name);
    if (c === undefined) throw new Error(`no consumer named ${name}`);
    return c;
  }

  /** The consumer named `name` (an `anonymous:` option), or undefined. */
  consumer(name: string): Consumer | undefined {
    return this.#byName.get(name);
  }

  /**
   * The credential of an API key presented by a client, or undefined. The key is hashed (SHA-256)
   * and the hash looked up: the lookup's timing depends only on the hash, which an attacker cannot
   * steer towards a stored one (finding a key with a chosen hash prefix is a preimage search), so
   * no comparison of the secret itself can leak through timing.
   */
  apiKey(presented: string): CredentialMatch | undefined {
    return this.#byKeyHash.get(sha256Hex(presented));
  }

  /** The Basic credential of a username, or undefined. */
  basic(username: string): PasswordCredential | undefined {
    return this.#byUsername.get(username);
  }

  /** The jwt credential of a token's subject (from `issuer`, or any issuer when the credential names none). */
  subject(issuer: string, subject: string): CredentialMatch | undefined {
    return this.#bySubject.get(`${issuer}\n${subject}`) ?? this.#bySubject.get(`\n${subject}`);
  }

  /** The overrides of the policy named `policy` (consumer → override), or undefined when no consumer has one. */
  limits(policy: string): ReadonlyMap<string, LimitOverride> | undefined {
    return this.#limits.get(policy);
  }

  /** The users of the htpasswd file at `file` (absolute path), or undefined when no policy names it. */
  htpasswd(file: string): ReadonlyMap<string, PasswordCredential> | undefined {
    return this.#htpasswd.get(file);
  }

  /** Whether any consumer is defined. */
  get size(): number {
    return this.#byName.size;
  }
}
