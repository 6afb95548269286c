/**
 * htpasswd files (`basic-auth`'s `htpasswd`): Apache's `user:hash` lines, read on every config load
 * and reload in the process that resolves the config (each worker reads it too), as
 * `consumers.file` is. Only hashes Switchboard verifies are accepted: bcrypt (`$2a$`, `$2b$`, `$2y$`,
 * what `htpasswd -B` writes) and argon2 PHC strings. MD5 (`$apr1$`), SHA-1 (`{SHA}`), crypt() and
 * plain-text entries are refused at load, each problem naming the file's line and the user (never
 * the hash) and saying how to make a bcrypt entry.
 *
 * As Apache's mod_authn_file reads them: blank lines and lines starting with `#` are skipped,
 * trailing white space is dropped, the hash ends at the next `:` (later fields are ignored).
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { PasswordHash } from '../policies/filter.ts';
import { parsePasswordHash } from '../policies/consumers.ts';
import type { KeyPath, Problem } from './problems.ts';
import type { RawConfig } from './schema.ts';

/** One accepted entry. */
export interface HtpasswdUser {
  readonly username: string;
  readonly password: PasswordHash;
  /** 1-based line in the file. */
  readonly line: number;
}

/** One refused line: its number and what is wrong, in words that never show the hash. */
export interface HtpasswdProblem {
  readonly line: number;
  readonly found: string;
}

/** What each hash format is called in a problem (the hash itself is never shown). */
function describe(hash: string): string {
  if (hash === '') return 'an empty password';
  if (hash.startsWith('$apr1$')) return 'an MD5 ($apr1$) hash';
  if (hash.startsWith('{SHA}')) return 'a SHA-1 ({SHA}) hash';
  if (/^\$[156]\$/.test(hash)) return 'a crypt() hash (MD5 or SHA-2)';
  if (/^\$2[aby]\$/.test(hash)) return 'a bcrypt hash that does not parse, or with a cost out of range';
  if (hash.startsWith('$argon2')) return 'an argon2 hash that does not parse, or with parameters out of range';
  if (/^[./0-9A-Za-z]{13}$/.test(hash)) return 'a crypt() (DES) hash, or a plain-text password';
  return 'a plain-text password, or a hash of a kind Switchboard does not verify';
}

/** The entries of an htpasswd file's text, and the lines refused. */
export function parseHtpasswd(text: string): { users: HtpasswdUser[]; problems: HtpasswdProblem[] } {
  const users: HtpasswdUser[] = [];
  const problems: HtpasswdProblem[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) {
      problems.push({ line: i + 1, found: colon === 0 ? 'an entry without a username' : 'a line that is not user:hash (not shown)' });
      continue;
    }
    const username = line.slice(0, colon);
    const rest = line.slice(colon + 1);
    const end = rest.indexOf(':');
    const hash = end === -1 ? rest : rest.slice(0, end);
    const password = parsePasswordHash(hash);
    if (password === undefined) problems.push({ line: i + 1, found: `the entry of ${JSON.stringify(username)} is ${describe(hash)} (not shown)` });
    else users.push({ username, password, line: i + 1 });
  }
  return { users, problems };
}

/** The text of an htpasswd file, or the reason it cannot be read (an errno code). */
function readHtpasswd(file: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
  }
}

/** An htpasswd file named by one or more basic-auth policies: where the first names it, and its users. */
export interface HtpasswdSource {
  /** The name of the first policy that names it (problems are reported at its `htpasswd`). */
  policy: string;
  /** As written in the config (what problems call it). */
  written: string;
  users: HtpasswdUser[];
}

/** Reads every htpasswd file the policies name (each once, however many policies name it), by absolute path. */
export function readHtpasswdFiles(raw: RawConfig, baseDir: string, problems: Problem[]): Map<string, HtpasswdSource> {
  const out = new Map<string, HtpasswdSource>();
  for (const [policy, entry] of Object.entries(raw.policies ?? {})) {
    const written = (entry as { htpasswd?: unknown }).htpasswd;
    if (typeof written !== 'string') continue;
    const file = resolvePath(baseDir, written);
    if (out.has(file)) continue;
    const at: KeyPath = ['policies', policy, 'htpasswd'];
    const read = readHtpasswd(file);
    if ('error' in read) {
      problems.push({ path: at, expected: 'a readable htpasswd file (user:hash lines)', found: `${JSON.stringify(written)} (${read.error})` });
      continue;
    }
    const parsed = parseHtpasswd(read.text);
    for (const p of parsed.problems) {
      problems.push({
        path: at,
        expected: `a bcrypt ($2y$…) or argon2 ($argon2id$…) hash on every line: make the entry with \`htpasswd -B ${written} USER\` (or \`htpasswd -nbBC 12 USER 'PASSWORD'\`)`,
        found: `${written}:${p.line}: ${p.found}`,
      });
    }
    out.set(file, { policy, written, users: parsed.users });
  }
  return out;
}
