/**
 * The response phases: every response on its way to the client, the upstream's or an answer of
 * our own (a filter's Reply, one of the gateway's errors), passes the chain's onResponse hooks
 * (reverse filter order) and then its onResponseBody hooks, chunk by chunk.
 *
 *   upstream head ─► FilteredResponse.head ─► onResponse … ─► downstream head
 *   upstream body ─► FilteredResponse.data ─► onResponseBody … ─► downstream data
 *   Reply         ─► respond() ─► the same, from a rendered head and body
 *
 * A chain with no response hooks never gets here: the transport writes to the downstream itself,
 * and our own answers go straight out (`respond` without filters). A hook may return a Reply (it
 * replaces the response: the upstream's body is dropped) or a promise (the upstream body is held
 * back meanwhile). A body hook may return a promise too (compress: zlib works on the thread pool):
 * the transport is paused (data() answers false) and later chunks queue behind it, so at most one
 * chunk per request is in a hook at a time. A hook that throws fails only its request: before the
 * head went out the answer becomes 500 POLICY_ERROR, after it the response is cut.
 */
import { ERRORS, ProxyError, type ErrorCode } from '../errors.ts';
import { ResponseCut, type Reply, type ResponseHead } from '../policies/filter.ts';
import type { Flow, ResponseSink } from '../transport/forward.ts';
import type { Placed } from './chain.ts';
import type { Downstream } from './downstream.ts';
import { errorReply, renderReply } from './error-response.ts';
import { HeaderList } from './header-list.ts';
import { dropStream, sendStream } from './reply-stream.ts';
import type { RequestSession } from './session.ts';

const EMPTY = Buffer.alloc(0);
/** What `#transform` returns when a body hook answered with a promise: its completion carries on. */
const PENDING: unique symbol = Symbol('pending');

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

/** Whether the client's body is still (partly) unread: answering now must close the connection. */
export function bodyUnread(s: RequestSession): boolean {
  return s.down.hasBody && !s.down.bodyComplete;
}

/** Writes a whole response to the downstream, no filters. */
function writeDirect(down: Downstream, status: number, headers: string[], body: Buffer | undefined): void {
  down.head(status, undefined, headers, undefined);
  if (body !== undefined && body.length > 0) down.data(body);
  down.end(undefined);
}

/**
 * Answers `s` with `reply`, made by the filter at `position` (Infinity: the gateway's own answer),
 * through the response hooks of the filters before it. Closes the connection afterwards when the
 * request body was not read (its bytes must never be parsed as a next request) or `close` is set.
 */
export function respond(s: RequestSession, reply: Reply, position: number, close = false): void {
  const down = s.down;
  if (down.headersSent || down.destroyed) {
    dropStream(reply.stream);
    if (!down.ended) down.abort(new ProxyError('INTERNAL_ERROR'));
    return;
  }
  if (close || bodyUnread(s)) down.closeAfter();
  // A policy's error answer (401 AUTH_REQUIRED, 403 IP_FORBIDDEN, 429 RATE_LIMITED…) is the request's error code, for the access log and the metrics.
  if (reply.error !== undefined && s.error === undefined) s.error = reply.error.code;
  const r = renderReply(reply, s.requestId, down.headers);
  if (!s.chain.filtersResponse) {
    const stream = r.stream;
    if (stream === undefined) return writeDirect(down, r.status, r.headers.raw, r.body);
    down.head(r.status, undefined, r.headers.raw, undefined);
    if (r.body !== undefined && r.body.length > 0) down.data(r.body);
    return sendStream(s, stream, {
      write: (chunk) => down.data(chunk),
      onDrain: (resume) => down.onDrain(resume),
      end: () => down.end(undefined),
      abort: (err) => down.abort(err),
    });
  }
  if (position < s.answeredAt) s.answeredAt = position;
  new FilteredResponse(s).answer(r.status, r.headers, r.body, r.stream);
}

/** Answers with one of the gateway's own errors and records it on the session. */
export function fail(s: RequestSession, code: ErrorCode, message?: string): void {
  s.error = code;
  respond(s, errorReply(code, message), Infinity, ERRORS[code].close);
}

/** A hook threw or rejected: logged with its policy's name, recorded; the answer 500 POLICY_ERROR. */
function failedReply(s: RequestSession, placed: Placed, err: unknown): Reply {
  s.gen.onInternalError(s, err, placed.policy);
  s.error = 'POLICY_ERROR';
  s.policy = placed.policy;
  return errorReply('POLICY_ERROR', `policy "${placed.policy}" failed while handling this request`);
}

/** A hook did not decide within `policyTimeout`: logged with its policy's name, recorded; the answer 503 POLICY_TIMEOUT. */
function timedOutReply(s: RequestSession, placed: Placed): Reply {
  s.gen.onInternalError(s, new Error(`policy "${placed.policy}" did not decide within ${s.settings.policyTimeout} ms`), placed.policy);
  s.error = 'POLICY_TIMEOUT';
  s.policy = placed.policy;
  return errorReply('POLICY_TIMEOUT', `policy "${placed.policy}" did not decide in time`);
}

/**
 * A hook threw or rejected: logged with its policy's name, the request answered 500 POLICY_ERROR
 * (through the response hooks of the filters before it), or cut when its head already went out.
 */
export function policyFailed(s: RequestSession, placed: Placed, err: unknown): void {
  const reply = failedReply(s, placed, err);
  if (!s.over) respond(s, reply, placed.position, true);
}

/**
 * Waits for an async hook's verdict, at most the listener's `policyTimeout`: past it `timedOut`
 * runs and the verdict, whenever it comes, is ignored (EDGE-CASES 41). The timer exists only for
 * hooks that returned a promise.
 */
export function awaitVerdict(
  s: RequestSession,
  verdict: Promise<Reply | undefined>,
  decided: (reply: Reply | undefined) => void,
  failed: (err: unknown) => void,
  timedOut: () => void,
): void {
  const ms = s.settings.policyTimeout;
  let settled = false;
  const timer =
    ms > 0
      ? setTimeout(() => {
          if (settled) return;
          settled = true;
          timedOut();
        }, ms)
      : undefined;
  verdict.then(
    (reply) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      decided(reply);
    },
    (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      failed(err);
    },
  );
}

/** A hook did not decide within `policyTimeout`: logged with its policy's name, the request answered 503 POLICY_TIMEOUT. */
export function policyTimedOut(s: RequestSession, placed: Placed): void {
  const reply = timedOutReply(s, placed);
  if (!s.over) respond(s, reply, placed.position, true);
}

/**
 * The response filters of one request: the sink the transport writes an upstream response to when
 * the chain has response hooks, and the writer of our own answers through them.
 */
export class FilteredResponse implements ResponseSink {
  readonly s: RequestSession;
  readonly down: Downstream;
  #head: { status: number; headers: HeaderList; fromUpstream: boolean } | undefined = undefined;
  #reason: string | undefined = undefined;
  #flow: Flow | undefined = undefined;
  /** Next onResponse hook to run. */
  #next = 0;
  /** Hooks of filters at or after this position do not apply (the answering / replacing filter). */
  #limit: number;
  /** The head went to the downstream. */
  #written = false;
  /** Chunks and the end held while an async hook runs (the head is not written yet). */
  #held: Buffer[] | undefined = undefined;
  #endHeld = false;
  #trailers: Record<string, string | string[]> | undefined = undefined;
  /** The response was replaced by a Reply: its body is written here, the upstream's dropped. */
  #replyBody: Buffer | undefined = undefined;
  /** The replacing Reply's streamed body (`Reply.stream`), sent after `#replyBody`. */
  #replyStream: AsyncIterator<Buffer> | undefined = undefined;
  #replaced = false;
  #done = false;
  /**
   * A body hook's promise is pending: chunks wait in `#queue` (in order), the end in
   * `#finishWaiting`, the transport's resume in `#resume` (data() answered false, so it paused).
   */
  #busy = false;
  #queue: Buffer[] | undefined = undefined;
  #finishWaiting = false;
  #resume: (() => void) | undefined = undefined;

  constructor(s: RequestSession) {
    this.s = s;
    this.down = s.down;
    this.#limit = s.answeredAt;
  }

  get headersSent(): boolean {
    return this.#head !== undefined || this.down.headersSent;
  }

  get destroyed(): boolean {
    return this.down.destroyed;
  }

  /** An answer of our own (rendered Reply), through the hooks. */
  answer(status: number, headers: HeaderList, body: Buffer | undefined, stream?: AsyncIterator<Buffer>): void {
    this.#head = { status, headers, fromUpstream: false };
    this.#replaced = true;
    this.#replyBody = body ?? EMPTY;
    this.#replyStream = stream;
    this.#endHeld = true;
    this.#run();
  }

  head(status: number, reason: string | undefined, headers: string[], flow: Flow | undefined): boolean {
    this.#head = { status, headers: new HeaderList(headers), fromUpstream: true };
    this.#reason = reason;
    this.#flow = flow;
    this.#run();
    return !this.#replaced;
  }

  /** Runs the onResponse hooks from `#next`; writes the head once they are through. */
  #run(): void {
    const hooks = this.s.chain.response;
    const s = this.s;
    while (this.#next < hooks.length) {
      const placed = hooks[this.#next++];
      if (placed.position >= this.#limit) continue;
      let verdict: ReturnType<NonNullable<typeof placed.filter.onResponse>>;
      try {
        verdict = placed.filter.onResponse!(s, this.#head as ResponseHead);
      } catch (err) {
        this.#answerInstead(placed, failedReply(this.s, placed, err));
        continue;
      }
      if (verdict === undefined) continue;
      if (isPromise(verdict)) {
        this.#flow?.pause();
        awaitVerdict(
          s,
          verdict,
          (reply) => this.#resumeWith(placed, reply),
          (err: unknown) => {
            this.#answerInstead(placed, failedReply(s, placed, err));
            this.#resumeWith(placed, undefined);
          },
          () => {
            this.#answerInstead(placed, timedOutReply(s, placed));
            this.#resumeWith(placed, undefined);
          },
        );
        return;
      }
      this.#replace(placed, verdict);
    }
    this.#writeHead();
  }

  #resumeWith(placed: Placed, reply: Reply | undefined): void {
    if (this.#done || this.down.destroyed) return;
    if (reply !== undefined) this.#replace(placed, reply);
    this.#run();
    if (!this.#replaced) this.#flow?.resume();
  }

  /** A hook failed or timed out: `reply` (our error) replaces the response, and the connection closes after it. */
  #answerInstead(placed: Placed, reply: Reply): void {
    this.#replace(placed, reply);
    this.down.closeAfter();
  }

  /** A hook answered: its Reply replaces the response; only hooks of filters before it still apply. */
  #replace(placed: Placed, reply: Reply): void {
    const position = placed.position;
    this.s.policy = placed.policy;
    const r = renderReply(reply, this.s.requestId, this.down.headers);
    this.#head = { status: r.status, headers: r.headers, fromUpstream: false };
    this.#reason = undefined;
    this.#replyBody = r.body ?? EMPTY;
    dropStream(this.#replyStream);
    this.#replyStream = r.stream;
    this.#held = undefined;
    this.#endHeld = true;
    if (position < this.#limit) this.#limit = position;
    if (!this.#replaced) {
      this.#replaced = true;
      this.#flow?.stop();
    }
  }

  #writeHead(): void {
    if (this.#written || this.#done) return;
    this.#written = true;
    const head = this.#head!;
    // A body filter may change the body's length: the length is no longer known up front.
    if (this.#bodyTransforms()) head.headers.delete('content-length');
    this.down.head(head.status, this.#reason, head.headers.raw, undefined);
    if (this.#replaced) {
      const body = this.#replyBody!;
      this.#replyBody = undefined;
      if (body.length > 0) this.#write(body);
      const stream = this.#replyStream;
      if (stream === undefined) return this.#finish();
      this.#replyStream = undefined;
      return sendStream(this.s, stream, {
        write: (chunk) => !this.#done && this.#write(chunk),
        onDrain: (resume) => this.onDrain(resume),
        end: () => this.#finish(),
        abort: (err) => {
          if (this.#done) return;
          this.#done = true;
          this.down.abort(err);
        },
      });
    }
    const held = this.#held;
    this.#held = undefined;
    if (held !== undefined) for (const chunk of held) this.#write(chunk);
    if (this.#endHeld) this.#finish();
  }

  #bodyHooks(): boolean {
    for (const p of this.s.chain.responseBody) if (p.position < this.#limit) return true;
    return false;
  }

  /** Whether a body hook that applies may change the bytes (one not marked `bodyUnchanged`, or whose function says so). */
  #bodyTransforms(): boolean {
    for (const p of this.s.chain.responseBody) {
      if (p.position >= this.#limit) continue;
      const f = p.filter;
      if (f.bodyUnchanged === true || (typeof f.bodyUnchanged === 'function' && f.bodyUnchanged(this.s))) continue;
      return true;
    }
    return false;
  }

  data(chunk: Buffer): boolean {
    if (this.#done || this.#replaced) return true;
    if (!this.#written) {
      this.#held ??= [];
      this.#held.push(chunk);
      return false;
    }
    return this.#write(chunk);
  }

  /** Passes a chunk through the body hooks, then on to the client; false: wait for `onDrain`. */
  #write(chunk: Buffer): boolean {
    if (this.#busy) {
      this.#queue ??= [];
      this.#queue.push(chunk);
      return false;
    }
    const out = this.#transform(chunk, false, 0);
    if (out === PENDING) return false;
    return out === undefined || out.length === 0 ? true : this.down.data(out);
  }

  /**
   * Runs the body hooks from index `from` over `chunk`: the bytes to send, undefined when a hook
   * failed (the response is cut), or PENDING when a hook returned a promise (`#await` goes on).
   */
  #transform(chunk: Buffer, end: boolean, from: number): Buffer | undefined | typeof PENDING {
    const hooks = this.s.chain.responseBody;
    let out = chunk;
    for (let i = from; i < hooks.length; i++) {
      const placed = hooks[i];
      if (placed.position >= this.#limit) continue;
      let r: ReturnType<NonNullable<typeof placed.filter.onResponseBody>>;
      try {
        r = placed.filter.onResponseBody!(this.s, out, end);
      } catch (err) {
        this.#bodyFailed(placed, err);
        return undefined;
      }
      if (r === undefined) continue;
      if (isPromise(r)) {
        this.#await(r, i, out, end);
        return PENDING;
      }
      out = r;
    }
    return out;
  }

  /**
   * A body hook failed: logged with its policy's name, the response cut (its head went out). A
   * `ResponseCut` is a cut on purpose: not logged, the request's error its code.
   */
  #bodyFailed(placed: Placed, err: unknown): void {
    let code: ErrorCode = 'POLICY_ERROR';
    if (err instanceof ResponseCut && Object.hasOwn(ERRORS, err.code)) code = err.code as ErrorCode;
    else this.s.gen.onInternalError(this.s, err, placed.policy);
    this.s.error = code;
    this.s.policy = placed.policy;
    this.#done = true;
    this.#busy = false;
    this.#queue = undefined;
    this.#flow?.stop();
    this.down.abort(code === 'POLICY_ERROR' ? new ProxyError(code) : new ProxyError(code, undefined, (err as Error).message));
  }

  /**
   * The body hook at index `i` answered with a promise: once it settles the remaining hooks run
   * over its bytes, they go out, and the chunks (and the end) that arrived meanwhile follow.
   */
  #await(p: Promise<Buffer | undefined>, i: number, input: Buffer, end: boolean): void {
    this.#busy = true;
    const placed = this.s.chain.responseBody[i];
    p.then(
      (r) => {
        if (this.#done || this.down.destroyed) return;
        const out = this.#transform(r ?? input, end, i + 1);
        if (out === PENDING || this.#done) return;
        this.#busy = false;
        if (end) return this.#end(out);
        const full = out !== undefined && out.length > 0 && !this.down.data(out);
        this.#pump(full);
      },
      (err: unknown) => {
        if (!this.#done && !this.down.destroyed) this.#bodyFailed(placed, err);
      },
    );
  }

  /** After a pending body hook: the queued chunks, then the end or the transport's resume. */
  #pump(full: boolean): void {
    const queue = this.#queue;
    while (queue !== undefined && queue.length > 0) {
      const out = this.#transform(queue.shift()!, false, 0);
      if (out === PENDING || this.#done) return;
      if (out !== undefined && out.length > 0 && !this.down.data(out)) full = true;
    }
    if (this.#finishWaiting) {
      this.#finishWaiting = false;
      return this.#finish();
    }
    const resume = this.#resume;
    this.#resume = undefined;
    if (resume === undefined) return;
    if (full) this.down.onDrain(resume);
    else resume();
  }

  onDrain(resume: () => void): void {
    if (!this.#written) {
      // Held for an async hook: the body resumes through the flow once it is done.
      return;
    }
    if (this.#busy) {
      // A body hook is pending: `#pump` resumes once it and the chunks queued behind it are through.
      this.#resume = resume;
      return;
    }
    this.down.onDrain(resume);
  }

  end(trailers: Record<string, string | string[]> | undefined): void {
    if (this.#done || this.#replaced) return;
    this.#trailers = trailers;
    if (!this.#written) {
      this.#endHeld = true;
      return;
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    if (this.#busy) {
      this.#finishWaiting = true;
      return;
    }
    if (!this.#bodyHooks()) return this.#end(undefined);
    const last = this.#transform(EMPTY, true, 0);
    if (last !== PENDING && !this.#done) this.#end(last);
  }

  /** The last bytes (the body hooks' final output), then the end. */
  #end(last: Buffer | undefined): void {
    if (last !== undefined && last.length > 0) this.down.data(last);
    this.#done = true;
    this.down.end(this.#trailers);
  }

  abort(err: ProxyError): void {
    if (this.#done) return;
    if (this.#replaced && this.#written) return;
    this.#done = true;
    this.down.abort(err);
  }
}
