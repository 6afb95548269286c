/**
 * A property test of the `cache` policy (issue 14): the cache never changes a response's bytes
 * except as RFC 9111 allows.
 *
 * A seeded generator makes scenarios: per URL, origin behaviour (status, Cache-Control, Expires,
 * Date, Last-Modified, ETag, Age — valid and invalid —, Vary, Set-Cookie, hop-by-hop fields, body
 * sizes 0..64 KiB of random bytes, chunked or not, versions that change over time and with unsafe
 * methods), and a client request sequence (GET/HEAD, Vary'd headers, conditionals, request
 * Cache-Control, Pragma, Authorization, unsafe methods, time passing). Each sequence runs twice
 * against one origin: through a route with the cache (`/c/…`) and one without (`/u/…`), each in its
 * own URL namespace, at the same fake times, so the origin behaves identically. The checks:
 *
 * - every body is exactly the bytes the origin made for the version it claims (`x-version`), for
 *   the Vary'd request values it echoes (`x-echo`): never a mix, never cut, never another variant;
 * - a request that reached the origin is answered with what the origin sent (status, end-to-end
 *   fields, bytes), or, on a 304 to the cache's validators, the stored body with the 304's fields;
 * - an answer that did not reach the origin has a source: an earlier stored response of the same
 *   version and variant that was storable (no no-store, private, Set-Cookie, Vary: *; Authorization
 *   rules), not invalidated since by an unsafe method (target, Location, Content-Location), fresh
 *   now by its headers and the recorded times (and the request's max-age/min-fresh/no-cache), with
 *   its end-to-end fields and an `Age` not below the model's; 304 only for a matching conditional,
 *   504 only for only-if-cached; no Set-Cookie and no hop-by-hop fields;
 * - where both routes answered the same version, status, body and end-to-end fields agree.
 *
 * Time: http-cache-semantics reads the clock through `CachePolicy.prototype.now`; the test replaces
 * it with a fake clock that moves only between requests (whole seconds), and the origin's `Date`,
 * `Expires` and `Last-Modified` follow that clock. `SEED=… ` reproduces a run; the seed is printed
 * on failure. `SCENARIOS=…` changes how many scenarios run (150 by default: ~10–20 s alone).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import CachePolicy from 'http-cache-semantics';
import { Agent, request } from 'undici';
import { startTestGateway, type TestGateway } from './helpers/gateway.ts';
import { startOrigin, type Origin } from './helpers/origin.ts';

const SEED = process.env.SEED === undefined ? (Date.now() ^ (process.pid << 8)) >>> 0 : Number(process.env.SEED) >>> 0;
const SCENARIOS = Number(process.env.SCENARIOS ?? 150);

// ---- the fake clock ---------------------------------------------------------------------------

let fakeNow = Date.UTC(2030, 0, 1);
/** http-cache-semantics 4 reads its clock through this method (not in its type declarations). */
const clock = CachePolicy.prototype as unknown as { now(): number };
const realNow = clock.now;
clock.now = () => fakeNow;

// ---- seeded randomness ------------------------------------------------------------------------

function hash(...parts: (string | number)[]): number {
  let h = 2166136261 >>> 0;
  for (const p of parts) {
    const s = `${p}\u0001`;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  }
  return h;
}

class Rng {
  #a: number;
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }
  /** mulberry32 */
  next(): number {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---- origin behaviour: a pure function of (scenario, URL name, version, fake time) --------------

interface UrlSpec {
  /** Seconds between time-driven versions (undefined: only unsafe methods change the version). */
  readonly period: number | undefined;
  readonly vary: readonly string[] | '*' | undefined;
  /** Last-Modified of version 0 (ms); version v is v seconds later. */
  readonly lmBase: number;
}

interface VersionSpec {
  readonly status: number;
  readonly cc: string | undefined;
  readonly expires: 'none' | 'delta' | 'zero' | 'invalid';
  readonly expiresDelta: number;
  readonly date: 'now' | 'none' | 'invalid' | 'skew';
  readonly skew: number;
  readonly lm: 'valid' | 'none' | 'invalid';
  readonly etag: 'strong' | 'weak' | 'none';
  readonly age: string | undefined;
  readonly setCookie: boolean;
  readonly contentType: string;
  readonly size: number;
  readonly chunked: boolean;
  readonly hop: boolean;
}

function urlSpec(scenario: number, name: string): UrlSpec {
  const r = new Rng(hash(SEED, scenario, name, 'url'));
  return {
    period: r.pick([undefined, undefined, 30, 300, 3600]),
    vary: r.pick<UrlSpec['vary']>([undefined, undefined, undefined, ['accept-language'], ['x-variant'], ['accept-language', 'x-variant'], '*']),
    lmBase: Date.UTC(2029, 11, 1) - r.int(86400 * 30) * 1000,
  };
}

const CC_PARTS: readonly (readonly string[])[] = [
  ['max-age=0', 'max-age=1', 'max-age=5', 'max-age=60', 'max-age=3600'],
  ['s-maxage=0', 's-maxage=10', 's-maxage=600'],
  ['no-store'],
  ['no-cache'],
  ['private'],
  ['public'],
  ['must-revalidate'],
  ['proxy-revalidate'],
  ['no-transform'],
];

function versionSpec(scenario: number, name: string, v: number): VersionSpec {
  const r = new Rng(hash(SEED, scenario, name, 'v', v));
  const parts: string[] = [];
  if (!r.chance(0.15)) {
    for (const group of CC_PARTS) {
      const p = group === CC_PARTS[0] ? 0.55 : group === CC_PARTS[1] ? 0.2 : 0.1;
      if (r.chance(p)) parts.push(r.pick(group));
    }
  }
  const size = r.pick([0, 1 + r.int(100), 1 + r.int(4096), r.int(65537)]);
  return {
    status: r.pick([200, 200, 200, 200, 200, 200, 203, 204, 301, 404, 410, 500, 503]),
    cc: parts.length === 0 ? undefined : parts.join(r.pick([', ', ',', ' , '])),
    expires: r.pick(['none', 'none', 'delta', 'delta', 'zero', 'invalid'] as const),
    expiresDelta: r.pick([-10, 0, 5, 60, 3600]),
    date: r.pick(['now', 'now', 'now', 'none', 'invalid', 'skew'] as const),
    skew: r.pick([-120, -5, 5, 120]),
    lm: r.pick(['valid', 'valid', 'none', 'invalid'] as const),
    etag: r.pick(['strong', 'strong', 'weak', 'none'] as const),
    age: r.pick([undefined, undefined, undefined, '0', '5', '100', 'abc']),
    setCookie: r.chance(0.1),
    contentType: r.pick(['text/plain', 'application/octet-stream', 'application/json; charset=utf-8']),
    size,
    chunked: r.chance(0.3),
    hop: r.chance(0.2),
  };
}

const etagOf = (scenario: number, name: string, v: number): string => `"${hash(SEED, scenario, name, 'etag', v).toString(36)}"`;
const lmOf = (u: UrlSpec, v: number): number => u.lmBase + v * 1000;

const payloads = new Map<string, Buffer>();
function payload(scenario: number, name: string, v: number, size: number): Buffer {
  const k = `${scenario}/${name}/${v}`;
  let b = payloads.get(k);
  if (b === undefined) {
    const r = new Rng(hash(SEED, scenario, name, 'body', v));
    b = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) b[i] = r.int(256);
    payloads.set(k, b);
  }
  return b;
}

/** The body of one version for one set of Vary'd values: a text line, then the random bytes. */
function bodyOf(scenario: number, name: string, v: number, echo: string): Buffer {
  const spec = versionSpec(scenario, name, v);
  if (spec.status === 204) return Buffer.alloc(0);
  return Buffer.concat([Buffer.from(`v=${v};${echo}\n`), payload(scenario, name, v, spec.size)]);
}

/** One run's origin state: unsafe-method version bumps per namespaced path; t0 of the run. */
const bumps = new Map<string, number>();
let runStart = 0;

function versionAt(scenario: number, name: string, key: string): number {
  const u = urlSpec(scenario, name);
  const byTime = u.period === undefined ? 0 : Math.floor((fakeNow - runStart) / 1000 / u.period);
  return byTime + (bumps.get(key) ?? 0);
}

function normalize(v: string | string[] | undefined): string {
  if (v === undefined) return '';
  const s = Array.isArray(v) ? v.join(', ') : v;
  return s
    .trim()
    .replace(/\s*,\s*/g, ', ')
    .replace(/\s+/g, ' ');
}

/** What the origin echoes of a request: the values of the URL's Vary'd fields. */
function echoOf(vary: UrlSpec['vary'], headers: Record<string, string | string[] | undefined>): string {
  if (vary === undefined || vary === '*') return '';
  // Normalised as the cache may (RFC 9111 §4.1), so that one variant has one body.
  return vary.map((n) => `${n}=${encodeURIComponent(normalize(headers[n]))}`).join('&');
}

function parseEcho(echo: string): Map<string, string> {
  const out = new Map<string, string>();
  if (echo === '') return out;
  for (const part of echo.split('&')) {
    const eq = part.indexOf('=');
    out.set(part.slice(0, eq), decodeURIComponent(part.slice(eq + 1)));
  }
  return out;
}

interface OriginEntry {
  readonly path: string;
  readonly method: string;
  readonly reqHeaders: Record<string, string | string[] | undefined>;
  readonly status: number;
  readonly sent: Record<string, string | string[]>;
  readonly v: number;
  readonly echo: string;
  readonly body: Buffer;
}
const originLog: OriginEntry[] = [];

function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

function matchesEtag(inm: string, etag: string): boolean {
  const opaque = (t: string) => (t.trim().startsWith('W/') ? t.trim().slice(2) : t.trim());
  return normalize(inm)
    .split(', ')
    .some((t) => t === '*' || opaque(t) === opaque(etag));
}

function originHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const path = (req.url ?? '/').split('?')[0];
    // /c|u/<scenario>/<name>
    const [, , sc, name] = path.split('/');
    const scenario = Number(sc);
    const method = req.method ?? 'GET';
    const sent: Record<string, string | string[]> = {};
    res.sendDate = false;
    if (method !== 'GET' && method !== 'HEAD') {
      const r = new Rng(hash(SEED, scenario, name, 'unsafe', method, bumps.get(path) ?? 0, fakeNow));
      const status = r.pick([200, 201, 204, 404, 500]);
      if (status < 400) bumps.set(path, (bumps.get(path) ?? 0) + 1);
      sent.date = httpDate(fakeNow);
      if (status < 400 && r.chance(0.4)) {
        const other = r.pick(['a', 'b', 'c']);
        sent[r.pick(['content-location', 'location'])] = r.chance(0.5) ? `/${path.split('/')[1]}/${scenario}/${other}` : `http://elsewhere.example/${other}`;
      }
      originLog.push({ path, method, reqHeaders: req.headers, status, sent, v: -1, echo: '', body: Buffer.alloc(0) });
      res.writeHead(status, sent);
      res.end();
      return;
    }
    const u = urlSpec(scenario, name);
    const v = versionAt(scenario, name, path);
    const spec = versionSpec(scenario, name, v);
    const echo = echoOf(u.vary, req.headers);
    const date = spec.date === 'now' ? fakeNow : spec.date === 'skew' ? fakeNow + spec.skew * 1000 : undefined;
    if (date !== undefined) sent.date = httpDate(date);
    else if (spec.date === 'invalid') sent.date = 'yesterday, around noon';
    if (spec.cc !== undefined) sent['cache-control'] = spec.cc;
    if (spec.expires === 'delta') sent.expires = httpDate((date ?? fakeNow) + spec.expiresDelta * 1000);
    else if (spec.expires === 'zero') sent.expires = '0';
    else if (spec.expires === 'invalid') sent.expires = 'Sun, 99 Foo 2030 99:99:99 GMT';
    const etag = etagOf(scenario, name, v);
    if (spec.etag !== 'none') sent.etag = spec.etag === 'weak' ? `W/${etag}` : etag;
    if (spec.lm === 'valid') sent['last-modified'] = httpDate(lmOf(u, v));
    else if (spec.lm === 'invalid') sent['last-modified'] = 'not a date';
    if (spec.age !== undefined) sent.age = spec.age;
    if (u.vary !== undefined) sent.vary = u.vary === '*' ? '*' : u.vary.join(', ');
    sent['x-version'] = String(v);
    sent['x-echo'] = echo;
    // A conditional answered 304 when it matches (only for 200s, as an origin would).
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    let notModified = false;
    if (spec.status === 200) {
      if (inm !== undefined) notModified = spec.etag !== 'none' && matchesEtag(inm, etag);
      else if (ims !== undefined && spec.lm === 'valid') {
        const since = Date.parse(ims);
        notModified = Number.isFinite(since) && lmOf(u, v) <= since;
      }
    }
    if (notModified) {
      originLog.push({ path, method, reqHeaders: req.headers, status: 304, sent: { ...sent }, v, echo, body: Buffer.alloc(0) });
      res.writeHead(304, sent);
      res.end();
      return;
    }
    sent['content-type'] = spec.contentType;
    if (spec.setCookie) sent['set-cookie'] = [`session=${v}; Path=/`, 'theme=dark'];
    if (spec.status === 301) sent.location = '/elsewhere';
    const body = bodyOf(scenario, name, v, echo);
    const headers: Record<string, string | string[]> = { ...sent };
    if (!spec.chunked && spec.status !== 204) headers['content-length'] = String(body.length);
    if (spec.hop) {
      headers.connection = 'x-hop';
      headers['x-hop'] = 'secret';
    }
    originLog.push({ path, method, reqHeaders: req.headers, status: spec.status, sent, v, echo, body: method === 'HEAD' ? Buffer.alloc(0) : body });
    res.writeHead(spec.status, headers);
    if (method === 'HEAD' || spec.status === 204) {
      res.end();
      return;
    }
    if (spec.chunked && body.length > 1) {
      res.write(body.subarray(0, body.length >> 1));
      res.end(body.subarray(body.length >> 1));
    } else res.end(body);
  });
}

// ---- client sequences ---------------------------------------------------------------------------

interface Step {
  /** Seconds the clock moves before the request. */
  readonly advance: number;
  readonly name: string;
  readonly method: string;
  readonly headers: Record<string, string>;
}

interface Scenario {
  readonly index: number;
  readonly names: readonly string[];
  readonly steps: readonly Step[];
}

function scenarioOf(index: number): Scenario {
  const r = new Rng(hash(SEED, index, 'scenario'));
  const names = ['a', 'b', 'c'].slice(0, 1 + r.int(3));
  const steps: Step[] = [];
  const n = 4 + r.int(12);
  for (let i = 0; i < n; i++) {
    const name = r.pick(names);
    const method = r.chance(0.12) ? r.pick(['POST', 'PUT', 'DELETE', 'PATCH']) : r.chance(0.15) ? 'HEAD' : 'GET';
    const h: Record<string, string> = {};
    const al = r.pick([undefined, undefined, 'en', 'fr', 'en, fr', 'en ,fr', 'en,   fr']);
    if (al !== undefined) h['accept-language'] = al;
    const xv = r.pick([undefined, 'a', 'b']);
    if (xv !== undefined) h['x-variant'] = xv;
    if (r.chance(0.2)) h['x-tenant'] = r.pick(['t1', 't2']);
    const cc = r.pick([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      'no-cache',
      'max-age=0',
      'max-age=10',
      'max-age=100',
      'min-fresh=30',
      'only-if-cached',
      'no-store',
    ]);
    if (cc !== undefined) h['cache-control'] = cc;
    else if (r.chance(0.05)) h.pragma = 'no-cache';
    if (r.chance(0.08)) h.authorization = 'Bearer x';
    const cond = r.int(10);
    const guess = r.int(4);
    if (cond === 0) h['if-none-match'] = etagOf(index, name, guess);
    else if (cond === 1) h['if-none-match'] = `W/${etagOf(index, name, guess)}, "other"`;
    else if (cond === 2) h['if-none-match'] = r.pick(['*', '"bogus"']);
    else if (cond === 3) h['if-modified-since'] = httpDate(lmOf(urlSpec(index, name), guess));
    else if (cond === 4) h['if-modified-since'] = r.pick(['garbage', httpDate(Date.UTC(2040, 0, 1)), httpDate(Date.UTC(2000, 0, 1))]);
    steps.push({ advance: r.pick([0, 0, 0, 0, 1, 2, 5, 30, 61, 3601]), name, method, headers: h });
  }
  return { index, names, steps };
}

// ---- running ------------------------------------------------------------------------------------

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
  readonly now: number;
  readonly origin: OriginEntry[];
}

let origin: Origin;
let gw: TestGateway;
const agent = new Agent({ connections: 8 });

before(async () => {
  origin = await startOrigin('o', originHandler);
  gw = await startTestGateway({
    policies: {
      'edge-cache': { type: 'cache', store: { memory: '4MiB' }, maxObjectSize: '32KiB', staleIfError: 0, collapseTimeout: '1h' },
    },
    listeners: { web: { address: '127.0.0.1:0', protocol: 'http', policyTimeout: '1h' } },
    routes: {
      cached: { match: { path: '/c/' }, upstream: 'web', policies: ['edge-cache'] },
      plain: { match: { path: '/u/' }, upstream: 'web' },
    },
    upstreams: { web: { endpoints: [{ url: origin.url }], retries: { attempts: 1 } } },
  });
});

after(async () => {
  clock.now = realNow;
  await gw.stop();
  await origin.close();
  await agent.close();
});

async function runScenario(s: Scenario, ns: 'c' | 'u'): Promise<Answer[]> {
  // Each run starts at the same fake time, far from every other scenario's.
  runStart = Date.UTC(2030, 0, 1) + s.index * 86400_000 * 10;
  fakeNow = runStart;
  const out: Answer[] = [];
  for (const step of s.steps) {
    fakeNow += step.advance * 1000;
    const before = originLog.length;
    const res = await request(`${gw.url}/${ns}/${s.index}/${step.name}`, {
      method: step.method as 'GET',
      headers: step.headers,
      body: step.method === 'GET' || step.method === 'HEAD' ? undefined : 'payload',
      dispatcher: agent,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = v;
    out.push({ status: res.statusCode, headers, body, now: fakeNow, origin: originLog.slice(before) });
  }
  originLog.length = 0;
  return out;
}

// ---- the model ------------------------------------------------------------------------------------

type H = Record<string, string | string[] | undefined>;

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

function directives(v: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of normalize(v).toLowerCase().split(', ')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    out.set((eq < 0 ? part : part.slice(0, eq)).trim(), eq < 0 ? '' : part.slice(eq + 1).replace(/"/g, ''));
  }
  return out;
}

const HEURISTIC = new Set([200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501]);

/** RFC 9111 §4.2.1 for a shared cache: seconds; heuristic at most 10 % of Date − Last-Modified. */
function lifetime(h: H, status: number, received: number): number {
  const cc = directives(h['cache-control']);
  if (cc.has('s-maxage')) return Number(cc.get('s-maxage'));
  if (cc.has('max-age')) return Number(cc.get('max-age'));
  const d = Date.parse(one(h.date) ?? '');
  const date = Number.isFinite(d) ? d : received;
  if (h.expires !== undefined) {
    const e = Date.parse(one(h.expires) ?? '');
    return Number.isFinite(e) ? Math.max(0, (e - date) / 1000) : 0;
  }
  const lm = Date.parse(one(h['last-modified']) ?? '');
  if (Number.isFinite(lm) && (HEURISTIC.has(status) || cc.has('public'))) return Math.max(0, ((date - lm) / 1000) * 0.1);
  return 0;
}

function ageValue(h: H): number {
  const a = one(h.age);
  return a !== undefined && /^\d+$/.test(a.trim()) ? Number(a) : 0;
}

/** RFC 9111 §3 (shared cache, storeSetCookie off): may this response to this request be stored? */
function storable(status: number, h: H, req: H): boolean {
  const cc = directives(h['cache-control']);
  const rcc = directives(req['cache-control']);
  if (cc.has('no-store') || cc.has('private') || rcc.has('no-store')) return false;
  if (h['set-cookie'] !== undefined) return false;
  if (normalize(h.vary).split(', ').includes('*')) return false;
  if (req.authorization !== undefined && !cc.has('public') && !cc.has('s-maxage') && !cc.has('must-revalidate')) return false;
  return cc.has('max-age') || cc.has('s-maxage') || h.expires !== undefined || cc.has('public') || HEURISTIC.has(status);
}

/** Response fields that are not end to end, or that each answer makes for itself. */
const NOT_COMPARED = new Set(['age', 'cache-status', 'x-request-id', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

function e2e(h: H): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !NOT_COMPARED.has(k)) out.set(k, one(v)!);
  return out;
}

/** A stored candidate: a full response the cache may have stored, or it refreshed by a 304. */
interface Source {
  readonly step: number;
  readonly t: number;
  readonly v: number;
  readonly status: number;
  readonly echo: string;
  readonly headers: H;
  readonly storable: boolean;
}

/** An echo with each value normalised (RFC 9111 §4.1 allows caches to normalise Vary'd values). */
function echoKey(echo: string | undefined): string {
  return [...parseEcho(echo ?? '')].map(([n, v]) => `${n}=${normalize(v)}`).join('&');
}

function varyMatches(echo: string, req: H): string | undefined {
  for (const [n, value] of parseEcho(echo))
    if (normalize(value) !== normalize(req[n])) return `Vary'd ${n}: the answer is for ${JSON.stringify(value)}, the request sent ${JSON.stringify(req[n])}`;
  return undefined;
}

function conditionalMatches(req: H, h: H): boolean {
  const inm = one(req['if-none-match']);
  if (inm !== undefined) return typeof h.etag === 'string' && matchesEtag(inm, h.etag);
  const since = Date.parse(one(req['if-modified-since']) ?? '');
  const lm = Date.parse(one(h['last-modified']) ?? '');
  return Number.isFinite(since) && Number.isFinite(lm) && lm <= since;
}

/** Checks that hold for every answer on both routes: the body is one version's, for the request's variant. */
function checkIntegrity(s: Scenario, step: Step, a: Answer, fail: (m: string) => void): void {
  if (a.headers['x-hop'] !== undefined) fail('a field the origin nominated in Connection reached the client');
  if (step.method !== 'GET' && step.method !== 'HEAD') return;
  // The cache's 504 (only-if-cached) and 304 (RFC 9110 §15.4.5: only some fields) carry no x-version.
  if ((a.status === 504 || a.status === 304) && a.headers['x-version'] === undefined) return;
  const v = Number(one(a.headers['x-version']));
  if (!Number.isInteger(v)) return fail(`no x-version on a ${a.status}`);
  // The echo of the Vary'd values: the body's line (a 304 may have updated the x-echo field since).
  const nl = a.body.indexOf(10);
  const line = nl < 0 ? undefined : /^v=(\d+);(.*)$/.exec(a.body.subarray(0, nl).toString());
  const echo = line?.[2] ?? one(a.headers['x-echo']) ?? '';
  if (line !== undefined && line !== null && Number(line[1]) !== v) fail(`x-version ${v}, but the body is version ${line[1]}'s`);
  const wrong = varyMatches(echo, step.headers);
  if (wrong !== undefined) fail(wrong);
  if (varyMatches(one(a.headers['x-echo']) ?? '', step.headers) !== undefined) fail(`x-echo: ${varyMatches(one(a.headers['x-echo']) ?? '', step.headers)}`);
  const spec = versionSpec(s.index, step.name, v);
  if (a.status !== 304 && a.status !== spec.status) fail(`status ${a.status}, but version ${v} is a ${spec.status}`);
  const full = bodyOf(s.index, step.name, v, echo);
  if (step.method === 'HEAD' || a.status === 304 || a.status === 204) {
    if (a.body.length !== 0) fail(`a body of ${a.body.length} bytes on a ${step.method} ${a.status}`);
    const cl = one(a.headers['content-length']);
    if (step.method === 'HEAD' && a.status !== 304 && cl !== undefined && Number(cl) !== full.length)
      fail(`HEAD Content-Length ${cl}, but version ${v} has ${full.length} bytes`);
    return;
  }
  if (!a.body.equals(full)) {
    const line = a.body.subarray(0, Math.max(0, a.body.indexOf(10))).toString();
    fail(`body of ${a.body.length} bytes (${JSON.stringify(line.slice(0, 80))}) is not version ${v}'s ${full.length} bytes for ${JSON.stringify(echo)}`);
  }
}

function sameFields(got: H, want: H, except: readonly string[], what: string, fail: (m: string) => void): void {
  const g = e2e(got);
  const w = e2e(want);
  for (const n of except) {
    g.delete(n);
    w.delete(n);
  }
  for (const [k, v] of w) if (g.get(k) !== v) fail(`${what}: ${k} is ${JSON.stringify(g.get(k))}, expected ${JSON.stringify(v)}`);
  // A recipient adds a Date the origin did not send (RFC 9110 §6.6.1).
  for (const [k, v] of g) if (!w.has(k) && k !== 'date') fail(`${what}: ${k}: ${JSON.stringify(v)} was added`);
}

/** The checks of the cached route's answers against the origin's log and the model. */
function checkCached(s: Scenario, answers: readonly Answer[], fail: (i: number, m: string) => void): number {
  const sources = new Map<string, Source[]>();
  const invalidated = new Map<string, number>();
  let hits = 0;
  const path = (name: string) => `/c/${s.index}/${name}`;
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i];
    const step = s.steps[i];
    const f = (m: string) => fail(i, m);
    const req = step.headers as H;
    const rcc = directives(req['cache-control']);
    if (a.origin.length > 1) f(`${a.origin.length} origin requests for one client request`);
    const o = a.origin[0];
    if (a.headers['set-cookie'] !== undefined && o?.sent['set-cookie'] === undefined) f('Set-Cookie on an answer the origin did not send it on');
    if (step.method !== 'GET' && step.method !== 'HEAD') {
      if (o === undefined) {
        f('an unsafe method did not reach the origin');
        continue;
      }
      if (a.status < 400) {
        invalidated.set(path(step.name), i);
        for (const n of ['location', 'content-location']) {
          const l = one(o.sent[n]);
          if (l?.startsWith('/')) invalidated.set(l, i);
        }
      }
      continue;
    }
    const mine = (sources.get(path(step.name)) ?? []).filter((c) => c.step > (invalidated.get(path(step.name)) ?? -1));
    const v = Number(one(a.headers['x-version']));
    const echo = one(a.headers['x-echo']) ?? '';
    const sameVariant = (c: Source) => (a.status === 304 || c.v === v) && varyMatches(c.echo, req) === undefined;
    if (o === undefined) {
      if (a.status === 504) {
        if (!rcc.has('only-if-cached')) f('504 without only-if-cached');
        continue;
      }
      hits++;
      // Served by the cache alone: some stored source justifies it.
      const reasons: string[] = [];
      const ok = mine.some((c) => {
        const why = (m: string) => {
          reasons.push(`source of step ${c.step}: ${m}`);
          return false;
        };
        if (!sameVariant(c)) return why('another version or variant');
        if (!c.storable) return why('not storable');
        const cc = directives(c.headers['cache-control']);
        if (cc.has('no-cache')) return why('no-cache: validation needed');
        if (rcc.has('no-cache') || (req.pragma !== undefined && req['cache-control'] === undefined)) return why('the request asked for validation');
        const age = ageValue(c.headers) + (a.now - c.t) / 1000;
        const life = lifetime(c.headers, c.status, c.t);
        if (!(life > age)) return why(`stale: age ${age}, lifetime ${life}`);
        if (rcc.has('max-age') && age > Number(rcc.get('max-age'))) return why(`request max-age ${rcc.get('max-age')}, age ${age}`);
        if (rcc.has('min-fresh') && life - age < Number(rcc.get('min-fresh'))) return why(`request min-fresh ${rcc.get('min-fresh')}, fresh ${life - age}`);
        const served = Number(one(a.headers.age));
        if (!(served >= Math.floor(age))) return why(`Age ${one(a.headers.age)} below ${Math.floor(age)}`);
        if (a.status === 304) {
          if (c.status !== 200 || !conditionalMatches(req, c.headers)) return why('a 304 for a conditional that does not match');
        } else {
          const errs: string[] = [];
          sameFields(a.headers, { ...c.headers, 'set-cookie': undefined }, ['x-echo'], 'hit', (m) => errs.push(m));
          if (errs.length > 0) return why(errs.join('; '));
        }
        return true;
      });
      if (!ok) f(`served without the origin, but nothing stored justifies it (${reasons.join(' | ') || 'nothing stored'})`);
      continue;
    }
    if (rcc.has('only-if-cached')) f('only-if-cached reached the origin');
    if (o.status === 304) {
      // A 304 from the origin: to the client's validators (passed on), or to the cache's; then the
      // stored body with the 304's fields (RFC 9111 §3.2, §4.3.4), or a 304 for the client's.
      const c = [...mine].reverse().find((x) => x.v === o.v && x.storable && varyMatches(x.echo, req) === undefined);
      if (a.status === 304) {
        // The client's conditional matches the origin's current representation, or a stored one.
        if (!conditionalMatches(req, o.sent) && (c === undefined || !conditionalMatches(req, c.headers))) f('a 304 for a conditional that matches nothing');
      } else if (c === undefined) f(`the cache validated version ${o.v}, but it had stored nothing storable of it since the last invalidation`);
      else if (v !== o.v) f(`a 304 for version ${o.v} served version ${v}`);
      else sameFields(a.headers, { ...c.headers, ...o.sent, 'set-cookie': undefined }, ['x-echo', 'date', 'age'], 'validated', f);
      if (c !== undefined) {
        const list = sources.get(path(step.name)) ?? [];
        list.push({ ...c, step: i, t: a.now, headers: { ...c.headers, ...o.sent, age: o.sent.age } });
        sources.set(path(step.name), list);
      }
      continue;
    }
    // Passed through: what the origin sent.
    if (a.status !== o.status) f(`status ${a.status}, but the origin answered ${o.status}`);
    if (v !== o.v || echo !== o.echo) f(`x-version/x-echo ${v}/${echo}, the origin sent ${o.v}/${o.echo}`);
    sameFields(a.headers, o.sent, [], 'passed through', f);
    if (step.method === 'GET' && o.status !== 304) {
      const list = sources.get(path(step.name)) ?? [];
      list.push({ step: i, t: a.now, v: o.v, status: o.status, echo: o.echo, headers: o.sent, storable: storable(o.status, o.sent, o.reqHeaders) });
      sources.set(path(step.name), list);
    }
  }
  return hits;
}

/** The uncached route: every answer is the origin's, exactly. */
function checkPlain(s: Scenario, answers: readonly Answer[], fail: (i: number, m: string) => void): void {
  for (let i = 0; i < answers.length; i++) {
    const a = answers[i];
    const o = a.origin[0];
    if (a.origin.length !== 1) fail(i, `${a.origin.length} origin requests without a cache`);
    else if (s.steps[i].method === 'GET' || s.steps[i].method === 'HEAD') {
      if (a.status !== o.status) fail(i, `status ${a.status}, the origin answered ${o.status}`);
      sameFields(a.headers, o.sent, [], 'without cache', (m) => fail(i, m));
    }
  }
}

/** Both routes answered the same version of the same variant: the same status, bytes and fields. */
function checkBoth(s: Scenario, cached: readonly Answer[], plain: readonly Answer[], fail: (i: number, m: string) => void): void {
  for (let i = 0; i < cached.length; i++) {
    const c = cached[i];
    const u = plain[i];
    const step = s.steps[i];
    if (step.method !== 'GET' && step.method !== 'HEAD') {
      if (c.status !== u.status) fail(i, `unsafe ${step.method}: ${c.status} with the cache, ${u.status} without`);
      continue;
    }
    if (c.status === 504 && step.headers['cache-control'] === 'only-if-cached') continue;
    if (c.status === 304 || u.status === 304) {
      if (c.status === 304 && !conditionalMatches(step.headers, c.headers) && !(c.origin[0]?.status === 304)) fail(i, 'a 304 that the conditional does not match');
      continue;
    }
    if (one(c.headers['x-version']) !== one(u.headers['x-version'])) continue;
    if (echoKey(one(c.headers['x-echo'])) !== echoKey(one(u.headers['x-echo']))) continue;
    if (c.status !== u.status) fail(i, `status ${c.status} with the cache, ${u.status} without, for one version`);
    // Bodies: the same bytes after the echoed line (whose raw values may differ in whitespace).
    const rest = (b: Buffer) => b.subarray(b.indexOf(10) + 1);
    if (!rest(c.body).equals(rest(u.body))) fail(i, 'bodies differ for one version');
    sameFields(c.headers, u.headers, ['date', 'expires', 'x-echo', 'set-cookie'], 'cached vs uncached', (m) => fail(i, m));
  }
}

test(`cached and uncached answers agree as RFC 9111 allows (seed ${SEED}, ${SCENARIOS} scenarios)`, { timeout: 180_000 }, async (t) => {
  const failures: string[] = [];
  let hits = 0;
  for (let k = 0; k < SCENARIOS && failures.length < 10; k++) {
    const s = scenarioOf(k);
    bumps.clear();
    const plain = await runScenario(s, 'u');
    const cached = await runScenario(s, 'c');
    const fail = (route: string) => (i: number, m: string) => {
      const st = s.steps[i];
      failures.push(`scenario ${k} step ${i} (${route}: ${st.method} /${st.name} ${JSON.stringify(st.headers)} +${st.advance}s): ${m}`);
    };
    for (let i = 0; i < s.steps.length; i++) {
      checkIntegrity(s, s.steps[i], plain[i], (m) => fail('uncached')(i, m));
      checkIntegrity(s, s.steps[i], cached[i], (m) => fail('cached')(i, m));
    }
    if (process.env.DEBUG_SCENARIO === String(k))
      for (const [route, answers] of [
        ['uncached', plain],
        ['cached', cached],
      ] as const)
        for (let i = 0; i < answers.length; i++) {
          const a = answers[i];
          const { body: _b, ...head } = a;
          console.log(route, i, s.steps[i], JSON.stringify({ ...head, bodyLength: a.body.length, origin: a.origin.map(({ body: _ob, ...x }) => x) }));
        }
    checkPlain(s, plain, fail('uncached'));
    hits += checkCached(s, cached, fail('cached'));
    checkBoth(s, cached, plain, fail('both'));
  }
  t.diagnostic(`seed ${SEED}: ${hits} answers served by the cache alone`);
  assert.deepEqual(failures, [], `reproduce with SEED=${SEED}`);
  assert.ok(hits > SCENARIOS / 10, `the cache answered ${hits} requests alone: the property was hardly exercised (SEED=${SEED})`);
});
