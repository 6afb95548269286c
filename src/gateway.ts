/**
 * The Gateway: the programmatic API the CLI and the tests are built on. It turns a config into a
 * config generation, binds the listeners, and swaps generations atomically on reload: validate
 * first, bind any new listener, then point every listener at the new generation in one step. The
 * old generation finishes its in-flight requests and releases its pools; a bad config changes
 * nothing.
 */
import type { FSWatcher } from 'chokidar';
import { watchFile } from './util/watch-file.ts';
import { resolve as resolvePath } from 'node:path';
import type { AdminConfig, GatewayConfig, ListenerConfig } from './config/types.ts';
import { configChanges } from './config/diff.ts';
import { formatConfigError, loadConfigData, loadConfigObject, type ConfigError, type LoadResult } from './config/load.ts';
import { addressKey, Binding } from './listeners/bind.ts';
import { bindingKey, HttpListener } from './listeners/http-listener.ts';
import { TcpListener } from './listeners/tcp-listener.ts';
import { UdpListener } from './listeners/udp-listener.ts';
import { SocksListener } from './listeners/socks-listener.ts';

type Listener = HttpListener | TcpListener | UdpListener | SocksListener;
import { createAccessLog, type AccessLog, type AccessLogDestination, type AccessLogFormat } from './observability/access-log.ts';
import { configReload } from './observability/events.ts';
import { createLogger, type LogFormat, type LogLevel, type Logger } from './observability/logger.ts';
import type { CacheStoreSnapshot, EndpointSnapshot, ListenerSnapshot, Metrics, MetricsOptions } from './observability/metrics.ts';
import type { Tracing } from './observability/tracing.ts';
import { Generation } from './generation.ts';
import { ParentHealth } from './forward/parent-health.ts';
import { PoolRegistry } from './transport/pools.ts';
import { StateStore, type EndpointState, type ExternalHealth, type RuntimeChange, type UpstreamView } from './upstream/state.ts';
import { RecentConfigErrors, type ConfigErrorRecord } from './observability/config-errors.ts';
import type { MetricsProvider } from './observability/metrics-provider.ts';
import type { MachineLink } from './upstream/machine-link.ts';
import { createSharedState } from './state/create-shared-state.ts';
import type { StateChannel } from './state/state-channel.ts';
import type { PurgeQuery, Usage, UsageQuery } from './policies/filter.ts';
import type { StateGuard } from './state/state-guard.ts';

export interface GatewayOptions {
  /** A config file path (YAML or JSON), or a config object of the same shape. */
  config: string | object;
  /**
   * Listening sockets inherited from the Switchboard this process upgrades (binding name → fd,
   * process/handover.ts): the first config's listeners use them instead of binding their addresses.
   * In a worker the descriptors are the supervisor's.
   */
  sockets?: ReadonlyMap<string, number>;
  /** Access log destination; default `off`. */
  accessLog?: AccessLogDestination;
  /** Access log format: `json` (default), `common`, `combined`, or `{ template: '${client} ${status}' }` (docs/logging.md). */
  accessLogFormat?: AccessLogFormat;
  /** Process log level; default `info`. Ignored when `logger` is given. */
  logLevel?: LogLevel;
  /** Process log format; default `json`. Ignored when `logger` is given. */
  logFormat?: LogFormat;
  logger?: Logger;
  /** Reload when the config file changes (file configs only); default false. */
  watch?: boolean;
  /**
   * The config as a supervisor read and checked it (`LoadResult.data`: the file's value after
   * `${VAR}` substitution), with the file it came from (for relative paths and error messages);
   * used instead of reading `config`.
   */
  configData?: { data: unknown; file: string };
  /** Set in a worker process of a supervisor (src/process/); absent for one process. */
  worker?: WorkerOptions;
  /**
   * Prometheus metrics (docs/metrics.md), served by `gw.metrics.render()`: on with `true` (or
   * options), or when the config says `metrics.enabled`. Fixed for the gateway's life.
   */
  metrics?: boolean | MetricsOptions;
  /**
   * Starts the admin listener when the config has `admin` (src/admin/ provides it; `startGateway`
   * of the public API passes it). Never used in a worker: there the supervisor serves the admin.
   */
  admin?: AdminHostFactory;
  /**
   * Called once while starting, after the first config's generation is built (routes, policies,
   * schemas compiled; state, metrics and tracing set up) and before any listener (or the admin
   * listener) binds or takes over an inherited socket, so before the process accepts a connection.
   * `switchboard start` passes `compactAtStart` (util/heap.ts): start-up's garbage is collected
   * while the process serves nothing yet, and in a reload or an upgrade the old processes still
   * serve meanwhile. Not called on reloads. A rejection fails the start.
   */
  beforeListening?: (log: Logger) => void | Promise<void>;
}

/** The admin listener as the gateway drives it: bound, re-bound or closed with each config. */
export interface AdminHost {
  /**
   * Binds (or re-binds, when the address changed) for `config`, or closes when undefined. Rejects
   * when it cannot bind. `fd`: a listening socket inherited in an upgrade, used instead of binding.
   */
  apply(config: AdminConfig | undefined, fd?: number): Promise<void>;
  /** The listening socket's descriptor, for a handover; undefined when there is none. */
  fd(): number | undefined;
  /** `http://host:port` of the bound admin listener, undefined when there is none. */
  url(): string | undefined;
  close(): Promise<void>;
}

/** Builds the admin host of a gateway (src/admin/). */
export type AdminHostFactory = (gw: Gateway, metrics: () => MetricsProvider | undefined) => AdminHost;

/** How a worker's gateway differs from a lone process's. */
export interface WorkerOptions {
  /** The worker's number (1-based), in its log lines. */
  id: number;
  /** TLS session ticket keys (48 bytes) the machine's workers share, so a session resumes on any of them. */
  ticketKeys: Buffer;
  /** The machine-wide counters (in flight, circuit-breaker slots) the supervisor keeps. */
  link: MachineLink;
  /** The IPC channel to the supervisor, which serves the `memory` shared state (state/). */
  stateChannel: StateChannel;
  /** Endpoint health as the supervisor's checkers see it (upstream/state.ts): endpoints start with it. */
  health: ExternalHealth;
  /** Parent proxies' health as the supervisor's checkers see it, by parentKey (forward/parent-health.ts). */
  parentHealth?: ReadonlyMap<string, boolean>;
  /** The runtime changes (admin API) in force on the machine: endpoints start with them. */
  runtime?: readonly RuntimeChange[];
}

export interface ReloadResult {
  ok: boolean;
  /** Every problem of a rejected config; empty when ok. */
  errors: ConfigError[];
}

/** Thrown by `startGateway` when the initial config is invalid; carries every problem. */
export class ConfigLoadError extends Error {
  readonly errors: ConfigError[];
  constructor(errors: ConfigError[]) {
    super(`invalid configuration:\n${errors.map(formatConfigError).join('\n')}`);
    this.name = 'ConfigLoadError';
    this.errors = errors;
  }
}

/** A config source: a file path, a config object, or the value of a file a supervisor read. */
type Source = string | object | { data: unknown; file: string; [DATA]: true };
const DATA = Symbol('config data');

async function load(source: Source): Promise<LoadResult> {
  // The YAML loader is imported only for a file: a worker, which gets values, never loads it.
  if (typeof source === 'string') return (await import('./config/load-text.ts')).loadConfigFile(source);
  if (DATA in source) return loadConfigData(source.data, source.file);
  return loadConfigObject(source);
}

export class Gateway {
  readonly log: Logger;
  readonly #registry = new PoolRegistry();
  readonly #accessLog: AccessLog;
  readonly #states: StateStore;
  /**
   * The parent proxies' active health checks, kept across generations (forward/parent-health.ts).
   * Per process: the checkers run here in a lone process; a worker holds the supervisor's results
   * (per machine: one checker per parent for the machine, every worker sees the same health).
   */
  readonly #parentHealth: ParentHealth;
  readonly #live = new Set<Generation>();
  #source: Source;
  readonly #worker: WorkerOptions | undefined;
  /** Listening sockets inherited in an upgrade, for the first config (GatewayOptions.sockets). */
  readonly #sockets: ReadonlyMap<string, number> | undefined;
  #generation: Generation | undefined;
  #listeners = new Map<string, Listener>();
  /**
   * The listening sockets of stream listeners, by address (port 0: by listener name too, each its
   * own port); a reload re-points them at new listeners and never binds an address twice.
   */
  #bindings = new Map<string, Binding>();
  #watcher: FSWatcher | undefined;
  #state: StateGuard | undefined;
  /** JSON of the state config `#state` was built from, to tell whether a reload changed it. */
  #stateKey = '';
  /**
   * This process's tracing (per worker: its own exporter and queue of spans), or undefined when the
   * config has no `tracing` section. Replaced when a reload changes that section.
   */
  #tracing: Tracing | undefined;
  /** Tracings a reload replaced, until their old generation is over and their last spans exported. */
  readonly #retiringTracing = new Set<Promise<void>>();
  #queue: Promise<unknown> = Promise.resolve();
  #stopped = false;
  /** This process's metrics, when on (per worker: the supervisor sums the workers'). */
  #metrics: Metrics | undefined;
  readonly #metricsOption: boolean | MetricsOptions | undefined;
  /** Config generations served so far (1 = the first), and when the current one started serving. */
  #generationNumber = 0;
  #loadedAt = new Date();
  /** Rejected reloads, for the admin API: per process. */
  readonly #configErrors = new RecentConfigErrors();
  readonly #admin: AdminHost | undefined;

  private constructor(opts: GatewayOptions) {
    this.#source = opts.configData ? { ...opts.configData, [DATA]: true } : typeof opts.config === 'string' ? resolvePath(opts.config) : opts.config;
    this.#worker = opts.worker;
    this.#sockets = opts.sockets;
    this.#metricsOption = opts.metrics;
    this.log = opts.logger ?? createLogger(opts.logLevel ?? 'info', opts.logFormat);
    this.#accessLog = createAccessLog(opts.accessLog ?? 'off', opts.accessLogFormat);
    // A worker's health comes from its supervisor, which checks each endpoint once for the machine.
    this.#states = new StateStore(this.log, { externalHealth: opts.worker?.health, link: opts.worker?.link });
    this.#parentHealth = new ParentHealth(this.log, { external: opts.worker === undefined ? undefined : (opts.worker.parentHealth ?? new Map()) });
    // The supervisor serves the admin for the machine; a worker never listens on it.
    this.#admin = opts.worker === undefined ? opts.admin?.(this, () => this.#metrics) : undefined;
  }

  /** Loads the config, binds every listener, and starts serving. Throws ConfigLoadError on a bad config. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    const result = await load(gw.#source);
    if (!result.ok) throw new ConfigLoadError(result.errors);
    // Subscribed before anything serves, so the first connection is counted.
    const m = gw.#metricsOption;
    if (m !== false && (m !== undefined || result.config.metrics.enabled)) {
      // Imported only when on: the Prometheus client costs a process that keeps no metrics memory.
      const { Metrics } = await import('./observability/metrics.ts');
      gw.#metrics = new Metrics(typeof m === 'object' ? m : { reloads: gw.#worker === undefined });
      gw.#metrics.setSource(gw.#metricsSource);
    }
    await gw.#useState(result.config);
    try {
      await gw.#apply(result.config, opts.beforeListening);
      await gw.#admin?.apply(result.config.admin, opts.sockets?.get('admin'));
      gw.#forgetBound();
    } catch (err) {
      // A start that failed holds nothing: the listeners a later step left bound (the admin's
      // address taken), health checkers, the access log file, state connections, metrics.
      await gw.#halt({ drainTimeout: 0 }, false).catch(() => undefined);
      throw err;
    }
    if (opts.watch && typeof gw.#source === 'string') await gw.#watch(gw.#source);
    const admin = gw.adminUrl();
    gw.log.info({ listeners: gw.addresses(), ...(admin === undefined ? {} : { admin }) }, 'switchboard started');
    return gw;
  }

  /**
   * The shared state (state/): counters, buckets, sets and records that every worker of the machine
   * (`state.backend: memory`) or every instance (`redis`) sees the same. Take a view with
   * `gw.state.user('failClosed' | 'failOpen' | 'local')`, which says what to answer when the
   * backend cannot be reached.
   */
  get state(): StateGuard {
    return this.#state!;
  }

  /** Builds the shared state for `config`, or keeps the current one when its settings did not change. */
  async #useState(config: GatewayConfig): Promise<void> {
    const key = JSON.stringify(config.state);
    if (this.#state !== undefined && key === this.#stateKey) return;
    const old = this.#state;
    this.#state = await createSharedState(config.state, { log: this.log, channel: this.#worker?.stateChannel });
    this.#stateKey = key;
    await old?.closeBackends();
  }

  /**
   * What a counting policy (a `quota`) has counted for one key in its current period, e.g.
   * `gw.usage('monthly', { consumer: 'alice' })` → `{ limit, used, remaining, resetAt, period }`.
   * Undefined when there is no policy of that name or it counts nothing readable (a rate limit's
   * bucket cannot be read without taking from it). Reads the shared state: exact per machine
   * (`memory`) or per fleet (`redis`).
   */
  usage(policy: string, who: UsageQuery): Promise<Usage> | undefined {
    return this.#generation?.filters.get(policy)?.filter.usage?.(who);
  }

  /**
   * Removes stored responses from a cache policy (`policy` named), or from every cache policy of
   * the config (`policy` undefined): `gw.purge('edge-cache', { tag: 'product-42' })`. Returns how
   * many objects went, or undefined when there is no such cache policy (none at all, without a
   * name). This process's stores only: a supervisor asks each of its workers (admin API).
   */
  async purge(policy: string | undefined, query: PurgeQuery): Promise<number | undefined> {
    const filters = this.#generation?.filters;
    if (filters === undefined) return undefined;
    if (policy !== undefined) return filters.get(policy)?.filter.purge?.(query);
    let n: number | undefined;
    for (const f of filters.values()) {
      const purged = await f.filter.purge?.(query);
      if (purged !== undefined) n = (n ?? 0) + purged;
    }
    return n;
  }

  /** The metrics provider (`render(accept)` for `GET /metrics`), when metrics are on. */
  get metrics(): Metrics | undefined {
    return this.#metrics;
  }

  /** What the metrics read at scrape time: connections by listener, endpoint health and load. */
  readonly #metricsSource = {
    listenerSnapshots: (): ListenerSnapshot[] => {
      const out: ListenerSnapshot[] = [];
      for (const l of this.#listeners.values()) {
        if (l instanceof UdpListener) continue;
        out.push({ name: l.name, protocol: l.config.protocol, open: l.limits.open, accepted: l.limits.accepted, refused: l.limits.refused });
      }
      return out;
    },
    endpointSnapshots: (): EndpointSnapshot[] => {
      const out: EndpointSnapshot[] = [];
      for (const u of this.#states.upstreams.values()) {
        for (const e of u.endpoints.values()) {
          out.push({ upstream: u.name, endpoint: e.origin, healthy: e.healthy, ejected: e.ejected, inFlight: e.inFlight, picks: e.picks });
        }
      }
      return out;
    },
    cacheSnapshots: (): CacheStoreSnapshot[] => {
      const out: CacheStoreSnapshot[] = [];
      const filters = this.#generation?.filters;
      if (filters === undefined) return out;
      for (const [policy, f] of filters) {
        const stats = f.filter.storeStats?.();
        if (stats !== undefined) for (const st of stats) out.push({ policy, ...st });
      }
      return out;
    },
  };

  /** The config generation serving new requests. */
  get config(): GatewayConfig {
    return this.#generation!.config;
  }

  /** The bound address of a listener (port 0 resolved), or throws for an unknown name. */
  address(listener: string): { host: string; port: number } {
    const l = this.#listeners.get(listener);
    const a = l instanceof UdpListener ? l.address() : l === undefined ? undefined : this.#bindings.get(bindingName(l.config))?.bound();
    if (!a) throw new Error(`no listener named ${listener}`);
    return { host: a.address, port: a.port };
  }

  /** `http(s)://host:port` of a listener, for clients. */
  url(listener: string): string {
    const { host, port } = this.address(listener);
    const protocol = this.#listeners.get(listener)!.config.protocol;
    // A forward proxy is reached over plain HTTP (`http://host:port` is what clients set as their proxy).
    const scheme = protocol === 'forward' ? 'http' : protocol;
    return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /** `http://host:port` of the admin listener (port 0 resolved), undefined when there is none. */
  adminUrl(): string | undefined {
    return this.#admin?.url();
  }

  /** The number of the config generation serving (1 = the first loaded) and when it started serving. */
  get generation(): { number: number; loadedAt: Date } {
    return { number: this.#generationNumber, loadedAt: this.#loadedAt };
  }

  /** The last rejected reloads (at most 20), oldest first. */
  configErrors(): ConfigErrorRecord[] {
    return this.#configErrors.list();
  }

  /** Every endpoint's active health as this process knows it (admin API, readiness). */
  health(): Array<{ upstream: string; endpoint: string; healthy: boolean }> {
    return this.#states.health();
  }

  /** Every upstream's endpoints as this process sees them (admin API). */
  upstreamViews(): UpstreamView[] {
    return this.#states.view();
  }

  /**
   * Applies a runtime change (admin API: drain, disable, enable, weight) to an endpoint, named by
   * its origin; it lasts until the next reload. `upstream` or `endpoint` when there is no such one.
   */
  change(c: RuntimeChange): 'ok' | 'upstream' | 'endpoint' {
    return this.#states.change(c);
  }

  /**
   * What `#boundAddresses` answered, per worker (these are this process's sockets). Kept until the
   * bindings or the admin listener change (`#forgetBound`): a forward listener asks on every request,
   * and each address costs a getsockname(2).
   */
  #bound: Array<{ host: string; port: number }> | undefined;

  /** Every address this process listens on (listeners and the admin API): a forward listener's loop check. */
  readonly #boundAddresses = (): Array<{ host: string; port: number }> => {
    if (this.#bound !== undefined) return this.#bound;
    const out: Array<{ host: string; port: number }> = [];
    let complete = true;
    for (const b of this.#bindings.values()) {
      const a = b.bound();
      if (a !== undefined) out.push({ host: a.address, port: a.port });
      else complete = false;
    }
    const admin = this.#admin?.url();
    if (admin !== undefined) {
      const u = new URL(admin);
      out.push({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port) });
    }
    // A binding not listening yet (or any more) is asked again next time.
    if (complete) this.#bound = out;
    return out;
  };

  #forgetBound(): void {
    this.#bound = undefined;
  }

  /** Every listener's bound address by name. */
  addresses(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of this.#listeners.keys()) out[name] = this.url(name);
    return out;
  }

  /**
   * What Switchboard knows about each endpoint of an upstream now: health, ejection, load. For
   * operators (and an admin API later); undefined for an unknown upstream.
   */
  endpoints(upstream: string): EndpointStatus[] | undefined {
    const state = this.#states.get(upstream);
    if (state === undefined) return undefined;
    return [...state.endpoints.values()].map(status);
  }

  /**
   * Validates the new config (the file again by default) and swaps it in atomically. On any
   * problem the running config keeps serving and the problems are returned and logged.
   */
  reload(config?: string | object): Promise<ReloadResult> {
    return this.#reload(config === undefined ? undefined : typeof config === 'string' ? resolvePath(config) : config);
  }

  /** Reloads from the config value a supervisor read and checked (a worker's reload). */
  reloadData(data: unknown, file: string): Promise<ReloadResult> {
    return this.#reload({ data, file, [DATA]: true });
  }

  /** Sets an endpoint's health as the supervisor's checker decided it (a worker's gateway). */
  setHealth(upstream: string, endpoint: string, healthy: boolean, reason: string): void {
    this.#states.setHealth(upstream, endpoint, healthy, reason);
  }

  /** Sets a parent proxy's health as the supervisor's checker decided it (a worker's gateway). */
  setParentHealth(key: string, healthy: boolean, reason: string): void {
    this.#parentHealth.setHealth(key, healthy, reason);
  }

  /** Reads every TLS listener's certificate files again (a worker, told by its supervisor that they changed). */
  reloadCertificates(): void {
    for (const l of this.#listeners.values()) if (!(l instanceof UdpListener)) l.certificates?.reloadFiles();
  }

  /** Reopens the access log file by its path (SIGUSR1, after logrotate moved it away). */
  reopenLogs(): Promise<void> {
    return this.#accessLog.reopen();
  }

  #reload(source: Source | undefined): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      if (this.#stopped) return { ok: false, errors: [] };
      if (source !== undefined) this.#source = source;
      const result = await load(this.#source);
      if (!result.ok) {
        this.log.error({ errors: result.errors.map(formatConfigError) }, 'config rejected; the running config keeps serving');
        this.#configErrors.add(result.errors.map((e) => e.message));
        configReload.publish({ ok: false, errors: result.errors.map(formatConfigError) });
        return { ok: false, errors: result.errors };
      }
      const before = this.#generation?.config;
      const previousAdmin = this.#generation?.config.admin;
      let stage = 'admin';
      try {
        // The admin first: a new admin address that cannot bind changes nothing else.
        await this.#admin?.apply(result.config.admin);
        this.#forgetBound();
        stage = 'listeners';
        await this.#useState(result.config);
        await this.#apply(result.config);
      } catch (err) {
        if (stage === 'listeners') await this.#admin?.apply(previousAdmin).catch(() => undefined);
        this.#forgetBound();
        const e: ConfigError =
          stage === 'admin'
            ? { file: result.file, path: 'admin.address', expected: 'an admin address that can bind', found: (err as Error).message, message: '' }
            : { file: result.file, path: 'listeners', expected: 'listeners that can bind', found: (err as Error).message, message: '' };
        e.message = formatConfigError(e);
        this.log.error({ err }, 'reload failed; the running config keeps serving');
        this.#configErrors.add([e.message]);
        configReload.publish({ ok: false, errors: [e.message] });
        return { ok: false, errors: [e] };
      }
      // Runtime changes (admin API) last until a reload: the new config says what serves.
      this.#states.clearRuntime();
      // A worker's reload is logged once, by its supervisor, with what changed.
      if (this.#worker === undefined) this.log.info(before === undefined ? {} : configChanges(before, result.config), 'config reloaded');
      else this.log.debug('config reloaded');
      configReload.publish({ ok: true });
      return { ok: true, errors: [] };
    };
    const next = this.#queue.then(run, run);
    this.#queue = next;
    return next;
  }

  /** `beforeListening`: the first config's (GatewayOptions.beforeListening), run once the generation is built. */
  async #apply(config: GatewayConfig, beforeListening?: (log: Logger) => void | Promise<void>): Promise<void> {
    const previous = this.#generation?.config;
    for (const u of config.upstreams.values()) {
      if (u.tls.insecureSkipVerify && u.endpoints.some((e) => e.secure)) {
        this.log.warn(
          { upstream: u.name },
          'tls.insecureSkipVerify is on: endpoint certificates are not verified, so anyone on the path can read and change this traffic',
        );
      }
    }
    const oldTracing = this.#tracing;
    // The tracing module (and the OpenTelemetry API under it) is imported only once a config asks for traces.
    const tracing =
      config.tracing === undefined
        ? undefined
        : oldTracing?.sameAs(config.tracing)
          ? oldTracing
          : await (await import('./observability/tracing.ts')).Tracing.create(config.tracing, this.log);
    this.#states.apply(config);
    this.#parentHealth.apply(config);
    // A worker's endpoints start with the machine's runtime changes (admin API), before it serves.
    if (this.#generation === undefined) for (const c of this.#worker?.runtime ?? []) this.#states.change(c);
    const gen = new Generation(config, this.#registry, this.#states, {
      tracing,
      onRequestEnd: (s) => this.#accessLog.write(s),
      onConnectionEnd: this.#accessLog.enabled ? (c) => this.#accessLog.writeConnection(c) : undefined,
      boundAddresses: this.#boundAddresses,
      parentHealth: this.#parentHealth,
      onInternalError: (s, err, policy) =>
        policy === undefined
          ? this.log.error({ err, requestId: s.requestId, route: s.route }, 'internal error handling a request')
          : this.log.error({ err, requestId: s.requestId, route: s.route, policy, code: 'POLICY_ERROR' }, `policy "${policy}" failed handling a request`),
      log: this.log,
      state: this.state,
    });
    const next = new Map<string, Listener>();
    const started: Listener[] = [];
    const bound = new Map<string, Binding>();
    try {
      // Nothing listens yet (a worker's shared socket accepts as soon as its binding listens).
      await beforeListening?.(this.log);
      for (const l of config.listeners) {
        const existing = this.#listeners.get(l.name);
        if (existing && bindingKey(existing.config) === bindingKey(l)) {
          next.set(l.name, existing);
          continue;
        }
        let fresh: Listener;
        if (l.protocol === 'udp') {
          // A worker binds its own SO_REUSEPORT socket: the kernel keeps each client on one worker.
          fresh = new UdpListener(l, gen.udp.get(l.name)!, this.log, l.reusePort || this.#worker !== undefined);
          await fresh.listen();
        } else {
          fresh =
            l.protocol === 'http' || l.protocol === 'https' || l.protocol === 'forward'
              ? new HttpListener(l, gen.listeners.get(l.name)!, this.log, this.#worker)
              : l.protocol === 'socks5'
                ? new SocksListener(l, gen.socks.get(l.name)!)
                : new TcpListener(l, gen.tcp.get(l.name)!, this.log, this.#worker);
          const key = bindingName(l);
          if (!this.#bindings.has(key) && !bound.has(key)) {
            // Only the first config uses inherited sockets: a later one binds what it adds.
            const inherited = this.#generation === undefined && !l.reusePort ? this.#sockets?.get(key) : undefined;
            const binding = new Binding(l.address, l.reusePort, inherited);
            // Attached before it listens: a worker's socket is shared and accepts at once.
            binding.attach(fresh.accept);
            bound.set(key, binding);
            await binding.listen().catch((err: Error) => {
              throw Object.assign(new Error(`listener ${l.name}: ${err.message}`), { code: (err as NodeJS.ErrnoException).code });
            });
          }
        }
        started.push(fresh);
        next.set(l.name, fresh);
      }
    } catch (err) {
      for (const b of bound.values()) b.close();
      for (const s of started) void s.stopAccepting();
      await gen.retire(0);
      if (tracing !== oldTracing) await tracing?.shutdown();
      if (previous) {
        this.#states.apply(previous);
        this.#states.prune(previous);
        this.#parentHealth.apply(previous);
        this.#parentHealth.prune(previous);
      }
      // The first config failed: Gateway.start releases the rest (#halt), the checkers included.
      throw err;
    }
    for (const l of config.listeners) {
      const listener = next.get(l.name)!;
      if (started.includes(listener)) continue;
      if (listener instanceof UdpListener) listener.swap(gen.udp.get(l.name)!, l);
      else if (listener instanceof TcpListener) listener.swap(gen.tcp.get(l.name)!, l);
      else if (listener instanceof SocksListener) listener.swap(gen.socks.get(l.name)!, l);
      else listener.swap(gen.listeners.get(l.name)!, l);
    }
    // Point every binding at its listener now, in one step; then close the ones no listener uses.
    const bindings = new Map<string, Binding>();
    for (const listener of next.values()) {
      if (listener instanceof UdpListener) continue;
      const key = bindingName(listener.config);
      const binding = this.#bindings.get(key) ?? bound.get(key)!;
      binding.attach(listener.accept);
      bindings.set(key, binding);
    }
    for (const [key, b] of this.#bindings) if (!bindings.has(key)) b.close();
    this.#bindings = bindings;
    this.#forgetBound();
    const removed = [...this.#listeners.values()].filter((l) => next.get(l.name) !== l);
    this.#listeners = next;
    const old = this.#generation;
    this.#generation = gen;
    this.#tracing = tracing;
    // The old tracing ends the spans of the old generation's requests, then is flushed and shut down.
    const replacedTracing = tracing === oldTracing ? undefined : oldTracing;
    this.#generationNumber++;
    this.#loadedAt = new Date();
    this.#states.prune(config);
    this.#parentHealth.prune(config);
    this.#live.add(gen);
    for (const r of removed) void r.stopAccepting();
    if (old) {
      const retired = Promise.all([old.retire(config.drainTimeout), ...removed.map((r) => r.tunnels.drained(config.drainTimeout))]).then(() => {
        this.#live.delete(old);
        for (const r of removed) r.destroyConnections();
      });
      if (replacedTracing !== undefined) {
        const done = retired
          .then(() => replacedTracing.shutdown())
          .catch((err: unknown) => this.log.warn({ err }, 'tracing: the last spans could not be exported'))
          .finally(() => this.#retiringTracing.delete(done));
        this.#retiringTracing.add(done);
      } else void retired;
    }
  }

  /** Reloads when the file changes; resolves once the watcher is ready, so no edit is missed. */
  async #watch(file: string): Promise<void> {
    this.#watcher = await watchFile(file, () => void this.reload());
  }

  /**
   * The listening sockets a new process takes over in an upgrade (process/handover.ts): each
   * binding that is not `reusePort` (those the new process binds beside this one's), and the admin's.
   */
  handoverSockets(): Array<{ name: string; fd: number; handle: unknown }> {
    const out: Array<{ name: string; fd: number; handle: unknown }> = [];
    for (const [name, b] of this.#bindings) {
      const fd = b.reusePort ? undefined : b.fd();
      if (fd !== undefined) out.push({ name, fd, handle: b.handle() });
    }
    const admin = this.#admin?.fd();
    if (admin !== undefined) out.push({ name: 'admin', fd: admin, handle: undefined });
    return out;
  }

  /**
   * Graceful stop: stop accepting, answer in-flight requests (with `Connection: close`), wait up to
   * the drain timeout, then close every connection and pool. `lingerIdle` (a worker drained while
   * others serve on): idle keep-alive connections are left to close by their keepAliveTimeout
   * within the drain timeout, instead of at once, so no client request meets a closing connection.
   */
  stop(opts: { drainTimeout?: number; lingerIdle?: boolean; onStoppedAccepting?: () => void } = {}): Promise<void> {
    return this.#halt(opts, true);
  }

  /** stop()'s work; `announce`: log 'switchboard stopped' (not for a start that failed: it never started). */
  async #halt(opts: { drainTimeout?: number; lingerIdle?: boolean; onStoppedAccepting?: () => void }, announce: boolean): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#watcher?.close();
    await this.#queue.catch(() => undefined);
    await this.#admin?.close();
    const drainTimeout = opts.drainTimeout ?? this.#generation?.config.drainTimeout ?? 30_000;
    const deadline = performance.now() + drainTimeout;
    for (const b of this.#bindings.values()) b.close();
    this.#forgetBound();
    opts.onStoppedAccepting?.();
    const linger = opts.lingerIdle === true;
    const closed = [...this.#listeners.values()].map((l) => (l instanceof HttpListener ? l.stopAccepting(linger) : l.stopAccepting()));
    if (linger) {
      // First every HTTP connection ends: in-flight requests are answered with `Connection: close`,
      // and idle keep-alive ones end at their keepAliveTimeout (or when the client closes them);
      // a request may still arrive on one meanwhile, so the generations retire after.
      const idle = Promise.all([...this.#listeners.values()].map((l) => (l instanceof HttpListener ? l.limits.whenIdle() : undefined)));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise<void>((resolve) => (timer = setTimeout(resolve, drainTimeout)))]);
      clearTimeout(timer);
    }
    await Promise.all([...this.#live].map((g) => g.retire(Math.max(0, deadline - performance.now()))));
    // Open tunnels (WebSockets) are no generation's requests: they get the rest of the drain timeout.
    await Promise.all([...this.#listeners.values()].map((l) => l.tunnels.drained(deadline - performance.now())));
    for (const l of this.#listeners.values()) l.destroyConnections();
    await Promise.all(closed);
    this.#states.close();
    this.#parentHealth.close();
    await this.#registry.closeAll();
    // Every span is over now (its request logged): export what is queued, within the exporter's timeout.
    await this.#tracing?.shutdown().catch((err: unknown) => this.log.warn({ err }, 'tracing: the last spans could not be exported'));
    await Promise.all(this.#retiringTracing);
    await this.#accessLog.close();
    await this.#state?.backend.close();
    this.#metrics?.close();
    if (announce) this.log.info('switchboard stopped');
  }
}

/** Which binding a stream listener uses: its address; with port 0, its own (a fresh port per listener). */
/** The name of a stream listener's binding: its address (port 0: with the listener's name, each its own port). */
export function bindingName(l: ListenerConfig): string {
  return l.address.port === 0 ? `${addressKey(l.address)}#${l.name}` : addressKey(l.address);
}

/** One endpoint as `Gateway.endpoints` reports it. */
export interface EndpointStatus {
  url: string;
  healthy: boolean;
  ejected: boolean;
  inFlight: number;
  /** Share of its weight in use (below 1 during slow start). */
  weightFactor: number;
  latencyMs: number;
}

function status(s: EndpointState): EndpointStatus {
  return { url: s.origin, healthy: s.healthy, ejected: s.ejected, inFlight: s.inFlight, weightFactor: s.weightFactor, latencyMs: s.latency.cost(performance.now()) };
}

/** Starts a gateway: `const gw = await startGateway({ config: 'switchboard.yaml' })`. */
export function startGateway(opts: GatewayOptions): Promise<Gateway> {
  return Gateway.start(opts);
}
