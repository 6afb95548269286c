/**
 * The Gateway: the programmatic API the CLI and the tests are built on. It turns a config into a
 * config generation, binds the listeners, and swaps generations atomically on reload: validate
 * first, bind any new listener, then point every listener at the new generation in one step. The
 * old generation finishes its in-flight requests and releases its pools; a bad config changes
 * nothing.
 */
import { watch, type FSWatcher } from 'chokidar';
import { resolve as resolvePath } from 'node:path';
import type { GatewayConfig } from './config/types.ts';
import { formatConfigError, loadConfigFile, loadConfigObject, type ConfigError, type LoadResult } from './config/load.ts';
import { bindingKey, HttpListener } from './listeners/http-listener.ts';
import { TcpListener } from './listeners/tcp-listener.ts';
import { UdpListener } from './listeners/udp-listener.ts';

type Listener = HttpListener | TcpListener | UdpListener;
import { createAccessLog, type AccessLog, type AccessLogDestination } from './observability/access-log.ts';
import { configReload } from './observability/events.ts';
import { createLogger, type LogLevel, type Logger } from './observability/logger.ts';
import { Generation } from './generation.ts';
import { PoolRegistry } from './transport/pools.ts';
import { StateStore, type EndpointState } from './upstream/state.ts';

export interface GatewayOptions {
  /** A config file path (YAML or JSON), or a config object of the same shape. */
  config: string | object;
  /** Access log destination; default `off`. */
  accessLog?: AccessLogDestination;
  /** Process log level; default `info`. Ignored when `logger` is given. */
  logLevel?: LogLevel;
  logger?: Logger;
  /** Reload when the config file changes (file configs only); default false. */
  watch?: boolean;
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

async function load(source: string | object): Promise<LoadResult> {
  return typeof source === 'string' ? loadConfigFile(source) : loadConfigObject(source);
}

export class Gateway {
  readonly log: Logger;
  readonly #registry = new PoolRegistry();
  readonly #accessLog: AccessLog;
  readonly #states: StateStore;
  readonly #live = new Set<Generation>();
  #source: string | object;
  #generation: Generation | undefined;
  #listeners = new Map<string, Listener>();
  #watcher: FSWatcher | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #stopped = false;

  private constructor(opts: GatewayOptions) {
    this.#source = typeof opts.config === 'string' ? resolvePath(opts.config) : opts.config;
    this.log = opts.logger ?? createLogger(opts.logLevel ?? 'info');
    this.#accessLog = createAccessLog(opts.accessLog ?? 'off');
    this.#states = new StateStore(this.log);
  }

  /** Loads the config, binds every listener, and starts serving. Throws ConfigLoadError on a bad config. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(opts);
    const result = await load(gw.#source);
    if (!result.ok) throw new ConfigLoadError(result.errors);
    await gw.#apply(result.config);
    if (opts.watch && typeof gw.#source === 'string') await gw.#watch(gw.#source);
    gw.log.info({ listeners: gw.addresses() }, 'switchboard started');
    return gw;
  }

  /** The config generation serving new requests. */
  get config(): GatewayConfig {
    return this.#generation!.config;
  }

  /** The bound address of a listener (port 0 resolved), or throws for an unknown name. */
  address(listener: string): { host: string; port: number } {
    const a = this.#listeners.get(listener)?.address();
    if (!a) throw new Error(`no listener named ${listener}`);
    return { host: a.address, port: a.port };
  }

  /** `http(s)://host:port` of a listener, for clients. */
  url(listener: string): string {
    const { host, port } = this.address(listener);
    const scheme = this.#listeners.get(listener)!.config.protocol;
    return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
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
    const run = async (): Promise<ReloadResult> => {
      if (this.#stopped) return { ok: false, errors: [] };
      if (config !== undefined) this.#source = typeof config === 'string' ? resolvePath(config) : config;
      const result = await load(this.#source);
      if (!result.ok) {
        this.log.error({ errors: result.errors.map(formatConfigError) }, 'config rejected; the running config keeps serving');
        configReload.publish({ ok: false, errors: result.errors.map(formatConfigError) });
        return { ok: false, errors: result.errors };
      }
      try {
        await this.#apply(result.config);
      } catch (err) {
        const e: ConfigError = { file: result.file, path: 'listeners', expected: 'listeners that can bind', found: (err as Error).message, message: '' };
        e.message = formatConfigError(e);
        this.log.error({ err }, 'reload failed; the running config keeps serving');
        configReload.publish({ ok: false, errors: [e.message] });
        return { ok: false, errors: [e] };
      }
      this.log.info('config reloaded');
      configReload.publish({ ok: true });
      return { ok: true, errors: [] };
    };
    const next = this.#queue.then(run, run);
    this.#queue = next;
    return next;
  }

  async #apply(config: GatewayConfig): Promise<void> {
    const previous = this.#generation?.config;
    for (const u of config.upstreams.values()) {
      if (u.tls.insecureSkipVerify && u.endpoints.some((e) => e.secure)) {
        this.log.warn(
          { upstream: u.name },
          'tls.insecureSkipVerify is on: endpoint certificates are not verified, so anyone on the path can read and change this traffic',
        );
      }
    }
    this.#states.apply(config);
    const gen = new Generation(config, this.#registry, this.#states, {
      onRequestEnd: (s) => this.#accessLog.write(s),
      onInternalError: (s, err, policy) =>
        policy === undefined
          ? this.log.error({ err, requestId: s.requestId, route: s.route }, 'internal error handling a request')
          : this.log.error({ err, requestId: s.requestId, route: s.route, policy, code: 'POLICY_ERROR' }, `policy "${policy}" failed handling a request`),
      log: this.log,
    });
    const next = new Map<string, Listener>();
    const started: Listener[] = [];
    try {
      for (const l of config.listeners) {
        const existing = this.#listeners.get(l.name);
        if (existing && bindingKey(existing.config) === bindingKey(l)) {
          next.set(l.name, existing);
          continue;
        }
        const fresh =
          l.protocol === 'udp'
            ? new UdpListener(l, gen.udp.get(l.name)!, this.log)
            : l.protocol === 'tcp' || l.protocol === 'tls' || l.protocol === 'tls-passthrough'
              ? new TcpListener(l, gen.tcp.get(l.name)!, this.log)
              : new HttpListener(l, gen.listeners.get(l.name)!, this.log);
        await fresh.listen();
        started.push(fresh);
        next.set(l.name, fresh);
      }
    } catch (err) {
      for (const s of started) s.server.close();
      await gen.retire(0);
      if (previous) {
        this.#states.apply(previous);
        this.#states.prune(previous);
      }
      throw err;
    }
    for (const l of config.listeners) {
      const listener = next.get(l.name)!;
      if (started.includes(listener)) continue;
      if (listener instanceof UdpListener) listener.swap(gen.udp.get(l.name)!, l);
      else if (listener instanceof TcpListener) listener.swap(gen.tcp.get(l.name)!, l);
      else listener.swap(gen.listeners.get(l.name)!, l);
    }
    const removed = [...this.#listeners.values()].filter((l) => next.get(l.name) !== l);
    this.#listeners = next;
    const old = this.#generation;
    this.#generation = gen;
    this.#states.prune(config);
    this.#live.add(gen);
    for (const r of removed) void r.stopAccepting();
    if (old) {
      void Promise.all([old.retire(config.drainTimeout), ...removed.map((r) => r.tunnels.drained(config.drainTimeout))]).then(() => {
        this.#live.delete(old);
        for (const r of removed) r.destroyConnections();
      });
    }
  }

  /** Reloads when the file changes; resolves once the watcher is ready, so no edit is missed. */
  #watch(file: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const watcher = watch(file, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 50, pollInterval: 20 } });
    this.#watcher = watcher;
    watcher.on('all', (event) => {
      if (event !== 'change' && event !== 'add') return;
      clearTimeout(timer);
      timer = setTimeout(() => void this.reload(), 50);
    });
    return new Promise((resolve) => watcher.once('ready', () => resolve()));
  }

  /**
   * Graceful stop: stop accepting, answer in-flight requests (with `Connection: close`), wait up to
   * the drain timeout, then close every connection and pool.
   */
  async stop(opts: { drainTimeout?: number } = {}): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#watcher?.close();
    await this.#queue.catch(() => undefined);
    const drainTimeout = opts.drainTimeout ?? this.#generation?.config.drainTimeout ?? 30_000;
    const deadline = performance.now() + drainTimeout;
    const closed = [...this.#listeners.values()].map((l) => l.stopAccepting());
    await Promise.all([...this.#live].map((g) => g.retire(drainTimeout)));
    // Open tunnels (WebSockets) are no generation's requests: they get the rest of the drain timeout.
    await Promise.all([...this.#listeners.values()].map((l) => l.tunnels.drained(deadline - performance.now())));
    for (const l of this.#listeners.values()) l.destroyConnections();
    await Promise.all(closed);
    this.#states.close();
    await this.#registry.closeAll();
    await this.#accessLog.close();
    this.log.info('switchboard stopped');
  }
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
