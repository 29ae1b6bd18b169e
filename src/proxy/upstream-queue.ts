// Admission to one upstream target: at most `limit` requests at once (the
// pool's connections), at most `maxQueued` waiting, each for at most
// `timeoutMs`. Beyond that the client gets a 503 with retry-after at once,
// instead of waiting silently inside the connection pool.
import { GatewayError } from '../http/errors.js';

export interface QueueObserver {
  /** Called with +1/-1 as requests start and stop waiting or running. */
  queued(delta: number): void;
  active(delta: number): void;
  /** Called with +1/-1 as keep-alive connections to a target are opened and dropped (direct targets only). */
  connections?(delta: number): void;
}

interface Waiter {
  grant: () => void;
}

export class UpstreamQueue {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly connection: string,
    private readonly limit: number,
    private readonly maxQueued: number,
    private readonly timeoutMs: number,
    private readonly observer?: QueueObserver,
  ) {}

  get free(): boolean {
    return this.running < this.limit;
  }

  /** Resolves with a release function once the request may go; throws a 503 when the queue is full or the wait ran out. */
  async acquire(signal: AbortSignal): Promise<() => void> {
    if (this.running < this.limit && this.waiting.length === 0) return this.take();
    if (this.waiting.length >= this.maxQueued) {
      throw busy(this.connection, 'upstream_queue_full', `${this.waiting.length} requests are already waiting`);
    }
    this.observer?.queued(1);
    try {
      await new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          grant: () => {
            cleanup();
            resolve();
          },
        };
        const leave = (err: Error) => {
          const i = this.waiting.indexOf(waiter);
          if (i !== -1) this.waiting.splice(i, 1);
          cleanup();
          reject(err);
        };
        const timer = setTimeout(() => leave(busy(this.connection, 'upstream_queue_timeout', `a request waited ${this.timeoutMs} ms for a free upstream connection`)), this.timeoutMs);
        const onAbort = () => leave(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        const cleanup = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        this.waiting.push(waiter);
      });
    } finally {
      this.observer?.queued(-1);
    }
    return this.take();
  }

  private take(): () => void {
    this.running++;
    this.observer?.active(1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.observer?.active(-1);
      const next = this.waiting.shift();
      next?.grant();
    };
  }
}

function busy(connection: string, code: string, why: string): GatewayError {
  return new GatewayError(`The model server for connection "${connection}" is at capacity (${why}). Retry shortly.`, {
    status: 503,
    type: 'service_unavailable',
    code,
    headers: { 'retry-after': '2', 'x-should-retry': 'true' },
  });
}
