/**
 * The supervisor's side of the machine's state: serves the `RemoteState` of every worker from one
 * `SharedState` (a `MemoryState`: per machine, which is what makes counts exact across workers).
 * The supervisor feeds each worker's messages to `handle(message, worker)`; the reply goes back on
 * the channel the request came from. One reply per request, in the order operations complete.
 */
import { MemoryState } from './memory-state.ts';
import { isStateMessage, STATE_TAG, type StateChannel, type StateReply } from './state-channel.ts';
import { STATE_OPS, type SharedState } from './state.ts';

type Operation = (...args: unknown[]) => Promise<unknown>;

/** Serves state requests from workers. See the file comment. */
export class StateHost {
  readonly state: SharedState;

  /** `state`: what the workers share; a new `MemoryState` by default. */
  constructor(state: SharedState = new MemoryState()) {
    this.state = state;
  }

  /**
   * Handles a message from a worker: a state request is run and answered on `from`, and true is
   * returned; any other message returns false and is left to its own handler. A malformed state
   * request (unknown op, args not a list) is answered with an error.
   */
  handle(message: unknown, from: StateChannel): boolean {
    if (!isStateMessage(message)) return false;
    const { id, op, args } = message as { id: number; op?: unknown; args?: unknown };
    if (typeof op !== 'string' || !STATE_OPS.has(op) || !Array.isArray(args)) {
      reply(from, { sb: STATE_TAG, id, ok: false, error: { name: 'StateError', message: `not a state operation: ${JSON.stringify(op)}` } });
      return true;
    }
    let result: Promise<unknown>;
    try {
      result = (this.state[op as keyof SharedState] as Operation).apply(this.state, args);
    } catch (error) {
      result = Promise.reject(error);
    }
    result.then(
      (value) => reply(from, { sb: STATE_TAG, id, ok: true, value }),
      (error: Error) => reply(from, { sb: STATE_TAG, id, ok: false, error: { name: error.name, message: error.message } }),
    );
    return true;
  }

  /** Closes the shared state. */
  close(): Promise<void> {
    return this.state.close();
  }
}

/** A worker that has gone cannot be answered: its RemoteState is gone with it. */
function reply(to: StateChannel, message: StateReply): void {
  try {
    to.send(message, () => {});
  } catch {
    // the channel closed between the request and the reply
  }
}
