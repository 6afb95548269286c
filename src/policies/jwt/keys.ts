/**
 * Where the `jwt` policy's verification keys come from: a JWKS fetched from the provider and
 * cached (RemoteKeys), or keys the config holds (a JWKS file, PEM keys: `createLocalJWKSet`).
 *
 * Keys come only from the config: a token's `jku`, `x5u`, `jwk` and `x5c` header parameters are
 * never read (jose's JWKS lookup picks a key by `kid`, `alg` and key type among the configured set).
 *
 * State, and its scope:
 * - The JWKS document is **per machine**: one record in the machine's shared state (the
 *   supervisor's with workers, the process's alone), keyed by a hash of the URL, with the time it
 *   was fetched. Only one worker fetches at a time (a lease of a one-slot semaphore); the others
 *   wait for the record (a bounded poll while a request needs the keys) or read it again on their
 *   next request. Every worker, and every config generation (a reload), uses what is there, so the
 *   provider sees one fetch per `cacheTtl` per machine, and one refetch per rotation.
 * - When the last fetch started (the cooldown's marker) is **per machine** too, so N workers
 *   meeting a hostile `kid`, or a provider that fails, fetch once per `cooldown` between them, not
 *   N times.
 * - Not per fleet, even with `state.backend: redis`: keys that verify tokens are not handed to
 *   Redis, where whoever can write could add a key of their own and mint tokens every instance
 *   accepts, and the fleet would save the provider only one request per machine per `cacheTtl`.
 *   (Times are compared with the machine's one clock; across a fleet they would need Redis's.)
 * - The parsed keys are **per worker and per generation** (this object), so that the hot path (a
 *   known `kid`, keys younger than ¾ `cacheTtl`) never touches the state.
 * - While the state cannot be reached, its reads find nothing and its writes are dropped (the
 *   `failOpen` view): each worker then fetches for itself, as if nothing were shared.
 *
 * The record holds public keys only: symmetric (`oct`) keys and private members are removed
 * before anything is kept (an HMAC key cannot verify a token of this policy anyway).
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type * as Jose from 'jose';
import type { FlattenedJWSInput, JSONWebKeySet, JWSHeaderParameters, CryptoKey, JWK } from 'jose';
import { lazyModule } from '../../util/lazy-module.ts';

const jose = lazyModule<typeof Jose>('jose');
import type { PolicyStateView, StateValue } from '../filter.ts';
import { observeFetch } from '../events.ts';

/** The largest JWKS document accepted. */
export const MAX_JWKS_BYTES = 1024 * 1024;

/** ms a lease to fetch outlives the fetch's own timeout (the record is written under it). */
const LEASE_MARGIN = 2000;
/** ms between two reads of the record while another worker fetches and a request waits. */
const POLL_MS = 20;

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

/** Why keys are wanted: none usable; ¾ of `cacheTtl` passed; a token's `kid` is not among them. */
type Reason = 'missing' | 'ahead' | 'kid';

/** The JWKS record in the shared state. */
interface KeysRecord {
  readonly url: string;
  /** ms since the epoch (the machine's clock). */
  readonly fetchedAt: number;
  readonly jwks: JSONWebKeySet;
}

/** Members of a JWK that are secret (RFC 7518 §6.2.2, §6.3.2, §6.4, and OKP's `d`). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** The JWKS with its public keys only: `oct` keys dropped, private members removed. */
function publicOnly(doc: JSONWebKeySet): JSONWebKeySet {
  const keys: JWK[] = [];
  for (const key of doc.keys) {
    if (typeof key !== 'object' || key === null || key.kty === 'oct') continue;
    const copy: Record<string, unknown> = { ...key };
    for (const m of PRIVATE_MEMBERS) delete copy[m];
    keys.push(copy as JWK);
  }
  return { keys };
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
  return publicOnly(doc);
}

/** The record of `url` in `value`, or undefined when it is none (absent, another URL, malformed). */
function recordOf(value: StateValue | undefined, url: string): KeysRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { url: u, fetchedAt, jwks } = value;
  if (u !== url || typeof fetchedAt !== 'number' || typeof jwks !== 'object' || jwks === null || Array.isArray(jwks) || !Array.isArray(jwks.keys)) return undefined;
  return { url, fetchedAt, jwks: jwks as unknown as JSONWebKeySet };
}

/**
 * A provider's JWKS, fetched on first use, cached, refreshed ahead of expiry and on an unknown
 * `kid`, shared by the workers of the machine through `state` (see the file comment). Without
 * `state`, this worker fetches for itself.
 */
export class RemoteKeys {
  readonly #options: RemoteKeysOptions;
  readonly #warn: (obj: object, msg: string) => void;
  readonly #state: PolicyStateView | undefined;
  readonly #recordKey: string;
  readonly #leaseKey: string;
  readonly #attemptKey: string;
  #lookup: KeyLookup | undefined;
  /** The document of the keys in #lookup (what the record is written from). */
  #jwks: JSONWebKeySet | undefined;
  /** When the keys in #lookup were fetched (ms since the epoch), by whichever worker. */
  #fetchedAt = Number.NEGATIVE_INFINITY;
  /** When the last fetch started, this worker's or (as last read) the machine's; or this worker's last try ahead of expiry. */
  #attemptAt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;
  /** Fetches this worker started (for tests and diagnostics). */
  fetches = 0;

  /** @param state the machine's shared state (a `failOpen` view), or undefined for keys of this worker alone. */
  constructor(options: RemoteKeysOptions, warn: (obj: object, msg: string) => void, state?: PolicyStateView) {
    this.#options = options;
    this.#warn = warn;
    this.#state = state;
    const id = createHash('sha256').update(options.url).digest('base64url');
    this.#recordKey = `jwks:${id}`;
    this.#leaseKey = `jwks:${id}:fetch`;
    this.#attemptKey = `jwks:${id}:attempt`;
  }

  /** The key for a token (a jwtVerify key lookup). Throws KeysUnavailable when no usable keys can be had. */
  readonly key: KeyLookup = async (header, token) => {
    const { cacheTtl, cooldown } = this.#options;
    const now = Date.now();
    const age = now - this.#fetchedAt;
    if (this.#lookup === undefined || age >= 2 * cacheTtl) {
      // Nothing usable: wait for the keys, unless a fetch failed within the cooldown.
      if (this.#pending !== undefined || now - this.#attemptAt >= cooldown) await this.#refresh('missing');
      if (this.#lookup === undefined || Date.now() - this.#fetchedAt >= 2 * cacheTtl) throw new KeysUnavailable('the JWKS could not be fetched');
    } else if (age >= 0.75 * cacheTtl && now - this.#attemptAt >= Math.min(cooldown, 0.25 * cacheTtl)) {
      void this.#refresh('ahead'); // ahead of expiry, in the background
    }
    const lookup = this.#lookup;
    try {
      return await lookup(header, token);
    } catch (err) {
      // An unknown kid: the provider may have rotated its keys. Fetch again, at most once per cooldown.
      if (!(err instanceof jose().errors.JWKSNoMatchingKey) || (this.#pending === undefined && Date.now() - this.#attemptAt < cooldown)) throw err;
      await this.#refresh('kid');
      if (this.#lookup === lookup) throw err;
      return await this.#lookup(header, token);
    }
  };

  /** One refresh per worker at a time; concurrent requests share it. */
  #refresh(reason: Reason): Promise<void> {
    this.#pending ??= (this.#state === undefined ? this.#fetchHere(reason) : this.#shared(this.#state, reason)).finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  /** Keys fetched after this (ms since the epoch) are what `reason` wants. */
  #wanted(reason: Reason, now: number): number {
    const { cacheTtl } = this.#options;
    if (reason === 'missing') return now - 2 * cacheTtl;
    if (reason === 'ahead') return now - 0.75 * cacheTtl;
    return this.#fetchedAt;
  }

  /** Whether a fetch for `reason` may start now, the last one having started at `attemptAt`. */
  #allowed(reason: Reason, now: number, attemptAt: number): boolean {
    const { cacheTtl, cooldown } = this.#options;
    return now - attemptAt >= (reason === 'ahead' ? Math.min(cooldown, 0.25 * cacheTtl) : cooldown);
  }

  /** Without shared state: this worker fetches, within its own cooldown. */
  async #fetchHere(reason: Reason): Promise<void> {
    if (this.#allowed(reason, Date.now(), this.#attemptAt)) await this.#fetch();
  }

  /**
   * With the machine's state: take the record when it is what `reason` wants; else fetch under the
   * lease, when the machine's last fetch is far enough back; else, while another worker fetches,
   * read the record again every POLL_MS until it is there or the lease is free, for at most twice
   * as long as a lease can last (a holder that died frees it by expiry). A background refresh does
   * not wait: this worker reads again on a later request.
   */
  async #shared(state: PolicyStateView, reason: Reason): Promise<void> {
    const { timeout, cooldown } = this.#options;
    const leaseMs = Math.ceil(timeout) + LEASE_MARGIN;
    const started = Date.now();
    const tried = this.#attemptAt;
    if (reason === 'ahead') this.#attemptAt = started; // tried: this worker's next try waits its gap, whoever fetches
    const wanted = this.#wanted(reason, started);
    for (;;) {
      if (await this.#adopt(state, wanted)) return;
      const lease = await state.acquire(this.#leaseKey, 1, leaseMs);
      if (lease !== undefined) {
        try {
          // The last holder may have written the record between the read and the lease.
          if (await this.#adopt(state, wanted)) return;
          // The machine's last fetch (and this worker's own, for when the state dropped the marker).
          const marked = await state.read(this.#attemptKey);
          const machineAt = typeof marked === 'number' ? marked : Number.NEGATIVE_INFINITY;
          if (machineAt > this.#attemptAt) this.#attemptAt = machineAt;
          if (!this.#allowed(reason, Date.now(), Math.max(reason === 'ahead' ? tried : this.#attemptAt, machineAt))) return;
          const fetched = await this.#fetch();
          await state.put(this.#attemptKey, this.#attemptAt, Math.max(1, Math.ceil(cooldown)));
          if (fetched !== undefined) {
            const record: KeysRecord = { url: this.#options.url, fetchedAt: fetched, jwks: this.#jwks! };
            await state.put(this.#recordKey, record as unknown as StateValue, Math.max(1, Math.ceil(2 * this.#options.cacheTtl)));
          }
        } finally {
          await state.release(this.#leaseKey, lease);
        }
        return;
      }
      if (reason === 'ahead' || Date.now() - started >= 2 * leaseMs) return;
      await delay(POLL_MS);
    }
  }

  /** Takes the machine's record when it is newer than the keys in hand; true when it is newer than `wanted`. */
  async #adopt(state: PolicyStateView, wanted: number): Promise<boolean> {
    const record = recordOf(await state.read(this.#recordKey), this.#options.url);
    if (record === undefined || record.fetchedAt <= this.#fetchedAt) return false;
    try {
      this.#install(record.jwks, record.fetchedAt);
    } catch {
      return false; // not a JWKS jose takes: as if absent
    }
    return record.fetchedAt > wanted;
  }

  #install(jwks: JSONWebKeySet, fetchedAt: number): void {
    this.#lookup = jose().createLocalJWKSet(jwks);
    this.#jwks = jwks;
    this.#fetchedAt = fetchedAt;
  }

  /** Fetches the JWKS; returns when it was fetched, or undefined when it failed (logged). */
  async #fetch(): Promise<number | undefined> {
    this.#attemptAt = Date.now();
    this.fetches++;
    try {
      const doc = await observeFetch(this.#options.policy, 'jwks', () => fetchJwks(this.#options.url, this.#options.timeout));
      const fetchedAt = Date.now();
      this.#install(doc, fetchedAt);
      return fetchedAt;
    } catch (err) {
      this.#warn({ url: this.#options.url, err: err instanceof Error ? err.message : String(err) }, 'jwt: fetching the JWKS failed');
      return undefined;
    }
  }
}
