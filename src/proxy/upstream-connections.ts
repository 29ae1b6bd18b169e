// The keep-alive connections to one upstream target, one undici Client each,
// as an undici Dispatcher (so `request()` works on it). undici's Pool keeps
// every Client it ever opened until the pool itself is closed, connected or
// not: after a burst of 5,000 streams it held 5,000 Clients (~10 MB of heap)
// and scanned them on every request. Here a connection that closes while idle
// is dropped, so once a burst is over and the upstream (or our keep-alive
// timeout) closes the idle sockets, nothing is left. How many requests may
// run at once is the UpstreamQueue's job (for the agent, the gateway's queue
// and the tunnel's streams). Used by the gateway for direct targets and by
// the agent for its model servers.
import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Client, Dispatcher } from 'undici';
import { readBytesWrittenAfter, startArrivalClock } from './arrival-clock.js';

/**
 * A kept-alive connection is written to only while it has been idle less
 * than this. Model servers close idle connections after a few seconds
 * (uvicorn, so vLLM, and node's http after 5 s), and a request written as
 * that close is on its way fails with "other side closed" before any answer.
 * Such a request cannot be sent again: a model server that died reading it
 * looks the same, and the prompt would reach the model twice. So the rule
 * must hold by itself, and it is judged where it cannot be late:
 * - idle time counts from a time before the model server wrote the last
 *   byte of the previous answer (arrival-clock.ts), not from when a busy
 *   event loop got round to reading it: that was seconds late in
 *   5,000-stream soaks (5-10 x "other side closed" with a 2 s rule and a 5 s
 *   server). Where that time is unknown, the connection is not reused: an
 *   answer whose reading was paused (a slow reader), or one larger than a
 *   receive buffer read just after the loop stalled, could have been
 *   written any time before;
 * - it is checked again just before the first byte of the request is
 *   written (undici writes on a reused socket a turn of the loop after the
 *   request was handed to it, and a turn can take seconds); too old then,
 *   the request moves to a fresh connection, nothing having been written.
 * That leaves 3 s for the round trip against a 5 s server. A server that
 * closes sooner than 2 s needs a smaller value here.
 */
export const MAX_IDLE_REUSE_MS = 2_000;

export interface UpstreamConnectionsOptions {
  /** Called with +1/-1 as connections are opened and dropped. */
  onCount?: (delta: number) => void;
  maxIdleReuseMs?: number;
  /** A monotonic clock in ms, the arrival clock's (tests replace both). */
  now?: () => number;
  /** The arrival clock's date for the last byte of an answer of so many bytes (arrival-clock.ts). */
  writtenAfter?: (answerBytes: number) => number | undefined;
}

/** Thrown from onRequestStart, before undici writes a byte, when the connection turned out too old to write to. */
class StaleConnection extends Error {}

export class UpstreamConnections extends Dispatcher {
  /** Connected and free, most recently used last, with a time before the model server wrote its last answer's last byte: reusing the warmest lets the rest time out after a burst. */
  private readonly idle: Array<{ client: Client; since: number }> = [];
  private readonly held = new Set<Client>();
  private readonly connected = new WeakSet<Client>();
  private readonly maxIdleReuseMs: number;
  private readonly now: () => number;
  private readonly writtenAfter: (answerBytes: number) => number | undefined;
  private readonly onCount: ((delta: number) => void) | undefined;
  /**
   * `dispatch` with the caller's handler in undici's current handler
   * interface: compose() adapts one written to the legacy interface, as
   * `request()` still passes.
   */
  private readonly dispatchCurrent: Dispatcher.Dispatch;

  constructor(
    private readonly origin: string,
    private readonly options: Client.Options,
    { onCount, maxIdleReuseMs = MAX_IDLE_REUSE_MS, now = () => performance.now(), writtenAfter = readBytesWrittenAfter }: UpstreamConnectionsOptions = {},
  ) {
    super();
    this.onCount = onCount;
    this.maxIdleReuseMs = maxIdleReuseMs;
    this.now = now;
    this.writtenAfter = writtenAfter;
    this.dispatchCurrent = this.compose(() => (options, handler) => this.exchange(options, handler)).dispatch;
    startArrivalClock();
  }

  /** Connections held: in use, idle, or being opened. */
  get size(): number {
    return this.held.size;
  }

  /** One request, on the warmest idle connection young enough or a new one; the connection is free again once the answer's last byte is read (not when its reader is done with it). */
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.dispatchCurrent(options, handler);
  }

  private exchange(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const { client, idleSince } = this.take();
    const stopWatching = idleSince === undefined ? this.abandonOnAbort(client, (options as { signal?: unknown }).signal) : undefined;
    const exchange = new Exchange(handler, {
      stale: () => idleSince !== undefined && !this.young(idleSince),
      done: (reusable, answerBytes) => {
        stopWatching?.();
        this.release(client, reusable, answerBytes);
      },
      retry: () => this.exchange(options, handler),
    });
    return client.dispatch(options, exchange);
  }

  /**
   * undici acts on a request's abort only once a connection takes it: a
   * caller that gives up while its new connection is still opening would
   * hold it (and its admission slot) until the connect succeeds or times
   * out. The connection is this request's alone, so it is destroyed, which
   * fails the request at once.
   */
  private abandonOnAbort(client: Client, signal: unknown): (() => void) | undefined {
    if (!(signal instanceof AbortSignal)) return undefined;
    const onAbort = (): void => {
      if (!this.connected.has(client)) void client.destroy(signal.reason instanceof Error ? signal.reason : null).catch(() => {});
    };
    const stop = (): void => {
      signal.removeEventListener('abort', onAbort);
      client.off('connect', stop);
    };
    if (signal.aborted) queueMicrotask(onAbort);
    else signal.addEventListener('abort', onAbort, { once: true });
    client.once('connect', stop);
    return stop;
  }

  /** Graceful: a request in flight finishes first. */
  override async close(): Promise<void> {
    await Promise.all(this.forgetAll().map((c) => c.close()));
  }

  /** At once: a request in flight fails (for a caller whose streams are already done or cut, so waiting on a model that never answers would hang). */
  override async destroy(): Promise<void> {
    await Promise.all(this.forgetAll().map((c) => c.destroy()));
  }

  /** True while a connection idle since `since` may still be written to. */
  private young(since: number): boolean {
    return this.now() - since < this.maxIdleReuseMs;
  }

  /** Back to the idle set if it is still connected, `reusable`, and the end of its answer (of `answerBytes`) can be dated; otherwise it is dropped. */
  private release(client: Client, reusable: boolean, answerBytes: number): void {
    if (!this.held.has(client)) return;
    const since = reusable ? this.writtenAfter(answerBytes) : undefined;
    if (since !== undefined && this.connected.has(client) && !client.closed && !client.destroyed) this.idle.push({ client, since });
    else this.drop(client);
  }

  private take(): { client: Client; idleSince?: number } {
    const latest = this.idle.pop();
    if (latest && this.young(latest.since)) return { client: latest.client, idleSince: latest.since };
    // The warmest is too old, so every other idle one is too.
    if (latest) for (const { client } of [latest, ...this.idle.splice(0)]) this.drop(client);
    return { client: this.open() };
  }

  private forgetAll(): Client[] {
    const clients = [...this.held];
    this.idle.length = 0;
    this.held.clear();
    this.onCount?.(-clients.length);
    return clients;
  }

  private open(): Client {
    const client = new Client(this.origin, this.options);
    client.on('connect', () => this.connected.add(client));
    client.on('disconnect', () => {
      this.connected.delete(client);
      // Idle: nothing will hand it back, so drop it now. In use: `release` drops it.
      const at = this.idle.findLastIndex((entry) => entry.client === client);
      if (at !== -1) {
        this.idle.splice(at, 1);
        this.drop(client);
      }
    });
    this.held.add(client);
    this.onCount?.(1);
    return client;
  }

  private drop(client: Client): void {
    if (!this.held.delete(client)) return;
    this.onCount?.(-1);
    // Closed, it releases its parser and timers; a request still queued on it (none, by construction) would finish first.
    if (!client.closed && !client.destroyed) client.close().catch(() => {});
  }
}

/**
 * One request on one connection, wrapped around the caller's handler: it
 * judges a reused connection's age at the last moment, notes whether the
 * answer's reading was paused, and hands the connection back, once, when the
 * answer's last byte is read or the request failed.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private paused = false;
  private finished = false;
  private answerBytes = 0;

  constructor(
    private readonly inner: Dispatcher.DispatchHandler,
    private readonly connection: {
      /** True if the connection is reused and too old to write to now. */
      stale(): boolean;
      /** The answer (of `answerBytes`) is read to its end (reusable), or failed. */
      done(reusable: boolean, answerBytes: number): void;
      /** The same request on another connection. */
      retry(): void;
    },
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    // undici writes the request as soon as this returns; what this throws fails the request unwritten, its body untouched.
    if (this.connection.stale()) throw new StaleConnection();
    this.inner.onRequestStart?.(controller, context);
  }

  /** Also for an informational answer (1xx, e.g. 103 Early Hints), which the final one follows on the same request. */
  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
    this.paused ||= controller.paused;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.answerBytes += chunk.length;
    this.inner.onResponseData?.(controller, chunk);
    this.paused ||= controller.paused;
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.finish(!this.paused);
    this.inner.onResponseEnd?.(controller, trailers);
  }

  /** Also after onResponseEnd, when the caller's onResponseEnd threw (undici reports that as an error). */
  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.finish(false);
    if (error instanceof StaleConnection) this.connection.retry();
    else this.inner.onResponseError?.(controller, error);
  }

  private finish(reusable: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.connection.done(reusable, this.answerBytes);
  }
}
