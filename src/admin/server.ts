/**
 * The admin listener: a small node:http server (no framework) for operators and orchestrators,
 * never on a traffic listener (docs/admin.md).
 *
 *   GET  /healthz, /readyz                               no token (orchestrators probe them)
 *   GET  /api/version | config | generation | listeners | routes | upstreams | workers | config-errors
 *   POST /api/upstreams/{u}/endpoints/{e}/drain | disable | enable
 *   PUT  /api/upstreams/{u}/endpoints/{e}/weight         {"weight": n}
 *   POST /api/reload
 *   POST /api/cache/purge                                {"url"|"prefix"|"tag": "...", "policy"?: "name"}
 *   GET  /metrics                                        the injected MetricsProvider, else 404
 *   GET  /api/access-log/stream?route=&status=&q=        the access log's live tail (server-sent events, tail.ts)
 *   GET  /dashboard, /dashboard/app.js, /dashboard/app.css   the dashboard's static files (no token: they hold no data)
 *   GET  /                                               redirects to /dashboard
 *
 * Auth: with a token, every /api and /metrics request sends `Authorization: Bearer <token>`
 * (compared in constant time, on digests so the length leaks nothing either). Without a token the
 * config allows only a loopback address, and requests from other peers, or naming a Host that is
 * not loopback (DNS rebinding), are refused anyway, and nothing may be changed (read-only: runtime
 * changes need a token, EDGE-CASES 50). No CORS headers, ever; a mutating request
 * carrying an `Origin` other than the admin's own is refused (CSRF). Every change is logged with
 * who (peer address, `token` or `loopback`) and what; the token never is.
 *
 * State: the server holds no state of its own beyond its socket and the token's digest (per
 * process: the gateway's, or the supervisor's for the machine); it reads and changes the backend's.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type * as http from 'node:http';
import nodeHttp from '../util/node-http.ts';
import type { AddressInfo } from 'node:net';
import { isLoopbackHost } from '../config/resolve-admin.ts';
import type { AdminConfig } from '../config/types.ts';
import type { AdminHost } from '../gateway.ts';
import type { MetricsProvider } from '../observability/metrics-provider.ts';
import type { RuntimeChange } from '../upstream/state.ts';
import type { PurgeQuery } from '../policies/filter.ts';
import { endpointOrigin, readiness, type AdminBackend } from './backend.ts';
import { redact } from './redact.ts';
import { dashboardAssets } from './dashboard-assets.ts';
import { parseTailFilter, TailHub } from './tail.ts';
import { VERSION } from './version.ts';

/** Request bodies past this are refused with 413 (the largest one is a purge's URL). */
export const MAX_BODY = 4096;
/** Header bytes a request may send. */
const MAX_HEADER_SIZE = 8192;
/** Time to receive a request's headers, and the whole request. */
const HEADERS_TIMEOUT_MS = 5000;
const REQUEST_TIMEOUT_MS = 10_000;
/** Connections open at once: the admin serves a few operators and scrapers, not traffic. */
const MAX_CONNECTIONS = 64;
/** Highest weight the API accepts, as the config's. */
const MAX_WEIGHT = 1000;

export interface AdminServerOptions {
  backend: AdminBackend;
  /** The metrics provider as it is now (metrics start with the config they depend on); undefined: off. */
  metrics?: () => MetricsProvider | undefined;
}

/** An answer that ends the request: a status and a code for the JSON error body. */
class AdminError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** Who made a request, as change log lines say it. */
interface Caller {
  peer: string;
  auth: 'token' | 'loopback';
}

const ACTIONS = new Set(['drain', 'disable', 'enable']);
const READS = new Set(['version', 'config', 'generation', 'listeners', 'routes', 'upstreams', 'workers', 'config-errors']);

/**
 * The dashboard page's policy: its own script and style only (no inline code, no other origin),
 * fetches to the admin itself; nothing may frame it.
 */
const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const DASHBOARD_FILES: Record<string, string> = { '/dashboard': 'index.html', '/dashboard/app.js': 'app.js', '/dashboard/app.css': 'app.css' };

export class AdminServer implements AdminHost {
  readonly #backend: AdminBackend;
  readonly #metrics: (() => MetricsProvider | undefined) | undefined;
  #server: http.Server | undefined;
  /** `host:port` as configured, to tell whether a reload moved the admin. */
  #key = '';
  /** The config the socket was bound for. */
  #bound: AdminConfig | undefined;
  #tokenDigest: Buffer | undefined;
  /** The access log's live tail: its clients, and the backend's lines while there are any. */
  readonly #tail: TailHub;

  constructor(opts: AdminServerOptions) {
    this.#backend = opts.backend;
    this.#metrics = opts.metrics;
    this.#tail = new TailHub((deliver) => this.#backend.tail(deliver));
  }

  async apply(config: AdminConfig | undefined, fd?: number): Promise<void> {
    if (config === undefined) return this.close();
    const key = `${config.address.host}:${config.address.port}`;
    const digest = config.token === undefined ? undefined : sha256(config.token);
    if (this.#server !== undefined && key === this.#key) {
      this.#tokenDigest = digest;
      return;
    }
    const old = this.#server;
    let fresh: http.Server;
    try {
      fresh = await this.#listen(config, fd);
    } catch (err) {
      // Moving to (or from) a wildcard on the same port: the old socket holds it; let go of it
      // first, and take the old address back if the new one still cannot bind.
      const previous = this.#bound;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || old === undefined || previous?.address.port !== config.address.port) throw err;
      await closeServer(old);
      this.#server = undefined;
      try {
        fresh = await this.#listen(config);
      } catch (again) {
        this.#server = await this.#listen(previous);
        throw again;
      }
    }
    this.#server = fresh;
    this.#bound = config;
    this.#key = key;
    this.#tokenDigest = digest;
    // The request that asked for this reload may be on the old socket: let it be answered.
    if (old !== undefined && old !== fresh) retire(old);
    this.#backend.log.info({ admin: this.url(), token: digest !== undefined }, 'admin listener bound');
  }

  /** The listening socket's descriptor (for an upgrade's handover), or undefined. */
  fd(): number | undefined {
    const fd = (this.#server as unknown as { _handle?: { fd?: number } } | undefined)?._handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /** Binds `config`'s address, or listens on `fd` (a socket inherited in an upgrade). */
  #listen(config: AdminConfig, fd?: number): Promise<http.Server> {
    const server = nodeHttp.createServer(
      { maxHeaderSize: MAX_HEADER_SIZE, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 5000 },
      (req, res) => void this.#handle(req, res),
    );
    server.maxConnections = MAX_CONNECTIONS;
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    const { host, port } = config.address;
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'the address is in use' : err.code === 'EADDRNOTAVAIL' ? 'no interface has that address' : err.message;
        reject(Object.assign(new Error(`admin listener ${host.includes(':') ? `[${host}]` : host}:${port}: ${why}`), { code: err.code }));
      });
      server.listen(fd === undefined ? { host, port } : { fd }, () => {
        server.removeAllListeners('error');
        server.on('error', (err) => this.#backend.log.error({ err }, 'admin listener error'));
        resolve(server);
      });
    });
  }

  url(): string | undefined {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    if (a == null) return undefined;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    this.#bound = undefined;
    this.#key = '';
    this.#tail.closeAll();
    if (s !== undefined) await closeServer(s);
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      await this.#route(req, res);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof AdminError) {
        sendJson(res, err.status, { error: { code: err.code, message: err.message } }, err.headers);
        return;
      }
      this.#backend.log.error({ err, path: pathOf(req) }, 'admin request failed');
      sendJson(res, 500, { error: { code: 'ADMIN_INTERNAL', message: 'the admin request failed; see the process log' } });
    }
  }

  async #route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const caller = this.#admit(req);
    const path = pathOf(req);
    const method = req.method ?? 'GET';
    if (path === '/healthz') {
      allow(method, ['GET', 'HEAD']);
      return sendText(res, 200, 'ok\n');
    }
    if (path === '/readyz') {
      allow(method, ['GET', 'HEAD']);
      const r = readiness(this.#backend);
      return sendJson(res, r.ready ? 200 : 503, r);
    }
    if (path === '/') {
      allow(method, ['GET', 'HEAD']);
      res.writeHead(302, { location: '/dashboard', 'content-length': 0, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    const file = DASHBOARD_FILES[path];
    if (file !== undefined) {
      allow(method, ['GET', 'HEAD']);
      return this.#dashboard(res, file);
    }
    const parts = path.split('/').slice(1);
    if (parts[0] !== 'api' && path !== '/metrics') throw notFound(path);
    this.#authorize(req, caller);
    if (path === '/api/access-log/stream') {
      allow(method, ['GET']);
      let filter: ReturnType<typeof parseTailFilter>;
      try {
        filter = parseTailFilter(new URL(req.url ?? '/', 'http://admin').searchParams);
      } catch (err) {
        throw new AdminError(400, 'ADMIN_BAD_REQUEST', (err as Error).message);
      }
      if (!this.#tail.open(req, res, filter))
        throw new AdminError(503, 'ADMIN_TOO_MANY_TAILS', 'too many access log streams are open; close one', { 'retry-after': '5' });
      return;
    }
    if (path === '/metrics') {
      allow(method, ['GET', 'HEAD']);
      const metrics = this.#metrics?.();
      if (metrics === undefined) throw new AdminError(404, 'METRICS_NOT_ENABLED', 'metrics not enabled');
      const out = await metrics.render(req.headers.accept);
      res.writeHead(200, { 'content-type': out.contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(out.body) });
      res.end(method === 'HEAD' ? undefined : out.body);
      return;
    }
    const b = this.#backend;
    if (parts.length === 2 && READS.has(parts[1]!)) {
      allow(method, ['GET', 'HEAD']);
      return sendJson(res, 200, await this.#read(parts[1]!));
    }
    if (parts.length === 2 && parts[1] === 'reload') {
      allow(method, ['POST']);
      await readBody(req);
      this.#checkOrigin(req, caller);
      b.log.info({ admin: { ...caller, action: 'reload' } }, 'admin: reload');
      const r = await b.reload();
      return sendJson(res, r.ok ? 200 : 422, r.ok ? { ok: true, generation: generationJson(b) } : { ok: false, errors: r.errors });
    }
    if (parts.length === 3 && parts[1] === 'cache' && parts[2] === 'purge') {
      allow(method, ['POST']);
      const body = await readBody(req);
      this.#checkOrigin(req, caller);
      const { policy, query } = parsePurge(body);
      const caches = [...b.config().policies.values()].filter((p) => p.type.type === 'cache').map((p) => p.name);
      if (policy !== undefined && !caches.includes(policy))
        throw new AdminError(404, 'ADMIN_UNKNOWN_POLICY', `no cache policy named ${JSON.stringify(policy)} (cache policies: ${caches.join(', ') || 'none'})`);
      if (caches.length === 0) throw new AdminError(404, 'ADMIN_UNKNOWN_POLICY', 'the config has no cache policy');
      const r = await b.purge(policy, query);
      b.log.info({ admin: { ...caller, action: 'cache-purge', policy, ...query, purged: r.purged } }, 'admin: cache purged');
      return sendJson(res, 200, { ok: true, policies: policy === undefined ? caches : [policy], ...query, purged: r.purged, processes: r.processes });
    }
    // /api/upstreams/{u}/endpoints/{e}/{action}
    if (parts.length === 6 && parts[1] === 'upstreams' && parts[3] === 'endpoints') {
      const action = parts[5]!;
      if (action !== 'weight' && !ACTIONS.has(action)) throw notFound(path);
      allow(method, [action === 'weight' ? 'PUT' : 'POST']);
      const body = await readBody(req);
      this.#checkOrigin(req, caller);
      const upstream = decode(parts[2]!);
      const id = decode(parts[4]!);
      const config = b.config();
      if (!config.upstreams.has(upstream)) throw new AdminError(404, 'ADMIN_UNKNOWN_UPSTREAM', `no upstream named ${JSON.stringify(upstream)}`);
      const endpoint = endpointOrigin(config, upstream, id);
      if (endpoint === undefined)
        throw new AdminError(
          404,
          'ADMIN_UNKNOWN_ENDPOINT',
          `upstream ${JSON.stringify(upstream)} has no endpoint ${JSON.stringify(id)} (an index from 0, or its URL percent-encoded)`,
        );
      const change: RuntimeChange =
        action === 'weight' ? { upstream, endpoint, action, weight: parseWeight(body) } : { upstream, endpoint, action: action as 'drain' | 'disable' | 'enable' };
      const outcome = await b.change(change);
      if (outcome !== 'ok') throw new AdminError(404, outcome === 'upstream' ? 'ADMIN_UNKNOWN_UPSTREAM' : 'ADMIN_UNKNOWN_ENDPOINT', `no such ${outcome}`);
      b.log.info({ admin: { ...caller, ...change } }, `admin: endpoint ${action === 'weight' ? 'weight set' : action}`);
      return sendJson(res, 200, { ok: true, change, lasts: 'until the next reload or restart' });
    }
    throw notFound(path);
  }

  /** One of the dashboard's static files, or 503 saying why there are none. */
  async #dashboard(res: http.ServerResponse, name: string): Promise<void> {
    let f: { type: string; body: Buffer } | undefined;
    try {
      f = (await dashboardAssets()).get(name);
    } catch (err) {
      this.#backend.log.warn({ err: (err as Error).message }, 'admin: the dashboard is unavailable');
      throw new AdminError(503, 'ADMIN_DASHBOARD_UNAVAILABLE', (err as Error).message);
    }
    if (f === undefined) throw notFound(`/dashboard/${name}`);
    res.writeHead(200, {
      'content-type': f.type,
      'content-length': f.body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-security-policy': DASHBOARD_CSP,
    });
    res.end(res.req.method === 'HEAD' ? undefined : f.body);
  }

  async #read(what: string): Promise<unknown> {
    const b = this.#backend;
    switch (what) {
      case 'version':
        return { version: VERSION, node: process.version };
      case 'config':
        return redact(b.config());
      case 'generation':
        return generationJson(b);
      case 'listeners': {
        const urls = b.listenerUrls();
        return b.config().listeners.map((l) => ({
          name: l.name,
          protocol: l.protocol,
          address: `${l.address.host.includes(':') ? `[${l.address.host}]` : l.address.host}:${l.address.port}`,
          url: urls[l.name] ?? null,
          upstream: l.upstream ?? null,
        }));
      }
      case 'routes':
        return redact(b.config().routes);
      case 'upstreams':
        return b.upstreams();
      case 'workers':
        return b.workers();
      default:
        return { kept: 20, errors: b.configErrors() };
    }
  }

  /**
   * Who is asking, and whether they may ask at all: without a token only loopback peers, naming a
   * loopback Host (a page of another site resolved to 127.0.0.1, DNS rebinding, names its own).
   */
  #admit(req: http.IncomingMessage): Caller {
    const peer = req.socket.remoteAddress ?? '';
    if (this.#tokenDigest !== undefined) return { peer, auth: 'token' };
    if (!isLoopbackHost(peer)) throw new AdminError(403, 'ADMIN_FORBIDDEN', 'the admin API answers loopback clients only (no admin.token is configured)');
    const host = hostName(req.headers.host);
    if (host !== undefined && !isLoopbackHost(host))
      throw new AdminError(403, 'ADMIN_FORBIDDEN', 'the Host header is not a loopback name (no admin.token is configured)');
    return { peer, auth: 'loopback' };
  }

  /** With a token, the request must carry it: 401 with `WWW-Authenticate: Bearer` otherwise. */
  #authorize(req: http.IncomingMessage, caller: Caller): void {
    const expected = this.#tokenDigest;
    if (expected === undefined) return;
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (m !== null && timingSafeEqual(sha256(m[1]!), expected)) return;
    this.#backend.log.debug({ admin: { peer: caller.peer, path: pathOf(req), sent: m !== null } }, 'admin: request without the right token');
    const challenge = m === null ? 'Bearer realm="switchboard-admin"' : 'Bearer realm="switchboard-admin", error="invalid_token"';
    throw new AdminError(401, 'ADMIN_UNAUTHORIZED', m === null ? 'send Authorization: Bearer <admin token>' : 'the token is not the admin token', {
      'www-authenticate': challenge,
    });
  }

  /**
   * A change needs the token (without one the admin is read-only, EDGE-CASES 50), and one carrying
   * an `Origin` must come from the admin's own (a page elsewhere must not steer it: CSRF).
   */
  #checkOrigin(req: http.IncomingMessage, caller: Caller): void {
    if (caller.auth !== 'token')
      throw new AdminError(403, 'ADMIN_READ_ONLY', 'runtime changes and reloads need admin.token in the config (without it the admin API is read-only)');
    const origin = req.headers.origin;
    if (origin === undefined) return;
    let host: string | undefined;
    try {
      const u = new URL(origin);
      host = u.protocol === 'http:' ? u.host : undefined;
    } catch {
      host = undefined;
    }
    if (host !== undefined && host === req.headers.host?.toLowerCase()) return;
    this.#backend.log.warn({ admin: { peer: caller.peer, origin } }, 'admin: change refused: Origin of another site');
    throw new AdminError(403, 'ADMIN_CROSS_ORIGIN', 'a change from a page of another origin is refused');
  }
}

function generationJson(b: AdminBackend): { number: number; loadedAt: string } {
  const g = b.generation();
  return { number: g.number, loadedAt: g.loadedAt.toISOString() };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function pathOf(req: http.IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new AdminError(400, 'ADMIN_BAD_REQUEST', `bad percent-encoding in ${JSON.stringify(segment)}`);
  }
}

/** The host name of a Host header (`[::1]:9901` → `::1`), undefined when absent. */
function hostName(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

function allow(method: string, methods: string[]): void {
  if (!methods.includes(method)) throw new AdminError(405, 'ADMIN_METHOD_NOT_ALLOWED', `use ${methods.join(' or ')}`, { allow: methods.join(', ') });
}

function notFound(path: string): AdminError {
  return new AdminError(404, 'ADMIN_NOT_FOUND', `no admin endpoint at ${JSON.stringify(path)} (docs/admin.md lists them)`);
}

/** The request body as text, at most MAX_BODY bytes (413 past it). */
async function readBody(req: http.IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY) throw new AdminError(413, 'ADMIN_BODY_TOO_LARGE', `request bodies are at most ${MAX_BODY} bytes`, { connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new AdminError(413, 'ADMIN_BODY_TOO_LARGE', `request bodies are at most ${MAX_BODY} bytes`, { connection: 'close' });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A purge: exactly one of `url` (`https://host/path?query`: every variant of it), `prefix` (an
 * absolute URL every purged URL starts with) or `tag` (a `Surrogate-Key` / `Cache-Tag` value),
 * and optionally `policy` (a cache policy's name; every cache policy without it).
 */
function parsePurge(body: string): { policy: string | undefined; query: PurgeQuery } {
  const shape =
    'the body must be JSON such as {"url": "https://example.com/a"}, {"prefix": "https://example.com/static/"} or {"tag": "product-42"}, with an optional "policy"';
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new AdminError(400, 'ADMIN_BAD_REQUEST', shape);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AdminError(400, 'ADMIN_BAD_REQUEST', shape);
  const o = parsed as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => !['url', 'prefix', 'tag', 'policy'].includes(k));
  if (unknown.length > 0) throw new AdminError(400, 'ADMIN_BAD_PURGE', `unknown field ${JSON.stringify(unknown[0])}; ${shape}`);
  const kinds = (['url', 'prefix', 'tag'] as const).filter((k) => o[k] !== undefined);
  if (kinds.length !== 1)
    throw new AdminError(400, 'ADMIN_BAD_PURGE', `give exactly one of url, prefix and tag, found ${kinds.length === 0 ? 'none' : kinds.join(' and ')}`);
  const kind = kinds[0]!;
  const value = o[kind];
  if (typeof value !== 'string' || value === '') throw new AdminError(400, 'ADMIN_BAD_PURGE', `${kind} must be a non-empty string, found ${JSON.stringify(value)}`);
  if (kind !== 'tag' && !/^https?:\/\/[^/?#]/i.test(value)) {
    throw new AdminError(
      400,
      'ADMIN_BAD_PURGE',
      `${kind} must be an absolute http or https URL (scheme, host, path: as clients ask for it), found ${JSON.stringify(value)}`,
    );
  }
  if (kind !== 'tag' && !URL.canParse(value)) throw new AdminError(400, 'ADMIN_BAD_PURGE', `${kind} is not a valid URL: ${JSON.stringify(value)}`);
  const policy = o.policy;
  if (policy !== undefined && (typeof policy !== 'string' || policy === ''))
    throw new AdminError(400, 'ADMIN_BAD_PURGE', `policy must be a policy's name, found ${JSON.stringify(policy)}`);
  const query = (kind === 'url' ? { url: value } : kind === 'prefix' ? { prefix: value } : { tag: value }) as PurgeQuery;
  return { policy: policy as string | undefined, query };
}

/** `{"weight": n}`, n an integer from 1 to 1000 (drain an endpoint to give it no new traffic). */
function parseWeight(body: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new AdminError(400, 'ADMIN_BAD_REQUEST', 'the body must be JSON such as {"weight": 5}');
  }
  const w = (parsed as { weight?: unknown } | null)?.weight;
  if (typeof w !== 'number' || !Number.isInteger(w) || w < 1 || w > MAX_WEIGHT) {
    throw new AdminError(
      400,
      'ADMIN_BAD_WEIGHT',
      `weight must be an integer from 1 to ${MAX_WEIGHT} (drain the endpoint to send it nothing new), found ${JSON.stringify(w) ?? 'nothing'}`,
    );
  }
  return w;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** Stops accepting on a moved admin: idle connections close now, busy ones after their answer (or in 10 s). */
function retire(server: http.Server): void {
  server.close();
  server.closeIdleConnections();
  setTimeout(() => server.closeAllConnections(), REQUEST_TIMEOUT_MS).unref();
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
