/**
 * A tap on the access log for the admin's live tail (docs/admin.md, "Dashboard"): while it is on,
 * every finished request (the `requestEnd` event) becomes the access log's JSON line, whatever the
 * access log's own destination and format, and is handed over in batches. While it is off nothing
 * is subscribed: the requests pay nothing for a tail nobody watches.
 *
 * State (per process: a lone gateway's, or each worker's): the lines gathered since the last batch,
 * how many were dropped past the cap, and the timer; all of it only while someone tails.
 */
import { accessLine, type AccessRecord } from './access-log.ts';
import { requestEnd } from './events.ts';

/** How often gathered lines are handed over. */
export const TAP_FLUSH_MS = 100;
/** Lines kept per batch; more in one interval are dropped (and counted): a tail is for eyes, not for archiving. */
export const TAP_MAX_LINES = 500;

export interface TapBatch {
  lines: string[];
  /** Lines left out of this batch (past TAP_MAX_LINES). */
  dropped: number;
}

export class AccessTap {
  readonly #deliver: (batch: TapBatch) => void;
  #lines: string[] = [];
  #dropped = 0;
  #timer: NodeJS.Timeout | undefined;
  #on = false;

  constructor(deliver: (batch: TapBatch) => void) {
    this.#deliver = deliver;
  }

  get on(): boolean {
    return this.#on;
  }

  /** Starts (idempotent): subscribes to `requestEnd`. */
  start(): void {
    if (this.#on) return;
    this.#on = true;
    requestEnd.subscribe(this.#onRequest);
  }

  /** Stops (idempotent): unsubscribes and forgets what was gathered. */
  stop(): void {
    if (!this.#on) return;
    this.#on = false;
    requestEnd.unsubscribe(this.#onRequest);
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#lines = [];
    this.#dropped = 0;
  }

  readonly #onRequest = (m: unknown): void => {
    if (this.#lines.length >= TAP_MAX_LINES) {
      this.#dropped++;
    } else {
      // The session is reused after the event: the line is written now. It ends with '\n'.
      const line = accessLine(m as AccessRecord, performance.now());
      this.#lines.push(line.slice(0, -1));
    }
    this.#timer ??= setTimeout(this.#flush, TAP_FLUSH_MS);
  };

  readonly #flush = (): void => {
    this.#timer = undefined;
    const batch: TapBatch = { lines: this.#lines, dropped: this.#dropped };
    this.#lines = [];
    this.#dropped = 0;
    if (batch.lines.length > 0 || batch.dropped > 0) this.#deliver(batch);
  };
}
