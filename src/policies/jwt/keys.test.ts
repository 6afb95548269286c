/**
 * RemoteKeys shared by several "workers" (several RemoteKeys on one MemoryState, as the workers of a
 * machine on the supervisor's): one fetch for all, one refetch per rotation, one cooldown for all;
 * each fetching for itself when the state cannot be reached. A JWKS server on 127.0.0.1:0 counts
 * the fetches.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, jwtVerify, SignJWT, type CryptoKey } from 'jose';
import { MemoryState } from '../../state/memory-state.ts';
import { RemoteState } from '../../state/remote-state.ts';
import { StateGuard } from '../../state/state-guard.ts';
import { pino } from 'pino';
import type { PolicyStateView } from '../filter.ts';
import { RemoteKeys, type RemoteKeysOptions } from './keys.ts';

interface Signer {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signer(kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } };
}

function sign(k: Signer, kid = k.kid): Promise<string> {
  return new SignJWT({ sub: 'a' }).setProtectedHeader({ alg: 'ES256', kid }).setExpirationTime('5m').sign(k.privateKey);
}

/** A JWKS server: serves `doc`, counts requests; `gate` (when set) holds each answer until it resolves. */
interface JwksServer {
  url: string;
  requests: number;
  doc: { keys: JWK[] };
  gate: Promise<void> | undefined;
  close(): Promise<void>;
}

async function jwksServer(doc: { keys: JWK[] }): Promise<JwksServer> {
  const srv: JwksServer = { url: '', requests: 0, doc, gate: undefined, close: async () => {} };
  const server = http.createServer((_req, res) => {
    srv.requests++;
    const body = JSON.stringify(srv.doc);
    void (srv.gate ?? Promise.resolve()).then(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  srv.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  srv.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return srv;
}

let k1: Signer;
let k2: Signer;
const servers: JwksServer[] = [];

before(async () => {
  k1 = await signer('k1');
  k2 = await signer('k2');
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function server(keys: JWK[]): Promise<JwksServer> {
  const s = await jwksServer({ keys });
  servers.push(s);
  return s;
}

const quiet = (): void => {};

/** `n` RemoteKeys on one state, as `n` workers of a machine. */
function workers(n: number, url: string, state: PolicyStateView | undefined, options: Partial<RemoteKeysOptions> = {}): RemoteKeys[] {
  return Array.from({ length: n }, () => new RemoteKeys({ policy: 'jwt', url, cacheTtl: 600_000, cooldown: 3_600_000, timeout: 5000, ...options }, quiet, state));
}

/** Whether `token` verifies with `keys` (false for an unknown kid). */
async function verifies(keys: RemoteKeys, token: string): Promise<boolean> {
  try {
    await jwtVerify(token, keys.key, { algorithms: ['ES256'] });
    return true;
  } catch {
    return false;
  }
}

const fetches = (ks: RemoteKeys[]): number => ks.reduce((n, k) => n + k.fetches, 0);

test('workers sharing one state: concurrent first requests cause one fetch; every worker verifies', async () => {
  const idp = await server([k1.jwk]);
  let release!: () => void;
  idp.gate = new Promise((resolve) => (release = resolve));
  const ks = workers(4, idp.url, new MemoryState());
  const token = await sign(k1);
  // Every worker asks while the one fetch is held at the provider: the others wait for its record.
  const all = Promise.all(ks.flatMap((k) => [verifies(k, token), verifies(k, token)]));
  await new Promise<void>((resolve) => {
    const check = (): void => (idp.requests > 0 ? resolve() : void setImmediate(check));
    check();
  });
  release();
  assert.deepEqual(await all, Array(8).fill(true));
  assert.equal(idp.requests, 1);
  assert.equal(fetches(ks), 1);
});

test('a worker started later (or a reload) takes the record: no fetch', async () => {
  const idp = await server([k1.jwk]);
  const state = new MemoryState();
  const [first] = workers(1, idp.url, state);
  assert.ok(await verifies(first!, await sign(k1)));
  const [later] = workers(1, idp.url, state);
  assert.ok(await verifies(later!, await sign(k1)));
  assert.equal(idp.requests, 1);
});

test('rotation: a token with the new kid on every worker at once causes one refetch for them all', async () => {
  const idp = await server([k1.jwk]);
  // No cooldown: only the sharing keeps the workers from fetching one each.
  const ks = workers(4, idp.url, new MemoryState(), { cooldown: 0 });
  const old = await sign(k1);
  for (const k of ks) assert.ok(await verifies(k, old));
  assert.equal(idp.requests, 1);
  idp.doc = { keys: [k2.jwk] };
  const fresh = await sign(k2);
  assert.deepEqual(await Promise.all(ks.map((k) => verifies(k, fresh))), [true, true, true, true]);
  assert.equal(idp.requests, 2);
});

test('the cooldown is the machine’s: a worker that did not fetch meets a hostile kid and does not refetch either', async () => {
  const idp = await server([k1.jwk]);
  const [a, b] = workers(2, idp.url, new MemoryState());
  assert.ok(await verifies(a!, await sign(k1)));
  for (let i = 0; i < 5; i++) assert.equal(await verifies(b!, await sign(k1, `x${i}`)), false);
  assert.ok(await verifies(b!, await sign(k1)));
  assert.equal(idp.requests, 1, 'within the cooldown of the machine’s fetch: no refetch, whichever worker');
  assert.equal(b!.fetches, 0);
});

test('without the state (unreachable, failOpen view), each worker fetches for itself, and verifies', async () => {
  const idp = await server([k1.jwk]);
  const gone = new RemoteState({ send: (_m, cb) => cb?.(new Error('the channel is closed')) });
  const guard = new StateGuard(gone, { backend: 'supervisor', log: pino({ level: 'silent' }) });
  const ks = workers(2, idp.url, guard.user('failOpen'));
  const token = await sign(k1);
  for (const k of ks) assert.ok(await verifies(k, token));
  assert.equal(idp.requests, 2);
  assert.equal(guard.available, false);
});

test('the record holds public keys only: symmetric keys and private members are dropped', async () => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const leaked = { ...(await exportJWK(privateKey)), kid: 'leak', alg: 'ES256' };
  const idp = await server([k1.jwk, leaked, { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }]);
  const state = new MemoryState();
  const [k] = workers(1, idp.url, state);
  assert.ok(await verifies(k!, await sign(k1)));
  // The record's key is a hash of the URL.
  const text = JSON.stringify(await state.read(`jwks:${createHash('sha256').update(idp.url).digest('base64url')}`));
  assert.match(text, /"kid":"k1"/);
  assert.match(text, /"kid":"leak"/);
  assert.doesNotMatch(text, /"d":/);
  assert.doesNotMatch(text, /hmac|c2VjcmV0/);
});
