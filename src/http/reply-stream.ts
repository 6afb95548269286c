/**
 * A Reply's streamed body (`Reply.stream`: a large stored object read from its file) on its way to
 * the client: pulled one chunk at a time, the next only once the sink took the last (backpressure:
 * bounded memory whatever the body's size), within the listener's `sendTimeout` per stall.
 *
 * The stream is closed (`return()`) exactly once when the response stops early: the client left
 * (this is the session's `attempt`), or a filter replaced the reply. A stream that fails mid-way
 * cuts the response (FILE_READ_ERROR), never ends it short and clean.
 */
import { ProxyError } from '../errors.ts';
import type { AttemptHandle, RequestSession } from './session.ts';

/** Where a streamed body goes: the downstream, or the response filters before it (respond.ts). */
export interface StreamSink {
  /** false: wait for `onDrain` before the next chunk. */
  write(chunk: Buffer): boolean;
  onDrain(resume: () => void): void;
  end(): void;
  abort(err: ProxyError): void;
}

/** Sends `stream` into `sink` for `s` (whose head is written); `s.attempt` is the send from now on. */
export function sendStream(s: RequestSession, stream: AsyncIterator<Buffer>, sink: StreamSink): void {
  const send = new StreamSend(s, stream, sink);
  s.attempt = send;
  send.next();
}

/** Closes a stream that will not be sent (the reply was dropped or replaced). */
export function dropStream(stream: AsyncIterator<Buffer> | undefined): void {
  if (stream !== undefined) void stream.return?.(undefined).catch(() => undefined);
}

class StreamSend implements AttemptHandle {
  readonly #s: RequestSession;
  readonly #stream: AsyncIterator<Buffer>;
  readonly #sink: StreamSink;
  finished = false;
  #stallTimer: NodeJS.Timeout | undefined = undefined;

  constructor(s: RequestSession, stream: AsyncIterator<Buffer>, sink: StreamSink) {
    this.#s = s;
    this.#stream = stream;
    this.#sink = sink;
  }

  next(): void {
    this.#stream.next().then(this.#read, this.#failed);
  }

  readonly #read = (r: IteratorResult<Buffer>): void => {
    if (this.finished) return;
    if (r.done === true) {
      this.finished = true;
      return this.#sink.end();
    }
    if (this.#sink.write(r.value)) return this.next();
    if (this.finished) return;
    this.#sink.onDrain(this.#drained);
    const t = this.#s.settings.sendTimeout;
    if (t > 0) this.#stallTimer = setTimeout(this.#stalled, t);
  };

  readonly #drained = (): void => {
    if (this.#stallTimer !== undefined) {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
    }
    if (!this.finished) this.next();
  };

  readonly #failed = (err: unknown): void => {
    if (this.finished) return;
    this.finished = true;
    this.#s.error = 'FILE_READ_ERROR';
    this.#sink.abort(new ProxyError('FILE_READ_ERROR', err instanceof Error ? err : undefined));
  };

  readonly #stalled = (): void => {
    this.#stallTimer = undefined;
    if (this.finished) return;
    this.#s.error = 'SEND_TIMEOUT';
    this.abort();
    this.#sink.abort(new ProxyError('SEND_TIMEOUT'));
  };

  /** AttemptHandle: the client left (or the send timed out): the stream is closed. */
  abort(): void {
    if (this.#stallTimer !== undefined) {
      clearTimeout(this.#stallTimer);
      this.#stallTimer = undefined;
    }
    if (this.finished) return;
    this.finished = true;
    dropStream(this.#stream);
  }
}
