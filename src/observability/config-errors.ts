/**
 * The recent rejected reloads of a process (the gateway's, or the supervisor's for the machine),
 * for the admin API's `/api/config-errors`: a bounded ring, the newest last. Per process: the one
 * that validates reloads keeps it (with workers, the supervisor).
 */

/** One rejected reload: when, and every problem as one message line. */
export interface ConfigErrorRecord {
  /** ISO 8601 time of the rejection. */
  at: string;
  errors: string[];
}

/** How many rejected reloads are kept. */
export const CONFIG_ERRORS_KEPT = 20;

export class RecentConfigErrors {
  readonly #ring: ConfigErrorRecord[] = [];
  readonly #max: number;

  constructor(max = CONFIG_ERRORS_KEPT) {
    this.#max = max;
  }

  add(errors: string[], at = new Date()): void {
    this.#ring.push({ at: at.toISOString(), errors });
    if (this.#ring.length > this.#max) this.#ring.shift();
  }

  /** Oldest first. */
  list(): ConfigErrorRecord[] {
    return this.#ring.slice();
  }
}
