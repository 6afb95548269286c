/**
 * A worker's line to the counters its supervisor keeps for the whole machine (process/shared.ts
 * is the other end; process/worker-link.ts carries it over IPC). Absent in a lone process, where
 * the local counts are the machine's.
 *
 * Who calls: EndpointState and UpstreamState's circuit breaker (state.ts). How often:
 * `inFlightChanged` on every start and end of a request to an upstream whose balancer reads the
 * count (LOAD_AWARE_BALANCERS; the link batches: one message per millisecond at most);
 * `acquire`/`release` once per request on an upstream with `maxRequests`.
 */
export interface MachineLink {
  /** This worker's own count for `key` is now `n` (sent batched; the other workers add it to theirs). */
  inFlightChanged(key: string, n: number): void;
  /**
   * Asks for one of the machine's `max` request slots of `upstream` (waiting in the machine's queue
   * of `maxQueued` when none is free). `answer(true)` once granted, `answer(false)` when the queue
   * is full. Returns an id for `cancel`.
   */
  acquire(upstream: string, max: number, maxQueued: number, answer: (granted: boolean) => void): number;
  /** Gives back a slot `acquire` granted. */
  release(upstream: string): void;
  /** Leaves the queue (the client went away); a grant that crosses it is answered with a release by the caller. */
  cancel(upstream: string, id: number): void;
  /** This worker ejected an endpoint for `duration` ms: the others are told (outlier-detection.ts). */
  ejected(upstream: string, origin: string, duration: number, reason: string): void;
  /** Calls `fn` when another worker ejected an endpoint. */
  onPeerEjection(fn: (upstream: string, origin: string, duration: number, reason: string) => void): void;
  /** Calls `fn` with the sum of the *other* workers' counts whenever it changes. */
  onOthers(fn: (key: string, others: number) => void): void;
}

/** The key an endpoint's count travels under. */
export const loadKey = {
  endpoint: (upstream: string, origin: string): string => `e ${upstream} ${origin}`,
};

/** The balancers that read requests in flight: only their upstreams' counts are shared (others cost nothing). */
export const LOAD_AWARE_BALANCERS: ReadonlySet<string> = new Set(['least-connections', 'least-response-time', 'power-of-two']);
