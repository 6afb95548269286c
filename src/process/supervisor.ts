/**
 * The supervisor: with `workers` above 1, `switchboard start` runs this in the first process. It
 * validates the config, forks the workers (node:cluster), watches them, and never serves traffic.
 *
 *   supervisor ── holds each listening socket (cluster hands every worker the same one)
 *       │          runs the health checkers (one per endpoint for the machine), watches the config
 *       │          file, owns the TLS ticket keys and the machine-wide counters (shared.ts)
 *       ├── worker 1 ── Gateway (every listener)
 *       └── worker N ── Gateway
 *
 * - A worker that dies is replaced at once; only its own connections are lost (the socket stays
 *   open in the supervisor, so no connection is refused meanwhile).
 * - Reload (SIGHUP, file change, `reload()`): the supervisor reads and validates the file once and
 *   sends every worker the same checked value; a bad config changes nothing.
 * - Upgrade (SIGUSR2, `handover()`): a new Switchboard started from the code on disk (supervisor
 *   and workers of the new version) gets the listening sockets (handover.ts); once it serves, this
 *   one drains and exits. The sockets never close, so no connection is refused.
 * - `workerMemoryLimit`: a worker whose RSS stays above it is replaced the same way (start a new
 *   one, then drain it).
 * - SIGUSR1 reopens log files in every worker (logrotate).
 * - The admin listener (config `admin`, src/admin/) runs here, never in a worker: reads ask every
 *   worker for its view over IPC and merge them; runtime changes go to every worker, and are kept
 *   (MachineRuntime) for workers started later, until the next reload.
 */
import cluster, { type Worker } from 'node:cluster';
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { extname, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FSWatcher } from 'chokidar';
import { watchFile } from '../util/watch-file.ts';
import type { Logger } from 'pino';
import { formatConfigError, type ConfigError } from '../config/load.ts';
import { loadConfigFile } from '../config/load-text.ts';
import type { GatewayConfig } from '../config/types.ts';
import { configChanges } from '../config/diff.ts';
import { bindingName, ConfigLoadError, type ReloadResult } from '../gateway.ts';
import { configReload, endpointState } from '../observability/events.ts';
import { removeSharedMemory } from '../policies/registry.ts';
import { createLogger, type LogFormat, type LogLevel } from '../observability/logger.ts';
import type { AccessLogFormat } from '../observability/access-log.ts';
import type { EndpointStateEvent } from '../upstream/state.ts';
import { StateStore } from '../upstream/state.ts';
import { ParentHealth } from '../forward/parent-health.ts';
import { isMessage, post, type FromWorker, type ToWorker } from './messages.ts';
import { SharedCounters } from './shared.ts';
import { StateHost } from '../state/state-host.ts';
import { addressKey, bindError } from '../listeners/bind.ts';
import { startSuccessor } from './handover.ts';
import { MachineMetrics } from './machine-metrics.ts';
import { AdminServer } from '../admin/server.ts';
import { mergeUpstreams, type AdminBackend, type AdminUpstream } from '../admin/backend.ts';
import { RecentConfigErrors } from '../observability/config-errors.ts';
import { askPurge, askView, MachineRuntime } from './admin-backend.ts';
import type { TapBatch } from '../observability/access-tap.ts';

export interface SupervisorOptions {
  /** The config file (YAML or JSON). */
  config: string;
  accessLog: string;
  /** Default `json`. */
  accessLogFormat?: AccessLogFormat;
  logLevel: LogLevel;
  /** Default `json`. */
  logFormat?: LogFormat;
  /** Reload when the config file changes. */
  watch: boolean;
  logger?: Logger;
  /** Keep Prometheus metrics whatever the config says (`metrics.enabled`); `supervisor.metrics` serves them. */
  metrics?: boolean;
  /** Listening sockets inherited from the Switchboard this one upgrades (binding name → fd; handover.ts). */
  sockets?: ReadonlyMap<string, number>;
  /**
   * Called once, after the config is checked and before the first worker is forked (`switchboard
   * start` passes `compactAtStart`, util/heap.ts): the supervisor's start-up garbage is collected
   * before any worker depends on it (a worker's `memory` state calls, the admin API), not while
   * they serve.
   */
  beforeForking?: (log: Logger) => void;
}

/** One worker process as the supervisor tracks it. */
interface WorkerRecord {
  readonly worker: Worker;
  /** 1-based, reused by a replacement, in the worker's log lines. */
  readonly id: number;
  state: 'starting' | 'serving' | 'draining';
  /** Settles when the worker serves (or failed to start). */
  readonly ready: Promise<void>;
  rssHigh: number;
  /** Resident memory at the last report (bytes; 0 before the first). */
  rss: number;
}

/** A native listening handle received from a worker (node:child_process's `net.Native`). */
interface NativeHandle {
  readonly fd: number;
  close(): void;
}

function isNative(h: unknown): h is NativeHandle {
  return typeof h === 'object' && h !== null && typeof (h as { fd?: unknown }).fd === 'number' && typeof (h as { close?: unknown }).close === 'function';
}

/** Time a draining worker gets past the drain timeout before it is killed. */
const KILL_GRACE_MS = 5000;
/** Consecutive reports over `workerMemoryLimit` before a worker is replaced (so a spike passes). */
const RSS_STRIKES = 3;

/**
 * Workers bind UDP listeners with SO_REUSEPORT (a socket each, so the kernel keeps a client on
 * one worker), which would let a second instance share the port silently. So the supervisor
 * first binds each new UDP address without it, and a used one fails here with the same clear
 * error a TCP listener gets (unless the listener says `reusePort: true`). `running`: the config
 * serving now, whose addresses are ours already.
 */
async function probeUdp(config: GatewayConfig, running: GatewayConfig | undefined): Promise<void> {
  const ours = new Set(running?.listeners.filter((l) => l.protocol === 'udp').map((l) => addressKey(l.address)));
  for (const l of config.listeners) {
    if (l.protocol !== 'udp' || l.reusePort || l.address.port === 0 || ours.has(addressKey(l.address))) continue;
    const socket = dgram.createSocket({ type: isIP(l.address.host) === 6 ? 'udp6' : 'udp4' });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address: l.address.host, port: l.address.port, exclusive: true }, () => resolve());
      });
    } catch (err) {
      throw new Error(`listener ${l.name}: ${bindError(err as NodeJS.ErrnoException, l.address).message}`);
    } finally {
      await new Promise<void>((resolve) => {
        try {
          socket.close(() => resolve());
        } catch {
          resolve();
        }
      });
    }
  }
}

const ENTRY = fileURLToPath(new URL(`./worker-main${extname(fileURLToPath(import.meta.url))}`, import.meta.url));

export class Supervisor {
  readonly log: Logger;
  readonly #file: string;
  readonly #opts: SupervisorOptions;
  /** TLS session ticket keys for every worker: per machine, for the supervisor's life. */
  readonly #ticketKeys = randomBytes(48).toString('base64');
  /** The machine's health checkers, and nothing else of the upstream state (workers keep the rest). */
  readonly #states: StateStore;
  /** The machine's parent proxy checkers (one per checked parent): per machine, each flip sent to every worker. */
  readonly #parents: ParentHealth;
  readonly #shared = new SharedCounters();
  /** The machine's `memory` shared state, served to the workers over IPC: per machine. */
  readonly #stateHost = new StateHost();
  readonly #workers = new Set<WorkerRecord>();
  /** The config file's value as last checked (`LoadResult.data`), what workers start from. */
  #data: unknown;
  #config!: GatewayConfig;
  /**
   * Listening sockets inherited in an upgrade (binding name → fd here), which workers listen on
   * instead of binding (node:cluster opens the fd here and shares it). Per machine. An entry goes
   * once no config has its binding, and all go once no worker is left: node:cluster closes a
   * socket no worker holds, and a replacement then binds the address afresh.
   */
  readonly #sockets: Map<string, number>;
  #socketSeq = 0;
  #addresses: Record<string, string> = {};
  #watcher: FSWatcher | undefined;
  /** The certificate, key and CA files of every TLS listener, watched once for the machine. */
  #certWatcher: FSWatcher | undefined;
  #certFiles = '';
  #queue: Promise<unknown> = Promise.resolve();
  #seq = 0;
  #stopping = false;
  /** The machine's metrics, summed from the workers' at each scrape; when metrics are on (fixed at start). */
  #metrics: MachineMetrics | undefined;
  /** Config generations served (1 = the first) and when the current one started: per machine. */
  #generation = { number: 1, loadedAt: new Date() };
  /** Rejected reloads, for the admin API: per machine (the supervisor validates them). */
  readonly #configErrors = new RecentConfigErrors();
  /** Runtime changes (admin API) in force on the machine, sent to every worker that starts. */
  readonly #runtime = new MachineRuntime();
  readonly #admin: AdminServer;
  #adminSeq = 0;
  /** Where the workers' access log lines go while someone tails the access log (admin): per machine. */
  #tailSink: ((batch: TapBatch) => void) | undefined;
  readonly #onHealth = (m: unknown): void => {
    const e = m as EndpointStateEvent;
    this.#broadcast({ sb: 'health', upstream: e.upstream, endpoint: e.endpoint, healthy: e.healthy, reason: e.reason });
  };

  private constructor(opts: SupervisorOptions) {
    this.#opts = opts;
    this.#file = resolvePath(opts.config);
    this.log = opts.logger ?? createLogger(opts.logLevel, opts.logFormat);
    this.#states = new StateStore(this.log);
    this.#parents = new ParentHealth(this.log, { onChange: (n) => this.#broadcast({ sb: 'parent-health', ...n }) });
    this.#admin = new AdminServer({ backend: this.#adminBackend(), metrics: () => this.#metrics });
    this.#sockets = new Map(opts.sockets);
  }

  /** `http://host:port` of the admin listener, undefined when the config has none. */
  adminUrl(): string | undefined {
    return this.#admin.url();
  }

  /** What the admin API reads and changes, for the machine (src/admin/backend.ts). */
  #adminBackend(): AdminBackend {
    return {
      log: this.log,
      config: () => this.#config,
      generation: () => this.#generation,
      listenerUrls: () => this.#addresses,
      serving: () => [...this.#workers].some((r) => r.state === 'serving'),
      health: () => this.#states.health(),
      upstreams: () => this.#upstreams(),
      workers: async () => [...this.#workers].sort((a, b) => a.id - b.id).map((r) => ({ id: r.id, pid: r.worker.process.pid ?? 0, state: r.state, rss: r.rss })),
      configErrors: () => this.#configErrors.list(),
      change: async (c) => {
        const u = this.#config.upstreams.get(c.upstream);
        if (u === undefined) return 'upstream';
        if (!u.endpoints.some((e) => e.origin === c.endpoint)) return 'endpoint';
        this.#runtime.add(c);
        // Starting workers too: one that has not served yet replays it once it does.
        this.#broadcast({ sb: 'admin-change', change: c });
        return 'ok';
      },
      purge: async (policy, query) => {
        // With workers every store is one copy for the machine or the fleet (cache/index.ts
        // `storeFor`: /dev/shm, disk, Redis): one worker applies a purge for all, so each removed
        // object is counted once (its count, its metrics). A serving worker first (the lowest id),
        // the next one when it does not answer in time (a draining one last; a starting one
        // has not served yet).
        const id = ++this.#adminSeq;
        const rank = (r: WorkerRecord): number => (r.state === 'serving' ? 0 : 1);
        const holders = [...this.#workers].filter((r) => r.state !== 'starting').sort((a, b) => rank(a) - rank(b) || a.id - b.id);
        for (const r of holders) {
          const n = await askPurge(r.worker, id, policy, query);
          if (n !== undefined) return { purged: n, processes: 1 };
          this.log.warn({ policy, worker: r.id }, 'cache purge: a worker did not answer in time; asking the next');
        }
        return { purged: 0, processes: 0 };
      },
      reload: async () => {
        const r = await this.reload();
        return { ok: r.ok, errors: r.errors.map((e) => e.message) };
      },
      tail: (deliver) => {
        this.#tailSink = deliver;
        this.#broadcast({ sb: 'tail', on: true });
        return () => {
          this.#tailSink = undefined;
          this.#broadcast({ sb: 'tail', on: false });
        };
      },
    };
  }

  /** Every serving worker's view of the upstreams, merged; health is the supervisor's checkers'. */
  async #upstreams(): Promise<AdminUpstream[]> {
    const id = ++this.#adminSeq;
    const serving = [...this.#workers].filter((r) => r.state === 'serving').sort((a, b) => a.id - b.id);
    const views = await Promise.all(serving.map((r) => askView(r.worker, id)));
    const parts = serving.flatMap((r, i) => (views[i] === undefined ? [] : [{ worker: r.id, pid: r.worker.process.pid ?? 0, upstreams: views[i]! }]));
    const merged = parts.length > 0 ? mergeUpstreams(parts) : this.#states.view();
    const health = new Map(this.#states.health().map((h) => [`${h.upstream} ${h.endpoint}`, h.healthy]));
    for (const u of merged) for (const e of u.endpoints) e.healthy = health.get(`${u.name} ${e.url}`) ?? e.healthy;
    return merged;
  }

  /** Validates the config, starts every worker, resolves once all serve. Throws ConfigLoadError, or the first worker's start error. */
  static async start(opts: SupervisorOptions): Promise<Supervisor> {
    const sv = new Supervisor(opts);
    const result = await loadConfigFile(sv.#file);
    if (!result.ok) throw new ConfigLoadError(result.errors);
    // In an upgrade the old Switchboard still holds the UDP addresses (its workers' sockets share them).
    if (sv.#sockets.size === 0) await probeUdp(result.config, undefined);
    sv.#data = result.data;
    sv.#config = result.config;
    if (opts.metrics ?? result.config.metrics.enabled) {
      sv.#metrics = new MachineMetrics(() => [...sv.#workers].filter((r) => r.state !== 'starting').map((r) => r.worker));
    }
    // Every worker shares the socket the supervisor holds (SCHED_NONE) instead of the supervisor
    // accepting and passing each connection on (docs/architecture.md, "Workers").
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: ENTRY, args: [] });
    endpointState.subscribe(sv.#onHealth);
    sv.#states.apply(result.config);
    sv.#parents.apply(result.config);
    opts.beforeForking?.(sv.log);
    const started = Array.from({ length: result.config.workers }, (_, i) => sv.#fork(i + 1));
    try {
      await Promise.all(started.map((r) => r.ready));
    } catch (err) {
      await sv.#shutdown();
      throw err;
    }
    try {
      await sv.#admin.apply(result.config.admin, sv.#sockets.get('admin'));
      sv.#sockets.delete('admin');
    } catch (err) {
      await sv.#shutdown();
      throw err;
    }
    if (opts.watch) await sv.#watch();
    await sv.#watchCertificates(result.config);
    const admin = sv.adminUrl();
    sv.log.info({ listeners: sv.#addresses, ...(admin === undefined ? {} : { admin }), workers: result.config.workers, pid: process.pid }, 'switchboard started');
    return sv;
  }

  /** Every listener's address by name, as the workers bound it. */
  addresses(): Record<string, string> {
    return { ...this.#addresses };
  }

  /** The machine's metrics provider (`render(accept)` for `GET /metrics`), when metrics are on. */
  get metrics(): MachineMetrics | undefined {
    return this.#metrics;
  }

  #fork(id: number): WorkerRecord {
    const worker = cluster.fork({ SWITCHBOARD_WORKER_ID: String(id) });
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    ready.catch(() => undefined);
    const record: WorkerRecord = { worker, id, state: 'starting', ready, rssHigh: 0, rss: 0 };
    this.#workers.add(record);
    this.#shared.add(worker);
    // A send to a worker that is exiting fails later, as an 'error' event (EPIPE): unhandled, it
    // would take the supervisor down. The worker's 'exit' handler does what is needed.
    worker.on('error', (err: Error) => this.log.debug({ worker: id, err: err.message }, 'message to a worker not delivered'));
    worker.on('message', (m: unknown) => {
      // The workers' shared-state operations (state.backend: memory), one MemoryState for the machine.
      if (this.#stateHost.handle(m, worker)) return;
      if (!isMessage<FromWorker>(m)) return;
      if (m.sb === 'hello') this.#init(worker);
      else if (m.sb === 'ready') {
        this.#addresses = m.addresses;
        if (record.state === 'starting') record.state = 'serving';
        settle.resolve();
      } else if (m.sb === 'failed') {
        settle.reject(Object.assign(new Error(m.message), { code: m.code }));
      } else if (m.sb === 'rss') this.#checkMemory(record, m.rss);
      else if (m.sb === 'tail-lines') this.#tailSink?.({ lines: m.lines, dropped: m.dropped });
      else this.#shared.handle(record.worker, m);
    });
    worker.on('exit', (code, signal) => {
      this.#workers.delete(record);
      this.#shared.forget(worker);
      if (this.#workers.size === 0) this.#sockets.clear();
      settle.reject(new Error(`worker ${id} exited (${signal ?? `code ${code}`}) before it served`));
      if (record.state === 'draining' || this.#stopping) return;
      this.log.error({ worker: id, pid: worker.process.pid, code, signal }, 'worker died; starting a replacement');
      if (record.state === 'serving') this.#replace(id);
    });
    return record;
  }

  /** The config, the ticket keys and the health a new worker starts with. */
  #init(worker: Worker): void {
    post(worker, {
      sb: 'init',
      data: this.#data,
      file: this.#file,
      accessLog: this.#opts.accessLog,
      accessLogFormat: this.#opts.accessLogFormat ?? 'json',
      logLevel: this.#opts.logLevel,
      logFormat: this.#opts.logFormat ?? 'json',
      ticketKeys: this.#ticketKeys,
      health: this.#states.health().map((h) => ({ ...h, reason: 'supervisor' })),
      parentHealth: this.#parents.health(),
      metrics: this.#metrics !== undefined,
      runtime: this.#runtime.list(),
      tail: this.#tailSink !== undefined,
      sockets: Object.fromEntries(this.#sockets),
    } satisfies ToWorker);
  }

  /** Starts a worker in the place of one that died; retried with a growing delay while it cannot start. */
  #replace(id: number, delay = 0): void {
    if (this.#stopping) return;
    const r = this.#fork(id);
    r.ready.catch((err: Error) => {
      const next = Math.min(5000, Math.max(100, delay * 2));
      this.log.error({ worker: id, err: err.message, retryInMs: next }, 'replacement worker failed to start');
      setTimeout(() => this.#replace(id, next), next).unref();
    });
  }

  #checkMemory(r: WorkerRecord, rss: number): void {
    r.rss = rss;
    const limit = this.#config.workerMemoryLimit;
    if (limit === 0 || r.state !== 'serving') return;
    r.rssHigh = rss > limit ? r.rssHigh + 1 : 0;
    if (r.rssHigh < RSS_STRIKES) return;
    this.log.warn({ worker: r.id, pid: r.worker.process.pid, rss, limit }, 'worker over workerMemoryLimit: replacing it');
    r.state = 'draining';
    const fresh = this.#fork(r.id);
    void fresh.ready.then(
      () => this.#drain(r),
      () => this.#drain(r),
    );
  }

  /**
   * Asks a worker to drain; kills it if it is not gone by the drain timeout (plus a grace).
   * `linger` (others serve on: upgrade, replacement, fewer workers): idle keep-alive connections
   * end at their keepAliveTimeout, so that no request meets a closing connection.
   */
  #drain(r: WorkerRecord, linger = true): Promise<void> {
    r.state = 'draining';
    if (r.worker.isDead()) return Promise.resolve();
    const gone = new Promise<void>((resolve) => r.worker.once('exit', () => resolve()));
    post(r.worker, { sb: 'drain', linger });
    const kill = setTimeout(() => r.worker.process.kill('SIGKILL'), this.#config.drainTimeout + KILL_GRACE_MS);
    return gone.finally(() => clearTimeout(kill));
  }

  #broadcast(m: ToWorker): void {
    for (const r of this.#workers) if (r.state !== 'draining') post(r.worker, m);
  }

  /**
   * Reads the config file, validates it once, and has every worker swap to it; the worker count
   * follows `workers`. A bad config changes nothing (and is logged).
   */
  reload(): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      if (this.#stopping) return { ok: false, errors: [] };
      const result = await loadConfigFile(this.#file);
      if (!result.ok) return this.#rejected(result.errors);
      const data = result.data;
      try {
        await probeUdp(result.config, this.#config);
      } catch (err) {
        const message = (err as Error).message;
        return this.#rejected([{ file: this.#file, path: 'listeners', expected: 'addresses that are free', found: message, message }]);
      }
      // The admin first: a new admin address that cannot bind changes nothing else.
      const previousAdmin = this.#config.admin;
      try {
        await this.#admin.apply(result.config.admin);
      } catch (err) {
        const message = (err as Error).message;
        return this.#rejected([{ file: this.#file, path: 'admin.address', expected: 'an admin address that can bind', found: message, message }]);
      }
      const serving = [...this.#workers].filter((r) => r.state === 'serving');
      const seq = ++this.#seq;
      const answers = await Promise.all(serving.map((r) => this.#ask(r, { sb: 'reload', seq, data, file: this.#file })));
      const failed = answers.find((a) => !a.ok);
      if (failed !== undefined) {
        this.log.error({ errors: failed.errors }, 'reload failed in a worker; the running config keeps serving');
        await this.#admin.apply(previousAdmin).catch(() => undefined);
        this.#configErrors.add(failed.errors);
        configReload.publish({ ok: false, errors: failed.errors });
        const e: ConfigError = {
          file: this.#file,
          path: 'listeners',
          expected: 'listeners that can bind',
          found: failed.errors.join('; '),
          message: failed.errors.join('; '),
        };
        return { ok: false, errors: [e] };
      }
      const changes = configChanges(this.#config, result.config);
      this.#data = data;
      this.#config = result.config;
      this.#generation = { number: this.#generation.number + 1, loadedAt: new Date() };
      // Runtime changes last until a reload; each worker's own reload dropped them too.
      this.#runtime.clear();
      // A worker that started meanwhile (a crash replaced) got the old config: it swaps now.
      for (const r of this.#workers) if (!serving.includes(r) && r.state !== 'draining') post(r.worker, { sb: 'reload', seq, data, file: this.#file });
      this.#states.apply(result.config);
      this.#states.prune(result.config);
      this.#parents.apply(result.config);
      this.#parents.prune(result.config);
      const bindings = new Set(result.config.listeners.map(bindingName));
      for (const name of this.#sockets.keys()) if (!bindings.has(name)) this.#sockets.delete(name);
      await this.#watchCertificates(result.config);
      await this.#resize(result.config.workers);
      this.log.info({ ...changes, workers: result.config.workers }, 'config reloaded');
      configReload.publish({ ok: true });
      return { ok: true, errors: [] };
    };
    const next = this.#queue.then(run, run);
    this.#queue = next;
    return next;
  }

  #rejected(errors: ConfigError[]): ReloadResult {
    this.log.error({ errors: errors.map(formatConfigError) }, 'config rejected; the running config keeps serving');
    this.#configErrors.add(errors.map(formatConfigError));
    configReload.publish({ ok: false, errors: errors.map(formatConfigError) });
    return { ok: false, errors };
  }

  /** Sends `m` and waits for the worker's `reloaded` answer (a worker that exits meanwhile counts as done). */
  #ask(r: WorkerRecord, m: ToWorker & { sb: 'reload' }): Promise<{ ok: boolean; errors: string[] }> {
    return new Promise((resolve) => {
      const onMessage = (a: unknown): void => {
        if (!isMessage<FromWorker>(a) || a.sb !== 'reloaded' || a.seq !== m.seq) return;
        done({ ok: a.ok, errors: a.errors });
      };
      const onExit = (): void => done({ ok: true, errors: [] });
      const done = (answer: { ok: boolean; errors: string[] }): void => {
        r.worker.off('message', onMessage);
        r.worker.off('exit', onExit);
        resolve(answer);
      };
      r.worker.on('message', onMessage);
      r.worker.once('exit', onExit);
      post(r.worker, m);
    });
  }

  /** Starts or drains workers until `count` serve. */
  async #resize(count: number): Promise<void> {
    const serving = [...this.#workers].filter((r) => r.state !== 'draining').sort((a, b) => a.id - b.id);
    if (serving.length > count) await Promise.all(serving.slice(count).map((r) => this.#drain(r)));
    const ids = new Set(serving.map((r) => r.id));
    const fresh: WorkerRecord[] = [];
    for (let id = 1; fresh.length + serving.length < count; id++) if (!ids.has(id)) fresh.push(this.#fork(id));
    await Promise.allSettled(fresh.map((r) => r.ready));
  }

  /**
   * Binary upgrade (SIGUSR2 to `switchboard start`, handover.ts): starts a new Switchboard from the
   * code on disk with this machine's listening sockets, and resolves true once it serves; the caller
   * then drains this one (`stop(…, { linger: true })`). False when the new one failed: this one
   * serves on, its sockets never closed.
   */
  handover(): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      if (this.#stopping) return false;
      const from = [...this.#workers].find((r) => r.state === 'serving');
      if (from === undefined) return false;
      const received = await this.#socketsOf(from);
      if (received === undefined) {
        this.log.error({ worker: from.id }, 'upgrade failed: a worker did not hand over the listening sockets; this one keeps serving');
        return false;
      }
      const sockets = received.map((r) => ({ name: r.name, fd: r.handle.fd }));
      const admin = this.#admin.fd();
      if (admin !== undefined) sockets.push({ name: 'admin', fd: admin });
      try {
        return await startSuccessor(sockets, this.log);
      } finally {
        // The new process has its own copies.
        for (const r of received) r.handle.close();
      }
    };
    const next = this.#queue.then(run, run);
    this.#queue = next;
    return next;
  }

  /** A worker's listening sockets (node:cluster's shared ones: one worker has them all), or undefined. */
  #socketsOf(r: WorkerRecord): Promise<Array<{ name: string; handle: NativeHandle }> | undefined> {
    const id = ++this.#socketSeq;
    return new Promise((resolve) => {
      const got: Array<{ name: string; handle: NativeHandle }> = [];
      const onMessage = (m: unknown, handle: unknown): void => {
        if (!isMessage<FromWorker>(m) || m.sb !== 'socket' || m.id !== id) return;
        if (m.name !== undefined && isNative(handle)) got.push({ name: m.name, handle });
        if (got.length >= m.count) done(got);
      };
      const onExit = (): void => done(undefined);
      const timer = setTimeout(() => done(undefined), 5000);
      function done(answer: typeof got | undefined): void {
        clearTimeout(timer);
        r.worker.off('message', onMessage);
        r.worker.off('exit', onExit);
        if (answer === undefined) for (const g of got) g.handle.close();
        resolve(answer);
      }
      r.worker.on('message', onMessage);
      r.worker.once('exit', onExit);
      post(r.worker, { sb: 'sockets', id });
    });
  }

  /**
   * Watches the TLS files of `config` (a new watcher only when the set of files changed); on a
   * change every worker reads them again, so N workers do not run N watchers.
   */
  async #watchCertificates(config: GatewayConfig): Promise<void> {
    const files = new Set<string>();
    for (const l of config.listeners) {
      for (const c of l.tls?.certificates ?? []) files.add(c.certFile).add(c.keyFile);
      if (l.tls?.clientCertificate !== undefined) files.add(l.tls.clientCertificate.caFile);
    }
    const key = [...files].sort().join('\n');
    if (key === this.#certFiles) return;
    this.#certFiles = key;
    await this.#certWatcher?.close();
    this.#certWatcher =
      files.size === 0
        ? undefined
        : await watchFile([...files], () => {
            this.log.info({ files: [...files] }, 'certificate files changed; the workers read them again');
            this.#broadcast({ sb: 'certs' });
          });
  }

  /** Every worker reopens its log files (SIGUSR1). */
  reopenLogs(): void {
    this.#broadcast({ sb: 'reopen' });
  }

  async #watch(): Promise<void> {
    this.#watcher = await watchFile(this.#file, () => void this.reload());
  }

  /**
   * Drains every worker (each finishes its in-flight requests within the drain timeout), then
   * stops the checkers. Logs "draining" (with `signal`) once every worker has closed its listening
   * sockets: from then on new connections are refused.
   */
  async stop(signal?: string, opts: { linger?: boolean } = {}): Promise<void> {
    if (this.#stopping) return;
    await this.#queue.catch(() => undefined);
    await this.#shutdown(() => this.log.info({ signal }, 'draining'), opts.linger === true);
    this.log.info('switchboard stopped');
  }

  /** `linger`: another process serves on (an upgrade): idle keep-alive connections end at their timeout. */
  async #shutdown(stoppedAccepting: () => void = () => undefined, linger = false): Promise<void> {
    this.#stopping = true;
    await this.#admin.close();
    await this.#watcher?.close();
    await this.#certWatcher?.close();
    endpointState.unsubscribe(this.#onHealth);
    const records = [...this.#workers];
    const acks = records.map((r) => this.#stoppedAccepting(r));
    const drained = records.map((r) => this.#drain(r, linger));
    await Promise.all(acks);
    stoppedAccepting();
    await Promise.all(drained);
    // The workers' shared memory cache stores (per machine, named after this supervisor) go with them.
    removeSharedMemory(process.pid);
    this.#states.close();
    this.#parents.close();
    this.#metrics?.close();
    await this.#stateHost.state.close();
  }

  /** Resolves once `r` says it closed its listening sockets, or exited, or after a bound. */
  #stoppedAccepting(r: WorkerRecord): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, 2000);
      function done(): void {
        clearTimeout(timer);
        r.worker.off('message', onMessage);
        r.worker.off('exit', done);
        resolve();
      }
      const onMessage = (m: unknown): void => {
        if (isMessage<FromWorker>(m) && m.sb === 'stopped-accepting') done();
      };
      r.worker.on('message', onMessage);
      r.worker.once('exit', done);
    });
  }
}
