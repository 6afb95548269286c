/**
 * The supervisor's side of the admin API (src/admin/): the runtime changes in force on the machine,
 * and asking every worker for its view of the upstreams over IPC (a request id; each worker answers
 * with its snapshot), merged by `mergeUpstreams`.
 */
import type { Worker } from 'node:cluster';
import { askWorker } from './messages.ts';
import type { RuntimeChange, UpstreamView } from '../upstream/state.ts';
import type { PurgeQuery } from '../policies/filter.ts';

/** How long a worker may take to answer a read; one that does not is left out of the answer. */
const READ_TIMEOUT_MS = 1000;
/** How long a worker may take to answer a purge (a prefix purge walks the store's URLs). */
const PURGE_TIMEOUT_MS = 5000;

/**
 * The runtime changes (admin API) in force on the machine, oldest first: what a worker started
 * later (a crash replaced, a resize) gets with `init`. Per machine, in the supervisor; emptied by a
 * reload (runtime changes last until then).
 */
export class MachineRuntime {
  #changes: RuntimeChange[] = [];

  /** Records `c`, replacing an older change of the same kind (state or weight) for the same endpoint. */
  add(c: RuntimeChange): void {
    const kind = (x: RuntimeChange): string => (x.action === 'weight' ? 'weight' : 'state');
    this.#changes = this.#changes.filter((x) => !(x.upstream === c.upstream && x.endpoint === c.endpoint && kind(x) === kind(c)));
    // `enable` is where an endpoint is anyway after a reload or a start: nothing to remember.
    if (c.action !== 'enable') this.#changes.push(c);
  }

  list(): RuntimeChange[] {
    return this.#changes.slice();
  }

  clear(): void {
    this.#changes = [];
  }
}

/** Asks `worker` for its view of the upstreams; undefined when it does not answer in time or exits. */
export function askView(worker: Worker, id: number): Promise<UpstreamView[] | undefined> {
  return askWorker(worker, { sb: 'admin-read', id }, (m) => (m.sb === 'admin-view' && m.id === id ? m.upstreams : undefined), READ_TIMEOUT_MS);
}

/** Asks `worker` to purge its cache stores; the objects it removed, or undefined when it does not answer in time or exits. */
export function askPurge(worker: Worker, id: number, policy: string | undefined, query: PurgeQuery): Promise<number | undefined> {
  const request = policy === undefined ? { sb: 'cache-purge' as const, id, query } : { sb: 'cache-purge' as const, id, policy, query };
  return askWorker(worker, request, (m) => (m.sb === 'cache-purged' && m.id === id ? m.purged : undefined), PURGE_TIMEOUT_MS);
}
