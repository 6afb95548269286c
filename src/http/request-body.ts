/**
 * `RequestBody`: the client's request body, read once from its source and handed out as often as
 * needed, in order:
 *
 *   prefix(n)   the first n bytes (or the whole body when shorter), for request-body filters
 *   stream()    a Readable for one try: what was kept, then the rest of the source as it arrives
 *
 * While the bytes read stay within `keep` (a retry's replay buffer), every chunk is kept until the
 * request is over, so a retry can send the body again whole (`replayable`). Past it, chunks are
 * dropped once a try has taken them, and the body can no longer be replayed once any was sent:
 * memory stays bounded by `keep` plus the source's own buffer. The source is never destroyed (the
 * response shares its connection or stream); it is paused whenever nobody is waiting for bytes.
 *
 * Past `limit` bytes (a route's maxBodySize for bodies without Content-Length), reading stops and
 * every consumer fails with BODY_TOO_LARGE.
 */
import { Readable } from 'node:stream';
import { ProxyError } from '../errors.ts';

/** Bytes a try's stream may have buffered ahead of undici before the source is paused. */
const AHEAD = 64 * 1024;

export class RequestBody {
  readonly #source: Readable;
  readonly #keep: number;
  readonly #limit: number;
  /** Called with every chunk's length as it is read (the session's bytesIn). */
  readonly #count: (n: number) => void;
  /** Called once, before the first byte is wanted (Expect: 100-continue). */
  #wanted: (() => void) | undefined;
  /** Chunks read and not dropped; `#base` is the index of the first in the whole body. */
  readonly #chunks: Buffer[] = [];
  #base = 0;
  /** Bytes read from the source so far. */
  #read = 0;
  #ended = false;
  #error: Error | undefined = undefined;
  /** Some chunk was dropped: the body cannot be sent again whole. */
  #dropped = false;
  /** The stream of the current try, and its position (index into the whole body's chunks). */
  #reader: Readable | undefined = undefined;
  #at = 0;
  /** A prefix read in progress. */
  #prefixWanted = 0;
  #prefixDone: (() => void) | undefined = undefined;
  #flowing = false;

  /**
   * @param keep bytes kept for replay (0: none); @param limit largest body (0: none);
   * @param wanted called before the first byte is read (sends 100 Continue when owed).
   */
  constructor(source: Readable, keep: number, limit: number, count: (n: number) => void, wanted?: () => void) {
    this.#source = source;
    this.#keep = keep;
    this.#limit = limit;
    this.#count = count;
    this.#wanted = wanted;
    source.on('data', (chunk: Buffer) => this.#onData(chunk));
    source.once('end', () => this.#onEnd());
    source.once('error', (err: Error) => this.#fail(err));
    source.once('aborted', () => this.#fail(new Error('the client aborted the request body')));
    source.pause();
  }

  /** Whether every byte read so far is still kept, so `stream()` can start again from the first. */
  get replayable(): boolean {
    return !this.#dropped;
  }

  /** Whether the whole body has been read. */
  get complete(): boolean {
    return this.#ended;
  }

  /**
   * Resolves with the first `max` bytes (fewer when the body is shorter; `complete` when the whole
   * body is in them). Rejects with the source's error, or BODY_TOO_LARGE past the limit.
   */
  async prefix(max: number): Promise<{ prefix: Buffer; complete: boolean }> {
    while (!this.#ended && this.#error === undefined && this.#read < max) {
      await new Promise<void>((resolve) => {
        this.#prefixWanted = max;
        this.#prefixDone = resolve;
        this.#flow();
      });
    }
    if (this.#error !== undefined) throw this.#error;
    const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    return { prefix: all.length > max ? all.subarray(0, max) : all, complete: this.#ended && all.length <= max };
  }

  /**
   * A Readable of the whole body for one try, from its first byte: kept chunks first, then the
   * source. A later call (a retry) ends the earlier stream's feed. Throws when the body is not
   * replayable any more.
   */
  stream(): Readable {
    if (this.#dropped) throw new Error('the request body is no longer replayable');
    const previous = this.#reader;
    const reader: Readable = new Readable({ read: () => this.#pump(reader) });
    this.#reader = reader;
    this.#at = 0;
    if (previous !== undefined && !previous.destroyed) previous.destroy();
    return reader;
  }

  #pump(reader: Readable): void {
    if (reader !== this.#reader) return;
    const chunks = this.#chunks;
    while (this.#at - this.#base < chunks.length) {
      const chunk = chunks[this.#at - this.#base];
      this.#at++;
      if (this.#read > this.#keep) this.#drop();
      if (!reader.push(chunk)) return;
    }
    if (this.#error !== undefined) return void reader.destroy(this.#error);
    if (this.#ended) return void reader.push(null);
    this.#flow();
  }

  /** Drops the chunks the current try has taken (not kept for replay). */
  #drop(): void {
    const n = this.#at - this.#base;
    if (n <= 0) return;
    this.#chunks.splice(0, n);
    this.#base += n;
    this.#dropped = true;
  }

  #flow(): void {
    if (this.#flowing || this.#ended || this.#error !== undefined) return;
    if (this.#wanted !== undefined) {
      const wanted = this.#wanted;
      this.#wanted = undefined;
      wanted();
    }
    this.#flowing = true;
    this.#source.resume();
  }

  #onData(chunk: Buffer): void {
    if (this.#error !== undefined) return;
    this.#read += chunk.length;
    this.#count(chunk.length);
    if (this.#limit > 0 && this.#read > this.#limit) {
      this.#fail(new ProxyError('BODY_TOO_LARGE'));
      return;
    }
    this.#chunks.push(chunk);
    const reader = this.#reader;
    if (reader !== undefined && this.#at - this.#base === this.#chunks.length - 1) {
      this.#at++;
      if (this.#read > this.#keep) this.#drop();
      if (!reader.push(chunk)) this.#pause();
      return;
    }
    if (this.#prefixDone !== undefined) {
      if (this.#read >= this.#prefixWanted) this.#prefixReady();
      return;
    }
    // Nobody is taking bytes right now: hold the source once enough is buffered.
    if (reader === undefined || this.#unread() > AHEAD) this.#pause();
  }

  /** Bytes read and not yet taken by the current try. */
  #unread(): number {
    let n = 0;
    for (let i = this.#at - this.#base; i < this.#chunks.length; i++) n += this.#chunks[i].length;
    return n;
  }

  #pause(): void {
    if (!this.#flowing) return;
    this.#flowing = false;
    this.#source.pause();
  }

  #prefixReady(): void {
    const done = this.#prefixDone;
    this.#prefixDone = undefined;
    this.#pause();
    done?.();
  }

  #onEnd(): void {
    this.#ended = true;
    this.#flowing = false;
    if (this.#prefixDone !== undefined) this.#prefixReady();
    const reader = this.#reader;
    if (reader !== undefined && this.#at - this.#base === this.#chunks.length) reader.push(null);
  }

  #fail(err: Error): void {
    if (this.#error !== undefined || this.#ended) return;
    this.#error = err;
    this.#pause();
    // Past the limit the source is no longer read; its remaining bytes are never parsed (the answer closes).
    if (this.#prefixDone !== undefined) this.#prefixReady();
    const reader = this.#reader;
    if (reader !== undefined && !reader.destroyed) reader.destroy(err);
  }
}
