/**
 * The running config as `/api/config` shows it: plain JSON (maps as objects, policy modules by
 * their type name), with every credential replaced by "[redacted]". Redaction is generic, so a
 * policy type added later is covered without knowing its shape:
 * - by key name: token, password, secret, clientSecret, apiKey, key (a TLS private key's PEM),
 *   authorization, cookie, credentials… (and any name ending in Secret, Password or Token);
 * - by value: the userinfo of any URL (`redis://user:pass@host` shows `redis://user:[redacted]@host`);
 * - PEM blocks that are not keys (certificates, CAs) are shown by size only: long and public.
 * Paths of certificate and key files are kept: they are not secrets and say what is loaded.
 */

const SECRET_NAME =
  /^(token|password|passwd|pass|secret|clientsecret|apikey|api[-_]key|privatekey|key|authorization|proxy-authorization|cookie|credential)s?$|(secret|password|token|apikey)s?$/i;

export const REDACTED = '[redacted]';

/** Whether a value under key `name` is a credential by its name. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/** `scheme://user:pass@host/…` with the password (or a lone user, which may be a token) redacted; other strings as they are. */
export function redactUrl(value: string): string {
  if (!value.includes('@') || !value.includes('://')) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  if (url.password === '' && url.username === '') return value;
  // Written by hand rather than through URL setters: they would percent-encode the brackets.
  const auth = url.password === '' ? REDACTED : `${url.username}:${REDACTED}`;
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, `$1${auth}@`);
}

/** The config (or a part of it) as redacted plain JSON. */
export function redact(value: unknown, name = ''): unknown {
  if (value === null || value === undefined) return value ?? null;
  if (typeof value === 'string') {
    if (name !== '' && isSecretName(name)) return REDACTED;
    if (value.startsWith('-----BEGIN')) return `[PEM, ${value.length} bytes]`;
    return redactUrl(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') return undefined;
  // A secret given as a structure (a list of tokens, a map of credentials) is hidden whole.
  if (name !== '' && isSecretName(name)) return REDACTED;
  if (Array.isArray(value)) return value.map((v) => redact(v) ?? null);
  if (value instanceof Map) return redactEntries([...value.entries()].map(([k, v]) => [String(k), v]));
  if (value instanceof Set) return [...value].map((v) => redact(v));
  if (value instanceof RegExp) return value.source;
  // A policy module (policies/filter.ts PolicyType): its type name, not its functions.
  const o = value as Record<string, unknown>;
  if (name === 'type' && typeof o.type === 'string' && typeof o.config === 'object') return o.type;
  return redactEntries(Object.entries(o));
}

function redactEntries(entries: Array<[string, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    const r = redact(v, k);
    if (r !== undefined) out[k] = r;
  }
  return out;
}
