/**
 * The messages between a worker's `RemoteState` and the supervisor's `StateHost`, over the IPC
 * channel node:cluster and node:child_process give each worker (`process.send` in the worker,
 * `worker.send` in the supervisor). The same channel carries other kinds of message, so every state
 * message is tagged `sb: 'state'`; anything else is left to its own handler.
 */
import type { StateOp } from './state.ts';

/**
 * One end of an IPC channel: `process`, a cluster `Worker` or a `ChildProcess` fits as is. `send`
 * may return false or call back with an error when the other end is gone; it must not block.
 */
export interface StateChannel {
  send(message: object, callback?: (error: Error | null) => void): unknown;
}

/** The tag of state messages. */
export const STATE_TAG = 'state';

/** Worker → supervisor: run `op` with `args`; `id` pairs the reply (unique per worker while pending). */
export interface StateRequest {
  sb: typeof STATE_TAG;
  id: number;
  op: StateOp;
  args: unknown[];
}

/** Supervisor → worker: the outcome of request `id`. `value` is absent for operations returning nothing. */
export type StateReply =
  | { sb: typeof STATE_TAG; id: number; ok: true; value?: unknown }
  | { sb: typeof STATE_TAG; id: number; ok: false; error: { name: string; message: string } };

/** Whether `message` is a state message (request or reply), as opposed to another kind on the same channel. */
export function isStateMessage(message: unknown): message is { sb: typeof STATE_TAG; id: number } {
  return typeof message === 'object' && message !== null && (message as { sb?: unknown }).sb === STATE_TAG && typeof (message as { id?: unknown }).id === 'number';
}
