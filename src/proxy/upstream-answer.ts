// A model server's answer taken straight from undici's dispatch, without
// undici's `request()` around it. `request()` hands each chunk of the body
// through two more handler layers into a Readable (a push, a 'data' event,
// a read scheduled on the next tick per chunk, and an async resource, the
// Readable's state and its destruction per request); a relayed stream is
// tens of chunks. Here the chunks go from the dispatch handler to one
// reader (the relay), and a Readable is made only for a caller that asks for
// one (`UpstreamBody.readable()`: whole bodies, error bodies).
//
// What `request()` gave stays: the answer resolves at its final status and
// headers (an informational 1xx is skipped) and rejects with undici's own
// error when none comes; the request's signal aborts it before and after the
// headers; a reader that pauses holds the upstream back once 64 KB are held
// (a Readable's high-water mark, so a connection is paused, and so not
// reused, in the same cases as before); an error after the headers drops
// what was held and reaches the reader at once, as a Readable's destroy does.
import { Readable } from 'node:stream';
import type { IncomingHttpHeaders } from 'node:http';
import { errors, type Dispatcher } from 'undici';

/** As a Readable's default high-water mark in undici: held beyond this while the reader is paused, the upstream is paused. */
const HIGH_WATER_MARK = 64 * 1024;

export interface BodyReader {
  /** A chunk of the body; the reader may pause, resume or destroy the body from here. */
  data(chunk: Buffer): void;
  /** The whole body was read. */
  end(): void;
  /** The body failed (an upstream error, a timeout, or the request's abort) before its end. */
  error(err: Error): void;
}

/** An answer's body: read once, by one reader (`read`) or as a Readable (`readable`). */
export class UpstreamBody {
  readonly #controller: Dispatcher.DispatchController;
  #reader: BodyReader | undefined;
  /** Chunks not yet handed to the reader: none attached yet, or it is paused. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  #paused = false;
  #ended = false;
  #failure: Error | undefined;
  /** The reader got the end or an error, or the body was destroyed: nothing more happens. */
  #closed = false;
  #delivering = false;
  #onClose: (() => void) | undefined;

  constructor(controller: Dispatcher.DispatchController) {
    this.#controller = controller;
  }

  /** Called once when the body is done with: read to its end or failure, or destroyed. */
  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#onClose = listener;
  }

  read(reader: BodyReader): void {
    if (this.#reader) throw new Error('an upstream body is read once');
    this.#reader = reader;
    this.#deliver();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#deliver();
  }

  /** Stops reading: what is held is dropped and the upstream request is aborted if its answer is not complete. */
  destroy(reason?: Error): void {
    if (this.#closed) return;
    this.#held = [];
    this.#heldBytes = 0;
    if (!this.#ended && this.#failure === undefined) {
      this.#failure = reason ?? new errors.RequestAbortedError();
      this.#controller.abort(this.#failure);
    }
    this.#close();
  }

  /** The body as a Readable, for a caller that reads whole bodies (`for await`, a pipe). */
  readable(): Readable {
    const stream = new Readable({
      read: () => this.resume(),
      destroy: (err, callback) => {
        this.destroy(err ?? undefined);
        callback(err);
      },
    });
    this.read({
      data: (chunk) => {
        if (!stream.push(chunk)) this.pause();
      },
      end: () => stream.push(null),
      error: (err) => stream.destroy(err),
    });
    return stream;
  }

  /** @internal From the dispatch handler. */
  chunk(chunk: Buffer): void {
    if (this.#closed) return;
    if (this.#reader && !this.#paused && this.#held.length === 0 && !this.#delivering) {
      this.#reader.data(chunk);
      return;
    }
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes >= HIGH_WATER_MARK && !this.#controller.paused) this.#controller.pause();
  }

  /** @internal */
  end(): void {
    this.#ended = true;
    this.#deliver();
  }

  /** @internal The request's signal aborted it: the upstream request is aborted and the reader gets `reason` at once. */
  abort(reason: Error): void {
    if (this.#closed || this.#failure !== undefined) return;
    this.fail(reason);
    if (!this.#ended) this.#controller.abort(reason);
  }

  /** @internal What was held is dropped: the reader learns of the failure at once. */
  fail(err: Error): void {
    if (this.#closed || this.#failure !== undefined) return;
    this.#failure = err;
    this.#held = [];
    this.#heldBytes = 0;
    this.#deliver();
  }

  #deliver(): void {
    const reader = this.#reader;
    if (!reader || this.#delivering || this.#closed) return;
    this.#delivering = true;
    try {
      while (this.#held.length > 0 && !this.#paused && !this.#closed && this.#failure === undefined) {
        const chunk = this.#held.shift()!;
        this.#heldBytes -= chunk.length;
        reader.data(chunk);
      }
    } finally {
      this.#delivering = false;
    }
    if (this.#closed) return;
    // A failure reaches a paused reader too, as a Readable's error does.
    if (this.#failure !== undefined) {
      this.#close();
      reader.error(this.#failure);
    } else if (this.#paused || this.#held.length > 0) {
      return;
    } else if (this.#ended) {
      this.#close();
      reader.end();
    } else if (this.#controller.paused) {
      this.#controller.resume();
    }
  }

  #close(): void {
    this.#closed = true;
    const listener = this.#onClose;
    this.#onClose = undefined;
    listener?.();
  }
}

export interface UpstreamAnswer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: UpstreamBody;
}

export interface AnswerRequest extends Dispatcher.DispatchOptions {
  /** Aborts the request, before its answer or during its body. */
  signal: AbortSignal;
}

/** Sends a request through `dispatcher`; resolves at the answer's final status and headers. */
export function requestAnswer(dispatcher: Dispatcher, request: AnswerRequest): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    const handler = new AnswerHandler(request.signal, resolve, reject);
    try {
      dispatcher.dispatch(request, handler);
    } catch (err) {
      handler.onResponseError(undefined, err as Error);
    }
  });
}

class AnswerHandler implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined;
  #body: UpstreamBody | undefined;
  #settled = false;
  readonly #signal: AbortSignal;
  readonly #resolve: (answer: UpstreamAnswer) => void;
  readonly #reject: (err: Error) => void;
  readonly #onAbort = (): void => this.#abort();

  constructor(signal: AbortSignal, resolve: (answer: UpstreamAnswer) => void, reject: (err: Error) => void) {
    this.#signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
    if (!signal.aborted) signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#signal.aborted) controller.abort(this.#reason());
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // informational; the final answer follows on the same request
    this.#body = new UpstreamBody(controller);
    this.#body.onClose(() => this.#signal.removeEventListener('abort', this.#onAbort));
    this.#settled = true;
    this.#resolve({ statusCode, headers, body: this.#body });
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#body?.chunk(chunk);
  }

  onResponseEnd(): void {
    this.#body?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.#body) {
      this.#body.fail(error);
      return;
    }
    this.#signal.removeEventListener('abort', this.#onAbort);
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(error);
  }

  #abort(): void {
    const reason = this.#reason();
    if (this.#body) this.#body.abort(reason);
    else this.#controller?.abort(reason);
  }

  #reason(): Error {
    const reason: unknown = this.#signal.reason;
    return reason instanceof Error ? reason : new errors.RequestAbortedError();
  }
}
