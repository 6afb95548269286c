/**
 * Active health checks of parent proxies (issue 15 §3; `forward.parent[i].healthCheck`): a TCP
 * connect to each parent of an entry that has a healthCheck, on the upstream checks' schedule,
 * with the upstream checks' HealthChecker (health/active.ts). A parent that fails `fall` checks in
 * a row is left out of its entry's set (parents.ts) until it passes `rise`.
 *
 * A guard lives as long as its generation and nothing stops it; the checkers live here instead,
 * in a store kept across generations (as upstream/state.ts keeps the upstream checkers): `apply`
 * brings it up to a config (new checkers; a changed healthCheck replaces a checker, carrying its
 * streaks over), `prune` stops the checkers the config no longer has, `close` stops them all. A
 * reload that keeps a parent's healthCheck keeps its checker and its state; one that removes it
 * stops the probes at once.
 *
 * Where the checks run: in a lone process, here. With workers, in the supervisor only (one
 * checker per parent for the machine), which sends every flip to every worker (`setHealth`) and
 * the current health to a worker that starts (`external`): a worker runs no checker.
 *
 * A parent is known by `parentKey(listener, entry index, label)`: its entry's healthCheck applies
 * to it, and the same URL in two entries is two parents (each entry checks its own).
 */
import type { Logger } from 'pino';
import type { GatewayConfig, HealthCheckConfig } from '../config/types.ts';
import { HealthChecker } from '../health/active.ts';
import { type ForwardParentEvent, forwardParentState } from '../observability/events.ts';

/** The key of parent `label` of entry `entry` of listener `listener`. */
export function parentKey(listener: string, entry: number, label: string): string {
  return `${listener} ${entry} ${label}`;
}

/** A flip a checker decided, as the supervisor sends it to its workers. */
export interface ParentHealthNews {
  key: string;
  listener: string;
  parent: string;
  healthy: boolean;
  reason: string;
}

/** What a generation's parents read: the active health of one checked parent. */
export interface ParentHealthView {
  readonly healthy: boolean;
}

/**
 * One checked parent. Per machine in substance: the checker runs in one process (the supervisor,
 * or a lone process), and a worker's copy holds what that checker last said.
 */
class CheckedParent implements ParentHealthView {
  healthy: boolean;
  readonly listener: string;
  readonly label: string;
  /** Undefined in a worker (the supervisor checks). */
  checker: HealthChecker | undefined;
  /** The healthCheck the checker runs with (JSON), so a reload that changes nothing keeps it. */
  checkerKey = '';

  constructor(listener: string, label: string, healthy: boolean) {
    this.listener = listener;
    this.label = label;
    this.healthy = healthy;
  }
}

/** Every parent an entry with a healthCheck names in `config`: key → what to check it with. */
function checkedParents(config: GatewayConfig): Map<string, { listener: string; label: string; origin: string; host: string; check: HealthCheckConfig }> {
  const out = new Map<string, { listener: string; label: string; origin: string; host: string; check: HealthCheckConfig }>();
  for (const l of config.listeners) {
    l.forward?.parents.forEach((entry, i) => {
      if (entry.healthCheck === undefined) return;
      for (const p of entry.proxies) {
        // The label is `protocol://host:port` (IPv6 in brackets): the TCP check's origin is its `http://` twin.
        const host = p.label.slice(p.label.indexOf('//') + 2);
        out.set(parentKey(l.name, i, p.label), { listener: l.name, label: p.label, origin: `http://${host}`, host, check: entry.healthCheck });
      }
    });
  }
  return out;
}

export interface ParentHealthOptions {
  /**
   * This process runs no checker: the health of each parent comes from the supervisor's, by key
   * (a worker's start; then `setHealth`). Absent: this process checks (a lone process, a supervisor).
   */
  external?: ReadonlyMap<string, boolean>;
  /** Told of every flip this process's checkers decide (the supervisor passes them to its workers). */
  onChange?: (news: ParentHealthNews) => void;
}

/**
 * The parents' active health, kept across config generations. One per Gateway and one in the
 * supervisor: per process, holding per-machine health (see the file comment).
 */
export class ParentHealth {
  /** By parentKey. Per process; with workers a copy of the supervisor's (per machine). */
  readonly #parents = new Map<string, CheckedParent>();
  /** A worker's: what the supervisor said so far, by key, for parents a later config adds. Per worker, a copy of the machine's. */
  readonly #external: Map<string, boolean> | undefined;
  readonly #onChange: ((news: ParentHealthNews) => void) | undefined;
  readonly #log: Logger;
  #closed = false;

  constructor(log: Logger, opts: ParentHealthOptions = {}) {
    this.#log = log;
    this.#external = opts.external === undefined ? undefined : new Map(opts.external);
    this.#onChange = opts.onChange;
  }

  /** The active health of a parent, or undefined when its entry has no healthCheck (passive checks only). */
  get(listener: string, entry: number, label: string): ParentHealthView | undefined {
    return this.#parents.get(parentKey(listener, entry, label));
  }

  /** Starts checking the parents `config` checks (keeps the checkers whose healthCheck did not change); removes nothing. */
  apply(config: GatewayConfig): void {
    if (this.#closed) return;
    for (const [key, want] of checkedParents(config)) {
      let parent = this.#parents.get(key);
      const fresh = parent === undefined;
      if (parent === undefined) {
        const known = this.#external?.get(key);
        parent = new CheckedParent(want.listener, want.label, known ?? want.check.initialState === 'healthy');
        this.#parents.set(key, parent);
      }
      if (this.#external !== undefined) continue;
      const checkerKey = JSON.stringify(want.check);
      if (parent.checkerKey === checkerKey) continue;
      const previous = parent.checker;
      previous?.stop();
      parent.checkerKey = checkerKey;
      // A parent whose healthCheck changed keeps its state and streaks until the new checks decide.
      const initial = fresh ? want.check : { ...want.check, initialState: parent.healthy ? ('healthy' as const) : ('unhealthy' as const) };
      const p = parent;
      const checker = new HealthChecker({ origin: want.origin, host: want.host }, initial, (healthy, reason) => this.#flip(key, p, healthy, reason, false));
      if (previous !== undefined) checker.adopt(previous);
      parent.checker = checker;
      checker.start();
    }
  }

  /** Stops checking (and forgets) the parents `config` does not check; called once `config` serves (or to undo a failed reload). */
  prune(config: GatewayConfig): void {
    const keep = checkedParents(config);
    for (const [key, parent] of this.#parents) {
      if (keep.has(key)) continue;
      parent.checker?.stop();
      this.#parents.delete(key);
      this.#external?.delete(key);
      // Generations built from `config` do not read it any more: without checks the parent is up.
      if (!parent.healthy) this.#publish(parent, true, 'health checks removed', false);
    }
  }

  /** A flip the supervisor's checker decided (a worker). Unknown keys are kept for a config that adds them. */
  setHealth(key: string, healthy: boolean, reason: string): void {
    this.#external?.set(key, healthy);
    const parent = this.#parents.get(key);
    if (parent !== undefined) this.#flip(key, parent, healthy, reason, true);
  }

  /** Every checked parent's health now, for a worker that starts (the supervisor sends it). */
  health(): Array<{ key: string; healthy: boolean }> {
    return [...this.#parents].map(([key, p]) => ({ key, healthy: p.healthy }));
  }

  /** Stops every checker (the gateway or supervisor stops). */
  close(): void {
    this.#closed = true;
    for (const p of this.#parents.values()) p.checker?.stop();
    this.#parents.clear();
  }

  /** `peer`: decided by the supervisor's checker and passed on (counted there, not here). */
  #flip(key: string, parent: CheckedParent, healthy: boolean, reason: string, peer: boolean): void {
    if (this.#closed || parent.healthy === healthy) return;
    parent.healthy = healthy;
    if (!peer) {
      const fields = { listener: parent.listener, parent: parent.label, reason };
      if (healthy) this.#log.info(fields, 'parent proxy healthy');
      else this.#log.warn(fields, 'parent proxy unhealthy');
      this.#onChange?.({ key, listener: parent.listener, parent: parent.label, healthy, reason });
    }
    this.#publish(parent, healthy, reason, peer);
  }

  #publish(parent: CheckedParent, up: boolean, reason: string, peer: boolean): void {
    if (!forwardParentState.hasSubscribers) return;
    const event: ForwardParentEvent = { listener: parent.listener, parent: parent.label, up, reason: up ? '' : `health check: ${reason}`, peer };
    forwardParentState.publish(event);
  }
}
