/**
 * Giving memory back when a process is idle.
 *
 * Start-up (reading the config, compiling schemas and routes) allocates fast, so V8 grows the young
 * generation to its largest size (16 MiB semi-spaces) and keeps it: an idle worker held about
 * 30 MB of empty young generation, and V8's own memory reducer did not shrink it within minutes.
 * Capping the young generation (`--max-semi-space-size=2`) fixes the idle figure but cost about
 * 13 % of throughput under load (bench/README.md, "memory"). Instead, a process runs one
 * memory-reducing full collection (V8's "last resort" GC, which also shrinks the young generation)
 * once start-up has allocated, and again whenever it has been idle for a while after being busy.
 * Under load nothing changes: the young generation grows back as traffic needs it.
 *
 * The collection is synchronous: 60-80 ms on a quiet 2-core machine, 200-350 ms on a busy one,
 * during which the process accepts and answers nothing. So the one after start-up runs before the
 * process listens (`compactAtStart`, which a worker and a lone `switchboard start` pass to the
 * gateway as `beforeListening`): a worker replaced after a crash, the new workers of a reload, and
 * the new process of an upgrade (SIGUSR2) collect while the old ones still serve, and say `ready`
 * only afterwards. A supervisor collects before it forks its first worker (`beforeForking`): its
 * workers' `memory` state calls wait on it. It used to run 100 ms after start, when the process
 * already took connections.
 *
 * State: per process (each worker, the supervisor, or a lone gateway watches its own heap).
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
let gc: GcFunction | undefined;

/** Runs a memory-reducing full collection now (tens of milliseconds on a small heap). */
export function compactHeap(): void {
  if (gc === undefined) {
    // The documented way to reach V8's gc() without starting node with --expose-gc: the flag
    // exposes it to contexts created afterwards, and the function is taken from such a context.
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as GcFunction;
  }
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
}

/** The young generation's size (bytes), which is what start-up and bursts leave grown. */
function youngGeneration(): number {
  let size = 0;
  for (const s of v8.getHeapSpaceStatistics()) if (s.space_name === 'new_space') size += s.space_size;
  return size;
}

/**
 * The collection after start-up's allocations (config, generation: routes, policies, schemas),
 * run by the gateway before any listener binds (`GatewayOptions.beforeListening`). Logs how long
 * it took at debug level.
 */
export function compactAtStart(log: { debug(o: object, msg: string): void }): void {
  const t0 = performance.now();
  compactHeap();
  log.debug({ ms: Math.round(performance.now() - t0) }, 'start-up heap compaction done, before listening');
}

export interface IdleCompactionOptions {
  /**
   * How often the process looks at itself (ms); default 10 s. The compaction (tens of ms with a
   * large heap) runs only after a whole period without work, so at most the first request after
   * such a pause can wait for it.
   */
  everyMs?: number;
  /** Below this share of the period spent running JavaScript, the process counts as idle; default 0.5 %. */
  idleBelow?: number;
  /** Only when the young generation is larger than this (bytes); default 4 MiB (V8 starts it at 1-2). */
  youngAbove?: number;
}

/**
 * After start-up's compaction (`compactAtStart`, before listening or forking): every `everyMs`
 * checks whether the process was idle over the last period with a young generation grown by
 * earlier work, and if so compacts again. The timer is unref'd; the returned function stops it.
 */
export function compactWhenIdle(options: IdleCompactionOptions = {}): () => void {
  const everyMs = options.everyMs ?? 10_000;
  const idleBelow = options.idleBelow ?? 0.005;
  const youngAbove = options.youngAbove ?? 4 * 1024 * 1024;
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    if (busy < idleBelow && youngGeneration() > youngAbove) compactHeap();
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
