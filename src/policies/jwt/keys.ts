/**
 * Where the `jwt` policy's verification keys come from: a JWKS fetched from the provider and
 * cached (RemoteKeys), or keys the config holds (a JWKS file, PEM keys: `createLocalJWKSet`).
 *
 * Keys come only from the config: a token's `jku`, `x5u`, `jwk` and `x5c` header parameters are
 * never read (jose's JWKS lookup picks a key by `kid`, `alg` and key type among the configured set).
 *
 * RemoteKeys is per worker and per config generation (each worker fetches the JWKS itself, at most
 * once per `cooldown` beyond the regular refresh): sharing one fetch among the workers of a machine
 * would save the provider a few requests every `cacheTtl`, and is left for later.
 */
import { createLocalJWKSet, errors, type FlattenedJWSInput, type JSONWebKeySet, type JWSHeaderParameters, type CryptoKey } from 'jose';
import { observeFetch } from '../events.ts';

/** The largest JWKS document accepted. */
export const MAX_JWKS_BYTES = 1024 * 1024;

/** What jwtVerify calls to find the key of a token. */
export type KeyLookup = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** The provider's keys could not be fetched (and none usable are cached): 503 AUTH_UNAVAILABLE, not 401. */
export class KeysUnavailable extends Error {}

export interface RemoteKeysOptions {
  /** The policy's name, for the metrics of its fetches. */
  readonly policy: string;
  readonly url: string;
  /** ms a fetched JWKS is fresh; refreshed in the background from 3/4 of it, usable until twice it. */
  readonly cacheTtl: number;
  /** ms between two fetches caused by an unknown `kid` or after a failure. */
  readonly cooldown: number;
  /** ms a fetch may take. */
  readonly timeout: number;
}

/** A JWKS document fetched with a time and size limit; throws on anything else. */
async function fetchJwks(url: string, timeout: number): Promise<JSONWebKeySet> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeout), headers: { accept: 'application/jwk-set+json, application/json' } });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`the JWKS answered status ${res.status}`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_JWKS_BYTES) throw new Error(`the JWKS is larger than ${MAX_JWKS_BYTES} bytes`);
    chunks.push(chunk);
  }
  const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as JSONWebKeySet;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.keys)) throw new Error('the JWKS has no "keys" array');
  return doc;
}

/** A provider's JWKS, fetched on first use, cached, refreshed ahead of expiry and on an unknown `kid`. */
export class RemoteKeys {
  readonly #options: RemoteKeysOptions;
  readonly #warn: (obj: object, msg: string) => void;
  #lookup: KeyLookup | undefined;
  /** When the keys in #lookup were fetched (ms since the epoch). */
  #fetchedAt = Number.NEGATIVE_INFINITY;
  /** When the last fetch started, successful or not. */
  #attemptAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;
  /** Fetches started (for tests and diagnostics). */
  fetches = 0;

  constructor(options: RemoteKeysOptions, warn: (obj: object, msg: string) => void) {
    this.#options = options;
    this.#warn = warn;
  }

  /** The key for a token (a jwtVerify key lookup). Throws KeysUnavailable when no usable keys can be had. */
  readonly key: KeyLookup = async (header, token) => {
    const { cacheTtl, cooldown } = this.#options;
    const now = Date.now();
    const age = now - this.#fetchedAt;
    if (this.#lookup === undefined || age >= 2 * cacheTtl) {
      // Nothing usable: wait for a fetch, unless one failed within the cooldown.
      if (this.#pending !== undefined || now - this.#attemptAt >= cooldown) await this.#refresh();
      if (this.#lookup === undefined || Date.now() - this.#fetchedAt >= 2 * cacheTtl) throw new KeysUnavailable('the JWKS could not be fetched');
    } else if (age >= 0.75 * cacheTtl && now - this.#attemptAt >= Math.min(cooldown, 0.25 * cacheTtl)) {
      void this.#refresh(); // ahead of expiry, in the background
    }
    const lookup = this.#lookup;
    try {
      return await lookup(header, token);
    } catch (err) {
      // An unknown kid: the provider may have rotated its keys. Fetch again, at most once per cooldown.
      if (!(err instanceof errors.JWKSNoMatchingKey) || (this.#pending === undefined && Date.now() - this.#attemptAt < cooldown)) throw err;
      await this.#refresh();
      if (this.#lookup === lookup) throw err;
      return await this.#lookup(header, token);
    }
  };

  #refresh(): Promise<void> {
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #fetch(): Promise<void> {
    this.#attemptAt = Date.now();
    this.fetches++;
    try {
      const doc = await observeFetch(this.#options.policy, 'jwks', () => fetchJwks(this.#options.url, this.#options.timeout));
      this.#lookup = createLocalJWKSet(doc);
      this.#fetchedAt = Date.now();
    } catch (err) {
      this.#warn({ url: this.#options.url, err: err instanceof Error ? err.message : String(err) }, 'jwt: fetching the JWKS failed');
    }
  }
}
